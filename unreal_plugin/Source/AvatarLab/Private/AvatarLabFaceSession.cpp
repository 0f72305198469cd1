#include "AvatarLabFaceSession.h"

#include <utility>

namespace AvatarLabGlue
{
	FFaceSession::FFaceSession(FEventFn InOnEvent)
		: OnEvent(std::move(InOnEvent))
	{
	}

	FFaceSession::~FFaceSession()
	{
		Close();
	}

	void AVL_CALL FFaceSession::ForwardEvent(void* User, avl_session* /*Session*/, const avl_event* Event)
	{
		// The session outlives every callback (Close joins the receive thread), so User is valid here.
		const FFaceSession* Self = static_cast<const FFaceSession*>(User);
		if (Self != nullptr && Event != nullptr && Self->OnEvent)
		{
			Self->OnEvent(*Event);
		}
	}

	std::shared_ptr<FFaceSession> FFaceSession::OpenAnimate(avl_client* Client, const char* AvatarId,
		const avl_session_settings& Settings, FEventFn OnEvent, avl_status& OutStatus)
	{
		// The object exists before the session so the callback's user pointer is valid from the first event.
		std::shared_ptr<FFaceSession> Face(new FFaceSession(std::move(OnEvent)));
		avl_session* Opened = nullptr;
		OutStatus = avl_client_open_animate(Client, AvatarId, &Settings, &FFaceSession::ForwardEvent, Face.get(), &Opened);
		if (OutStatus != AVL_OK)
		{
			return nullptr;
		}
		Face->Session.reset(Opened);
		return Face;
	}

	std::shared_ptr<FFaceSession> FFaceSession::OpenSpeak(avl_client* Client, const char* AvatarId, const char* Text,
		const char* VoiceId, const avl_session_settings& Settings, FEventFn OnEvent, avl_status& OutStatus)
	{
		std::shared_ptr<FFaceSession> Face(new FFaceSession(std::move(OnEvent)));
		avl_session* Opened = nullptr;
		OutStatus = avl_client_open_speak(Client, AvatarId, Text, VoiceId, &Settings, &FFaceSession::ForwardEvent,
			Face.get(), &Opened);
		if (OutStatus != AVL_OK)
		{
			return nullptr;
		}
		Face->Session.reset(Opened);
		return Face;
	}

	avl_status FFaceSession::SetPlayback(int32_t PrerollMs, int32_t OutputLatencyMs)
	{
		avl_playback_settings Playback{};
		Playback.preroll_ms = PrerollMs;
		Playback.output_latency_ms = OutputLatencyMs;
		return avl_session_set_playback(Session.get(), &Playback);
	}

	bool FFaceSession::RequestPresent(const avl_playback_clock& NewClock)
	{
		{
			std::lock_guard<std::mutex> Lock(StateMutex);
			Clock = NewClock;
		}
		// One run in flight or queued at a time: a pending run reads the clock when it starts, so it sees this one.
		return !bClosed.load() && !bRunPending.exchange(true);
	}

	void FFaceSession::RunPresent()
	{
		// From here on a new request schedules another run (which waits for this one on the mutex).
		bRunPending.store(false);
		std::lock_guard<std::mutex> Presenting(PresentMutex);
		if (bClosed.load() || !Session)
		{
			return;
		}
		if (SurfaceWidth <= 0)
		{
			avl_session_info Info{};
			const avl_status InfoStatus = avl_session_get_info(Session.get(), &Info);
			if (InfoStatus != AVL_OK)
			{
				return; // before STARTED: nothing to present yet
			}
			SurfaceWidth = Info.width_px;
			SurfaceHeight = Info.height_px;
		}

		avl_playback_clock Now{};
		bool bWholeSurface = false;
		bool bHadUpload = false;
		FRect Accumulated;
		{
			std::lock_guard<std::mutex> Lock(StateMutex);
			Now = Clock;
			bWholeSurface = bWholeSurfacePending;
			bHadUpload = bHaveUpload;
			Accumulated = Pending.Rect;
		}

		avl_playback_advice Advice{};
		avl_frame_info Frame{};
		const avl_status Status = avl_session_present_playback(Session.get(), &Now, &Advice, &Frame);
		if (Status < 0)
		{
			const std::string Message = avl_last_error(); // this thread's message for the failed call
			std::lock_guard<std::mutex> Lock(StateMutex);
			State.Status = Status;
			State.ErrorMessage = Message;
			State.Presents += 1;
			return;
		}

		// What the game thread has not taken yet stays part of the next upload: the union of the changes, copied
		// from the surface as it is now (the surface cannot change meanwhile: only presents change it).
		FRect Changed;
		bool bChanged = Status == AVL_OK && DirtyRectOnSurface(Frame, SurfaceWidth, SurfaceHeight, Changed);
		if (bWholeSurface)
		{
			Changed = FRect{0, 0, SurfaceWidth, SurfaceHeight};
			bChanged = true;
		}
		FUpload Copy;
		if (bChanged)
		{
			Copy.Rect = bHadUpload ? UnionRect(Accumulated, Changed) : Changed;
			const size_t Size = static_cast<size_t>(Copy.Pitch()) * static_cast<size_t>(Copy.Rect.Height);
			Copy.Pixels.reset(new uint8_t[Size]);
			const avl_status CopyStatus = avl_session_copy_surface(Session.get(), Copy.Rect.X, Copy.Rect.Y,
				Copy.Rect.Width, Copy.Rect.Height, Copy.Pixels.get(), static_cast<int32_t>(Copy.Pitch()), Size);
			if (CopyStatus != AVL_OK)
			{
				const std::string Message = avl_last_error();
				std::lock_guard<std::mutex> Lock(StateMutex);
				State.Status = CopyStatus;
				State.ErrorMessage = Message;
				return;
			}
		}

		std::lock_guard<std::mutex> Lock(StateMutex);
		if (bChanged)
		{
			// If the game thread took the older rectangle meanwhile, this one is a superset of what changed
			// since: uploading current pixels twice is harmless.
			Pending = std::move(Copy);
			bHaveUpload = true;
			bWholeSurfacePending = false;
		}
		State.bStartPlayback = Advice.start_playback != 0;
		State.bFinished = Advice.finished != 0;
		State.HeardMs = Advice.heard_ms;
		State.FrameIndex = Frame.frame_index;
		State.Presents += 1;
	}

	bool FFaceSession::TakeUpload(FUpload& Out)
	{
		std::lock_guard<std::mutex> Lock(StateMutex);
		if (!bHaveUpload)
		{
			return false;
		}
		Out = std::move(Pending);
		Pending = FUpload();
		bHaveUpload = false;
		State.Uploads += 1;
		return true;
	}

	FPresentState FFaceSession::GetState() const
	{
		std::lock_guard<std::mutex> Lock(StateMutex);
		return State;
	}

	void FFaceSession::Close()
	{
		bClosed.store(true);
		avl_session* Raw = Session.get();
		if (Raw != nullptr)
		{
			avl_session_cancel(Raw); // non-blocking; a present in flight finishes with the frames it has
		}
		FSessionPtr Released;
		{
			std::lock_guard<std::mutex> Presenting(PresentMutex);
			Released = std::move(Session);
		}
		// Released here, outside the mutex: joins the core's threads (milliseconds).
	}
}
