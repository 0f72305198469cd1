using System;
using System.Collections.Generic;
using NUnit.Framework;

namespace AvatarLab.Tests
{
    // What AvatarLabBlendshapeDriver does each frame (MouthRig), on a stub mesh: the stream's curves
    // reach the right blend shapes by NAME whatever the session's order, presets and custom rows,
    // exporter-prefixed shape names, gains and clamping, and silence rests the mouth.
    [TestFixture]
    public class MouthRigTests
    {
        sealed class StubMesh : IBlendShapeTarget
        {
            public readonly string[] Names;
            public readonly float[] Weights;
            public readonly List<int> Writes = new List<int>();
            public StubMesh(params string[] names)
            {
                Names = names;
                Weights = new float[names.Length];
                for (int i = 0; i < Weights.Length; i++) Weights[i] = -1f; // never written
            }
            public int BlendShapeCount { get { return Names.Length; } }
            public string GetBlendShapeName(int index) { return Names[index]; }
            public void SetBlendShapeWeight(int index, float weight) { Weights[index] = weight; Writes.Add(index); }
            public float this[string name] { get { return Weights[Array.IndexOf(Names, name)]; } }
        }

        // The server's names in an order unlike the presets', so mapping by position would fail.
        static readonly string[] SessionVisemes = Reversed(MouthMappingPresets.Visemes);
        static readonly string[] SessionBlend = Reversed(MouthMappingPresets.ArkitBlendshapes);

        static string[] Reversed(string[] names) { var r = (string[])names.Clone(); Array.Reverse(r); return r; }

        static float[] Weights(string[] names, params object[] nameValue)
        {
            var w = new float[names.Length];
            for (int i = 0; i < nameValue.Length; i += 2) w[Array.IndexOf(names, (string)nameValue[i])] = Convert.ToSingle(nameValue[i + 1]);
            return w;
        }

        [Test]
        public void ArkitPresetSetsEachBlendShapeOfTheSameNameByName()
        {
            // A Ready Player Me style head: ARKit shapes (one exporter-prefixed), eyes it must not touch.
            var mesh = new StubMesh("eyeBlinkLeft", "blendShape1.jawOpen", "mouthFunnel", "mouthSmileLeft", "mouthClose");
            var rig = new MouthRig(MouthMappingPresets.For(MouthMappingPreset.ArkitBlendshapes), SessionVisemes, SessionBlend, mesh);
            rig.Apply(Weights(SessionVisemes, "aa", 1f),
                      Weights(SessionBlend, "jawOpen", 0.6f, "mouthFunnel", 0.25f, "mouthSmileLeft", 0.1f, "mouthPucker", 0.9f));
            Assert.AreEqual(60f, mesh["blendShape1.jawOpen"], 1e-4);
            Assert.AreEqual(25f, mesh["mouthFunnel"], 1e-4);
            Assert.AreEqual(10f, mesh["mouthSmileLeft"], 1e-4);
            Assert.AreEqual(0f, mesh["mouthClose"], 1e-4);
            Assert.AreEqual(-1f, mesh["eyeBlinkLeft"], "a shape no row drives is never written");
            Assert.AreEqual(4, rig.BoundRows);
            Assert.IsTrue(rig.Unmatched.Exists(u => u.StartsWith("blendshape mouthPucker -> mouthPucker")), string.Join("\n", rig.Unmatched.ToArray()));
        }

        [Test]
        public void OculusPresetMapsTheFifteenVisemesOntoVisemeShapes()
        {
            var mesh = new StubMesh(MouthMappingPresets.OculusVisemes);
            var rig = new MouthRig(MouthMappingPresets.For(MouthMappingPreset.OculusVisemes), SessionVisemes, SessionBlend, mesh);
            Assert.AreEqual(15, rig.BoundRows);
            rig.Apply(Weights(SessionVisemes, "ih", 0.7f, "ou", 0.2f, "sil", 0.1f), Weights(SessionBlend, "jawOpen", 1f));
            Assert.AreEqual(70f, mesh["viseme_I"], 1e-4);
            Assert.AreEqual(20f, mesh["viseme_U"], 1e-4);
            Assert.AreEqual(10f, mesh["viseme_sil"], 1e-4);
            Assert.AreEqual(0f, mesh["viseme_aa"], 1e-4);
            Assert.AreEqual(0f, mesh["viseme_O"], 1e-4);
        }

