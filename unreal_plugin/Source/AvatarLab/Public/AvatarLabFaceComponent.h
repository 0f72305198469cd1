#pragma once

#include "CoreMinimal.h"
#include "Components/ActorComponent.h"
#include "AudioDeviceHandle.h"
#include "AvatarLabConnection.h"
#include "AvatarLabMouthGlue.h"

#include <memory>

#include "AvatarLabFaceComponent.generated.h"

class UAudioComponent;
class UMaterialInstanceDynamic;
class UPrimitiveComponent;
class USoundBase;
class USoundSubmix;
class USoundWaveProcedural;
class UTexture2D;
class FAvatarLabSubmixTap;

namespace AvatarLabGlue
{
	class FFaceSession;
	class FVoiceTap;
	struct FUpload;
}

DECLARE_DYNAMIC_MULTICAST_DELEGATE(FAvatarLabSpeechStarted);
DECLARE_DYNAMIC_MULTICAST_DELEGATE(FAvatarLabSpeechEnded);
DECLARE_DYNAMIC_MULTICAST_DELEGATE_TwoParams(FAvatarLabError, const FString&, StatusName, const FString&, Message);
DECLARE_DYNAMIC_MULTICAST_DELEGATE_OneParam(FAvatarLabAvatarReady, const FString&, AvatarId);

/** How a rig's mouth morph targets are named (DriveMorphTargets). */
UENUM(BlueprintType)
enum class EAvatarLabMorphNaming : uint8
{
	ArkitBlendshapes UMETA(DisplayName = "ARKit blendshapes (jawOpen, mouthFunnel, ...)"),
	OculusVisemes UMETA(DisplayName = "Oculus visemes (viseme_sil ... viseme_U)"),
	Custom UMETA(DisplayName = "Custom (CustomMorphTargets only)"),
};

enum class EAvatarLabSessionKind : uint8
{
	Speak,   // the service synthesizes the speech
	Animate, // the game pushes the audio (PushAudioPCM)
	Tap,     // a line of voice-over tapped from VoiceSubmix
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
 * A talking face. Speak(Text) has the service synthesize speech; PushAudioPCM streams your own voice line; voice-over
 * the game plays through VoiceSubmix drives the face by itself (a submix tap, cooked builds included). The face
 * arrives in FaceTexture (RGBA8, transient), and the voice plays through an audio component on the owner; the
 * frame shown is picked by how much audio has played, so mouth and voice stay together.
 *
 * The policy (when to start the voice, which frame belongs to what is heard, when a line is over) is the client
 * core's (avl_session_present_playback), shared with Unity. Threads: network on the core's threads; session events
 * forwarded to the game thread; presenting (JPEG decode, the changed rectangle's copy) on a worker task; the game
 * thread only hands the copy to the render thread (UpdateTextureRegions) and starts/stops the voice.
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

	/** Voice-over played through this submix drives the face, in cooked builds too: route the dialogue to it (the
	 *  sound's Base Submix, or the Default Submix of its Sound Class). Tapped from BeginPlay (UE 5.4 or later). Each
	 *  line is streamed to the service and replayed by the face's audio component in step with the mouth (a preroll
	 *  later), mono; the submix is muted so the line is heard once. Use a submix only voice-over goes to. */
	UPROPERTY(EditAnywhere, BlueprintReadOnly, Category = "AvatarLab|Voice-over")
	TObjectPtr<USoundSubmix> VoiceSubmix = nullptr;

	/** Silence (ms) that ends a tapped line; pauses inside a line must be shorter. */
	UPROPERTY(EditAnywhere, BlueprintReadOnly, Category = "AvatarLab|Voice-over", meta = (ClampMin = "100", ClampMax = "5000"))
	int32 LineEndSilenceMs = 600;

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

	/** Plays Sound on the owner; the voice tap on VoiceSubmix animates the face to it (works in cooked builds, any
	 *  sound: wave, cue, MetaSound). The sound must route to VoiceSubmix (its Base Submix or its Sound Class's). */
	UFUNCTION(BlueprintCallable, Category = "AvatarLab")
	bool PlayAudio(USoundBase* Sound);

	/** Starts tapping Submix (replacing any earlier tap): voice-over played through it drives the face. BeginPlay
	 *  calls it for VoiceSubmix. Needs UE 5.4 or later and an audio device (not with -nosound). */
	UFUNCTION(BlueprintCallable, Category = "AvatarLab|Voice-over")
	bool StartVoiceTap(USoundSubmix* Submix);

	/** Stops the tap (a tapped line still playing finishes). */
	UFUNCTION(BlueprintCallable, Category = "AvatarLab|Voice-over")
	void StopVoiceTap();

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
	bool IsSpeaking() const { return Face != nullptr; }

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

	/** Sessions send only the mouth curves, no face texture: the service generates no image (for a 3D rig). */
	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "AvatarLab|Rig")
	bool bMotionOnly = false;

