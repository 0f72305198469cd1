#pragma once

#include "CoreMinimal.h"
#include "AvatarLabVoiceTap.h"
#include "HAL/PlatformTime.h"
#include "ISubmixBufferListener.h"
#include "Misc/EngineVersionComparison.h"

#include <memory>

// The submix tap needs the shared-reference listener API of UE 5.4 (the mixer then keeps the listener alive until
// it has really stopped calling it, so unregistering from the game thread is safe).
#define AVATARLAB_WITH_SUBMIX_TAP (!UE_VERSION_OLDER_THAN(5, 4, 0))

/** The steady clock (ms) the voice tap and the face component share. */
inline int64 AvatarLabNowMs()
{
	return static_cast<int64>(FPlatformTime::Seconds() * 1000.0);
}

#if AVATARLAB_WITH_SUBMIX_TAP

/**
 * Feeds what a submix renders to the plain-C++ voice tap (AvatarLabVoiceTap.h), which cuts it into lines for the
 * face component and mutes the submix. Runs on the audio render thread; holds only the tap, never the component,
 * so it may outlive the component until the mixer lets go of it. Only OnNewSubmixBuffer is overridden (the one
 * member every engine version since 4.x has); a submix that stops rendering is handled by the tap's own timeout.
 */
class FAvatarLabSubmixTap : public ISubmixBufferListener
{
public:
	explicit FAvatarLabSubmixTap(std::shared_ptr<AvatarLabGlue::FVoiceTap> InTap)
		: Tap(MoveTemp(InTap))
	{
	}

	virtual void OnNewSubmixBuffer(const USoundSubmix* /*OwningSubmix*/, float* AudioData, int32 NumSamples, int32 NumChannels,
		const int32 SampleRate, double /*AudioClock*/) override
	{
		Tap->OnSubmixBuffer(AudioData, NumSamples, NumChannels, SampleRate, AvatarLabNowMs());
	}

private:
	std::shared_ptr<AvatarLabGlue::FVoiceTap> Tap;
};

#endif