        [Test]
        public void CustomRowsAddUpWithGainsAndAreClampedTo100()
        {
            // A Character Creator style rig: one jaw shape driven by jawOpen and the aa viseme.
            var mesh = new StubMesh("Jaw_Open", "Mouth_Pucker", "Other");
            var rows = new[]
            {
                new MouthCurveMapping(MouthCurveSet.Blendshapes, "jawOpen", "jaw_open", 1f),  // case differs
                new MouthCurveMapping(MouthCurveSet.Visemes, "aa", "Jaw_Open", 0.5f),
                new MouthCurveMapping(MouthCurveSet.Visemes, "ou", "Mouth_Pucker", 2f),
                new MouthCurveMapping(MouthCurveSet.Visemes, "xx", "Other", 1f),               // no such curve
            };
            var rig = new MouthRig(rows, SessionVisemes, SessionBlend, mesh);
            rig.Apply(Weights(SessionVisemes, "aa", 0.4f, "ou", 0.6f), Weights(SessionBlend, "jawOpen", 0.3f));
            Assert.AreEqual(30f + 20f, mesh["Jaw_Open"], 1e-4);
            Assert.AreEqual(100f, mesh["Mouth_Pucker"], 1e-4, "1.2 clamped to 100");
            Assert.AreEqual(-1f, mesh["Other"]);
            Assert.AreEqual(1, rig.Unmatched.Count);
            StringAssert.Contains("the service sends no such curve", rig.Unmatched[0]);
        }

        [Test]
        public void SilenceRestsTheMouthJawOpenZeroAndSil()
        {
            var mesh = new StubMesh("jawOpen", "mouthFunnel", "viseme_sil", "viseme_aa");
            var rows = new List<MouthCurveMapping>(MouthMappingPresets.For(MouthMappingPreset.ArkitBlendshapes));
            rows.AddRange(MouthMappingPresets.For(MouthMappingPreset.OculusVisemes));
            var rig = new MouthRig(rows, SessionVisemes, SessionBlend, mesh);
            rig.Apply(Weights(SessionVisemes, "aa", 1f), Weights(SessionBlend, "jawOpen", 0.8f, "mouthFunnel", 0.3f));
            Assert.AreEqual(80f, mesh["jawOpen"], 1e-4);
            // The rest pose (what the driver applies with no session or before the first frame).
            rig.ApplyRest();
            Assert.AreEqual(0f, mesh["jawOpen"], 1e-4);
            Assert.AreEqual(0f, mesh["mouthFunnel"], 1e-4);
            Assert.AreEqual(100f, mesh["viseme_sil"], 1e-4);
            Assert.AreEqual(0f, mesh["viseme_aa"], 1e-4);
            // A silent frame from the stream (sil 1, every blendshape 0) looks the same.
            rig.Apply(Weights(SessionVisemes, "sil", 1f), new float[SessionBlend.Length]);
            Assert.AreEqual(0f, mesh["jawOpen"], 1e-4);
            Assert.AreEqual(100f, mesh["viseme_sil"], 1e-4);
            // Before a session names its curves, the documented names stand in, so the rest pose still works.
            var early = new MouthRig(rows, null, null, mesh);
            early.ApplyRest();
            Assert.AreEqual(100f, mesh["viseme_sil"], 1e-4);
            Assert.IsTrue(early.Matches(MouthMappingPresets.Visemes, MouthMappingPresets.ArkitBlendshapes));
            Assert.IsFalse(early.Matches(SessionVisemes, SessionBlend));
        }
    }
}
