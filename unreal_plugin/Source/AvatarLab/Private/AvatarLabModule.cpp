#include "AvatarLabModule.h"

#include "HAL/PlatformProcess.h"
#include "Interfaces/IPluginManager.h"
#include "Misc/Paths.h"
#include "Modules/ModuleManager.h"

#include "avatarlab/avatarlab.h"

DEFINE_LOG_CATEGORY(LogAvatarLab);

namespace
{
	bool GClientCoreAvailable = false;
	FString GLoadError = TEXT("AvatarLab module not started");

	// Where stage_client_core.sh puts the library for the running platform; empty where it is linked in
	// (iOS static archive, Android loaded by the UPL file before the game library).
	FString ClientCoreRelativePath()
	{
#if PLATFORM_WINDOWS
		return TEXT("Binaries/ThirdParty/AvatarLabClientCore/Win64/avatarlab_client.dll");
#elif PLATFORM_MAC
		return TEXT("Binaries/ThirdParty/AvatarLabClientCore/Mac/libavatarlab_client.dylib");
#elif PLATFORM_LINUX
		return TEXT("Binaries/ThirdParty/AvatarLabClientCore/Linux/x86_64-unknown-linux-gnu/libavatarlab_client.so");
#else
		return FString();
#endif
	}
}

void FAvatarLabModule::StartupModule()
{
	GClientCoreAvailable = false;
#if !AVATARLAB_WITH_CLIENT_CORE
	// Built against the stubs (AvatarLabClientCore.Build.cs found no library): say so once, clearly.
	GLoadError = UTF8_TO_TCHAR(avl_last_error());
	UE_LOG(LogAvatarLab, Error, TEXT("%s"), *GLoadError);
	return;
#endif
	const FString Relative = ClientCoreRelativePath();
	if (!Relative.IsEmpty())
	{
		const TSharedPtr<IPlugin> Plugin = IPluginManager::Get().FindPlugin(TEXT("AvatarLab"));
		if (!Plugin.IsValid())
		{
			GLoadError = TEXT("IPluginManager has no plugin named AvatarLab; is the plugin folder named AvatarLab?");
			UE_LOG(LogAvatarLab, Error, TEXT("%s"), *GLoadError);
			return;
		}
		const FString LibraryPath = FPaths::ConvertRelativePathToFull(FPaths::Combine(Plugin->GetBaseDir(), Relative));
		LibraryHandle = FPlatformProcess::GetDllHandle(*LibraryPath);
		if (LibraryHandle == nullptr)
		{
			GLoadError = FString::Printf(
				TEXT("Could not load the AvatarLab client core from %s. Build client_core for this platform and run "
					 "unreal_plugin/stage_client_core.sh (see the plugin README)."), *LibraryPath);
			UE_LOG(LogAvatarLab, Error, TEXT("%s"), *GLoadError);
			return;
		}
	}

	// avl_context_create checks the full version later; this catches a stale binary at start-up with a clear message.
	const uint32 LibraryVersion = avl_get_version();
	if ((LibraryVersion >> 16) != AVL_API_VERSION_MAJOR)
	{
		GLoadError = FString::Printf(TEXT("AvatarLab client core API %u.%u does not match the plugin's header %d.%d; "
										  "restage the library built from the same client_core revision."),
			LibraryVersion >> 16, (LibraryVersion >> 8) & 0xFF, AVL_API_VERSION_MAJOR, AVL_API_VERSION_MINOR);
		UE_LOG(LogAvatarLab, Error, TEXT("%s"), *GLoadError);
		return;
	}
	GClientCoreAvailable = true;
	GLoadError.Reset();
	UE_LOG(LogAvatarLab, Log, TEXT("AvatarLab client core %u.%u.%u loaded"), LibraryVersion >> 16, (LibraryVersion >> 8) & 0xFF,
		LibraryVersion & 0xFF);
}

void FAvatarLabModule::ShutdownModule()
{
	GClientCoreAvailable = false;
	if (LibraryHandle != nullptr)
	{
		FPlatformProcess::FreeDllHandle(LibraryHandle);
		LibraryHandle = nullptr;
	}
}

bool FAvatarLabModule::IsClientCoreAvailable()
{
	return GClientCoreAvailable;
}

const FString& FAvatarLabModule::GetLoadError()
{
	return GLoadError;
}

IMPLEMENT_MODULE(FAvatarLabModule, AvatarLab)
