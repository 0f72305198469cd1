#include "AvatarLabVoiceTap.h"

#include <cmath>
#include <cstring>
#include <utility>

namespace AvatarLabGlue
{
	void DownmixToPcm16(const float* Interleaved, int32_t Frames, int32_t Channels, int16_t* OutMono)
	{
		for (int32_t Frame = 0; Frame < Frames; ++Frame)
		{
			float Sum = 0.0f;
			for (int32_t Channel = 0; Channel < Channels; ++Channel)
			{
				Sum += Interleaved[Frame * Channels + Channel];
			}
			float Mean = Sum / static_cast<float>(Channels);
			Mean = Mean > 1.0f ? 1.0f : (Mean < -1.0f ? -1.0f : Mean);
			OutMono[Frame] = static_cast<int16_t>(std::lround(Mean * 32767.0f));
		}
	}

	FVoiceTap::FVoiceTap(const FVoiceTapSettings& InSettings)
		: Settings(InSettings)
	{
	}

	void FVoiceTap::OnSubmixBuffer(float* Data, int32_t NumSamples, int32_t NumChannels, int32_t SampleRateHz, int64_t NowMs)
	{
		if (Data == nullptr || NumSamples <= 0 || NumChannels <= 0 || SampleRateHz <= 0)
		{
			return;
		}
		const int32_t Frames = NumSamples / NumChannels;
		float Peak = 0.0f;
		for (int32_t Index = 0; Index < Frames * NumChannels; ++Index)
		{
			const float Magnitude = std::fabs(Data[Index]);
			Peak = Magnitude > Peak ? Magnitude : Peak;
		}
		const bool bSilent = Peak < Settings.SilenceLevel;
		Mono.resize(static_cast<size_t>(Frames));
		DownmixToPcm16(Data, Frames, NumChannels, Mono.data());
		if (Settings.bMuteSubmix)
		{
			std::memset(Data, 0, static_cast<size_t>(NumSamples) * sizeof(float));
		}

		std::lock_guard<std::mutex> Lock(Mutex);
		LastBufferMs = NowMs;
		if (bStalled)
		{
			return; // cut for overrun: nothing new until the game thread takes what is queued
		}
		if (bInLine && SampleRateHz != LineRateHz)
		{
			EndLine(); // the mixer's rate changed (device switch): the session's rate is fixed, so a new line
		}
		if (!bInLine)
		{
			if (bSilent)
			{
				return;
			}
			StartLine(SampleRateHz);
		}
		const size_t Limit = static_cast<size_t>(Settings.MaxQueuedMs) * static_cast<size_t>(LineRateHz) / 1000u;
		if (QueuedSamples + Mono.size() > Limit)
		{
			// The game thread has stopped taking audio (paused, hitching badly): cut the line rather than grow.
			OverrunCount += 1;
			bStalled = true;
			EndLine();
			return;
		}
		AppendAudio(Mono.data(), Frames);
		SilentFrames = bSilent ? SilentFrames + Frames : 0;
		if (SilentFrames * 1000 >= static_cast<int64_t>(Settings.LineEndSilenceMs) * LineRateHz)
		{
			EndLine();
		}
	}

	void FVoiceTap::Take(int64_t NowMs, std::vector<FVoiceTapChunk>& Out)
	{
		std::lock_guard<std::mutex> Lock(Mutex);
		if (bInLine && NowMs - LastBufferMs >= Settings.LineEndSilenceMs)
		{
			EndLine(); // the submix stopped rendering (nothing plays into it): the line is over
		}
		Out.clear();
		Out.swap(Queue);
		QueuedSamples = 0;
		bStalled = false;
	}

	bool FVoiceTap::IsLineActive() const
	{
		std::lock_guard<std::mutex> Lock(Mutex);
		return bInLine;
	}

	int64_t FVoiceTap::Overruns() const
	{
		std::lock_guard<std::mutex> Lock(Mutex);
		return OverrunCount;
	}

	void FVoiceTap::StartLine(int32_t SampleRateHz)
	{
		bInLine = true;
		LineRateHz = SampleRateHz;
		SilentFrames = 0;
		Mark(EVoiceTapEvent::LineStarted);
	}

	void FVoiceTap::EndLine()
	{
		bInLine = false;
		SilentFrames = 0;
		Mark(EVoiceTapEvent::LineEnded);
	}

	void FVoiceTap::Mark(EVoiceTapEvent Kind)
	{
		FVoiceTapChunk Chunk;
		Chunk.Kind = Kind;
		Chunk.SampleRateHz = LineRateHz;
		Queue.push_back(std::move(Chunk));
	}

	void FVoiceTap::AppendAudio(const int16_t* Samples, int32_t Count)
	{
		if (Queue.empty() || Queue.back().Kind != EVoiceTapEvent::Audio)
		{
			Mark(EVoiceTapEvent::Audio);
		}
		std::vector<int16_t>& Into = Queue.back().Samples;
		Into.insert(Into.end(), Samples, Samples + Count);
		QueuedSamples += static_cast<size_t>(Count);
	}
}
