// Plain C++ glue between the engine and the client core: ownership of native handles, the audio clock
// and the upload rectangle. No Unreal headers here on purpose, so tests/test_unreal_plugin.py can compile
// and run it with g++ outside the engine.

#pragma once

#include <cstdint>
#include <memory>

#include "avatarlab/avatarlab.h"

namespace AvatarLabGlue
{
	// Each deleter uses the core's release-and-null function, so a handle is released exactly once.
	struct FContextDeleter
	{
		void operator()(avl_context* Handle) const noexcept { avl_context_release(&Handle); }
	};
	struct FClientDeleter
	{
		void operator()(avl_client* Handle) const noexcept { avl_client_release(&Handle); }
	};
	struct FSessionDeleter
	{
		void operator()(avl_session* Handle) const noexcept { avl_session_release(&Handle); }
	};
	struct FAvatarDeleter
	{
		void operator()(avl_avatar* Handle) const noexcept { avl_avatar_release(&Handle); }
	};

	using FContextPtr = std::unique_ptr<avl_context, FContextDeleter>;
	using FClientPtr = std::unique_ptr<avl_client, FClientDeleter>;
	using FSessionPtr = std::unique_ptr<avl_session, FSessionDeleter>;
	using FAvatarPtr = std::unique_ptr<avl_avatar, FAvatarDeleter>;

	// Playback position on the session's audio clock, from what the engine's mixer has taken out of a
	// procedural sound wave: bytes queued in total minus bytes still waiting. Underruns (silence padded by
	// the engine) do not advance it, so video waits with the audio. LeadCompensationMs subtracts the part
	// of the mixer's buffer that has been taken but not yet heard. Returns -1 before anything was played.
	inline int64_t PlayedAudioMs(int64_t BytesQueued, int64_t BytesAvailable, int32_t SampleRateHz,
		int32_t NumChannels, int32_t LeadCompensationMs)
	{
		if (SampleRateHz <= 0 || NumChannels <= 0 || BytesQueued <= 0)
		{
			return -1;
		}
		const int64_t BytesPerFrame = static_cast<int64_t>(sizeof(int16_t)) * NumChannels;
		int64_t Consumed = BytesQueued - (BytesAvailable < 0 ? 0 : BytesAvailable);
		if (Consumed <= 0)
		{
			return -1;
		}
		const int64_t Ms = (Consumed / BytesPerFrame) * 1000 / SampleRateHz - LeadCompensationMs;
		return Ms < 0 ? 0 : Ms;
	}

	// Milliseconds of audio in a byte count of interleaved int16 PCM.
	inline int64_t PcmBytesToMs(int64_t Bytes, int32_t SampleRateHz, int32_t NumChannels)
	{
		if (SampleRateHz <= 0 || NumChannels <= 0 || Bytes <= 0)
		{
			return 0;
		}
		return (Bytes / (static_cast<int64_t>(sizeof(int16_t)) * NumChannels)) * 1000 / SampleRateHz;
	}

	struct FRect
	{
		int32_t X = 0;
		int32_t Y = 0;
		int32_t Width = 0;
		int32_t Height = 0;
	};

	// The part of avl_frame_info's dirty rectangle that lies on a SurfaceWidth x SurfaceHeight texture.
	// False when there is nothing to upload. Clamping guards the render thread against a malformed rect.
	inline bool DirtyRectOnSurface(const avl_frame_info& Info, int32_t SurfaceWidth, int32_t SurfaceHeight, FRect& Out)
	{
		const int64_t X0 = Info.dirty_x < 0 ? 0 : Info.dirty_x;
		const int64_t Y0 = Info.dirty_y < 0 ? 0 : Info.dirty_y;
		int64_t X1 = static_cast<int64_t>(Info.dirty_x) + Info.dirty_width;
		int64_t Y1 = static_cast<int64_t>(Info.dirty_y) + Info.dirty_height;
		X1 = X1 > SurfaceWidth ? SurfaceWidth : X1;
		Y1 = Y1 > SurfaceHeight ? SurfaceHeight : Y1;
		if (Info.dirty_width <= 0 || Info.dirty_height <= 0 || X1 <= X0 || Y1 <= Y0)
		{
			return false;
		}
		Out.X = static_cast<int32_t>(X0);
		Out.Y = static_cast<int32_t>(Y0);
		Out.Width = static_cast<int32_t>(X1 - X0);
		Out.Height = static_cast<int32_t>(Y1 - Y0);
		return true;
	}

	// Whether a whole PCM buffer is usable for an Animate session: int16 interleaved, whole frames,
	// and a rate and channel count the core accepts (see avl_session_settings).
	inline bool IsValidPcm16(int64_t Bytes, int32_t SampleRateHz, int32_t NumChannels)
	{
		return Bytes > 0 && SampleRateHz >= 8000 && SampleRateHz <= 192000 && (NumChannels == 1 || NumChannels == 2) &&
			Bytes % (static_cast<int64_t>(sizeof(int16_t)) * NumChannels) == 0;
	}
}
