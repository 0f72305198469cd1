using AvatarLab.Unity;
using UnityEngine;

namespace AvatarLab.Samples
{
    // The Talking NPC sample. Either open TalkingNpc.unity (a camera, an AvatarLab Client and the
    // TalkingNpc prefab: a quad with an AvatarFace, an AudioSource and this script), or drop this
    // script on an empty GameObject in any scene, which builds the same NPC at Start. Paste an
    // avatar id (or use the face's "Register portrait" button), press Play: it speaks `line`.
    //
    // Render pipelines: the prefab's material uses the package shader "AvatarLab/Face Unlit", which
    // Built-in, URP and HDRP all draw, so it never shows magenta. At Start the face gets the active
    // pipeline's own unlit material (FaceMaterials: Built-in's package shader, URP's Unlit with
    // _BaseMap, HDRP's Unlit with _UnlitColorMap), and AvatarFace puts its texture through the
    // matching property.
    public sealed class TalkingNpc : MonoBehaviour
    {
        [Tooltip("The face that talks; empty: a quad with an AvatarFace is built under this object")]
        public AvatarFace face;
        [Tooltip("Empty: the face's own, else the scene's AvatarLab Client")]
        public AvatarLabClient client;
        [Tooltip("Empty: the face's own avatarId")]
        public string avatarId = "";
        [TextArea] public string line = "Welcome, traveller. The north road is closed tonight; stay by the fire.";
        [Tooltip("Seconds between repeats after each line ends; 0: say it once")]
        public float repeatAfterSeconds = 3f;
        [Tooltip("At Start, give the face the active render pipeline's unlit material")]
        public bool usePipelineMaterial = true;

        void Start()
        {
            if (face == null) face = BuildFace();
            else if (usePipelineMaterial)
            {
                Renderer target = face.targetRenderer != null ? face.targetRenderer : face.GetComponent<Renderer>();
                if (target != null) target.sharedMaterial = FaceMaterials.Create("NPC face");
            }
            if (client != null) face.client = client;
            if (!string.IsNullOrEmpty(avatarId)) face.avatarId = avatarId;
            face.onStarted.AddListener(() => Debug.Log("NPC: talking"));
            face.onEnded.AddListener(OnLineEnded);
            face.onError.AddListener(message => Debug.LogWarning("NPC could not talk: " + message));
            face.Speak(line);
        }

        AvatarFace BuildFace()
        {
            GameObject quad = GameObject.CreatePrimitive(PrimitiveType.Quad);
            quad.name = "NPC face";
            quad.transform.SetParent(transform, false);
            quad.GetComponent<Renderer>().material = FaceMaterials.Create("NPC face"); // Built-in, URP or HDRP
            return quad.AddComponent<AvatarFace>();
        }

        void OnLineEnded()
        {
            if (repeatAfterSeconds > 0f) Invoke("SayAgain", repeatAfterSeconds);
        }

        void SayAgain() { face.Speak(line); }
    }
}
