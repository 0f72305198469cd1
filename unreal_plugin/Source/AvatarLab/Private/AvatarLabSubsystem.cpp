#include "AvatarLabSubsystem.h"

#include "Async/Async.h"
#include "AvatarLabModule.h"
#include "AvatarLabSettings.h"

void UAvatarLabSubsystem::Initialize(FSubsystemCollectionBase& Collection)
{
	Super::Initialize(Collection);
	Reconnect();
}

void UAvatarLabSubsystem::Deinitialize()
{
	// Pool-thread calls still running hold their own reference; the client goes when the last one finishes.
	Connection.Reset();
	Super::Deinitialize();
}

bool UAvatarLabSubsystem::Reconnect()
{
	Connection.Reset();
	ConnectionError.Reset();
	Connection = FAvatarLabConnection::Open(*GetDefault<UAvatarLabSettings>(), ConnectionError);
	if (!Connection.IsValid())
	{
		UE_LOG(LogAvatarLab, Error, TEXT("AvatarLab: no connection: %s"), *ConnectionError);
		return false;
	}
	UE_LOG(LogAvatarLab, Log, TEXT("AvatarLab: client for %s ready"), *GetDefault<UAvatarLabSettings>()->Address);
	return true;
}

bool UAvatarLabSubsystem::SetBearerToken(const FString& Token)
{
	if (!Connection.IsValid())
	{
		return false;
	}
	const avl_status Status = avl_client_set_bearer_token(Connection->GetClient(), TCHAR_TO_UTF8(*Token));
	if (Status != AVL_OK)
	{
		UE_LOG(LogAvatarLab, Error, TEXT("avl_client_set_bearer_token: %s"), *FAvatarLabConnection::DescribeStatus(Status));
		return false;
	}
	return true;
}

void UAvatarLabSubsystem::CreateAvatarAsync(TArray<uint8> Media, bool bIsIdleVideo, const FString& DisplayName,
	TFunction<void(int32 Status, const FString& AvatarIdOrError)> OnDone)
{
	if (!Connection.IsValid())
	{
		OnDone(AVL_ERR_UNAVAILABLE, TEXT("AvatarLab is not connected: ") + ConnectionError);
		return;
	}
	Async(EAsyncExecution::ThreadPool,
		[Conn = Connection, Media = MoveTemp(Media), bIsIdleVideo, DisplayName, OnDone = MoveTemp(OnDone)]() mutable
		{
			avl_avatar* Avatar = nullptr;
			const avl_status Status = avl_client_create_avatar(Conn->GetClient(), TCHAR_TO_UTF8(*DisplayName),
				bIsIdleVideo ? AVL_AVATAR_SOURCE_IDLE_VIDEO : AVL_AVATAR_SOURCE_PORTRAIT, Media.GetData(),
				static_cast<size_t>(Media.Num()), &Avatar);
			const AvatarLabGlue::FAvatarPtr Owned(Avatar);
			// Read on this thread: avl_last_error is per thread.
			const FString Result = Status == AVL_OK ? FString(UTF8_TO_TCHAR(avl_avatar_id(Owned.get())))
													: TEXT("CreateAvatar: ") + FAvatarLabConnection::DescribeStatus(Status);
			AsyncTask(ENamedThreads::GameThread, [OnDone = MoveTemp(OnDone), Status, Result]() { OnDone(Status, Result); });
		});
}
