namespace AvatarLab
{
    public enum RenderPipelineKind { BuiltIn, Universal, HighDefinition }

    // Which shader and texture property show the face in each render pipeline. Plain C# (the
    // pipeline is named by the type of GraphicsSettings.currentRenderPipeline), so the choice is
    // tested outside Unity. Built-in's Unlit/Texture reads _MainTex and renders magenta under URP
    // and HDRP; their unlit shaders read _BaseMap and _UnlitColorMap.
    public static class FaceMaterialChoice
    {
        // The package's own unlit shader (Runtime/Shaders): a pass with no LightMode tag, which
        // Built-in, URP and HDRP all draw; the fallback when a pipeline shader was stripped.
        public const string PackageShader = "AvatarLab/Face Unlit";

        // `pipelineAssetType`: full type name of the active RenderPipelineAsset, null for Built-in.
        public static RenderPipelineKind Detect(string pipelineAssetType)
        {
            if (string.IsNullOrEmpty(pipelineAssetType)) return RenderPipelineKind.BuiltIn;
            if (pipelineAssetType.Contains("HighDefinition") || pipelineAssetType.Contains("HDRenderPipeline"))
                return RenderPipelineKind.HighDefinition;
            if (pipelineAssetType.Contains("Universal")) return RenderPipelineKind.Universal;
            return RenderPipelineKind.BuiltIn; // a custom SRP: the package shader draws there too
        }

        public static string ShaderName(RenderPipelineKind kind)
        {
            switch (kind)
            {
                case RenderPipelineKind.Universal: return "Universal Render Pipeline/Unlit";
                case RenderPipelineKind.HighDefinition: return "HDRP/Unlit";
                default: return PackageShader;
            }
        }

        public static string TextureProperty(RenderPipelineKind kind)
        {
            switch (kind)
            {
                case RenderPipelineKind.Universal: return "_BaseMap";
                case RenderPipelineKind.HighDefinition: return "_UnlitColorMap";
                default: return "_MainTex";
            }
        }
    }
}
