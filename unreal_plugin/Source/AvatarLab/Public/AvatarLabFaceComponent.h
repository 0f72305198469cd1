#pragma once

#include "CoreMinimal.h"
#include "Components/ActorComponent.h"
#include "AvatarLabConnection.h"
#include "AvatarLabFaceComponent.generated.h"

class UAudioComponent;
class UMaterialInstanceDynamic;
class UPrimitiveComponent;
class USoundWave;
class USoundWaveProcedural;
class UTexture2D;

DECLARE_DYNAMIC_MULTICAST_DELEGATE(FAvatarLabSpeechStarted);
DECLARE_DYNAMIC_MULTICAST_DELEGATE(FAvatarLabSpeechEnded);
DECLARE_DYNAMIC_MULTICAST_DELEGATE_TwoParams(FAvatarLabError, const FString&, StatusName, const FString&, Message);
DECLARE_DYNAMIC_MULTICAST_DELEGATE_OneParam(FAvatarLabAvatarReady, const FString&, AvatarId);

class UAvatarLabFaceComponent;

/** Handed to the core as a session's event callback user pointer; lives until the session is released (which
 *  joins the core's threads), and carries the serial so events of an older session are ignored. */
struct FAvatarLabEventSink
{
	TWeakObjectPtr<UAvatarLabFaceComponent> Owner;
	uint64 Serial = 0;
};

enum class EAvatarLabSessionKind : uint8
{
	Speak,   // the service synthesizes the speech
	Animate, // the game supplies the audio
};

/** A material that shows the face: the texture parameter ParameterName of Material is set to the face texture. */
USTRUCT(BlueprintType)
struct AVATARLAB_API FAvatarLabMaterialBinding
{
	GENERATED_BODY()

	UPROPERTY(BlueprintReadOnly, Category = "AvatarLab")
	TObjectPtr<UMaterialInstanceDynamic> Material = nullptr;

	UPROPERTY(BlueprintReadOnly, Category = "AvatarLab")
	FName ParameterName;
};

/**
 * A talking face. Speak(Text) has the service synthesize speech; PlayAudio(Sound) animates the face to your
 * own audio. The face arrives in FaceTexture (RGBA8, transient), and the voice plays through an audio component
 * on the owner; the frame shown is picked by how much audio has played, so mouth and voice stay together.
 *
 * Threads: network and decoding run on the core's threads; session events are forwarded to the game thread;
 * the game thread presents frames (TickComponent) and the changed rectangle is uploaded on the render thread.
 */
UCLASS(ClassGroup = (AvatarLab), meta = (BlueprintSpawnableComponent))
class AVATARLAB_API UAvatarLabFaceComponent : public UActorComponent
{
	GENERATED_BODY()

public:
	UAvatarLabFaceComponent();

	/** Avatar to animate, as returned by CreateAvatar (e.g. from the service's CLI or a previous run). */
	UPROPERTY(EditAnywhere, BlueprintReadOnly, Category = "AvatarLab|Avatar")
	FString AvatarId;

	/** Used when AvatarId is empty: registered with the service at BeginPlay. Needs the texture's source image,
	 *  which exists in the editor and PIE but not in cooked builds; there, set AvatarId or use SetAvatarFromPortraitFile. */
	UPROPERTY(EditAnywhere, BlueprintReadOnly, Category = "AvatarLab|Avatar")
	TObjectPtr<UTexture2D> PortraitTexture = nullptr;

