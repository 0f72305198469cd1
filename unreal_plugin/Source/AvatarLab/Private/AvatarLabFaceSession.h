// One face session between the engine and the client core, in plain C++ (no Unreal headers) so that
// tests/test_unreal_plugin.py compiles it with g++ and runs it against the real library and a live service.
//
// Threads, as the Unreal component uses it:
//  - the game thread opens, pushes audio, asks for a present with the player's clock (RequestPresent), takes
//    the finished upload and the core's playback advice, and closes;
//  - a worker task (UE::Tasks) runs RunPresent: avl_session_present_playback (JPEG decode, the frame for what
//    is heard) and the copy of the changed rectangle, so no decoding happens on the game thread;
//  - the core's receive thread calls the event function (it only forwards).
// The core's presentation functions are called under one mutex, so one thread at a time, as the C API requires.

#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "AvatarLabCoreGlue.h"

namespace AvatarLabGlue
{
	// A rectangle of the surface copied for upload: RGBA8, rows Rect.Width * 4 bytes apart, top row first.
	struct FUpload
	{
		FRect Rect;
		std::unique_ptr<uint8_t[]> Pixels;
		uint32_t Pitch() const { return static_cast<uint32_t>(Rect.Width) * 4u; }
	};

	// The outcome of the presents so far, as the game thread reads it.
	struct FPresentState
	{
		bool bStartPlayback = false; // the core's policy: the voice should be playing (stays true once given)
		bool bFinished = false;      // every frame shown and the last audio heard: release the session
		int64_t HeardMs = -1;        // the position last presented (-1: base image)
		int64_t FrameIndex = -1;     // the frame on the surface (-1: base image)
		int64_t Presents = 0;        // presents run
		int64_t Uploads = 0;         // rectangles handed to the game thread
		avl_status Status = AVL_OK;  // a failed present ends the session; ErrorMessage says why
		std::string ErrorMessage;
	};

	class FFaceSession
	{
	public:
		// Receive thread: copy what is needed and return; never release the session from here.
		using FEventFn = std::function<void(const avl_event&)>;

		// Open a session (avl_client_open_animate / _speak). Null on failure, with OutStatus set and
		// avl_last_error() describing it on the calling thread.
		static std::shared_ptr<FFaceSession> OpenAnimate(avl_client* Client, const char* AvatarId,
			const avl_session_settings& Settings, FEventFn OnEvent, avl_status& OutStatus);
		static std::shared_ptr<FFaceSession> OpenSpeak(avl_client* Client, const char* AvatarId, const char* Text,
			const char* VoiceId, const avl_session_settings& Settings, FEventFn OnEvent, avl_status& OutStatus);

		~FFaceSession();
		FFaceSession(const FFaceSession&) = delete;
		FFaceSession& operator=(const FFaceSession&) = delete;

		// The session, for the calls any thread may make (push/end audio, read audio, info, error). Null after
		// Close. Only the thread that calls Close may hold on to it.
		avl_session* Get() const { return Session.get(); }

		// The core's playback policy (preroll; output latency the mixer and device add).
		avl_status SetPlayback(int32_t PrerollMs, int32_t OutputLatencyMs);

		// Game thread, once a STARTED event has arrived: the player's clock now. Returns true when the caller must
		// run RunPresent on a worker; false when a run is already pending, which will use this newer clock.
		bool RequestPresent(const avl_playback_clock& Clock);

		// Worker: presents the frame for the newest clock and copies what changed (the whole surface the first
		// time) for TakeUpload. Runs are serialised; a run after Close does nothing.
		void RunPresent();

		// Game thread: the rectangle changed since the last take (the union of what the presents changed), if any.
		bool TakeUpload(FUpload& Out);

		FPresentState GetState() const;

		// Cancels the session, waits for a running present to finish and releases the session (joins the core's
		// threads, so no event arrives afterwards). Idempotent. Not from the event function.
		void Close();

	private:
		explicit FFaceSession(FEventFn InOnEvent);
		static void AVL_CALL ForwardEvent(void* User, avl_session* Session, const avl_event* Event);

		// Declared before Session, so it is destroyed after the session's threads have been joined.
		const FEventFn OnEvent;

		std::mutex PresentMutex; // the core's presentation functions, releasing the session, and the surface size
		FSessionPtr Session;
		int32_t SurfaceWidth = 0;
		int32_t SurfaceHeight = 0;
		std::atomic<bool> bClosed{false};
		std::atomic<bool> bRunPending{false};

		mutable std::mutex StateMutex; // everything below
		avl_playback_clock Clock{0, -1};
		FPresentState State;
		bool bWholeSurfacePending = true; // the first upload is the whole surface (the base image)
		bool bHaveUpload = false;
		FUpload Pending;
	};
}
