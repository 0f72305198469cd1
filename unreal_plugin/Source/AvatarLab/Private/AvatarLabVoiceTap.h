// The voice-over tap in plain C++ (no Unreal headers), so tests/test_unreal_plugin.py compiles and runs it.
//
// The engine renders a submix that carries the game's voice-over; each rendered buffer (interleaved float, any
// channel count, the mixer's rate) comes in on the audio render thread (ISubmixBufferListener). The tap cuts it
// into lines: a line starts with the first buffer above SilenceLevel and ends after LineEndSilenceMs of silence
// (or when no buffer has come for that long: a submix stops rendering when nothing plays into it). Each line is
// downmixed to mono int16 and queued for the game thread, which streams it to an Animate session and replays it
// with the face in step; the submix itself is muted (its buffer zeroed after the copy) so the line is heard once.

#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

namespace AvatarLabGlue
{
	struct FVoiceTapSettings
	{
		float SilenceLevel = 0.001f;     // peak below this (about -60 dBFS) is silence
		int32_t LineEndSilenceMs = 600;  // silence that ends a line (pauses inside a line are shorter)
		bool bMuteSubmix = true;         // zero the tapped buffer, so only the face's replay is heard
		int32_t MaxQueuedMs = 30000;     // audio waiting for the game thread; beyond it the line is cut
	};

	enum class EVoiceTapEvent : uint8_t
	{
		LineStarted, // SampleRateHz: the line's rate (mono)
		Audio,       // Samples: mono int16 at the line's rate
		LineEnded,
	};

	struct FVoiceTapChunk
	{
		EVoiceTapEvent Kind = EVoiceTapEvent::Audio;
		int32_t SampleRateHz = 0;
		std::vector<int16_t> Samples;
	};

	// Interleaved float frames to mono int16 (the mean of the channels, clipped to [-1, 1]).
	void DownmixToPcm16(const float* Interleaved, int32_t Frames, int32_t Channels, int16_t* OutMono);

	class FVoiceTap
	{
	public:
		explicit FVoiceTap(const FVoiceTapSettings& InSettings);

		// Audio render thread: one buffer of NumSamples interleaved samples the submix rendered. NowMs: a steady
		// clock in ms (the same one Take gets). Zeroes Data when bMuteSubmix.
		void OnSubmixBuffer(float* Data, int32_t NumSamples, int32_t NumChannels, int32_t SampleRateHz, int64_t NowMs);

		// Game thread: everything tapped since the last call, in order (consecutive audio merged). Ends a line
		// whose submix has stopped rendering for LineEndSilenceMs.
		void Take(int64_t NowMs, std::vector<FVoiceTapChunk>& Out);

		// Whether a line is open (the submix should keep rendering so its end is seen).
		bool IsLineActive() const;

		// Lines cut because the game thread did not take the audio for MaxQueuedMs.
		int64_t Overruns() const;

	private:
		void StartLine(int32_t SampleRateHz);
		void EndLine();
		void AppendAudio(const int16_t* Samples, int32_t Count);
		void Mark(EVoiceTapEvent Kind); // queues an event of the current line

		const FVoiceTapSettings Settings;
		std::vector<int16_t> Mono; // audio render thread only: the downmixed buffer

		mutable std::mutex Mutex; // everything below
		std::vector<FVoiceTapChunk> Queue;
		size_t QueuedSamples = 0;
		bool bInLine = false;
		int32_t LineRateHz = 0;
		int64_t SilentFrames = 0; // trailing silence of the open line
		int64_t LastBufferMs = 0;
		int64_t OverrunCount = 0;
		bool bStalled = false; // a line was cut for overrun; waiting for Take
	};
}
