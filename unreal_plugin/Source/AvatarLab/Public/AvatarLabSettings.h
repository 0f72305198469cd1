#pragma once

#include "CoreMinimal.h"
#include "Engine/DeveloperSettings.h"
#include "AvatarLabSettings.generated.h"

/** How frames travel on the wire (avl_wire_format). The texture is always RGBA8. */
UENUM(BlueprintType)
enum class EAvatarLabWireFormat : uint8
{
	ServerDefault UMETA(DisplayName = "Server default"),
	Rgba8 UMETA(DisplayName = "RGBA8 (lossless)"),
	Rgb8 UMETA(DisplayName = "RGB8 (lossless)"),
	Jpeg UMETA(DisplayName = "JPEG (smallest)"),
};

/** Whole frames, or a base image and then changed rectangles only (avl_frame_mode). */
UENUM(BlueprintType)
enum class EAvatarLabFrameMode : uint8
{
	ServerDefault UMETA(DisplayName = "Server default (full)"),
	Full,
	Delta UMETA(DisplayName = "Delta (changed rectangles)"),
};

/** Minimum level of client core log lines forwarded to LogAvatarLab (avl_log_level). */
UENUM()
enum class EAvatarLabLogLevel : uint8
{
	Debug,
	Info,
	Warning,
	Error,
	Off,
};

/**
 * Project Settings > Plugins > AvatarLab: where the AvatarLab service is and how sessions stream.
 * Stored in DefaultGame.ini. Zero in a numeric field means the core's or the server's default.
 */
UCLASS(Config = Game, DefaultConfig, meta = (DisplayName = "AvatarLab"))
class AVATARLAB_API UAvatarLabSettings : public UDeveloperSettings
{
	GENERATED_BODY()

public:
	UAvatarLabSettings();

	virtual FName GetCategoryName() const override { return TEXT("Plugins"); }

	/** gRPC target of the AvatarLab service: "host:port" or any gRPC target such as "dns:///avatars.example.com:443". */
	UPROPERTY(Config, EditAnywhere, Category = "Connection")
	FString Address = TEXT("127.0.0.1:50051");

	/** Bearer token sent as "authorization: Bearer <token>". Empty = none. This lands in DefaultGame.ini and ships
	 *  with the game; for builds given to players, leave it empty and set environment variable AVATARLAB_TOKEN
	 *  (it takes precedence) or call UAvatarLabSubsystem::SetBearerToken at run time. */
	UPROPERTY(Config, EditAnywhere, Category = "Connection")
	FString BearerToken;

	/** Use TLS (system roots, or the PEM file below). Off = plaintext, for local development. */
	UPROPERTY(Config, EditAnywhere, Category = "Connection")
	bool bUseTls = false;

	/** Optional PEM file with the root certificates to trust instead of the system's (TLS only). */
	UPROPERTY(Config, EditAnywhere, Category = "Connection", meta = (EditCondition = "bUseTls", FilePathFilter = "pem"))
	FFilePath TlsRootCertificatesPem;

	/** How long to wait for the channel to connect (ms). 0 = 5000. */
	UPROPERTY(Config, EditAnywhere, Category = "Connection", meta = (ClampMin = "0"))
	int32 ConnectTimeoutMs = 0;

	/** Deadline of unary calls such as CreateAvatar (ms). 0 = 30000. */
	UPROPERTY(Config, EditAnywhere, Category = "Connection", meta = (ClampMin = "0"))
	int32 CallTimeoutMs = 0;

	/** Attempts to open a session while the service is unavailable. 0 = 6, 1 = no retry. */
	UPROPERTY(Config, EditAnywhere, Category = "Connection", meta = (ClampMin = "0"))
	int32 RetryMaxAttempts = 0;

	UPROPERTY(Config, EditAnywhere, Category = "Connection")
	EAvatarLabLogLevel LogLevel = EAvatarLabLogLevel::Info;

	/** Frames per second requested from the service. 0 = 25. */
	UPROPERTY(Config, EditAnywhere, Category = "Streaming", meta = (ClampMin = "0", ClampMax = "60"))
	int32 Fps = 0;

	UPROPERTY(Config, EditAnywhere, Category = "Streaming")
	EAvatarLabWireFormat WireFormat = EAvatarLabWireFormat::Jpeg;

	/** 1..100, 0 = 85. JPEG only. */
	UPROPERTY(Config, EditAnywhere, Category = "Streaming", meta = (ClampMin = "0", ClampMax = "100"))
	int32 JpegQuality = 0;

	/** Delta mode uploads only the changed rectangle of each frame to the texture. */
	UPROPERTY(Config, EditAnywhere, Category = "Streaming")
	EAvatarLabFrameMode FrameMode = EAvatarLabFrameMode::Delta;

	/** Denoiser steps, 1..50; 0 = the model's default. Fewer is faster and rougher. */
	UPROPERTY(Config, EditAnywhere, Category = "Streaming", meta = (ClampMin = "0", ClampMax = "50"))
	int32 SamplerSteps = 0;

	/** Video (and voice) received before the voice starts (ms), so frames are there in time. 0 = 300. The client
	 *  core's playback policy applies it (avl_playback_settings.preroll_ms), as in Unity. */
	UPROPERTY(Config, EditAnywhere, Category = "Streaming", meta = (ClampMin = "0"))
	int32 PrerollMs = 300;

	/** Audio the mixer has taken from the sound wave but the listener has not heard yet (ms): the face shows the
	 *  frame for what is heard, and a line ends only once its last audio has been heard. Raise it if the mouth
	 *  leads the voice on a platform with a large output buffer. (avl_playback_settings.output_latency_ms) */
	UPROPERTY(Config, EditAnywhere, Category = "Streaming", meta = (ClampMin = "0"))
	int32 AudioLatencyCompensationMs = 40;

	/** The token to use: AVATARLAB_TOKEN from the environment if set, else BearerToken. */
	FString ResolveBearerToken() const;
};
