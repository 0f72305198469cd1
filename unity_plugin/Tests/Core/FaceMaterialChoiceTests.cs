// Which shader and texture property the face uses in each render pipeline.
using NUnit.Framework;

namespace AvatarLab.Tests
{
    [TestFixture]
    public class FaceMaterialChoiceTests
    {
        [Test]
        public void EachPipelineGetsItsUnlitShaderAndTheTexturePropertyThatShaderReads()
        {
            RenderPipelineKind builtIn = FaceMaterialChoice.Detect(null);
            RenderPipelineKind urp = FaceMaterialChoice.Detect("UnityEngine.Rendering.Universal.UniversalRenderPipelineAsset");
            RenderPipelineKind hdrp = FaceMaterialChoice.Detect("UnityEngine.Rendering.HighDefinition.HDRenderPipelineAsset");
            Assert.AreEqual(RenderPipelineKind.BuiltIn, builtIn);
            Assert.AreEqual(RenderPipelineKind.Universal, urp);
            Assert.AreEqual(RenderPipelineKind.HighDefinition, hdrp);
            Assert.AreEqual("AvatarLab/Face Unlit", FaceMaterialChoice.ShaderName(builtIn));
            Assert.AreEqual("_MainTex", FaceMaterialChoice.TextureProperty(builtIn));
            Assert.AreEqual("Universal Render Pipeline/Unlit", FaceMaterialChoice.ShaderName(urp));
            Assert.AreEqual("_BaseMap", FaceMaterialChoice.TextureProperty(urp));
            Assert.AreEqual("HDRP/Unlit", FaceMaterialChoice.ShaderName(hdrp));
            Assert.AreEqual("_UnlitColorMap", FaceMaterialChoice.TextureProperty(hdrp));
            // A custom SRP gets the package shader, which draws in any pipeline.
            Assert.AreEqual(RenderPipelineKind.BuiltIn, FaceMaterialChoice.Detect("MyStudio.CustomPipelineAsset"));
        }

        [Test]
        public void ThePackageShipsTheShaderItFallsBackTo()
        {
            string shader = System.IO.File.ReadAllText(System.IO.Path.Combine(Env.RepoRoot(), "unity_plugin/Runtime/Shaders/AvatarLabFaceUnlit.shader"));
            StringAssert.Contains("Shader \"" + FaceMaterialChoice.PackageShader + "\"", shader);
            StringAssert.Contains("[MainTexture] _MainTex", shader);
            // No LightMode tag on the pass: drawn by Built-in, and by URP and HDRP as SRPDefaultUnlit.
            StringAssert.DoesNotContain("\"LightMode\"", shader);
        }
    }
}
