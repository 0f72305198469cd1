// The Unreal plugin's face session (unreal_plugin/Source/AvatarLab/Private/AvatarLabFaceSession.*), compiled
// without the engine and run against the real client core and a live service, the way the face component drives
// it: this thread plays the game thread (push the voice line, report the player's clock every tick, take the
// uploads, follow the core's advice), and each present runs on a thread of its own, as UE::Tasks would run it.
//   face_session_live_test <target> <avatar_id> <pcm_s16le_16k_mono_file>
// Prints what it measured; exit code 0 and "face session ok" when every check holds.
#include "AvatarLabFaceSession.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>
#include <vector>

#define CHECK(x) do { if (!(x)) { std::printf("FAILED line %d: %s\n", __LINE__, #x); return 1; } } while (0)

using namespace AvatarLabGlue;
using Clock = std::chrono::steady_clock;

namespace
{
	constexpr int32_t Rate = 16000;
	constexpr int32_t PrerollMs = 300;
	constexpr int32_t LatencyMs = 100;
	constexpr int64_t PlayerSpeed = 2; // the simulated player runs at twice real time, to keep the test short

	int64_t MsSince(Clock::time_point Start)
	{
		return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - Start).count();
	}

	struct FEvents
	{
		std::atomic<bool> bStarted{false};
		std::atomic<bool> bEnded{false};
		std::atomic<int32_t> Error{0};
		std::atomic<int64_t> Frames{0};
		std::atomic<int64_t> NewestFrameEndMs{-1};
	};
}

