using AvatarLab.Unity;
using UnityEngine;

namespace AvatarLab.Samples
{
    // Drop on an empty GameObject in any scene, paste an avatar id, press Play: it builds an NPC
    // (a quad with an unlit material, an AudioSource and an AvatarFace) that speaks `line`.
    // Prefab equivalent: TalkingNpc.prefab (Quad + AvatarFace + AudioSource, material with the
    // "AvatarLab/Face Unlit" shader); one AvatarLab Client in the scene with the service address.
    public sealed class TalkingNpc : MonoBehaviour
    {
        public AvatarLabClient client;
        public string avatarId = "";
        [TextArea] public string line = "Welcome, traveller. The north road is closed tonight; stay by the fire.";
        [Tooltip("Seconds between repeats after each line ends; 0: say it once")]
        public float repeatAfterSeconds = 3f;

        AvatarFace _face;

        void Start()
        {
            GameObject quad = GameObject.CreatePrimitive(PrimitiveType.Quad);
            quad.name = "NPC face";
            quad.transform.SetParent(transform, false);
            quad.GetComponent<Renderer>().material = FaceMaterials.Create("NPC face"); // Built-in, URP or HDRP
            _face = quad.AddComponent<AvatarFace>();
            _face.client = client;
            _face.avatarId = avatarId;
            _face.onStarted.AddListener(() => Debug.Log("NPC: talking"));
            _face.onEnded.AddListener(OnLineEnded);
            _face.onError.AddListener(message => Debug.LogWarning("NPC could not talk: " + message));
            _face.Speak(line);
        }

        void OnLineEnded()
        {
            if (repeatAfterSeconds > 0f) Invoke("SayAgain", repeatAfterSeconds);
        }

        void SayAgain() { _face.Speak(line); }
    }
}
