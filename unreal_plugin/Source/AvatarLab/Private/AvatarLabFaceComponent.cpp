#include "AvatarLabFaceComponent.h"

#include "Async/Async.h"
#include "Audio.h"
#include "AudioDevice.h"
#include "AvatarLabFaceSession.h"
#include "AvatarLabModule.h"
#include "AvatarLabSettings.h"
#include "AvatarLabSubmixTap.h"
#include "AvatarLabSubsystem.h"
#include "AvatarLabVoiceTap.h"
#include "Components/AudioComponent.h"
#include "Components/PrimitiveComponent.h"
#include "Components/SkeletalMeshComponent.h"
#include "Engine/GameInstance.h"
#include "Engine/Texture2D.h"
#include "Engine/World.h"
#include "GameFramework/Actor.h"
#include "ImageCore.h"
#include "ImageUtils.h"
#include "Materials/MaterialInstanceDynamic.h"
#include "Misc/FileHelper.h"
#include "Misc/Paths.h"
#include "RHITypes.h"
#include "Sound/SoundBase.h"
#include "Sound/SoundSubmix.h"
#include "Sound/SoundWaveProcedural.h"
#include "Tasks/Task.h"

#include <vector>

namespace
{
	constexpr int32 AudioChunkSamples = 4096;

	// The session's event function, run on the core's receive thread: copy the event and hop to the game thread.
	// Only the weak pointer is copied here; it is dereferenced on the game thread, where the serial drops events of
	// a session already released.
	AvatarLabGlue::FFaceSession::FEventFn ForwardToGameThread(UAvatarLabFaceComponent* Component, uint64 Serial)
	{
		const TWeakObjectPtr<UAvatarLabFaceComponent> Owner(Component);
		return [Owner, Serial](const avl_event& Event)
		{
			const avl_event Copy = Event;
			AsyncTask(ENamedThreads::GameThread, [Owner, Serial, Copy]()
				{
					if (UAvatarLabFaceComponent* Self = Owner.Get())
					{
						Self->HandleCoreEvent(Serial, Copy);
					}
				});
		};
	}

}

UAvatarLabFaceComponent::UAvatarLabFaceComponent()
{
	PrimaryComponentTick.bCanEverTick = true;
	PrimaryComponentTick.bStartWithTickEnabled = true;
}

// ------------------------------------------------------------------ lifecycle

void UAvatarLabFaceComponent::BeginPlay()
{
	Super::BeginPlay();

	if (UAvatarLabSubsystem* Subsystem = GetSubsystem())
	{
		Connection = Subsystem->GetConnection();
	}

	AActor* Owner = GetOwner();
	auto MakeAudioComponent = [Owner](const TCHAR* Name)
	{
		UAudioComponent* Audio = NewObject<UAudioComponent>(Owner, MakeUniqueObjectName(Owner, UAudioComponent::StaticClass(), Name));
		Audio->bAutoActivate = false;
		Audio->bAutoDestroy = false;
		if (USceneComponent* Root = Owner->GetRootComponent())
		{
			Audio->SetupAttachment(Root);
		}
		Audio->RegisterComponent();
		return Audio;
	};
	AudioComponent = MakeAudioComponent(TEXT("AvatarLabVoice"));
	SourceComponent = MakeAudioComponent(TEXT("AvatarLabVoiceSource"));

	if (!Connection.IsValid())
	{
		const UAvatarLabSubsystem* Subsystem = GetSubsystem();
		ReportError(AVL_ERR_UNAVAILABLE, TEXT("AvatarLab is not connected: ") +
			(Subsystem ? Subsystem->GetConnectionError() : FString(TEXT("no game instance"))));
		return;
	}
	if (VoiceSubmix != nullptr)
	{
		StartVoiceTap(VoiceSubmix);
	}
	if (AvatarId.IsEmpty() && PortraitTexture != nullptr)
	{
		SetAvatarFromPortrait(PortraitTexture);
	}
}

