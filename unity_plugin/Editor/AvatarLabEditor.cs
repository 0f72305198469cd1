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
            var material = new Material(Shader.Find("Unlit/Texture")) { name = "AvatarLab Face" };
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

        public override void OnInspectorGUI()
        {
            DrawDefaultInspector();
            var face = (AvatarFace)target;
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
    }
}
