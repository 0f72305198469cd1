using UnityEngine;

namespace AvatarLab.Unity
{
    // Drives a 3D rig's mouth from an AvatarFace's session: every frame, the mouth curves of the
    // frame the face presented for what its AudioSource has played (the same audio clock as the
    // texture, output latency included) go onto the SkinnedMeshRenderer's blend shapes through a
    // mapping asset. With no session the mouth rests (sil, jaw closed). For a rig without a face
    // texture, tick the face's options.MotionOnly: the service then generates no image.
    [AddComponentMenu("AvatarLab/Blendshape Driver")]
    [DefaultExecutionOrder(100)] // after AvatarFace has asked for this frame's present
    public sealed class AvatarLabBlendshapeDriver : MonoBehaviour
    {
        [Tooltip("The AvatarFace whose voice drives the mouth; empty: the one on this GameObject")]
        public AvatarFace face;
        [Tooltip("The head mesh with the mouth's blend shapes")]
        public SkinnedMeshRenderer target;
        [Tooltip("Which stream curves drive which blend shapes (Assets > Create > AvatarLab > Blendshape Mapping); empty: ARKit names")]
        public AvatarLabBlendshapeMapping mapping;

        MouthRig _rig;
        FaceSession _boundSession;
        float[] _visemes = new float[0];
        float[] _blendshapes = new float[0];

        // Curves of the frame shown last, in the session's order (MouthNames), 0..1.
        public float[] Visemes { get { return _visemes; } }
        public float[] Blendshapes { get { return _blendshapes; } }
        public long FramePtsMs { get; private set; }

        void OnEnable()
        {
            if (face == null) face = GetComponent<AvatarFace>();
            _rig = null;
        }

        void LateUpdate()
        {
            if (target == null || target.sharedMesh == null) return;
            FaceSession session = face != null ? face.Session : null;
            if (_rig == null || session != _boundSession) Bind(session);
            long pts;
            if (session != null && !session.IsDisposed && session.ReadMouth(_visemes, _blendshapes, out pts))
            {
                FramePtsMs = pts;
                _rig.Apply(_visemes, _blendshapes);
            }
            else
            {
                FramePtsMs = -1;
                _rig.ApplyRest();
            }
        }

        void Bind(FaceSession session)
        {
            string[] visemes = session != null ? session.MouthNames(MouthCurveSet.Visemes) : null;
            string[] blendshapes = session != null ? session.MouthNames(MouthCurveSet.Blendshapes) : null;
            // Names arrive with SessionStarted: until then keep the rest pose and bind again later.
            _boundSession = visemes != null && visemes.Length > 0 ? session : null;
            var rows = mapping != null ? mapping.Rows() : new System.Collections.Generic.List<MouthCurveMapping>(
                MouthMappingPresets.For(MouthMappingPreset.ArkitBlendshapes));
            _rig = new MouthRig(rows, visemes, blendshapes, new SkinnedMeshTarget(target));
            _visemes = new float[_rig.VisemeNames.Length];
            _blendshapes = new float[_rig.BlendshapeNames.Length];
            if (_boundSession != null && _rig.BoundRows == 0)
                Debug.LogWarning("AvatarLab Blendshape Driver on " + name + ": no mapping row matches the mesh " +
                                 target.sharedMesh.name + " (" + string.Join("; ", _rig.Unmatched.ToArray()) + ")");
        }

        sealed class SkinnedMeshTarget : IBlendShapeTarget
        {
            readonly SkinnedMeshRenderer _renderer;
            public SkinnedMeshTarget(SkinnedMeshRenderer renderer) { _renderer = renderer; }
            public int BlendShapeCount { get { return _renderer.sharedMesh.blendShapeCount; } }
            public string GetBlendShapeName(int index) { return _renderer.sharedMesh.GetBlendShapeName(index); }
            public void SetBlendShapeWeight(int index, float weight) { _renderer.SetBlendShapeWeight(index, weight); }
        }
    }
}
