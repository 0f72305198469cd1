// The Unreal plugin's voice tap (unreal_plugin/Source/AvatarLab/Private/AvatarLabVoiceTap.*), compiled without
// the engine: what the submix listener feeds it on the audio render thread, and what the face component takes
// from it on the game thread. Run by tests/test_unreal_plugin.py.
#include "AvatarLabVoiceTap.h"

#include <cmath>
#include <cstdio>
#include <thread>
#include <vector>

#define CHECK(x) do { if (!(x)) { std::printf("FAILED line %d: %s\n", __LINE__, #x); return 1; } } while (0)

using namespace AvatarLabGlue;

namespace
{
	constexpr int32_t Rate = 48000;
	constexpr int32_t Block = 480; // 10 ms per submix buffer

	// One stereo submix buffer: a 220 Hz tone at Level (0 = silence), left and right equal.
	std::vector<float> Buffer(float Level, int32_t Frames = Block, int32_t Channels = 2)
	{
		std::vector<float> Out(static_cast<size_t>(Frames * Channels));
		for (int32_t F = 0; F < Frames; ++F)
		{
			const float V = Level * std::sin(static_cast<float>(F) * 0.0288f);
			for (int32_t C = 0; C < Channels; ++C)
			{
				Out[static_cast<size_t>(F * Channels + C)] = V;
			}
		}
		return Out;
	}

	size_t Samples(const std::vector<FVoiceTapChunk>& Chunks)
	{
		size_t N = 0;
		for (const FVoiceTapChunk& C : Chunks)
		{
			N += C.Samples.size();
		}
		return N;
	}
}