	/** A mesh whose mouth morph targets follow the curves every tick (SetMorphTarget); empty: none. */
	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "AvatarLab|Rig")
	TObjectPtr<USkeletalMeshComponent> MorphTargetMesh = nullptr;

	/** How MorphTargetMesh's morph targets are named. */
	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "AvatarLab|Rig")
	EAvatarLabMorphNaming MorphTargetNaming = EAvatarLabMorphNaming::ArkitBlendshapes;

	/** Extra rows, stream curve (viseme like "aa" or blendshape like "jawOpen") -> morph target, added to the naming preset. */
	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "AvatarLab|Rig")
	TMap<FName, FName> CustomMorphTargets;

	/**
	 * Weight (0..1) of one mouth curve of the frame shown on the audio clock, by the service's name: a viseme
	 * (sil PP FF TH DD kk CH SS nn RR aa E ih oh ou) or an ARKit blendshape (jawOpen, mouthFunnel, ...). For
	 * Animation Blueprints (e.g. a Modify Curve node); 0 for an unknown name; at rest, sil is 1 and the rest 0.
	 */
	UFUNCTION(BlueprintPure, Category = "AvatarLab|Rig")
	float GetMouthCurve(FName Curve) const;

	/** Every mouth curve of the frame shown, name -> weight (0..1). */
	UFUNCTION(BlueprintPure, Category = "AvatarLab|Rig")
	TMap<FName, float> GetMouthCurves() const;

	virtual void TickComponent(float DeltaTime, ELevelTick TickType, FActorComponentTickFunction* ThisTickFunction) override;

	/** Game thread: an event of session Serial, forwarded from the core's receive thread. Internal. */
	void HandleCoreEvent(uint64 Serial, const avl_event& Event);

protected:
	virtual void BeginPlay() override;
	virtual void EndPlay(const EEndPlayReason::Type EndPlayReason) override;

private:
	bool BeginSession(EAvatarLabSessionKind InKind, const FString& Text, int32 SampleRateHz, int32 NumChannels);
	bool QueueVoice(const uint8* PcmS16, int32 NumBytes); // Animate/Tap: to the service and to the voice wave
	bool FinishVoice();                                  // Animate/Tap: no more audio for this line
	void ReleaseSession();
	void Fail(int32 Status, const FString& Message);        // ends the session, then reports
	void ReportError(int32 Status, const FString& Message); // a rejected call: the running session goes on
	static FString StatusName(int32 Status);
	class UAvatarLabSubsystem* GetSubsystem() const;
	bool EnsureReady(FString& OutError) const;

	void CreateSpeechWave(int32 SampleRateHz, int32 NumChannels);
	int32 PumpSpeechAudio();     // Speak: the service's audio read so far onto the wave; returns samples read
	void DrainVoiceTap();        // tapped lines -> sessions
	void ApplyPresentResults();  // the worker's upload and the core's advice
	void UpdateMouth();          // the presented frame's curves -> Mouth and MorphTargetMesh
	void RequestPresent();       // the player's clock now -> a worker presents for it
	void EnsureFaceTexture(int32 Width, int32 Height);
	void UploadToTexture(AvatarLabGlue::FUpload& Upload);
	void ApplyMaterialBindings();
	void RegisterAvatar(TArray<uint8> ImageBytes, const FString& DisplayName);

	UPROPERTY(Transient)
	TObjectPtr<UAudioComponent> AudioComponent = nullptr; // the face's voice (replayed in step with the mouth)

	UPROPERTY(Transient)
	TObjectPtr<UAudioComponent> SourceComponent = nullptr; // PlayAudio's sounds, heard through the tap

	UPROPERTY(Transient)
	TObjectPtr<USoundWaveProcedural> SpeechWave = nullptr;

	UPROPERTY(Transient)
	TArray<FAvatarLabMaterialBinding> MaterialBindings;

	UPROPERTY(Transient)
	TObjectPtr<USoundSubmix> TappedSubmix = nullptr;

	FAvatarLabConnectionRef Connection;
	std::shared_ptr<AvatarLabGlue::FFaceSession> Face; // the session; a worker task may hold it while presenting
	AvatarLabGlue::FMouthCurves Mouth;                  // the curves of the frame shown (rest pose between lines)
	uint64 SessionSerial = 0;
	EAvatarLabSessionKind Kind = EAvatarLabSessionKind::Speak;

	std::shared_ptr<AvatarLabGlue::FVoiceTap> VoiceTap;
	TSharedPtr<FAvatarLabSubmixTap, ESPMode::ThreadSafe> SubmixListener;
	FAudioDeviceHandle TapDevice;
	bool bTapLineOpen = false; // the current session is the tapped line that is still arriving

	bool bStarted = false;     // SessionStarted arrived; the texture exists
	bool bPlaying = false;     // the voice has started
	bool bAudioEnded = false;  // Animate/Tap: no more audio for this line
	bool bRegisteringAvatar = false;
	int32 AudioSampleRateHz = 0;
	int32 AudioChannels = 1;
	int64 AudioBytesQueued = 0;
	TArray<int16> AudioScratch;
};
