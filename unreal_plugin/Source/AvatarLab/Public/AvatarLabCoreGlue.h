// Plain C++ glue between the engine and the client core: ownership of native handles, the player's clock
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

	// Milliseconds of audio in a byte count of interleaved int16 PCM.
	inline int64_t PcmBytesToMs(int64_t Bytes, int32_t SampleRateHz, int32_t NumChannels)
	{
		if (SampleRateHz <= 0 || NumChannels <= 0 || Bytes <= 0)
		{
			return 0;
		}
		return (Bytes / (static_cast<int64_t>(sizeof(int16_t)) * NumChannels)) * 1000 / SampleRateHz;
	}

	// What the engine's player has done, for the core's playback policy (avl_session_present_playback), from a
	// procedural sound wave: BytesQueued handed to it in total, BytesAvailable still waiting in it. What the mixer
	// has taken is the difference; underruns (silence the engine pads) do not advance it, so video waits with the
	// audio. Played is -1 until the voice has been started (bPlaying). The core subtracts the output latency.
	inline avl_playback_clock PlayerClock(int64_t BytesQueued, int64_t BytesAvailable, int32_t SampleRateHz,
		int32_t NumChannels, bool bPlaying)
	{
		avl_playback_clock Clock{};
		Clock.audio_buffered_ms = PcmBytesToMs(BytesQueued, SampleRateHz, NumChannels);
		const int64_t Consumed = BytesQueued - (BytesAvailable < 0 ? 0 : BytesAvailable);
		Clock.audio_played_ms = bPlaying ? PcmBytesToMs(Consumed, SampleRateHz, NumChannels) : -1;
		return Clock;
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

	// The smallest rectangle holding A and B (both non-empty).
	inline FRect UnionRect(const FRect& A, const FRect& B)
	{
		const int32_t X0 = A.X < B.X ? A.X : B.X;
		const int32_t Y0 = A.Y < B.Y ? A.Y : B.Y;
		const int32_t X1 = A.X + A.Width > B.X + B.Width ? A.X + A.Width : B.X + B.Width;
		const int32_t Y1 = A.Y + A.Height > B.Y + B.Height ? A.Y + A.Height : B.Y + B.Height;
		FRect Out;
		Out.X = X0;
		Out.Y = Y0;
		Out.Width = X1 - X0;
		Out.Height = Y1 - Y0;
		return Out;
	}

	// Whether a whole PCM buffer is usable for an Animate session: int16 interleaved, whole frames,
	// and a rate and channel count the core accepts (see avl_session_settings).
	inline bool IsValidPcm16(int64_t Bytes, int32_t SampleRateHz, int32_t NumChannels)
	{
		return Bytes > 0 && SampleRateHz >= 8000 && SampleRateHz <= 192000 && (NumChannels == 1 || NumChannels == 2) &&
			Bytes % (static_cast<int64_t>(sizeof(int16_t)) * NumChannels) == 0;
	}
}
