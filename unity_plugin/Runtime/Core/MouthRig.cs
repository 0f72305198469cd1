using System;
using System.Collections.Generic;

namespace AvatarLab
{
    // A mesh with named blend shapes: a SkinnedMeshRenderer in Unity (AvatarLabBlendshapeDriver),
    // a stub in tests. Weights are Unity's 0..100.
    public interface IBlendShapeTarget
    {
        int BlendShapeCount { get; }
        string GetBlendShapeName(int index);
        void SetBlendShapeWeight(int index, float weight);
    }

    // One row of a mapping: a curve of the stream (a viseme or an ARKit blendshape, by the
    // service's name) drives a blend shape of the mesh (by the mesh's name), times a gain.
    [Serializable]
    public sealed class MouthCurveMapping
    {
        public MouthCurveSet source = MouthCurveSet.Blendshapes;
        public string curve = "";
        public string blendShape = "";
        public float gain = 1f;

        public MouthCurveMapping() { }
        public MouthCurveMapping(MouthCurveSet source, string curve, string blendShape, float gain = 1f)
        {
            this.source = source;
            this.curve = curve;
            this.blendShape = blendShape;
            this.gain = gain;
        }
    }

    public enum MouthMappingPreset { ArkitBlendshapes = 0, OculusVisemes = 1, Custom = 2 }

    // The naming schemes rigs ship with. ARKit: Ready Player Me, MetaHuman (ARKit pose asset),
    // Character Creator's ARKit profile, Apple's face tracking. Oculus: the OVRLipSync visemes
    // (viseme_sil ... viseme_U), also on Ready Player Me avatars.
    public static class MouthMappingPresets
    {
        // The service's names (docs/motion.md); arrays arrive in the session's order, mapped by name.
        public static readonly string[] Visemes =
            { "sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou" };
        public static readonly string[] ArkitBlendshapes =
        {
            "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight",
            "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
            "mouthRollLower", "mouthRollUpper", "mouthPressLeft", "mouthPressRight",
            "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight",
        };
        // Same order as Visemes: ih, oh, ou are Oculus' I, O, U.
        public static readonly string[] OculusVisemes =
        {
            "viseme_sil", "viseme_PP", "viseme_FF", "viseme_TH", "viseme_DD", "viseme_kk", "viseme_CH",
            "viseme_SS", "viseme_nn", "viseme_RR", "viseme_aa", "viseme_E", "viseme_I", "viseme_O", "viseme_U",
        };

        public static MouthCurveMapping[] For(MouthMappingPreset preset)
        {
            if (preset == MouthMappingPreset.ArkitBlendshapes) return Rows(MouthCurveSet.Blendshapes, ArkitBlendshapes, ArkitBlendshapes);
            if (preset == MouthMappingPreset.OculusVisemes) return Rows(MouthCurveSet.Visemes, Visemes, OculusVisemes);
            return new MouthCurveMapping[0];
        }

        static MouthCurveMapping[] Rows(MouthCurveSet set, string[] curves, string[] shapes)
        {
            var rows = new MouthCurveMapping[curves.Length];
            for (int i = 0; i < curves.Length; i++) rows[i] = new MouthCurveMapping(set, curves[i], shapes[i]);
            return rows;
        }
    }

    // A mapping bound to one session's curve names and one mesh's blend shapes, so a frame is
    // applied with array indexing only. Curves are found by name (never by position); mesh
    // shapes by exact name, then ignoring case, then by the part after the last '.' (exporters
    // write "blendShape1.jawOpen"). Several rows on one shape add up, clamped to 0..100.
    public sealed class MouthRig
    {
        struct Bound { public MouthCurveSet Set; public int Curve; public int Shape; public float Gain; }

        readonly List<Bound> _rows = new List<Bound>();
        readonly IBlendShapeTarget _target;
        readonly float[] _sum;
        readonly bool[] _driven;
        readonly float[] _rest;

        public string[] VisemeNames { get; private set; }
        public string[] BlendshapeNames { get; private set; }
        // Rows that found no curve or no blend shape, e.g. "blendshape mouthLeft -> Mouth_L: no such blend shape on the mesh".
        public List<string> Unmatched { get; private set; }

