#include "AvatarLabSettingsCustomization.h"

#include "Async/Async.h"
#include "AvatarLabConnection.h"
#include "AvatarLabSettings.h"
#include "DetailCategoryBuilder.h"
#include "DetailLayoutBuilder.h"
#include "DetailWidgetRow.h"
#include "Framework/Notifications/NotificationManager.h"
#include "Widgets/Input/SButton.h"
#include "Widgets/Notifications/SNotificationList.h"
#include "Widgets/Text/STextBlock.h"

#define LOCTEXT_NAMESPACE "AvatarLabSettingsCustomization"

namespace
{
	constexpr int32 HealthTimeoutMs = 5000;

	void Notify(bool bOk, const FString& Message)
	{
		FNotificationInfo Info(FText::FromString(Message));
		Info.ExpireDuration = 8.0f;
		Info.bUseSuccessFailIcons = true;
		const TSharedPtr<SNotificationItem> Item = FSlateNotificationManager::Get().AddNotification(Info);
		if (Item.IsValid())
		{
			Item->SetCompletionState(bOk ? SNotificationItem::CS_Success : SNotificationItem::CS_Fail);
		}
	}

	FReply CheckConnection()
	{
		FString Error;
		const FAvatarLabConnectionRef Connection = FAvatarLabConnection::Open(*GetDefault<UAvatarLabSettings>(), Error);
		if (!Connection.IsValid())
		{
			Notify(false, Error);
			return FReply::Handled();
		}
		// wait_ready blocks up to HealthTimeoutMs: never on the editor's game thread.
		Async(EAsyncExecution::ThreadPool, [Connection]()
			{
				avl_status Status = avl_client_wait_ready(Connection->GetClient(), HealthTimeoutMs);
				FString Message;
				if (Status == AVL_OK)
				{
					avl_server_info Info = {};
					ANSICHAR Version[256] = {};
					Status = avl_client_get_server_info(Connection->GetClient(), &Info, Version, static_cast<int32>(UE_ARRAY_COUNT(Version)));
					if (Status == AVL_OK)
					{
						Message = FString::Printf(TEXT("AvatarLab service ready: %s; face %d px, %d voices, up to %d sessions"),
							UTF8_TO_TCHAR(Version), Info.face_size_px, Info.voice_count, Info.max_concurrent_sessions);
					}
				}
				if (Status != AVL_OK)
				{
					Message = TEXT("AvatarLab service not reachable: ") + FAvatarLabConnection::DescribeStatus(Status);
				}
				AsyncTask(ENamedThreads::GameThread, [Status, Message]() { Notify(Status == AVL_OK, Message); });
			});
		return FReply::Handled();
	}
}

TSharedRef<IDetailCustomization> FAvatarLabSettingsCustomization::MakeInstance()
{
	return MakeShared<FAvatarLabSettingsCustomization>();
}

void FAvatarLabSettingsCustomization::CustomizeDetails(IDetailLayoutBuilder& DetailBuilder)
{
	IDetailCategoryBuilder& Category = DetailBuilder.EditCategory(TEXT("Connection"));
	Category.AddCustomRow(LOCTEXT("CheckConnectionFilter", "Check connection"))
		.NameContent()
		[
			SNew(STextBlock)
			.Text(LOCTEXT("CheckConnectionLabel", "Check connection"))
			.Font(IDetailLayoutBuilder::GetDetailFont())
		]
		.ValueContent()
		[
			SNew(SButton)
			.Text(LOCTEXT("CheckConnectionButton", "Check"))
			.ToolTipText(LOCTEXT("CheckConnectionTip", "Waits for the service's health check and shows its version (uses the values above)."))
			.OnClicked_Static(&CheckConnection)
		];
}

#undef LOCTEXT_NAMESPACE