int main(int argc, char** argv)
{
	if (argc != 4)
	{
		std::printf("usage: %s <target> <avatar_id> <pcm_s16le_16k_mono>\n", argv[0]);
		return 2;
	}
	std::ifstream File(argv[3], std::ios::binary);
	const std::vector<char> Pcm((std::istreambuf_iterator<char>(File)), std::istreambuf_iterator<char>());
	CHECK(Pcm.size() > 2u * Rate && Pcm.size() % 2 == 0);
	const int64_t LineMs = static_cast<int64_t>(Pcm.size() / 2) * 1000 / Rate;

	avl_context* RawContext = nullptr;
	CHECK(avl_context_create(AVL_API_VERSION, nullptr, nullptr, AVL_LOG_OFF, &RawContext) == AVL_OK);
	FContextPtr Context(RawContext);
	avl_client* RawClient = nullptr;
	CHECK(avl_client_create(Context.get(), argv[1], nullptr, nullptr, nullptr, &RawClient) == AVL_OK);
	FClientPtr Client(RawClient);

	// The event function runs on the core's receive thread: record, never block.
	FEvents Events;
	auto OnEvent = [&Events](const avl_event& Event)
	{
		switch (Event.type)
		{
		case AVL_EVENT_STARTED: Events.bStarted = true; break;
		case AVL_EVENT_FRAME_READY: Events.Frames += 1; break;
		case AVL_EVENT_ENDED: Events.bEnded = true; break;
		case AVL_EVENT_ERROR: Events.Error = Event.status; break;
		default: break;
		}
	};

	avl_session_settings Settings{};
	Settings.audio_encoding = AVL_AUDIO_PCM_S16LE;
	Settings.sample_rate_hz = Rate;
	Settings.channels = 1;
	Settings.wire_format = AVL_WIRE_JPEG;        // decoded on the present threads
	Settings.frame_mode = AVL_FRAME_MODE_DELTA;  // changed rectangles: uploads are unions of them
	avl_status OpenStatus = AVL_OK;
	std::shared_ptr<FFaceSession> Face = FFaceSession::OpenAnimate(Client.get(), argv[2], Settings, OnEvent, OpenStatus);
	CHECK(OpenStatus == AVL_OK && Face != nullptr && Face->Get() != nullptr);
	CHECK(Face->SetPlayback(PrerollMs, LatencyMs) == AVL_OK);
	CHECK(Face->SetPlayback(-1, 0) == AVL_ERR_INVALID_ARGUMENT);
	CHECK(Face->SetPlayback(PrerollMs, LatencyMs) == AVL_OK);

	// PushAudioPCM: the whole line in 40 ms chunks as a TTS would deliver it, then EndAudio.
	const size_t Chunk = static_cast<size_t>(Rate / 25) * 2;
	for (size_t Offset = 0; Offset < Pcm.size(); Offset += Chunk)
	{
		const size_t Size = Pcm.size() - Offset < Chunk ? Pcm.size() - Offset : Chunk;
		CHECK(avl_session_push_audio(Face->Get(), Pcm.data() + Offset, Size) == AVL_OK);
	}
	CHECK(avl_session_end_audio(Face->Get()) == AVL_OK);

	const Clock::time_point Opened = Clock::now();
	while (!Events.bStarted && Events.Error == 0 && MsSince(Opened) < 60000)
	{
		std::this_thread::sleep_for(std::chrono::milliseconds(5));
	}
	CHECK(Events.bStarted && Events.Error == 0);
	avl_session_info Info{};
	CHECK(avl_session_get_info(Face->Get(), &Info) == AVL_OK);
	const int32_t Width = Info.width_px;
	const int32_t Height = Info.height_px;
	std::vector<uint8_t> Texture(static_cast<size_t>(Width) * static_cast<size_t>(Height) * 4, 0); // the engine texture
	std::vector<std::thread> Workers;
	std::atomic<int64_t> PresentMicros{0}, PresentRuns{0}, PresentMaxMicros{0}; // measured, not asserted
	int64_t TickMicros = 0, Ticks = 0;

	// The game loop: a tick every 5 ms.
	bool bPlaying = false;
	Clock::time_point PlayStart;
	int64_t FramesAtStart = -1;
	bool bEndedAtStart = false;
	bool bCheckedLatency = false;
	int64_t UploadsTaken = 0, UploadedPixels = 0, MaxHeardMs = -1;
	bool bFinished = false;
	while (!bFinished && Events.Error == 0 && MsSince(Opened) < 120000)
	{
		const Clock::time_point TickStart = Clock::now();
		FUpload Upload;
		if (Face->TakeUpload(Upload))
		{
			const FRect& R = Upload.Rect;
			CHECK(R.X >= 0 && R.Y >= 0 && R.Width > 0 && R.Height > 0 && R.X + R.Width <= Width && R.Y + R.Height <= Height);
			for (int32_t Row = 0; Row < R.Height; ++Row)
			{
				std::memcpy(&Texture[(static_cast<size_t>(R.Y + Row) * static_cast<size_t>(Width) + static_cast<size_t>(R.X)) * 4],
					&Upload.Pixels[static_cast<size_t>(Row) * Upload.Pitch()], Upload.Pitch());
			}
			UploadsTaken += 1;
			UploadedPixels += static_cast<int64_t>(R.Width) * R.Height;
		}
		const FPresentState State = Face->GetState();
		CHECK(State.Status == AVL_OK);
		MaxHeardMs = State.HeardMs > MaxHeardMs ? State.HeardMs : MaxHeardMs;
		if (State.bStartPlayback && !bPlaying)
		{
			bPlaying = true;
			PlayStart = Clock::now();
			FramesAtStart = Events.Frames;
			bEndedAtStart = Events.bEnded;
		}
		bFinished = State.bFinished;

		avl_playback_clock Now{};
		Now.audio_buffered_ms = LineMs; // the whole line was queued on the player at once
		Now.audio_played_ms = bPlaying ? std::min<int64_t>(LineMs, MsSince(PlayStart) * PlayerSpeed) : -1;

		// Once: with no present in flight, the frame presented follows what is heard (played - output latency).
		if (!bCheckedLatency && Now.audio_played_ms >= 1000 && Now.audio_played_ms < LineMs)
		{
			for (std::thread& Worker : Workers)
			{
				Worker.join();
			}
			Workers.clear();
			CHECK(Face->RequestPresent(Now));
			Face->RunPresent();
			const FPresentState Checked = Face->GetState();
			CHECK(Checked.HeardMs == Now.audio_played_ms - LatencyMs);
			std::printf("latency check: played %lld ms -> heard %lld ms, frame %lld\n",
				static_cast<long long>(Now.audio_played_ms), static_cast<long long>(Checked.HeardMs),
				static_cast<long long>(Checked.FrameIndex));
			bCheckedLatency = true;
		}
		else if (Face->RequestPresent(Now))
		{
			std::shared_ptr<FFaceSession> Shared = Face; // as the component hands it to UE::Tasks::Launch
			Workers.emplace_back([Shared, &PresentMicros, &PresentRuns, &PresentMaxMicros]()
				{
					const Clock::time_point Start = Clock::now();
					Shared->RunPresent();
					const int64_t Micros = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - Start).count();
					PresentMicros += Micros;
					PresentRuns += 1;
					int64_t Max = PresentMaxMicros.load();
					while (Micros > Max && !PresentMaxMicros.compare_exchange_weak(Max, Micros)) {}
				});
		}
		TickMicros += std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - TickStart).count();
		Ticks += 1;
		std::this_thread::sleep_for(std::chrono::milliseconds(5));
	}
	const int64_t PlayedMs = bPlaying ? MsSince(PlayStart) * PlayerSpeed : -1;
	for (std::thread& Worker : Workers)
	{
		Worker.join();
	}
	const FPresentState Final = Face->GetState();
	std::printf("line %lld ms, %lld frames, %lld presents, %lld uploads (%lld px), start after %lld frames%s, "
		"finished at player position %lld ms, last heard %lld ms, launches %zu\n",
		static_cast<long long>(LineMs), static_cast<long long>(Events.Frames.load()), static_cast<long long>(Final.Presents),
		static_cast<long long>(UploadsTaken), static_cast<long long>(UploadedPixels), static_cast<long long>(FramesAtStart),
		bEndedAtStart ? " (stream over)" : "", static_cast<long long>(PlayedMs), static_cast<long long>(MaxHeardMs),
		Workers.size());
	std::printf("%dx%d: present on a worker %.2f ms mean, %.2f ms max (%lld runs); the game thread's part of a tick "
		"(take upload, copy into the texture, advice, request) %.1f us mean over %lld ticks\n", Width, Height,
		PresentRuns > 0 ? static_cast<double>(PresentMicros.load()) / 1000.0 / static_cast<double>(PresentRuns.load()) : 0.0,
		static_cast<double>(PresentMaxMicros.load()) / 1000.0, static_cast<long long>(PresentRuns.load()),
		Ticks > 0 ? static_cast<double>(TickMicros) / static_cast<double>(Ticks) : 0.0, static_cast<long long>(Ticks));
	CHECK(Events.Error == 0 && bFinished && bCheckedLatency);
	CHECK(Events.bEnded);
	// The voice started only once the preroll of video had arrived (or the whole stream).
	CHECK(FramesAtStart >= 1);
	CHECK(bEndedAtStart || FramesAtStart * 1000 / (Info.fps > 0 ? Info.fps : 25) >= PrerollMs);
	// Finished only after the last audio was consumed and the output latency heard.
	CHECK(PlayedMs >= LineMs + LatencyMs * PlayerSpeed - 50 * PlayerSpeed);
	// Requests coalesce: fewer runs than ticks would be fine, but every run presented.
	CHECK(Final.Presents >= 10 && UploadsTaken >= 2);

	// Take what the last presents left, then the texture must equal the core's surface: the uploads (unions of
	// dirty rectangles, the first one the whole base image) lost nothing.
	FUpload Last;
	if (Face->TakeUpload(Last))
	{
		for (int32_t Row = 0; Row < Last.Rect.Height; ++Row)
		{
			std::memcpy(&Texture[(static_cast<size_t>(Last.Rect.Y + Row) * static_cast<size_t>(Width) + static_cast<size_t>(Last.Rect.X)) * 4],
				&Last.Pixels[static_cast<size_t>(Row) * Last.Pitch()], Last.Pitch());
		}
	}
	const uint8_t* Surface = avl_session_surface_pixels(Face->Get()); // no present in flight: all joined
	CHECK(Surface != nullptr);
	CHECK(std::memcmp(Surface, Texture.data(), Texture.size()) == 0);

	// Close: the session is released; a present scheduled before it finds it closed and does nothing.
	Face->Close();
	CHECK(Face->Get() == nullptr);
	CHECK(!Face->RequestPresent(avl_playback_clock{LineMs, LineMs}));
	Face->RunPresent();
	CHECK(Face->GetState().Presents == Final.Presents);
	Face->Close(); // idempotent

	// Stop mid-line (the component's Stop while a worker may be presenting): Close waits for it, nothing crashes.
	avl_status Status = AVL_OK;
	std::shared_ptr<FFaceSession> Second = FFaceSession::OpenAnimate(Client.get(), argv[2], Settings, OnEvent, Status);
	CHECK(Second != nullptr);
	CHECK(avl_session_push_audio(Second->Get(), Pcm.data(), Pcm.size() / 4 * 2) == AVL_OK); // half the line, no end
	const Clock::time_point SecondOpened = Clock::now();
	while (Second->GetState().Presents == 0 && MsSince(SecondOpened) < 60000)
	{
		if (Second->RequestPresent(avl_playback_clock{LineMs / 2, 0}))
		{
			std::thread([Second]() { Second->RunPresent(); }).detach(); // as a task: may outlive the handle below
		}
		std::this_thread::sleep_for(std::chrono::milliseconds(2));
	}
	CHECK(Second->GetState().Presents > 0);
	std::weak_ptr<FFaceSession> Weak = Second;
	Second->Close();
	Second.reset();
	const Clock::time_point Released = Clock::now();
	while (!Weak.expired() && MsSince(Released) < 5000)
	{
		std::this_thread::sleep_for(std::chrono::milliseconds(1));
	}
	CHECK(Weak.expired()); // the last task let go of it

	std::printf("face session ok\n");
	return 0;
}
