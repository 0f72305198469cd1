// Declares the AvatarLab native client core (client_core/, one C API shared with Unity) per platform.
// Nothing is compiled here: the prebuilt libraries are staged into this folder and into Binaries/ThirdParty
// by `make plugins` / unreal_plugin/stage_client_core.sh (see the plugin README); the header ships in include/.
//
// A missing library never breaks the game project's build: the module is then built against the stubs in
// AvatarLab/Private/AvatarLabCoreStubs.cpp (AVATARLAB_WITH_CLIENT_CORE=0), the build prints a warning, and at
// run time every AvatarLab component reports "client core missing" through OnError with the command that fixes it.

using System;
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
			// Inside the AvatarLab repository the header can also be used in place.
			IncludeDir = Path.GetFullPath(Path.Combine(ModuleDirectory, "..", "..", "..", "..", "client_core", "include"));
		}
		PublicSystemIncludePaths.Add(IncludeDir);

		string LibDir = Path.Combine(ModuleDirectory, "lib");
		string BinDir = Path.Combine(PluginDirectory, "Binaries", "ThirdParty", "AvatarLabClientCore");
		string Missing = null;

		if (Target.Platform == UnrealTargetPlatform.Win64)
		{
			// Import library for linking; the DLL is delay-loaded so the runtime module can load it from the
			// plugin's own folder at start-up (FPlatformProcess::GetDllHandle) instead of relying on PATH.
			string ImportLib = Path.Combine(LibDir, "Win64", "avatarlab_client.lib");
			Missing = FirstMissing(ImportLib, Path.Combine(BinDir, "Win64", "avatarlab_client.dll"));
			if (Missing == null)
			{
				PublicAdditionalLibraries.Add(ImportLib);
				PublicDelayLoadDLLs.Add("avatarlab_client.dll");
				RuntimeDependencies.Add("$(PluginDir)/Binaries/ThirdParty/AvatarLabClientCore/Win64/avatarlab_client.dll");
			}
		}
		else if (Target.Platform == UnrealTargetPlatform.Mac)
		{
			string Dylib = Path.Combine(BinDir, "Mac", "libavatarlab_client.dylib");
			Missing = FirstMissing(Dylib);
			if (Missing == null)
			{
				PublicDelayLoadDLLs.Add(Dylib);
				RuntimeDependencies.Add("$(PluginDir)/Binaries/ThirdParty/AvatarLabClientCore/Mac/libavatarlab_client.dylib");
			}
		}
		else if (Target.Platform == UnrealTargetPlatform.Linux)
		{
			string LinuxDir = Path.Combine(BinDir, "Linux", "x86_64-unknown-linux-gnu");
			string Library = Path.Combine(LinuxDir, "libavatarlab_client.so");
			Missing = FirstMissing(Library);
			if (Missing == null)
			{
				PublicAdditionalLibraries.Add(Library);
				// The SONAME (libavatarlab_client.so.1) and the dependencies bundled beside it ($ORIGIN rpath) ship too.
				foreach (string LibFile in Directory.GetFiles(LinuxDir, "*.so*"))
				{
					RuntimeDependencies.Add("$(PluginDir)/Binaries/ThirdParty/AvatarLabClientCore/Linux/x86_64-unknown-linux-gnu/" + Path.GetFileName(LibFile));
				}
			}
		}
		else if (Target.Platform == UnrealTargetPlatform.Android)
		{
			// Linked per ABI; the UPL file copies the .so into the APK and loads it before the game library.
			string Library = Path.Combine(LibDir, "Android", "arm64-v8a", "libavatarlab_client.so");
			Missing = FirstMissing(Library);
			if (Missing == null)
			{
				PublicAdditionalLibraries.Add(Library);
				AdditionalPropertiesForReceipt.Add("AndroidPlugin", Path.Combine(ModuleDirectory, "AvatarLabClientCore_UPL.xml"));
			}
		}
		else if (Target.Platform == UnrealTargetPlatform.IOS)
		{
			// iOS forbids loading our own dylibs: one static archive with gRPC, protobuf, absl and turbojpeg merged in
			// (libtool -static, see client_core/README.md).
			string Archive = Path.Combine(LibDir, "IOS", "libavatarlab_client.a");
			Missing = FirstMissing(Archive);
			if (Missing == null)
			{
				PublicAdditionalLibraries.Add(Archive);
				PublicFrameworks.AddRange(new string[] { "CoreFoundation", "Security", "SystemConfiguration" });
			}
		}
		else
		{
			Missing = "a client core build for " + Target.Platform + " (supported: Win64, Mac, Linux, Android arm64-v8a, IOS)";
		}

		if (Missing == null)
		{
			PublicDefinitions.Add("AVATARLAB_WITH_CLIENT_CORE=1");
			if (Target.Platform == UnrealTargetPlatform.IOS)
			{
				PublicDefinitions.Add("AVL_STATIC=1");
			}
		}
		else
		{
			// Never a BuildException: the rest of the game must still build.
			Console.WriteLine("warning: AvatarLabClientCore: missing " + Missing + ". AvatarLab is built without its client core " +
				"and its components report that at run time. Run `make plugins` in the AvatarLab repository (Linux) or " +
				"client_core/packaging/ for this platform, then unreal_plugin/stage_client_core.sh (see the plugin README).");
			PublicDefinitions.Add("AVATARLAB_WITH_CLIENT_CORE=0");
			PublicDefinitions.Add("AVL_STATIC=1"); // the stubs are compiled into the AvatarLab module: no dllimport
		}
	}

	// The first path that does not exist, or null when all do.
	private static string FirstMissing(params string[] Paths)
	{
		foreach (string FilePath in Paths)
		{
			if (!File.Exists(FilePath))
			{
				return FilePath;
			}
		}
		return null;
	}
}