void UAvatarLabFaceComponent::EndPlay(const EEndPlayReason::Type EndPlayReason)
{
	StopVoiceTap();
	ReleaseSession();
	if (AudioComponent != nullptr)
	{
		AudioComponent->DestroyComponent();
		AudioComponent = nullptr;
	}
	if (SourceComponent != nullptr)
	{
		SourceComponent->DestroyComponent();
		SourceComponent = nullptr;
	}
	Connection.Reset();
	Super::EndPlay(EndPlayReason);
}

// ------------------------------------------------------------------ voice-over tap

bool UAvatarLabFaceComponent::StartVoiceTap(USoundSubmix* Submix)
{
	StopVoiceTap();
	if (Submix == nullptr)
	{
		ReportError(AVL_ERR_INVALID_ARGUMENT, TEXT("StartVoiceTap: no submix."));
		return false;
	}
#if AVATARLAB_WITH_SUBMIX_TAP
	UWorld* World = GetWorld();
	FAudioDeviceHandle Device = World ? World->GetAudioDevice() : FAudioDeviceHandle();
	if (!Device.IsValid())
	{
		ReportError(AVL_ERR_UNAVAILABLE, TEXT("StartVoiceTap: no audio device (audio is off: -nosound, a dedicated server or a commandlet)."));
		return false;
	}
	AvatarLabGlue::FVoiceTapSettings TapSettings;
	TapSettings.LineEndSilenceMs = LineEndSilenceMs;
	VoiceTap = std::make_shared<AvatarLabGlue::FVoiceTap>(TapSettings);
	SubmixListener = MakeShared<FAvatarLabSubmixTap, ESPMode::ThreadSafe>(VoiceTap);
	Device->RegisterSubmixBufferListener(SubmixListener.ToSharedRef(), *Submix);
	TapDevice = MoveTemp(Device);
	TappedSubmix = Submix;
	return true;
#else
	ReportError(AVL_ERR_UNAVAILABLE, TEXT("StartVoiceTap: the submix tap needs Unreal Engine 5.4 or later; use PushAudioPCM."));
	return false;
#endif
}

void UAvatarLabFaceComponent::StopVoiceTap()
{
#if AVATARLAB_WITH_SUBMIX_TAP
	if (SubmixListener.IsValid() && TapDevice.IsValid() && TappedSubmix != nullptr)
	{
		// The mixer holds its own reference until it has stopped calling the listener, which holds only the tap.
		TapDevice->UnregisterSubmixBufferListener(SubmixListener.ToSharedRef(), *TappedSubmix);
	}
#endif
	SubmixListener.Reset();
	TapDevice = FAudioDeviceHandle();
	TappedSubmix = nullptr;
	VoiceTap.reset();
	if (bTapLineOpen && Face && Kind == EAvatarLabSessionKind::Tap)
	{
		FinishVoice(); // the line so far plays out
	}
	bTapLineOpen = false;
}

void UAvatarLabFaceComponent::DrainVoiceTap()
{
	if (!VoiceTap)
	{
		return;
	}
	std::vector<AvatarLabGlue::FVoiceTapChunk> Chunks;
	VoiceTap->Take(AvatarLabNowMs(), Chunks);
	for (const AvatarLabGlue::FVoiceTapChunk& Chunk : Chunks)
	{
		switch (Chunk.Kind)
		{
		case AvatarLabGlue::EVoiceTapEvent::LineStarted:
			// A new line of voice-over replaces whatever the face is doing.
			bTapLineOpen = BeginSession(EAvatarLabSessionKind::Tap, FString(), Chunk.SampleRateHz, 1);
			break;
		case AvatarLabGlue::EVoiceTapEvent::Audio:
			if (bTapLineOpen && Kind == EAvatarLabSessionKind::Tap && Face)
			{
				QueueVoice(reinterpret_cast<const uint8*>(Chunk.Samples.data()),
					static_cast<int32>(Chunk.Samples.size() * sizeof(int16_t)));
			}
			break;
		case AvatarLabGlue::EVoiceTapEvent::LineEnded:
			if (bTapLineOpen && Kind == EAvatarLabSessionKind::Tap && Face)
			{
				FinishVoice();
			}
			bTapLineOpen = false;
			break;
		}
	}
}

