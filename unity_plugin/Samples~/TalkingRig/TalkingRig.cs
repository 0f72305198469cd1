using AvatarLab.Unity;
using UnityEngine;

namespace AvatarLab.Samples
{
    // The Talking Rig sample: a 3D character's mouth driven by the service's mouth curves, with no
    // face texture. Drop this script on a character whose head is a SkinnedMeshRenderer with ARKit
    // blend shapes (Ready Player Me, MetaHuman exports, Character Creator's ARKit profile) or Oculus
    // visemes (viseme_sil ... viseme_U), paste an avatar id, press Play: it speaks `line`.
    // At Start it adds an AudioSource and an AvatarFace in motion-only mode (the service generates no
    // image), a mapping for `naming`, and an AvatarLabBlendshapeDriver on the head mesh.
    public sealed class TalkingRig : MonoBehaviour
    {
        [Tooltip("The head mesh; empty: the child SkinnedMeshRenderer with the most blend shapes")]
        public SkinnedMeshRenderer head;
        [Tooltip("How the head's mouth blend shapes are named; a mapping asset can replace this")]
        public MouthMappingPreset naming = MouthMappingPreset.ArkitBlendshapes;
        [Tooltip("Optional: your own mapping asset (Assets > Create > AvatarLab > Blendshape Mapping)")]
        public AvatarLabBlendshapeMapping mapping;
        [Tooltip("Id of an avatar registered on the service: its voice and speech model; no image is made")]
        public string avatarId = "";
        [TextArea] public string line = "Welcome, traveller. The north road is closed tonight; stay by the fire.";

        void Start()
        {
            if (head == null) head = FindHead();
            if (head == null)
            {
                Debug.LogWarning("Talking Rig: no SkinnedMeshRenderer with blend shapes under " + name);
                return;
            }
            if (mapping == null)
            {
                mapping = ScriptableObject.CreateInstance<AvatarLabBlendshapeMapping>();
                mapping.preset = naming;
            }
            AvatarFace face = gameObject.AddComponent<AvatarFace>(); // adds the AudioSource it needs
            face.avatarId = avatarId;
            face.options.MotionOnly = true;
            AvatarLabBlendshapeDriver driver = gameObject.AddComponent<AvatarLabBlendshapeDriver>();
            driver.face = face;
            driver.target = head;
            driver.mapping = mapping;
            face.onError.AddListener(message => Debug.LogWarning("Talking Rig could not talk: " + message));
            face.Speak(line);
        }

        SkinnedMeshRenderer FindHead()
        {
            SkinnedMeshRenderer best = null;
            foreach (SkinnedMeshRenderer r in GetComponentsInChildren<SkinnedMeshRenderer>())
                if (r.sharedMesh != null && (best == null || r.sharedMesh.blendShapeCount > best.sharedMesh.blendShapeCount)) best = r;
            return best;
        }
    }
}
