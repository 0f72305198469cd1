using System.Collections.Generic;
using UnityEngine;

namespace AvatarLab.Unity
{
    // Which blend shapes of a rig the mouth stream drives: a preset for a common naming scheme
    // (ARKit blendshapes; Oculus visemes viseme_sil ... viseme_U), or your own table (Custom), e.g.
    // for Character Creator or a hand-made rig. Create with Assets > Create > AvatarLab > Blendshape Mapping.
    [CreateAssetMenu(fileName = "BlendshapeMapping", menuName = "AvatarLab/Blendshape Mapping")]
    public sealed class AvatarLabBlendshapeMapping : ScriptableObject
    {
        [Tooltip("ArkitBlendshapes: jawOpen, mouthFunnel, ... onto shapes of the same name. OculusVisemes: sil, PP, ... ou onto viseme_sil, viseme_PP, ... viseme_U. Custom: the table below")]
        public MouthMappingPreset preset = MouthMappingPreset.ArkitBlendshapes;
        [Tooltip("Custom rows (used with preset Custom, and added to a preset otherwise): a viseme or ARKit blendshape of the stream, the mesh's blend shape, and a gain")]
        public List<MouthCurveMapping> rows = new List<MouthCurveMapping>();

        public List<MouthCurveMapping> Rows()
        {
            var all = new List<MouthCurveMapping>(MouthMappingPresets.For(preset));
            if (rows != null) all.AddRange(rows);
            return all;
        }
    }
}