bool UAvatarLabFaceComponent::PlayAudio(USoundBase* Sound)
{
	if (Sound == nullptr)
	{
		ReportError(AVL_ERR_INVALID_ARGUMENT, TEXT("PlayAudio: no sound."));
		return false;
	}
	if (!VoiceTap && !(VoiceSubmix != nullptr && StartVoiceTap(VoiceSubmix)))
	{
		if (VoiceSubmix == nullptr)
		{
			ReportError(AVL_ERR_BAD_STATE, TEXT("PlayAudio: set Voice Submix on the AvatarLab Face component (and route the sound to it), or stream PCM with PushAudioPCM."));
		}
		return false;
	}
	if (SourceComponent == nullptr)
	{
		ReportError(AVL_ERR_BAD_STATE, TEXT("PlayAudio: the face component has not begun play yet."));
		return false;
	}
	if (Sound->GetSoundSubmix() != TappedSubmix.Get())
	{
		UE_LOG(LogAvatarLab, Warning, TEXT("PlayAudio: %s routes to %s, not to the tapped submix %s: the face will not move. Set its Base Submix (or its Sound Class's Default Submix)."),
			*Sound->GetName(), *GetNameSafe(Sound->GetSoundSubmix()), *GetNameSafe(TappedSubmix.Get()));
	}
	SourceComponent->SetSound(Sound);
	SourceComponent->Play();
	return true;
}

// ------------------------------------------------------------------ avatar

void UAvatarLabFaceComponent::SetAvatarId(const FString& NewAvatarId)
{
	AvatarId = NewAvatarId.TrimStartAndEnd();
}

bool UAvatarLabFaceComponent::SetAvatarFromPortrait(UTexture2D* Portrait)
{
	FImage Image;
	bool bHaveSource = false;
#if WITH_EDITORONLY_DATA
	bHaveSource = Portrait != nullptr && Portrait->Source.IsValid() && Portrait->Source.GetMipImage(Image, 0);
#endif
	if (!bHaveSource)
	{
		ReportError(AVL_ERR_INVALID_ARGUMENT, FString::Printf(
			TEXT("SetAvatarFromPortrait: no source image for %s (cooked builds strip it); set AvatarId or use SetAvatarFromPortraitFile."),
			Portrait ? *Portrait->GetName() : TEXT("null texture")));
		return false;
	}
	TArray64<uint8> Png;
	if (!FImageUtils::CompressImage(Png, TEXT("png"), Image))
	{
		ReportError(AVL_ERR_INVALID_ARGUMENT, TEXT("SetAvatarFromPortrait: PNG encoding of ") + Portrait->GetName() + TEXT(" failed."));
		return false;
	}
	RegisterAvatar(TArray<uint8>(Png.GetData(), static_cast<int32>(Png.Num())), Portrait->GetName());
	return true;
}

bool UAvatarLabFaceComponent::SetAvatarFromPortraitFile(const FString& FilePath)
{
	TArray<uint8> Bytes;
	if (!FFileHelper::LoadFileToArray(Bytes, *FilePath))
	{
		ReportError(AVL_ERR_INVALID_ARGUMENT, TEXT("SetAvatarFromPortraitFile: cannot read ") + FilePath);
		return false;
	}
	RegisterAvatar(MoveTemp(Bytes), FPaths::GetBaseFilename(FilePath));
	return true;
}

void UAvatarLabFaceComponent::RegisterAvatar(TArray<uint8> ImageBytes, const FString& DisplayName)
{
	UAvatarLabSubsystem* Subsystem = GetSubsystem();
	if (Subsystem == nullptr)
	{
		ReportError(AVL_ERR_UNAVAILABLE, TEXT("RegisterAvatar: no AvatarLab subsystem (component not in a game world)."));
		return;
	}
	bRegisteringAvatar = true;
	TWeakObjectPtr<UAvatarLabFaceComponent> WeakThis(this);
	Subsystem->CreateAvatarAsync(MoveTemp(ImageBytes), /*bIsIdleVideo=*/false, DisplayName,
		[WeakThis](int32 Status, const FString& AvatarIdOrError)
		{
			UAvatarLabFaceComponent* Self = WeakThis.Get();
			if (Self == nullptr)
			{
				return;
			}
			Self->bRegisteringAvatar = false;
			if (Status != AVL_OK)
			{
				Self->ReportError(Status, AvatarIdOrError);
				return;
			}
			Self->AvatarId = AvatarIdOrError;
			Self->OnAvatarReady.Broadcast(AvatarIdOrError);
		});
}

