#include "AvatarLabSettings.h"

#include "HAL/PlatformMisc.h"

UAvatarLabSettings::UAvatarLabSettings()
{
	SectionName = TEXT("AvatarLab");
}

FString UAvatarLabSettings::ResolveBearerToken() const
{
	const FString FromEnvironment = FPlatformMisc::GetEnvironmentVariable(TEXT("AVATARLAB_TOKEN"));
	return FromEnvironment.IsEmpty() ? BearerToken : FromEnvironment;
}