        // visemeNames / blendshapeNames: the session's (FaceSession.MouthNames); null or empty: the
        // service's documented names, for the rest pose before a session has started.
        public MouthRig(IList<MouthCurveMapping> rows, string[] visemeNames, string[] blendshapeNames, IBlendShapeTarget target)
        {
            if (target == null) throw new ArgumentNullException("target");
            _target = target;
            VisemeNames = visemeNames != null && visemeNames.Length > 0 ? visemeNames : MouthMappingPresets.Visemes;
            BlendshapeNames = blendshapeNames != null && blendshapeNames.Length > 0 ? blendshapeNames : MouthMappingPresets.ArkitBlendshapes;
            Unmatched = new List<string>();
            _sum = new float[target.BlendShapeCount];
            _driven = new bool[target.BlendShapeCount];
            if (rows != null)
            {
                foreach (MouthCurveMapping row in rows)
                {
                    if (row == null) continue;
                    string[] names = row.source == MouthCurveSet.Visemes ? VisemeNames : BlendshapeNames;
                    int curve = Array.IndexOf(names, row.curve);
                    int shape = FindShape(target, row.blendShape);
                    if (curve < 0 || shape < 0)
                    {
                        Unmatched.Add((row.source == MouthCurveSet.Visemes ? "viseme " : "blendshape ") + row.curve + " -> " +
                                      row.blendShape + (curve < 0 ? ": the service sends no such curve" : ": no such blend shape on the mesh"));
                        continue;
                    }
                    _rows.Add(new Bound { Set = row.source, Curve = curve, Shape = shape, Gain = row.gain });
                    _driven[shape] = true;
                }
            }
            _rest = new float[VisemeNames.Length];
            int sil = Array.IndexOf(VisemeNames, "sil");
            if (sil >= 0) _rest[sil] = 1f;
        }

        public int BoundRows { get { return _rows.Count; } }

        // Does this rig fit the session's names (so it need not be rebuilt)?
        public bool Matches(string[] visemeNames, string[] blendshapeNames)
        {
            return SameNames(VisemeNames, visemeNames) && SameNames(BlendshapeNames, blendshapeNames);
        }

        // Sets every driven blend shape from one frame's weights (in the session's order, 0..1).
        public void Apply(float[] visemes, float[] blendshapes)
        {
            Array.Clear(_sum, 0, _sum.Length);
            foreach (Bound row in _rows)
            {
                float[] source = row.Set == MouthCurveSet.Visemes ? visemes : blendshapes;
                if (source != null && row.Curve < source.Length) _sum[row.Shape] += source[row.Curve] * row.Gain;
            }
            for (int shape = 0; shape < _sum.Length; shape++)
            {
                if (!_driven[shape]) continue;
                float w = _sum[shape] * 100f;
                _target.SetBlendShapeWeight(shape, w < 0f ? 0f : w > 100f ? 100f : w);
            }
        }

        // Nothing said: `sil` 1, every other curve 0 (the mouth closed, at rest).
        public void ApplyRest() { Apply(_rest, null); }

        static int FindShape(IBlendShapeTarget target, string name)
        {
            if (string.IsNullOrEmpty(name)) return -1;
            int n = target.BlendShapeCount;
            for (int i = 0; i < n; i++) if (target.GetBlendShapeName(i) == name) return i;
            for (int i = 0; i < n; i++) if (string.Equals(target.GetBlendShapeName(i), name, StringComparison.OrdinalIgnoreCase)) return i;
            for (int i = 0; i < n; i++)
            {
                string shape = target.GetBlendShapeName(i) ?? "";
                int dot = shape.LastIndexOf('.');
                if (dot >= 0 && string.Equals(shape.Substring(dot + 1), name, StringComparison.OrdinalIgnoreCase)) return i;
            }
            return -1;
        }

        static bool SameNames(string[] bound, string[] names)
        {
            if (names == null || names.Length == 0) return true; // no session names yet: the defaults stand
            if (bound.Length != names.Length) return false;
            for (int i = 0; i < names.Length; i++) if (bound[i] != names[i]) return false;
            return true;
        }
    }
}
