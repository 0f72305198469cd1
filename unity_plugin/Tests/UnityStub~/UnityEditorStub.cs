// STUB, not Unity: the few UnityEditor / IMGUI signatures Editor/ uses (as documented for 2021.3),
// empty bodies, for a compile check outside Unity only. See UnityEngineStub.cs.
using System;

namespace UnityEngine
{
    public sealed class Collider : Component { }
    public sealed class GUIStyle { }
    public sealed class GUILayoutOption { }
    public static class GUILayout
    {
        public static bool Button(string text, params GUILayoutOption[] options) { return false; }
        public static void Label(Texture image, params GUILayoutOption[] options) { }
        public static GUILayoutOption Width(float width) { return null; }
        public static GUILayoutOption Height(float height) { return null; }
    }
    public static class Application { public static bool isPlaying { get { return false; } } }
}

namespace UnityEditor
{
    using UnityEngine;

    [AttributeUsage(AttributeTargets.Method)]
    public sealed class MenuItem : Attribute { public MenuItem(string itemName, bool isValidateFunction, int priority) { } }
    [AttributeUsage(AttributeTargets.Class)]
    public sealed class CustomEditor : Attribute { public CustomEditor(Type inspectedType) { } }
    public sealed class MenuCommand { public UnityEngine.Object context; }
    public class Editor : ScriptableObjectStub
    {
        public UnityEngine.Object target { get { return null; } }
        public virtual void OnInspectorGUI() { }
        public bool DrawDefaultInspector() { return true; }
        public void Repaint() { }
    }
    public class ScriptableObjectStub : UnityEngine.Object { }
    public static class Undo
    {
        public static void RegisterCreatedObjectUndo(UnityEngine.Object objectToUndo, string name) { }
        public static void RecordObject(UnityEngine.Object objectToUndo, string name) { }
    }
    public static class Selection { public static UnityEngine.Object activeObject { get; set; } }
    public static class GameObjectUtility { public static void SetParentAndAlign(GameObject child, GameObject parent) { } }
    public static class EditorUtility
    {
        public static string OpenFilePanel(string title, string directory, string extension) { return ""; }
        public static void SetDirty(UnityEngine.Object target) { }
    }
    public static class EditorStyles { public static GUIStyle boldLabel { get { return null; } } }
    public enum MessageType { None, Info, Warning, Error }
    public static class EditorGUI
    {
        public struct DisabledScope : IDisposable { public DisabledScope(bool disabled) { } public void Dispose() { } }
    }
    public static class EditorGUILayout
    {
        public static void Space() { }
        public static void LabelField(string label, GUIStyle style, params GUILayoutOption[] options) { }
        public static string TextField(string label, string text, params GUILayoutOption[] options) { return text; }
        public static void HelpBox(string message, MessageType type) { }
        public class HorizontalScope : IDisposable { public HorizontalScope(params GUILayoutOption[] options) { } public void Dispose() { } }
    }
}