// ------------------------------------------------------------------ display

void UAvatarLabFaceComponent::BindToMaterial(UMaterialInstanceDynamic* Material, FName ParameterName)
{
	if (Material == nullptr || ParameterName.IsNone())
	{
		return;
	}
	const bool bKnown = MaterialBindings.ContainsByPredicate([&](const FAvatarLabMaterialBinding& Binding)
		{ return Binding.Material == Material && Binding.ParameterName == ParameterName; });
	if (!bKnown)
	{
		FAvatarLabMaterialBinding& Binding = MaterialBindings.AddDefaulted_GetRef();
		Binding.Material = Material;
		Binding.ParameterName = ParameterName;
	}
	if (FaceTexture != nullptr)
	{
		Material->SetTextureParameterValue(ParameterName, FaceTexture);
	}
}

UMaterialInstanceDynamic* UAvatarLabFaceComponent::CreateFaceMaterial(UPrimitiveComponent* Mesh, int32 ElementIndex)
{
	if (Mesh == nullptr)
	{
		return nullptr;
	}
	UMaterialInstanceDynamic* Material = Mesh->CreateAndSetMaterialInstanceDynamic(ElementIndex);
	BindToMaterial(Material, DefaultTextureParameter);
	return Material;
}

void UAvatarLabFaceComponent::ApplyMaterialBindings()
{
	for (const FAvatarLabMaterialBinding& Binding : MaterialBindings)
	{
		if (Binding.Material != nullptr)
		{
			Binding.Material->SetTextureParameterValue(Binding.ParameterName, FaceTexture);
		}
	}
}

void UAvatarLabFaceComponent::EnsureFaceTexture(int32 Width, int32 Height)
{
	if (Width <= 0 || Height <= 0)
	{
		return; // a motion-only session: curves only
	}
	if (FaceTexture != nullptr && FaceTexture->GetSizeX() == Width && FaceTexture->GetSizeY() == Height)
	{
		return;
	}
	// The core's surface is RGBA8, sRGB, top row first: the same layout as PF_R8G8B8A8, so rows copy as they are.
	FaceTexture = UTexture2D::CreateTransient(Width, Height, PF_R8G8B8A8);
	if (FaceTexture == nullptr)
	{
		Fail(AVL_ERR_OUT_OF_MEMORY, FString::Printf(TEXT("Could not create a %dx%d face texture."), Width, Height));
		return;
	}
	FaceTexture->SRGB = true;
	FaceTexture->Filter = TF_Bilinear;
	FaceTexture->UpdateResource();
	ApplyMaterialBindings();
}

void UAvatarLabFaceComponent::UploadToTexture(AvatarLabGlue::FUpload& Upload)
{
	if (FaceTexture == nullptr || !Upload.Pixels)
	{
		return;
	}
	// The worker already copied the rectangle; the render thread uploads it whenever it gets to the command and
	// frees it there.
	const AvatarLabGlue::FRect& Rect = Upload.Rect;
	FUpdateTextureRegion2D* Region = new FUpdateTextureRegion2D(static_cast<uint32>(Rect.X), static_cast<uint32>(Rect.Y), 0, 0,
		static_cast<uint32>(Rect.Width), static_cast<uint32>(Rect.Height));
	const uint32 Pitch = Upload.Pitch();
	FaceTexture->UpdateTextureRegions(0, 1, Region, Pitch, 4, Upload.Pixels.release(),
		[](uint8* Data, const FUpdateTextureRegion2D* UploadedRegion)
		{
			delete[] Data;
			delete UploadedRegion;
		});
}

// ------------------------------------------------------------------ sessions

