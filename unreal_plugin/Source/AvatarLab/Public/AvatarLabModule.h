#pragma once

#include "CoreMinimal.h"
#include "Modules/ModuleInterface.h"

AVATARLAB_API DECLARE_LOG_CATEGORY_EXTERN(LogAvatarLab, Log, All);

/** Loads the native client core from the plugin's own Binaries/ThirdParty folder at start-up. */
class AVATARLAB_API FAvatarLabModule : public IModuleInterface
{
public:
	virtual void StartupModule() override;
	virtual void ShutdownModule() override;

	/** True once the client core library is loaded and its API major version matches the header's.
	 *  Every avl_ call must be guarded by this: on Windows the DLL is delay-loaded, so calling into a
	 *  missing DLL would crash instead of failing. */
	static bool IsClientCoreAvailable();

	/** Why the library is not available (empty when it is). */
	static const FString& GetLoadError();

private:
	void* LibraryHandle = nullptr;
};
