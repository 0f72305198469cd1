using UnrealBuildTool;

public class AvatarLab : ModuleRules
{
	public AvatarLab(ReadOnlyTargetRules Target) : base(Target)
	{
		PCHUsage = PCHUsageMode.UseExplicitOrSharedPCHs;

		PublicDependencyModuleNames.AddRange(new string[]
		{
			"Core",
			"CoreUObject",
			"Engine",
			"DeveloperSettings",
			"AvatarLabClientCore",
		});

		PrivateDependencyModuleNames.AddRange(new string[]
		{
			"Projects",   // IPluginManager: find the plugin's folder to load the native library from
			"RenderCore",
			"RHI",        // FUpdateTextureRegion2D
			"ImageCore",  // FImage for portrait textures
			"AudioMixerCore", // the submix tap (ISubmixBufferListener, FAudioDevice); Engine exposes it too
		});
	}
}