bool UAvatarLabFaceComponent::EnsureReady(FString& OutError) const
{
	if (!Connection.IsValid())
	{
		const UAvatarLabSubsystem* Subsystem = GetSubsystem();
		OutError = TEXT("AvatarLab is not connected: ") + (Subsystem ? Subsystem->GetConnectionError() : FString(TEXT("no game instance")));
		return false;
	}
	if (AvatarId.IsEmpty())
	{
		OutError = bRegisteringAvatar ? TEXT("The avatar is still being registered; wait for OnAvatarReady.")
									  : TEXT("No avatar: set AvatarId or a portrait first.");
		return false;
	}
	if (AudioComponent == nullptr)
	{
		OutError = TEXT("The face component has not begun play yet.");
		return false;
	}
	return true;
}

bool UAvatarLabFaceComponent::Speak(const FString& Text)
{
	if (Text.TrimStartAndEnd().IsEmpty())
	{
		ReportError(AVL_ERR_INVALID_ARGUMENT, TEXT("Speak: the text is empty."));
		return false;
	}
	return BeginSession(EAvatarLabSessionKind::Speak, Text, 0, 0);
}

bool UAvatarLabFaceComponent::PlayAudioPCM(const TArray<uint8>& PcmS16, int32 SampleRateHz, int32 NumChannels)
{
	Stop();
	return PushAudioPCM(PcmS16, SampleRateHz, NumChannels) && EndAudio();
}

bool UAvatarLabFaceComponent::PushAudioPCM(const TArray<uint8>& PcmS16, int32 SampleRateHz, int32 NumChannels)
{
	if (!AvatarLabGlue::IsValidPcm16(PcmS16.Num(), SampleRateHz, NumChannels))
	{
		ReportError(AVL_ERR_INVALID_ARGUMENT, FString::Printf(
			TEXT("PushAudioPCM: need int16 PCM in whole frames, 8000..192000 Hz, 1 or 2 channels; got %d bytes, %d Hz, %d channels."),
			PcmS16.Num(), SampleRateHz, NumChannels));
		return false;
	}
	// A new line, or a chunk in another format, opens a session; later chunks of the line join it.
	const bool bSameLine = Face && Kind == EAvatarLabSessionKind::Animate && !bAudioEnded &&
		AudioSampleRateHz == SampleRateHz && AudioChannels == NumChannels;
	if (!bSameLine && !BeginSession(EAvatarLabSessionKind::Animate, FString(), SampleRateHz, NumChannels))
	{
		return false;
	}
	return QueueVoice(PcmS16.GetData(), PcmS16.Num());
}

bool UAvatarLabFaceComponent::EndAudio()
{
	if (!Face || Kind != EAvatarLabSessionKind::Animate || bAudioEnded)
	{
		return false;
	}
	return FinishVoice();
}

bool UAvatarLabFaceComponent::QueueVoice(const uint8* PcmS16, int32 NumBytes)
{
	// The core keeps what is pushed before the stream is up and sends it in order; never blocks.
	const avl_status Status = avl_session_push_audio(Face->Get(), PcmS16, static_cast<size_t>(NumBytes));
	if (Status != AVL_OK)
	{
		Fail(Status, TEXT("Push audio: ") + FAvatarLabConnection::DescribeStatus(Status));
		return false;
	}
	// Queued now, heard once the core's policy says start (after the preroll).
	SpeechWave->QueueAudio(PcmS16, NumBytes);
	AudioBytesQueued += NumBytes;
	return true;
}

bool UAvatarLabFaceComponent::FinishVoice()
{
	const avl_status Status = avl_session_end_audio(Face->Get());
	if (Status != AVL_OK)
	{
		Fail(Status, TEXT("End audio: ") + FAvatarLabConnection::DescribeStatus(Status));
		return false;
	}
	bAudioEnded = true;
	return true;
}

