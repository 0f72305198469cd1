#include "AvatarLabConnection.h"

#include "AvatarLabModule.h"
#include "AvatarLabSettings.h"
#include "Misc/FileHelper.h"
#include "Misc/Paths.h"

namespace
{
	// Runs on any core thread, possibly concurrently; UE_LOG is thread-safe.
	void AVL_CALL ForwardCoreLog(void* /*User*/, int32_t Level, const char* Message)
	{
		const FString Text = UTF8_TO_TCHAR(Message);
		switch (Level)
		{
		case AVL_LOG_ERROR:
			UE_LOG(LogAvatarLab, Error, TEXT("core: %s"), *Text);
			break;
		case AVL_LOG_WARNING:
			UE_LOG(LogAvatarLab, Warning, TEXT("core: %s"), *Text);
			break;
		case AVL_LOG_INFO:
			UE_LOG(LogAvatarLab, Log, TEXT("core: %s"), *Text);
			break;
		default:
			UE_LOG(LogAvatarLab, Verbose, TEXT("core: %s"), *Text);
			break;
		}
	}

	int32_t ToCoreLogLevel(EAvatarLabLogLevel Level)
	{
		switch (Level)
		{
		case EAvatarLabLogLevel::Debug: return AVL_LOG_DEBUG;
		case EAvatarLabLogLevel::Info: return AVL_LOG_INFO;
		case EAvatarLabLogLevel::Warning: return AVL_LOG_WARNING;
		case EAvatarLabLogLevel::Error: return AVL_LOG_ERROR;
		default: return AVL_LOG_OFF;
		}
	}

	int32_t ToCoreWireFormat(EAvatarLabWireFormat Format)
	{
		switch (Format)
		{
		case EAvatarLabWireFormat::Rgba8: return AVL_WIRE_RGBA8;
		case EAvatarLabWireFormat::Rgb8: return AVL_WIRE_RGB8;
		case EAvatarLabWireFormat::Jpeg: return AVL_WIRE_JPEG;
		default: return AVL_WIRE_DEFAULT;
		}
	}

	int32_t ToCoreFrameMode(EAvatarLabFrameMode Mode)
	{
		switch (Mode)
		{
		case EAvatarLabFrameMode::Full: return AVL_FRAME_MODE_FULL;
		case EAvatarLabFrameMode::Delta: return AVL_FRAME_MODE_DELTA;
		default: return AVL_FRAME_MODE_DEFAULT;
		}
	}
}

FAvatarLabConnectionRef FAvatarLabConnection::Open(const UAvatarLabSettings& Settings, FString& OutError)
{
	if (!FAvatarLabModule::IsClientCoreAvailable())
	{
		OutError = FAvatarLabModule::GetLoadError();
		return nullptr;
	}
	if (Settings.Address.TrimStartAndEnd().IsEmpty())
	{
		OutError = TEXT("Project Settings > Plugins > AvatarLab: Address is empty; set it to host:port of the AvatarLab service.");
		return nullptr;
	}

	FString RootsPem;
	if (Settings.bUseTls && !Settings.TlsRootCertificatesPem.FilePath.IsEmpty())
	{
		const FString PemPath = FPaths::ConvertRelativePathToFull(FPaths::ProjectDir(), Settings.TlsRootCertificatesPem.FilePath);
		if (!FFileHelper::LoadFileToString(RootsPem, *PemPath))
		{
			OutError = FString::Printf(TEXT("AvatarLab: cannot read the TLS root certificates file %s (Project Settings > Plugins > AvatarLab)."), *PemPath);
			return nullptr;
		}
	}

	FAvatarLabConnectionRef Connection = MakeShared<FAvatarLabConnection, ESPMode::ThreadSafe>();

	avl_context* Context = nullptr;
	avl_status Status = avl_context_create(AVL_API_VERSION, &ForwardCoreLog, nullptr, ToCoreLogLevel(Settings.LogLevel), &Context);
	if (Status != AVL_OK)
	{
		OutError = TEXT("avl_context_create: ") + DescribeStatus(Status);
		return nullptr;
	}
	Connection->Context.reset(Context);

	avl_client_settings ClientSettings = {};
	ClientSettings.transport = Settings.bUseTls ? AVL_TRANSPORT_TLS : AVL_TRANSPORT_PLAINTEXT;
	ClientSettings.connect_timeout_ms = Settings.ConnectTimeoutMs;
	ClientSettings.call_timeout_ms = Settings.CallTimeoutMs;
	ClientSettings.retry_max_attempts = Settings.RetryMaxAttempts;

	const FTCHARToUTF8 Target(*Settings.Address.TrimStartAndEnd());
	const FTCHARToUTF8 Token(*Settings.ResolveBearerToken());
	const FTCHARToUTF8 Roots(*RootsPem);
	avl_client* Client = nullptr;
	Status = avl_client_create(Connection->Context.get(), Target.Get(), &ClientSettings, RootsPem.IsEmpty() ? nullptr : Roots.Get(),
		Token.Get(), &Client);
	if (Status != AVL_OK)
	{
		OutError = TEXT("avl_client_create: ") + DescribeStatus(Status);
		return nullptr;
	}
	Connection->Client.reset(Client);
	return Connection;
}

FString FAvatarLabConnection::DescribeStatus(int32 Status)
{
	FString Text = UTF8_TO_TCHAR(avl_status_string(Status));
	if (Status < 0)
	{
		const FString Detail = UTF8_TO_TCHAR(avl_last_error());
		if (!Detail.IsEmpty())
		{
			Text += TEXT(" (") + Detail + TEXT(")");
		}
	}
	return Text;
}

void FAvatarLabConnection::FillSessionSettings(const UAvatarLabSettings& Settings, avl_session_settings& Out)
{
	Out = avl_session_settings{};
	Out.fps = Settings.Fps;
	Out.wire_format = ToCoreWireFormat(Settings.WireFormat);
	Out.jpeg_quality = Settings.WireFormat == EAvatarLabWireFormat::Jpeg ? Settings.JpegQuality : 0;
	Out.frame_mode = ToCoreFrameMode(Settings.FrameMode);
	Out.sampler_steps = Settings.SamplerSteps;
}
