using UnrealBuildTool;

public class AvatarLabEditor : ModuleRules
{
	public AvatarLabEditor(ReadOnlyTargetRules Target) : base(Target)
	{
		PCHUsage = PCHUsageMode.UseExplicitOrSharedPCHs;

		PrivateDependencyModuleNames.AddRange(new string[]
		{
			"Core",
			"CoreUObject",
			"Engine",
			"Slate",
			"SlateCore",
			"PropertyEditor",
			"AvatarLab",
			"AvatarLabClientCore",
		});
	}
}
