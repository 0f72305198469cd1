#include "AvatarLabFaceComponent.h"

#include "Async/Async.h"
#include "Audio.h"
#include "AvatarLabModule.h"
#include "AvatarLabSettings.h"
#include "AvatarLabSubsystem.h"
#include "Components/AudioComponent.h"
#include "Components/PrimitiveComponent.h"
#include "Engine/GameInstance.h"
#include "Engine/Texture2D.h"
#include "Engine/World.h"
#include "GameFramework/Actor.h"
#include "ImageCore.h"
#include "ImageUtils.h"
#include "Materials/MaterialInstanceDynamic.h"
#include "Misc/FileHelper.h"
#include "Misc/Paths.h"
#include "HAL/PlatformTime.h"
#include "RHITypes.h"
#include "Sound/SoundWave.h"
#include "Sound/SoundWaveProcedural.h"

namespace
{
	constexpr int32 AudioChunkSamples = 4096;

	// Runs on the session's receive thread: copy the event and hop to the game thread. Only the weak pointer is
	// copied here; it is dereferenced on the game thread.
	void AVL_CALL ForwardCoreEvent(void* User, avl_session* /*Session*/, const avl_event* Event)
	{
		const FAvatarLabEventSink* Sink = static_cast<const FAvatarLabEventSink*>(User);
		if (Sink == nullptr || Event == nullptr)
		{
			return;
		}
		const avl_event Copy = *Event;
		const TWeakObjectPtr<UAvatarLabFaceComponent> Owner = Sink->Owner;
		const uint64 Serial = Sink->Serial;
		AsyncTask(ENamedThreads::GameThread, [Owner, Serial, Copy]()
			{
				if (UAvatarLabFaceComponent* Component = Owner.Get())
				{
					Component->HandleCoreEvent(Serial, Copy);
				}
			});
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
	AudioComponent = NewObject<UAudioComponent>(Owner, MakeUniqueObjectName(Owner, UAudioComponent::StaticClass(), TEXT("AvatarLabVoice")));
	AudioComponent->bAutoActivate = false;
	AudioComponent->bAutoDestroy = false;
	if (USceneComponent* Root = Owner->GetRootComponent())
	{
		AudioComponent->SetupAttachment(Root);
	}
	AudioComponent->RegisterComponent();

	if (!Connection.IsValid())
	{
		const UAvatarLabSubsystem* Subsystem = GetSubsystem();
		ReportError(AVL_ERR_UNAVAILABLE, TEXT("AvatarLab is not connected: ") +
			(Subsystem ? Subsystem->GetConnectionError() : FString(TEXT("no game instance"))));
		return;
	}
	if (AvatarId.IsEmpty() && PortraitTexture != nullptr)
	{
		SetAvatarFromPortrait(PortraitTexture);
	}
}

void UAvatarLabFaceComponent::EndPlay(const EEndPlayReason::Type EndPlayReason)
{
	ReleaseSession();
	if (AudioComponent != nullptr)
	{
		AudioComponent->DestroyComponent();
		AudioComponent = nullptr;
	}
	Connection.Reset();
	Super::EndPlay(EndPlayReason);
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

void UAvatarLabFaceComponent::UploadRect(int32 X, int32 Y, int32 Width, int32 Height)
{
	if (FaceTexture == nullptr || !Session)
	{
		return;
	}
	// Copy now, upload later: the surface changes at the next present, while the render thread reads this
	// buffer whenever it gets to the command. The cleanup function frees it there.
	const uint32 Pitch = static_cast<uint32>(Width) * 4;
	const size_t Size = static_cast<size_t>(Pitch) * Height;
	uint8* Pixels = new uint8[Size];
	const avl_status Status = avl_session_copy_surface(Session.get(), X, Y, Width, Height, Pixels, static_cast<int32>(Pitch), Size);
	if (Status != AVL_OK)
	{
		delete[] Pixels;
		Fail(Status, TEXT("avl_session_copy_surface: ") + FAvatarLabConnection::DescribeStatus(Status));
		return;
	}
	FUpdateTextureRegion2D* Region = new FUpdateTextureRegion2D(static_cast<uint32>(X), static_cast<uint32>(Y), 0, 0, static_cast<uint32>(Width), static_cast<uint32>(Height));
	FaceTexture->UpdateTextureRegions(0, 1, Region, Pitch, 4, Pixels,
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

bool UAvatarLabFaceComponent::PlayAudio(USoundWave* Sound)
{
	if (Sound == nullptr)
	{
		ReportError(AVL_ERR_INVALID_ARGUMENT, TEXT("PlayAudio: no sound."));
		return false;
	}
#if WITH_EDITOR
	TArray<uint8> Pcm;
	uint32 SampleRate = 0;
	uint16 NumChannels = 0;
	if (Sound->GetImportedSoundWaveData(Pcm, SampleRate, NumChannels))
	{
		return PlayAudioPCM(Pcm, static_cast<int32>(SampleRate), static_cast<int32>(NumChannels));
	}
#endif
	ReportError(AVL_ERR_INVALID_ARGUMENT, FString::Printf(
		TEXT("PlayAudio: no PCM for %s (imported PCM exists only in the editor); decode it yourself and call PlayAudioPCM."),
		*Sound->GetName()));
	return false;
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
	const bool bSameLine = Session && Kind == EAvatarLabSessionKind::Animate && !bAudioEnded &&
		AudioSampleRateHz == SampleRateHz && AudioChannels == NumChannels;
	if (!bSameLine && !BeginSession(EAvatarLabSessionKind::Animate, FString(), SampleRateHz, NumChannels))
	{
		return false;
	}
	// The core keeps what is pushed before the stream is up and sends it in order; never blocks.
	const avl_status Status = avl_session_push_audio(Session.get(), PcmS16.GetData(), static_cast<size_t>(PcmS16.Num()));
	if (Status != AVL_OK)
	{
		Fail(Status, TEXT("Push audio: ") + FAvatarLabConnection::DescribeStatus(Status));
		return false;
	}
	// Queued now, heard once the audio component plays (after the preroll).
	SpeechWave->QueueAudio(PcmS16.GetData(), PcmS16.Num());
	AudioBytesQueued += PcmS16.Num();
	return true;
}

bool UAvatarLabFaceComponent::EndAudio()
{
	if (!Session || Kind != EAvatarLabSessionKind::Animate || bAudioEnded)
	{
		return false;
	}
	const avl_status Status = avl_session_end_audio(Session.get());
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

	avl_session_settings Settings;
	FAvatarLabConnection::FillSessionSettings(*GetDefault<UAvatarLabSettings>(), Settings);

	Sink = MakeUnique<FAvatarLabEventSink>();
	Sink->Owner = this;
	Sink->Serial = ++SessionSerial;
	Kind = InKind;

	const FTCHARToUTF8 Avatar(*AvatarId);
	avl_session* Opened = nullptr;
	avl_status Status;
	if (InKind == EAvatarLabSessionKind::Speak)
	{
		const FTCHARToUTF8 Utf8Text(*Text);
		const FTCHARToUTF8 Voice(*VoiceId);
		Status = avl_client_open_speak(Connection->GetClient(), Avatar.Get(), Utf8Text.Get(), VoiceId.IsEmpty() ? nullptr : Voice.Get(),
			&Settings, &ForwardCoreEvent, Sink.Get(), &Opened);
	}
	else
	{
		Settings.audio_encoding = AVL_AUDIO_PCM_S16LE;
		Settings.sample_rate_hz = SampleRateHz;
		Settings.channels = NumChannels;
		Status = avl_client_open_animate(Connection->GetClient(), Avatar.Get(), &Settings, &ForwardCoreEvent, Sink.Get(), &Opened);
	}
	if (Status != AVL_OK)
	{
		const FString Message = TEXT("Open session: ") + FAvatarLabConnection::DescribeStatus(Status);
		Sink.Reset();
		Fail(Status, Message);
		return false;
	}
	Session.reset(Opened);

	if (InKind == EAvatarLabSessionKind::Animate)
	{
		CreateSpeechWave(SampleRateHz, NumChannels); // PushAudioPCM queues the voice on it
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
	// Cancels if still running and joins the core's threads, so no callback uses Sink afterwards.
	Session.reset();
	Sink.Reset();
	SpeechWave = nullptr;
	bStarted = false;
	bServerEnded = false;
	bPlaying = false;
	bCoreAudioDrained = false;
	bAudioEnded = false;
	NewestFramePtsMs = -1;
	DrainedAtSeconds = -1.0;
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
	if (Serial != SessionSerial || !Session)
	{
		return; // an event of a session already released
	}
	switch (Event.type)
	{
	case AVL_EVENT_STARTED:
	{
		avl_session_info Info = {};
		const avl_status Status = avl_session_get_info(Session.get(), &Info);
		if (Status != AVL_OK)
		{
			Fail(Status, TEXT("avl_session_get_info: ") + FAvatarLabConnection::DescribeStatus(Status));
			return;
		}
		bStarted = true;
		SurfaceWidth = Info.width_px;
		SurfaceHeight = Info.height_px;
		EnsureFaceTexture(SurfaceWidth, SurfaceHeight);
		if (!Session)
		{
			return; // EnsureFaceTexture failed
		}
		UploadRect(0, 0, SurfaceWidth, SurfaceHeight); // the base image (delta mode) until audio plays
		if (!Session)
		{
			return; // the copy failed and ended the session
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
		break;
	}
	case AVL_EVENT_FRAME_READY:
		NewestFramePtsMs = FMath::Max<int64>(NewestFramePtsMs, static_cast<int64>(Event.pts_ms)); // int64_t is long on Linux
		break;
	case AVL_EVENT_AUDIO_READY:
		break; // pulled in TickComponent
	case AVL_EVENT_ENDED:
		bServerEnded = true;
		break;
	case AVL_EVENT_ERROR:
	{
		ANSICHAR Buffer[1024] = {};
		avl_session_error(Session.get(), Buffer, static_cast<int32>(UE_ARRAY_COUNT(Buffer)), nullptr);
		Fail(Event.status, FString(UTF8_TO_TCHAR(Buffer)));
		break;
	}
	case AVL_EVENT_RETRYING:
		UE_LOG(LogAvatarLab, Warning, TEXT("AvatarLab service unavailable; attempt %lld, retrying in %lld ms"),
			static_cast<long long>(Event.frame_index), static_cast<long long>(Event.pts_ms));
		break;
	default:
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
	AudioSampleRateHz = SampleRateHz;
	AudioChannels = NumChannels;
	AudioBytesQueued = 0;
}

void UAvatarLabFaceComponent::PumpSpeechAudio()
{
	if (SpeechWave == nullptr || bCoreAudioDrained)
	{
		return;
	}
	AudioScratch.SetNumUninitialized(AudioChunkSamples);
	for (;;)
	{
		int32 Taken = 0;
		const avl_status Status = avl_session_read_audio(Session.get(), AudioScratch.GetData(), AudioChunkSamples, &Taken);
		if (Status != AVL_OK)
		{
			Fail(Status, TEXT("avl_session_read_audio: ") + FAvatarLabConnection::DescribeStatus(Status));
			return;
		}
		if (Taken <= 0)
		{
			// ENDED arrives after the last audio, so an empty read after it means everything is queued.
			bCoreAudioDrained = bServerEnded;
			return;
		}
		const int32 Bytes = Taken * static_cast<int32>(sizeof(int16));
		SpeechWave->QueueAudio(reinterpret_cast<const uint8*>(AudioScratch.GetData()), Bytes);
		AudioBytesQueued += Bytes;
	}
}

void UAvatarLabFaceComponent::MaybeStartPlayback()
{
	if (bPlaying || SpeechWave == nullptr || AudioComponent == nullptr)
	{
		return;
	}
	// Start once the video is PrerollMs ahead (and, for Speak, the voice too), or everything has arrived.
	const int32 PrerollMs = GetDefault<UAvatarLabSettings>()->PrerollMs;
	const bool bVideoAhead = NewestFramePtsMs >= PrerollMs;
	const bool bAudioAhead = Kind == EAvatarLabSessionKind::Animate ||
		AvatarLabGlue::PcmBytesToMs(AudioBytesQueued, AudioSampleRateHz, AudioChannels) >= PrerollMs;
	if (!(bServerEnded || (bVideoAhead && bAudioAhead)))
	{
		return;
	}
	AudioComponent->SetSound(SpeechWave);
	AudioComponent->Play();
	bPlaying = true;
	OnSpeechStarted.Broadcast();
}

int64 UAvatarLabFaceComponent::AudioPositionMs() const
{
	if (SpeechWave == nullptr)
	{
		return -1;
	}
	return AvatarLabGlue::PlayedAudioMs(AudioBytesQueued, SpeechWave->GetAvailableAudioByteCount(), AudioSampleRateHz, AudioChannels,
		GetDefault<UAvatarLabSettings>()->AudioLatencyCompensationMs);
}

void UAvatarLabFaceComponent::TickComponent(float DeltaTime, ELevelTick TickType, FActorComponentTickFunction* ThisTickFunction)
{
	Super::TickComponent(DeltaTime, TickType, ThisTickFunction);
	if (!Session || !bStarted)
	{
		return;
	}
	if (Kind == EAvatarLabSessionKind::Speak)
	{
		PumpSpeechAudio();
		if (!Session)
		{
			return;
		}
	}
	MaybeStartPlayback();
	if (!bPlaying)
	{
		return;
	}

	// The game thread is the session's presentation thread: the audio clock picks the frame.
	const int64 PositionMs = AudioPositionMs();
	if (PositionMs >= 0)
	{
		avl_frame_info Info = {};
		const avl_status Status = avl_session_present(Session.get(), PositionMs, &Info);
		if (Status == AVL_OK)
		{
			AvatarLabGlue::FRect Dirty;
			if (AvatarLabGlue::DirtyRectOnSurface(Info, SurfaceWidth, SurfaceHeight, Dirty))
			{
				UploadRect(Dirty.X, Dirty.Y, Dirty.Width, Dirty.Height);
			}
		}
		else if (Status < 0)
		{
			Fail(Status, TEXT("avl_session_present: ") + FAvatarLabConnection::DescribeStatus(Status));
			return;
		}
	}

	// Done when every frame has arrived and the mixer has taken all the audio, plus the part of its buffer
	// still to be heard (stopping at once would clip the last syllable).
	const bool bAllAudioQueued = Kind == EAvatarLabSessionKind::Animate ? bAudioEnded : bCoreAudioDrained;
	if (bServerEnded && bAllAudioQueued && SpeechWave != nullptr && SpeechWave->GetAvailableAudioByteCount() == 0)
	{
		const double Now = FPlatformTime::Seconds();
		if (DrainedAtSeconds < 0.0)
		{
			DrainedAtSeconds = Now;
		}
		if (Now - DrainedAtSeconds >= GetDefault<UAvatarLabSettings>()->AudioLatencyCompensationMs / 1000.0)
		{
			ReleaseSession();
			OnSpeechEnded.Broadcast();
		}
	}
}
