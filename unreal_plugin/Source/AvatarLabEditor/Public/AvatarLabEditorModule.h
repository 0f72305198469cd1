#pragma once

#include "CoreMinimal.h"
#include "Modules/ModuleInterface.h"

/** Editor side of AvatarLab: a "Check connection" button in Project Settings > Plugins > AvatarLab. */
class FAvatarLabEditorModule : public IModuleInterface
{
public:
	virtual void StartupModule() override;
	virtual void ShutdownModule() override;
};
