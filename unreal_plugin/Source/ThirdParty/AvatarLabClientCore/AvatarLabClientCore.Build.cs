// Declares the AvatarLab native client core (client_core/, one C API shared with Unity) per platform.
// Nothing is compiled here: the header and the prebuilt libraries are staged into this folder and into
// Binaries/ThirdParty by unreal_plugin/stage_client_core.sh (see the plugin README).

using System.IO;
using UnrealBuildTool;

public class AvatarLabClientCore : ModuleRules
{
	public AvatarLabClientCore(ReadOnlyTargetRules Target) : base(Target)
	{
		Type = ModuleType.External;

		string IncludeDir = Path.Combine(ModuleDirectory, "include");
		if (!File.Exists(Path.Combine(IncludeDir, "avatarlab", "avatarlab.h")))
		{
			// Inside the AvatarLab repository the header is used in place, so it can never drift.
			string RepoInclude = Path.GetFullPath(Path.Combine(ModuleDirectory, "..", "..", "..", "..", "client_core", "include"));
			if (!File.Exists(Path.Combine(RepoInclude, "avatarlab", "avatarlab.h")))
			{
				throw new BuildException(
					"AvatarLabClientCore: avatarlab/avatarlab.h not found in " + IncludeDir +
					". Run unreal_plugin/stage_client_core.sh from the AvatarLab repository to copy the header and libraries in.");
			}
			IncludeDir = RepoInclude;
		}
		PublicSystemIncludePaths.Add(IncludeDir);

		string LibDir = Path.Combine(ModuleDirectory, "lib");
		string BinDir = Path.Combine(PluginDirectory, "Binaries", "ThirdParty", "AvatarLabClientCore");

		if (Target.Platform == UnrealTargetPlatform.Win64)
		{
			// Import library for linking; the DLL is delay-loaded so the runtime module can load it from the
			// plugin's own folder at start-up (FPlatformProcess::GetDllHandle) instead of relying on PATH.
			PublicAdditionalLibraries.Add(RequireFile(Path.Combine(LibDir, "Win64", "avatarlab_client.lib")));
			PublicDelayLoadDLLs.Add("avatarlab_client.dll");
			RequireFile(Path.Combine(BinDir, "Win64", "avatarlab_client.dll"));
			RuntimeDependencies.Add("$(PluginDir)/Binaries/ThirdParty/AvatarLabClientCore/Win64/avatarlab_client.dll");
		}
		else if (Target.Platform == UnrealTargetPlatform.Mac)
		{
			string Dylib = RequireFile(Path.Combine(BinDir, "Mac", "libavatarlab_client.dylib"));
			PublicDelayLoadDLLs.Add(Dylib);
			RuntimeDependencies.Add("$(PluginDir)/Binaries/ThirdParty/AvatarLabClientCore/Mac/libavatarlab_client.dylib");
		}
		else if (Target.Platform == UnrealTargetPlatform.Linux)
		{
			string LinuxDir = Path.Combine(BinDir, "Linux", "x86_64-unknown-linux-gnu");
			PublicAdditionalLibraries.Add(RequireFile(Path.Combine(LinuxDir, "libavatarlab_client.so")));
			// The game library records the SONAME (libavatarlab_client.so.1), so that name ships too.
			foreach (string LibFile in Directory.GetFiles(LinuxDir, "libavatarlab_client.so*"))
			{
				RuntimeDependencies.Add("$(PluginDir)/Binaries/ThirdParty/AvatarLabClientCore/Linux/x86_64-unknown-linux-gnu/" + Path.GetFileName(LibFile));
			}
		}
		else if (Target.Platform == UnrealTargetPlatform.Android)
		{
			// Linked per ABI; the UPL file copies the .so into the APK and loads it before the game library.
			PublicAdditionalLibraries.Add(RequireFile(Path.Combine(LibDir, "Android", "arm64-v8a", "libavatarlab_client.so")));
			AdditionalPropertiesForReceipt.Add("AndroidPlugin", Path.Combine(ModuleDirectory, "AvatarLabClientCore_UPL.xml"));
		}
		else if (Target.Platform == UnrealTargetPlatform.IOS)
		{
			// iOS forbids loading our own dylibs: one static archive with gRPC, protobuf, absl and turbojpeg merged in
			// (libtool -static, see client_core/README.md).
			PublicAdditionalLibraries.Add(RequireFile(Path.Combine(LibDir, "IOS", "libavatarlab_client.a")));
			PublicFrameworks.AddRange(new string[] { "CoreFoundation", "Security", "SystemConfiguration" });
			PublicDefinitions.Add("AVL_STATIC=1");
		}
		else
		{
			throw new BuildException("AvatarLabClientCore: no client core build for platform " + Target.Platform +
				"; supported: Win64, Mac, Linux, Android (arm64-v8a), IOS.");
		}
	}

	private static string RequireFile(string FilePath)
	{
		if (!File.Exists(FilePath))
		{
			throw new BuildException("AvatarLabClientCore: missing " + FilePath +
				". Build client_core for this platform (client_core/README.md, 'Building for each platform') and run " +
				"unreal_plugin/stage_client_core.sh to copy it into the plugin.");
		}
		return FilePath;
	}
}
