#pragma once

#include "CoreMinimal.h"
#include "IDetailCustomization.h"

/** Adds a "Check connection" row to the AvatarLab settings: health check and server info on a pool thread,
 *  the answer as an editor notification. */
class FAvatarLabSettingsCustomization : public IDetailCustomization
{
public:
	static TSharedRef<IDetailCustomization> MakeInstance();

	virtual void CustomizeDetails(IDetailLayoutBuilder& DetailBuilder) override;
};
