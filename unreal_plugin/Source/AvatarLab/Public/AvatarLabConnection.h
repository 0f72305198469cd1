#pragma once

#include "CoreMinimal.h"
#include "AvatarLabCoreGlue.h"

class UAvatarLabSettings;

/**
 * One connection to the AvatarLab service: the core's context (logging) and client (gRPC channel).
 * Held by a thread-safe shared pointer so blocking calls on pool threads keep it alive while they run,
 * even if the game instance that made it shuts down meanwhile.
 */
class AVATARLAB_API FAvatarLabConnection
{
public:
	/** Creates the context and the client from the settings. Does not connect yet (the channel connects on
	 *  first use). Null with OutError set if the library is missing or a setting is invalid. */
	static TSharedPtr<FAvatarLabConnection, ESPMode::ThreadSafe> Open(const UAvatarLabSettings& Settings, FString& OutError);

	avl_client* GetClient() const { return Client.get(); }

	/** "AVL_ERR_UNAVAILABLE: service unreachable or not ready (ListAvatars: connect to ... failed)".
	 *  Reads avl_last_error, so call it on the thread that made the failing call, right after it. */
	static FString DescribeStatus(int32 Status);

	/** Session options from Project Settings (fps, wire format, frame mode, quality, steps). */
	static void FillSessionSettings(const UAvatarLabSettings& Settings, avl_session_settings& Out);

private:
	// Declared in this order so the client is released before the context.
	AvatarLabGlue::FContextPtr Context;
	AvatarLabGlue::FClientPtr Client;
};

using FAvatarLabConnectionRef = TSharedPtr<FAvatarLabConnection, ESPMode::ThreadSafe>;
