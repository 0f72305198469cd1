using System.IO;
using System.Threading.Tasks;
using AvatarLab.Unity;
using UnityEditor;
using UnityEngine;

namespace AvatarLab.Editor
{
    // GameObject > AvatarLab > Talking Face: a quad with an AvatarFace, and a client if the scene
    // has none. The AvatarFace inspector gets a "Speak" box for trying a line in Play mode.
    public static class AvatarLabMenu
    {
        [MenuItem("GameObject/AvatarLab/Talking Face", false, 10)]
        static void CreateTalkingFace(MenuCommand command)
        {
            if (Object.FindObjectOfType<AvatarLabClient>() == null)
            {
                var clientObject = new GameObject("AvatarLab Client", typeof(AvatarLabClient));
                Undo.RegisterCreatedObjectUndo(clientObject, "Create AvatarLab Client");
            }
            GameObject quad = GameObject.CreatePrimitive(PrimitiveType.Quad);
            quad.name = "Talking Face";
            Object.DestroyImmediate(quad.GetComponent<Collider>());
            Material material = FaceMaterials.Create("AvatarLab Face"); // Built-in, URP or HDRP
            quad.GetComponent<Renderer>().sharedMaterial = material;
            quad.AddComponent<AvatarFace>();
            GameObjectUtility.SetParentAndAlign(quad, command.context as GameObject);
            Undo.RegisterCreatedObjectUndo(quad, "Create Talking Face");
            Selection.activeObject = quad;
        }
    }

    [CustomEditor(typeof(AvatarFace))]
    public sealed class AvatarFaceEditor : UnityEditor.Editor
    {
        string _line = "Hello there, traveller.";
        Task<AvatarInfo> _registering;

        public override void OnInspectorGUI()
        {
            DrawDefaultInspector();
            var face = (AvatarFace)target;
            EditorGUILayout.Space();
            DrawRegister(face);
            EditorGUILayout.Space();
            using (new EditorGUI.DisabledScope(!Application.isPlaying))
            {
                EditorGUILayout.LabelField("Try it (Play mode)", EditorStyles.boldLabel);
                _line = EditorGUILayout.TextField("Line", _line);
                using (new EditorGUILayout.HorizontalScope())
                {
                    if (GUILayout.Button("Speak")) face.Speak(_line);
                    if (GUILayout.Button("Stop")) face.Stop();
                }
            }
            if (face.Texture != null)
                GUILayout.Label(face.Texture, GUILayout.Width(128), GUILayout.Height(128));
        }

        // "Register portrait...": CreateAvatar on a worker (it takes seconds), id filled in here.
        void DrawRegister(AvatarFace face)
        {
            if (_registering != null)
            {
                EditorGUILayout.HelpBox("Registering the portrait on the service...", MessageType.Info);
                if (!_registering.IsCompleted) { Repaint(); return; }
                if (_registering.IsFaulted)
                    Debug.LogError("[AvatarLab] " + _registering.Exception.GetBaseException().Message, face);
                else
                {
                    Undo.RecordObject(face, "Set avatar id");
                    face.avatarId = _registering.Result.Id;
                    EditorUtility.SetDirty(face);
                }
                _registering = null;
            }
            if (!GUILayout.Button("Register portrait (PNG/JPEG) as a new avatar...")) return;
            string path = EditorUtility.OpenFilePanel("Portrait with one face", "", "png,jpg,jpeg");
            if (string.IsNullOrEmpty(path)) return;
            byte[] media = File.ReadAllBytes(path);
            AvatarLabClient client = face.client != null ? face.client : Object.FindObjectOfType<AvatarLabClient>();
            var settings = new ConnectionSettings
            {
                Address = client != null ? client.address : "127.0.0.1:50051",
                BearerToken = client != null ? client.bearerToken : "",
                Transport = client != null && client.useTls ? Transport.Tls : Transport.Plaintext,
            };
            string displayName = Path.GetFileNameWithoutExtension(path);
            _registering = Task.Run(() =>
            {
                using (var connection = new AvatarLabConnection(settings))
                    return connection.CreateAvatar(displayName, AvatarSource.Portrait, media);
            });
        }
    }
}