bool UAvatarLabFaceComponent::BeginSession(EAvatarLabSessionKind InKind, const FString& Text, int32 SampleRateHz, int32 NumChannels)
{
	FString Error;
	if (!EnsureReady(Error))
	{
		ReportError(AVL_ERR_BAD_STATE, Error);
		return false;
	}
	Stop();

	const UAvatarLabSettings& ProjectSettings = *GetDefault<UAvatarLabSettings>();
	avl_session_settings Settings;
	FAvatarLabConnection::FillSessionSettings(ProjectSettings, Settings);
	Settings.motion_only = bMotionOnly ? 1 : 0;
	Kind = InKind;
	AvatarLabGlue::FFaceSession::FEventFn OnEvent = ForwardToGameThread(this, ++SessionSerial);

	const FTCHARToUTF8 Avatar(*AvatarId);
	avl_status Status = AVL_OK;
	if (InKind == EAvatarLabSessionKind::Speak)
	{
		const FTCHARToUTF8 Utf8Text(*Text);
		const FTCHARToUTF8 Voice(*VoiceId);
		Face = AvatarLabGlue::FFaceSession::OpenSpeak(Connection->GetClient(), Avatar.Get(), Utf8Text.Get(),
			VoiceId.IsEmpty() ? nullptr : Voice.Get(), Settings, MoveTemp(OnEvent), Status);
	}
	else
	{
		Settings.audio_encoding = AVL_AUDIO_PCM_S16LE;
		Settings.sample_rate_hz = SampleRateHz;
		Settings.channels = NumChannels;
		Face = AvatarLabGlue::FFaceSession::OpenAnimate(Connection->GetClient(), Avatar.Get(), Settings, MoveTemp(OnEvent), Status);
	}
	if (!Face)
	{
		Fail(Status, TEXT("Open session: ") + FAvatarLabConnection::DescribeStatus(Status));
		return false;
	}
	// The core's playback policy: preroll before the voice starts, and the output latency the mixer adds.
	const avl_status PolicyStatus = Face->SetPlayback(ProjectSettings.PrerollMs, ProjectSettings.AudioLatencyCompensationMs);
	if (PolicyStatus != AVL_OK)
	{
		Fail(PolicyStatus, TEXT("Playback settings (Project Settings > AvatarLab > Preroll / Audio Latency): ") +
			FAvatarLabConnection::DescribeStatus(PolicyStatus));
		return false;
	}
	if (InKind != EAvatarLabSessionKind::Speak)
	{
		CreateSpeechWave(SampleRateHz, NumChannels); // the pushed or tapped voice is queued on it
	}
	return true;
}

void UAvatarLabFaceComponent::Stop()
{
	const bool bWasPlaying = bPlaying;
	ReleaseSession();
	if (bWasPlaying)
	{
		OnSpeechEnded.Broadcast();
	}
}

void UAvatarLabFaceComponent::ReleaseSession()
{
	if (AudioComponent != nullptr)
	{
		AudioComponent->Stop();
	}
	if (Face)
	{
		// Cancels, waits for a present in flight (a few ms at most) and releases the session; a worker task that
		// still holds the object finds it closed.
		Face->Close();
		Face.reset();
	}
	SpeechWave = nullptr;
	bStarted = false;
	bPlaying = false;
	bAudioEnded = false;
	bTapLineOpen = false;
	AudioSampleRateHz = 0;
	AudioChannels = 1;
	AudioBytesQueued = 0;
}

void UAvatarLabFaceComponent::Fail(int32 Status, const FString& Message)
{
	ReleaseSession();
	ReportError(Status, Message);
}

void UAvatarLabFaceComponent::ReportError(int32 Status, const FString& Message)
{
	UE_LOG(LogAvatarLab, Error, TEXT("%s: %s"), *GetNameSafe(GetOwner()), *Message);
	OnError.Broadcast(StatusName(Status), Message);
}

FString UAvatarLabFaceComponent::StatusName(int32 Status)
{
	// Without the library even avl_status_string is out of reach (a delay-loaded DLL would crash).
	if (!FAvatarLabModule::IsClientCoreAvailable())
	{
		return TEXT("AVL_ERR_UNAVAILABLE: client core library not loaded");
	}
	return UTF8_TO_TCHAR(avl_status_string(Status));
}

UAvatarLabSubsystem* UAvatarLabFaceComponent::GetSubsystem() const
{
	const UWorld* World = GetWorld();
	UGameInstance* GameInstance = World ? World->GetGameInstance() : nullptr;
	return GameInstance ? GameInstance->GetSubsystem<UAvatarLabSubsystem>() : nullptr;
}