	/** Voice for Speak; empty = the service's default voice. */
	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "AvatarLab|Speech")
	FString VoiceId;

	/** Face texture parameter set on materials created by CreateFaceMaterial. */
	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "AvatarLab|Display")
	FName DefaultTextureParameter = TEXT("AvatarFace");

	/** The face; recreated when a session with another size starts (bound materials are updated). */
	UPROPERTY(Transient, BlueprintReadOnly, Category = "AvatarLab|Display")
	TObjectPtr<UTexture2D> FaceTexture = nullptr;

	UPROPERTY(BlueprintAssignable, Category = "AvatarLab")
	FAvatarLabSpeechStarted OnSpeechStarted;

	UPROPERTY(BlueprintAssignable, Category = "AvatarLab")
	FAvatarLabSpeechEnded OnSpeechEnded;

	/** StatusName is the core's code (e.g. "AVL_ERR_UNAVAILABLE: ..."), Message says what failed and what to check. */
	UPROPERTY(BlueprintAssignable, Category = "AvatarLab")
	FAvatarLabError OnError;

	UPROPERTY(BlueprintAssignable, Category = "AvatarLab")
	FAvatarLabAvatarReady OnAvatarReady;

	/** The service speaks Text with VoiceId and animates the face. Stops anything playing. */
	UFUNCTION(BlueprintCallable, Category = "AvatarLab")
	bool Speak(const FString& Text);

	/** Animates the face to Sound and plays it. Needs PCM: available in the editor and PIE; in cooked builds
	 *  pass decoded audio to PlayAudioPCM instead. */
	UFUNCTION(BlueprintCallable, Category = "AvatarLab")
	bool PlayAudio(USoundWave* Sound);

	/** Animates the face to interleaved int16 little-endian PCM and plays it (PushAudioPCM + EndAudio). */
	UFUNCTION(BlueprintCallable, Category = "AvatarLab")
	bool PlayAudioPCM(const TArray<uint8>& PcmS16, int32 SampleRateHz, int32 NumChannels);

	/** Streams a voice as it arrives (your own TTS, an LLM voice stream): interleaved int16 little-endian PCM in
	 *  whole frames, the same rate and channel count for the whole line. The first chunk opens a session; the voice
	 *  starts once the preroll has arrived, with the mouth on it. Call EndAudio after the last chunk. Works in
	 *  cooked builds. */
	UFUNCTION(BlueprintCallable, Category = "AvatarLab")
	bool PushAudioPCM(const TArray<uint8>& PcmS16, int32 SampleRateHz, int32 NumChannels);

	/** No more audio for the line streamed with PushAudioPCM: the face finishes it, then OnSpeechEnded. */
	UFUNCTION(BlueprintCallable, Category = "AvatarLab")
	bool EndAudio();

	/** Cancels the current session and stops the voice. The last frame stays on the texture. */
	UFUNCTION(BlueprintCallable, Category = "AvatarLab")
	void Stop();

	UFUNCTION(BlueprintPure, Category = "AvatarLab")
	bool IsSpeaking() const { return Session.get() != nullptr; }

	UFUNCTION(BlueprintCallable, Category = "AvatarLab|Avatar")
	void SetAvatarId(const FString& NewAvatarId);

	/** Registers the portrait with the service (asynchronously); OnAvatarReady fires with the id. */
	UFUNCTION(BlueprintCallable, Category = "AvatarLab|Avatar")
	bool SetAvatarFromPortrait(UTexture2D* Portrait);

	/** As SetAvatarFromPortrait, from a PNG or JPEG file; works in cooked builds. */
	UFUNCTION(BlueprintCallable, Category = "AvatarLab|Avatar")
	bool SetAvatarFromPortraitFile(const FString& FilePath);

	/** Sets texture parameter ParameterName of Material to the face texture, now and whenever it is recreated. */
	UFUNCTION(BlueprintCallable, Category = "AvatarLab|Display")
	void BindToMaterial(UMaterialInstanceDynamic* Material, FName ParameterName);

	/** Makes a dynamic material instance for element ElementIndex of Mesh and binds it with DefaultTextureParameter. */
	UFUNCTION(BlueprintCallable, Category = "AvatarLab|Display")
	UMaterialInstanceDynamic* CreateFaceMaterial(UPrimitiveComponent* Mesh, int32 ElementIndex = 0);

	/** The component that plays the voice (created at BeginPlay), e.g. to set attenuation. */
	UFUNCTION(BlueprintPure, Category = "AvatarLab")
	UAudioComponent* GetAudioComponent() const { return AudioComponent; }

	virtual void TickComponent(float DeltaTime, ELevelTick TickType, FActorComponentTickFunction* ThisTickFunction) override;

	/** Game thread: an event of session Serial, forwarded from the core's receive thread. Internal. */
	void HandleCoreEvent(uint64 Serial, const avl_event& Event);

protected:
	virtual void BeginPlay() override;
	virtual void EndPlay(const EEndPlayReason::Type EndPlayReason) override;

private:
	bool BeginSession(EAvatarLabSessionKind InKind, const FString& Text, int32 SampleRateHz, int32 NumChannels);
	void ReleaseSession();
	void Fail(int32 Status, const FString& Message);        // ends the session, then reports
	void ReportError(int32 Status, const FString& Message); // a rejected call: the running session goes on
	static FString StatusName(int32 Status);
	class UAvatarLabSubsystem* GetSubsystem() const;
	bool EnsureReady(FString& OutError) const;

	void CreateSpeechWave(int32 SampleRateHz, int32 NumChannels);
	void PumpSpeechAudio();
	void MaybeStartPlayback();
	int64 AudioPositionMs() const;
	void EnsureFaceTexture(int32 Width, int32 Height);
	void UploadRect(int32 X, int32 Y, int32 Width, int32 Height);
	void ApplyMaterialBindings();
	void RegisterAvatar(TArray<uint8> ImageBytes, const FString& DisplayName);

	UPROPERTY(Transient)
	TObjectPtr<UAudioComponent> AudioComponent = nullptr;

	UPROPERTY(Transient)
	TObjectPtr<USoundWaveProcedural> SpeechWave = nullptr;

	UPROPERTY(Transient)
	TArray<FAvatarLabMaterialBinding> MaterialBindings;

	FAvatarLabConnectionRef Connection;
	AvatarLabGlue::FSessionPtr Session;
	TUniquePtr<FAvatarLabEventSink> Sink;
	uint64 SessionSerial = 0;
	EAvatarLabSessionKind Kind = EAvatarLabSessionKind::Speak;

	bool bStarted = false;       // SessionStarted arrived; surface and info valid
	bool bServerEnded = false;   // every frame has arrived
	bool bPlaying = false;       // the voice has started
	bool bCoreAudioDrained = false; // Speak: every received sample has been queued for playback
	bool bAudioEnded = false;       // Animate: EndAudio was called (no more PushAudioPCM for this line)
	bool bRegisteringAvatar = false;
	int64 NewestFramePtsMs = -1;
	double DrainedAtSeconds = -1.0; // when the mixer took the last queued byte
	int32 AudioSampleRateHz = 0;
	int32 AudioChannels = 1;
	int64 AudioBytesQueued = 0;
	int32 SurfaceWidth = 0;
	int32 SurfaceHeight = 0;
	TArray<int16> AudioScratch;
};