int main()
{
	// Downmix: the mean of the channels, clipped, rounded to int16.
	{
		const float In[] = {0.5f, 0.5f, 1.0f, -1.0f, 2.0f, 2.0f, -0.25f, -0.75f};
		int16_t Out[4] = {};
		DownmixToPcm16(In, 4, 2, Out);
		CHECK(Out[0] == 16384 && Out[1] == 0 && Out[2] == 32767 && Out[3] == -16384);
	}

	FVoiceTapSettings Settings;
	Settings.LineEndSilenceMs = 300;
	FVoiceTap Tap(Settings);
	std::vector<FVoiceTapChunk> Chunks;
	int64_t Now = 1000;

	// Silence before a line: nothing is queued, but the submix is still muted.
	for (int I = 0; I < 20; ++I, Now += 10)
	{
		std::vector<float> B = Buffer(0.0f);
		Tap.OnSubmixBuffer(B.data(), static_cast<int32_t>(B.size()), 2, Rate, Now);
	}
	Tap.Take(Now, Chunks);
	CHECK(Chunks.empty() && !Tap.IsLineActive());

	// A line: 50 buffers of speech (500 ms) with a 200 ms pause inside (shorter than the 300 ms that ends a line).
	bool bMuted = true;
	for (int I = 0; I < 70; ++I, Now += 10)
	{
		const bool bPause = I >= 20 && I < 40;
		std::vector<float> B = Buffer(bPause ? 0.0f : 0.5f);
		Tap.OnSubmixBuffer(B.data(), static_cast<int32_t>(B.size()), 2, Rate, Now);
		for (float V : B)
		{
			bMuted = bMuted && V == 0.0f;
		}
	}
	CHECK(bMuted);                // heard once: only through the face's replay
	CHECK(Tap.IsLineActive());    // the pause did not end it
	Tap.Take(Now, Chunks);
	CHECK(Chunks.size() == 2);    // LineStarted, then the audio merged into one chunk
	CHECK(Chunks[0].Kind == EVoiceTapEvent::LineStarted && Chunks[0].SampleRateHz == Rate);
	CHECK(Chunks[1].Kind == EVoiceTapEvent::Audio && Chunks[1].Samples.size() == 70u * Block); // the pause kept: timing
	CHECK(Chunks[1].Samples[10] != 0 && Chunks[1].Samples[25 * Block + 10] == 0);

	// 300 ms of silence ends it; the silence up to there belongs to the line (the mouth closes on it).
	for (int I = 0; I < 30; ++I, Now += 10)
	{
		std::vector<float> B = Buffer(0.0f);
		Tap.OnSubmixBuffer(B.data(), static_cast<int32_t>(B.size()), 2, Rate, Now);
	}
	Tap.Take(Now, Chunks);
	CHECK(Chunks.size() == 2 && Chunks[0].Kind == EVoiceTapEvent::Audio && Chunks[1].Kind == EVoiceTapEvent::LineEnded);
	CHECK(Chunks[0].Samples.size() == 30u * Block);
	CHECK(!Tap.IsLineActive());

	// A second line whose submix stops rendering (nothing plays into it): the game thread's Take ends it.
	{
		std::vector<float> B = Buffer(0.5f);
		Tap.OnSubmixBuffer(B.data(), static_cast<int32_t>(B.size()), 2, Rate, Now);
	}
	Tap.Take(Now + 100, Chunks);
	CHECK(Chunks.size() == 2 && Chunks[0].Kind == EVoiceTapEvent::LineStarted);
	Tap.Take(Now + 299, Chunks);
	CHECK(Chunks.empty() && Tap.IsLineActive());
	Tap.Take(Now + 300, Chunks);
	CHECK(Chunks.size() == 1 && Chunks[0].Kind == EVoiceTapEvent::LineEnded && !Tap.IsLineActive());
	Now += 1000;

	// The mixer's rate changes inside a line (an output device switch): the line ends and a new one starts.
	{
		std::vector<float> B = Buffer(0.5f);
		Tap.OnSubmixBuffer(B.data(), static_cast<int32_t>(B.size()), 2, Rate, Now);
		B = Buffer(0.5f); // the tap muted the first one
		Tap.OnSubmixBuffer(B.data(), static_cast<int32_t>(B.size()), 2, 44100, Now + 10);
		Tap.Take(Now + 10, Chunks);
		CHECK(Chunks.size() == 5);
		CHECK(Chunks[2].Kind == EVoiceTapEvent::LineEnded && Chunks[3].Kind == EVoiceTapEvent::LineStarted &&
			Chunks[3].SampleRateHz == 44100);
	}

	// Not muting: the submix is left as it was (5.1 input, downmixed to mono all the same).
	{
		FVoiceTapSettings Open;
		Open.bMuteSubmix = false;
		FVoiceTap Listen(Open);
		std::vector<float> B = Buffer(0.5f, Block, 6);
		const std::vector<float> Before = B;
		Listen.OnSubmixBuffer(B.data(), static_cast<int32_t>(B.size()), 6, Rate, 0);
		CHECK(B == Before);
		Listen.Take(0, Chunks);
		CHECK(Samples(Chunks) == static_cast<size_t>(Block));
	}

	// A game thread that stops taking: the line is cut at MaxQueuedMs instead of growing without bound.
	{
		FVoiceTapSettings Small;
		Small.MaxQueuedMs = 100;
		FVoiceTap Stuck(Small);
		for (int I = 0; I < 30; ++I)
		{
			std::vector<float> B = Buffer(0.5f);
			Stuck.OnSubmixBuffer(B.data(), static_cast<int32_t>(B.size()), 2, Rate, I * 10);
		}
		Stuck.Take(300, Chunks);
		CHECK(Stuck.Overruns() == 1 && Samples(Chunks) == static_cast<size_t>(Rate / 10)); // 10 buffers, then cut
	}

	// The audio thread and the game thread at once: every tapped sample arrives once, in order.
	{
		FVoiceTap Shared(FVoiceTapSettings{});
		const int Buffers = 2000;
		std::thread Audio([&Shared]()
			{
				for (int I = 0; I < Buffers; ++I)
				{
					std::vector<float> B(Block * 2, static_cast<float>(I % 100 + 1) / 200.0f);
					Shared.OnSubmixBuffer(B.data(), Block * 2, 2, Rate, I);
				}
			});
		std::vector<int16_t> Got;
		for (int Spin = 0; Spin < 100000 && Got.size() < static_cast<size_t>(Buffers) * Block; ++Spin)
		{
			Shared.Take(0, Chunks);
			for (const FVoiceTapChunk& C : Chunks)
			{
				Got.insert(Got.end(), C.Samples.begin(), C.Samples.end());
			}
			std::this_thread::yield();
		}
		Audio.join();
		Shared.Take(0, Chunks);
		for (const FVoiceTapChunk& C : Chunks)
		{
			Got.insert(Got.end(), C.Samples.begin(), C.Samples.end());
		}
		CHECK(Got.size() == static_cast<size_t>(Buffers) * Block);
		for (int I = 0; I < Buffers; ++I)
		{
			const int16_t Expected = static_cast<int16_t>(std::lround(static_cast<float>(I % 100 + 1) / 200.0f * 32767.0f));
			CHECK(Got[static_cast<size_t>(I) * Block] == Expected);
		}
	}

	std::printf("voice tap ok\n");
	return 0;
}