void UAvatarLabFaceComponent::HandleCoreEvent(uint64 Serial, const avl_event& Event)
{
	if (Serial != SessionSerial || !Face)
	{
		return; // an event of a session already released
	}
	switch (Event.type)
	{
	case AVL_EVENT_STARTED:
	{
		avl_session_info Info = {};
		const avl_status Status = avl_session_get_info(Face->Get(), &Info);
		if (Status != AVL_OK)
		{
			Fail(Status, TEXT("avl_session_get_info: ") + FAvatarLabConnection::DescribeStatus(Status));
			return;
		}
		EnsureFaceTexture(Info.width_px, Info.height_px);
		if (!Face)
		{
			return; // EnsureFaceTexture failed
		}
		if (Kind == EAvatarLabSessionKind::Speak)
		{
			if (Info.audio_sample_rate_hz <= 0)
			{
				Fail(AVL_ERR_PROTOCOL, TEXT("Speak: the service did not say the speech audio's sample rate."));
				return;
			}
			CreateSpeechWave(Info.audio_sample_rate_hz, 1); // avl_session_read_audio gives mono int16
		}
		bStarted = true; // from the next tick on, presents run (the first one uploads the base image)
		break;
	}
	case AVL_EVENT_ERROR:
	{
		ANSICHAR Buffer[1024] = {};
		avl_session_error(Face->Get(), Buffer, static_cast<int32>(UE_ARRAY_COUNT(Buffer)), nullptr);
		Fail(Event.status, FString(UTF8_TO_TCHAR(Buffer)));
		break;
	}
	case AVL_EVENT_RETRYING:
		UE_LOG(LogAvatarLab, Warning, TEXT("AvatarLab service unavailable; attempt %lld, retrying in %lld ms"),
			static_cast<long long>(Event.frame_index), static_cast<long long>(Event.pts_ms));
		break;
	default:
		// FRAME_READY, AUDIO_READY, ENDED: the core's playback policy accounts for them at the next present.
		break;
	}
}

// ------------------------------------------------------------------ audio and presentation

void UAvatarLabFaceComponent::CreateSpeechWave(int32 SampleRateHz, int32 NumChannels)
{
	SpeechWave = NewObject<USoundWaveProcedural>(this);
	SpeechWave->SetSampleRate(SampleRateHz);
	SpeechWave->NumChannels = NumChannels;
	SpeechWave->Duration = INDEFINITELY_LOOPING_DURATION;
	SpeechWave->SoundGroup = SOUNDGROUP_Voice;
	SpeechWave->bLooping = false;
	if (TappedSubmix != nullptr && SpeechWave->GetSoundSubmix() == TappedSubmix.Get())
	{
		// The replay would be tapped again (and muted): the project's default Sound Class routes to the voice submix.
		UE_LOG(LogAvatarLab, Error, TEXT("The face's voice routes to the tapped submix %s; give the default Sound Class another Default Submix."),
			*TappedSubmix->GetName());
	}
	AudioSampleRateHz = SampleRateHz;
	AudioChannels = NumChannels;
	AudioBytesQueued = 0;
}

int32 UAvatarLabFaceComponent::PumpSpeechAudio()
{
	if (SpeechWave == nullptr)
	{
		return 0;
	}
	int32 Total = 0;
	AudioScratch.SetNumUninitialized(AudioChunkSamples);
	for (;;)
	{
		int32 Taken = 0;
		const avl_status Status = avl_session_read_audio(Face->Get(), AudioScratch.GetData(), AudioChunkSamples, &Taken);
		if (Status != AVL_OK)
		{
			Fail(Status, TEXT("avl_session_read_audio: ") + FAvatarLabConnection::DescribeStatus(Status));
			return Total;
		}
		if (Taken <= 0)
		{
			return Total;
		}
		const int32 Bytes = Taken * static_cast<int32>(sizeof(int16));
		SpeechWave->QueueAudio(reinterpret_cast<const uint8*>(AudioScratch.GetData()), Bytes);
		AudioBytesQueued += Bytes;
		Total += Taken;
	}
}

