#pragma once

#include "CoreMinimal.h"
#include "Subsystems/GameInstanceSubsystem.h"
#include "AvatarLabConnection.h"
#include "AvatarLabSubsystem.generated.h"

/**
 * Owns the connection to the AvatarLab service for the game instance (settings from Project Settings >
 * Plugins > AvatarLab). Face components take their connection from here; blocking service calls run on
 * pool threads and report back on the game thread.
 */
UCLASS()
class AVATARLAB_API UAvatarLabSubsystem : public UGameInstanceSubsystem
{
	GENERATED_BODY()

public:
	virtual void Initialize(FSubsystemCollectionBase& Collection) override;
	virtual void Deinitialize() override;

	/** True when the client exists (the channel itself connects lazily, on the first call). */
	UFUNCTION(BlueprintPure, Category = "AvatarLab")
	bool IsConnected() const { return Connection.IsValid(); }

	/** Why there is no connection, or the empty string. */
	UFUNCTION(BlueprintPure, Category = "AvatarLab")
	FString GetConnectionError() const { return ConnectionError; }

	/** Drops the connection and makes a new one from the current settings. Running sessions keep the old one. */
	UFUNCTION(BlueprintCallable, Category = "AvatarLab")
	bool Reconnect();

	/** Replaces the bearer token for calls and sessions started from now on (e.g. a per-player token). */
	UFUNCTION(BlueprintCallable, Category = "AvatarLab")
	bool SetBearerToken(const FString& Token);

	/** The connection, shared so that pool-thread calls keep it alive. Null if not connected. */
	FAvatarLabConnectionRef GetConnection() const { return Connection; }

	/** Registers an avatar from a portrait (PNG/JPEG bytes) or idle video on a pool thread (CreateAvatar takes
	 *  seconds). OnDone runs on the game thread with AVL_OK and the new avatar id, or with the error status and message. */
	void CreateAvatarAsync(TArray<uint8> Media, bool bIsIdleVideo, const FString& DisplayName,
		TFunction<void(int32 Status, const FString& AvatarIdOrError)> OnDone);

private:
	FAvatarLabConnectionRef Connection;
	FString ConnectionError;
};
