#include "AvatarLabEditorModule.h"

#include "AvatarLabSettings.h"
#include "AvatarLabSettingsCustomization.h"
#include "Modules/ModuleManager.h"
#include "PropertyEditorModule.h"

void FAvatarLabEditorModule::StartupModule()
{
	// UAvatarLabSettings (a UDeveloperSettings) registers its own Project Settings section; this adds the button.
	FPropertyEditorModule& PropertyEditor = FModuleManager::LoadModuleChecked<FPropertyEditorModule>(TEXT("PropertyEditor"));
	PropertyEditor.RegisterCustomClassLayout(UAvatarLabSettings::StaticClass()->GetFName(),
		FOnGetDetailCustomizationInstance::CreateStatic(&FAvatarLabSettingsCustomization::MakeInstance));
}

void FAvatarLabEditorModule::ShutdownModule()
{
	if (FModuleManager::Get().IsModuleLoaded(TEXT("PropertyEditor")))
	{
		FPropertyEditorModule& PropertyEditor = FModuleManager::GetModuleChecked<FPropertyEditorModule>(TEXT("PropertyEditor"));
		PropertyEditor.UnregisterCustomClassLayout(UAvatarLabSettings::StaticClass()->GetFName());
	}
}

IMPLEMENT_MODULE(FAvatarLabEditorModule, AvatarLabEditor)