void UAvatarLabFaceComponent::ApplyPresentResults()
{
	AvatarLabGlue::FUpload Upload;
	if (Face->TakeUpload(Upload))
	{
		UploadToTexture(Upload);
	}
	const AvatarLabGlue::FPresentState State = Face->GetState();
	if (State.Status < 0)
	{
		Fail(State.Status, TEXT("Present: ") + FString(UTF8_TO_TCHAR(State.ErrorMessage.c_str())));
		return;
	}
	if (State.bStartPlayback && !bPlaying && AudioComponent != nullptr && SpeechWave != nullptr)
	{
		AudioComponent->SetSound(SpeechWave);
		AudioComponent->Play();
		bPlaying = true;
		OnSpeechStarted.Broadcast();
	}
	if (State.bFinished)
	{
		// Speak: the stream may have ended after this tick's read; audio still in the core means not finished.
		if (Kind == EAvatarLabSessionKind::Speak && PumpSpeechAudio() > 0)
		{
			return;
		}
		if (!Face)
		{
			return; // the read failed and ended the session
		}
		ReleaseSession();
		OnSpeechEnded.Broadcast();
	}
}

void UAvatarLabFaceComponent::RequestPresent()
{
	const int64 Available = SpeechWave != nullptr ? SpeechWave->GetAvailableAudioByteCount() : 0;
	const avl_playback_clock Clock = AvatarLabGlue::PlayerClock(AudioBytesQueued, Available, AudioSampleRateHz, AudioChannels, bPlaying);
	if (Face->RequestPresent(Clock))
	{
		// Decoding and the rectangle's copy run off the game thread; the task keeps the session object alive, and
		// finds it closed if the line was stopped meanwhile.
		std::shared_ptr<AvatarLabGlue::FFaceSession> Shared = Face;
		UE::Tasks::Launch(UE_SOURCE_LOCATION, [Shared]() { Shared->RunPresent(); });
	}
}

void UAvatarLabFaceComponent::TickComponent(float DeltaTime, ELevelTick TickType, FActorComponentTickFunction* ThisTickFunction)
{
	Super::TickComponent(DeltaTime, TickType, ThisTickFunction);
	DrainVoiceTap();
	if (!Face || !bStarted)
	{
		return;
	}
	if (Kind == EAvatarLabSessionKind::Speak)
	{
		PumpSpeechAudio();
		if (!Face)
		{
			return;
		}
	}
	ApplyPresentResults(); // what the worker made of the previous tick's clock
	UpdateMouth();
	if (!Face)
	{
		return;
	}
	RequestPresent();
}

void UAvatarLabFaceComponent::UpdateMouth()
{
	// The frame the worker presented for what is heard: the same audio clock as the texture.
	if (Face)
	{
		Mouth.Read(Face->Get());
	}
	else
	{
		Mouth.SetRest(AvatarLabGlue::ServiceVisemes(), AvatarLabGlue::ArkitBlendshapes());
	}
	if (MorphTargetMesh == nullptr)
	{
		return;
	}
	std::vector<AvatarLabGlue::FMorphRow> Rows = AvatarLabGlue::PresetRows(static_cast<AvatarLabGlue::EMouthNaming>(MorphTargetNaming));
	for (const TPair<FName, FName>& Row : CustomMorphTargets)
	{
		Rows.push_back({TCHAR_TO_UTF8(*Row.Key.ToString()), TCHAR_TO_UTF8(*Row.Value.ToString()), 1.0f});
	}
	for (const std::pair<std::string, float>& Target : AvatarLabGlue::MorphTargetWeights(Mouth, Rows))
	{
		MorphTargetMesh->SetMorphTarget(FName(UTF8_TO_TCHAR(Target.first.c_str())), Target.second);
	}
}

float UAvatarLabFaceComponent::GetMouthCurve(FName Curve) const
{
	return Mouth.Weight(TCHAR_TO_UTF8(*Curve.ToString()));
}

TMap<FName, float> UAvatarLabFaceComponent::GetMouthCurves() const
{
	TMap<FName, float> Curves;
	for (size_t I = 0; I < Mouth.Names.size(); ++I)
	{
		Curves.Add(FName(UTF8_TO_TCHAR(Mouth.Names[I].c_str())), Mouth.Weights[I]);
	}
	return Curves;
}
