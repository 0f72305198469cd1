using UnityEngine;
using UnityEngine.Rendering;

namespace AvatarLab.Unity
{
    // Materials that show the face in the active render pipeline (FaceMaterialChoice decides).
    public static class FaceMaterials
    {
        public static RenderPipelineKind ActivePipeline()
        {
            RenderPipelineAsset asset = GraphicsSettings.currentRenderPipeline;
            return FaceMaterialChoice.Detect(asset != null ? asset.GetType().FullName : null);
        }

        // An unlit material for the face: the pipeline's own unlit shader, or the package's
        // when a build stripped it (Shader.Find only finds shaders included in the build).
        public static Material Create(string name)
        {
            RenderPipelineKind kind = ActivePipeline();
            Shader shader = Shader.Find(FaceMaterialChoice.ShaderName(kind));
            if (shader == null) shader = Shader.Find(FaceMaterialChoice.PackageShader);
            return new Material(shader) { name = name };
        }

        // Puts the texture on `material`: through `property` when given, else through
        // material.mainTexture (the [MainTexture] property of any shader) and the pipeline's
        // property when the shader has it.
        public static void Assign(Material material, Texture texture, string property)
        {
            if (material == null) return;
            if (!string.IsNullOrEmpty(property)) { material.SetTexture(property, texture); return; }
            material.mainTexture = texture;
            string pipelineProperty = FaceMaterialChoice.TextureProperty(ActivePipeline());
            if (material.HasProperty(pipelineProperty)) material.SetTexture(pipelineProperty, texture);
        }
    }
}
