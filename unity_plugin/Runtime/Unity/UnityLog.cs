using UnityEngine;

namespace AvatarLab.Unity
{
    // Routes the native library's log lines (any thread) to the Unity console. Debug.Log* is
    // thread-safe, so lines are forwarded as they come.
    public static class UnityLog
    {
        static bool _installed;

        public static void Install()
        {
            if (_installed) return;
            _installed = true;
            AvatarLabRuntime.Sink = Forward;
        }

        static void Forward(LogLevel level, string message)
        {
            string line = "[AvatarLab] " + message;
            if (level >= LogLevel.Error) Debug.LogError(line);
            else if (level == LogLevel.Warning) Debug.LogWarning(line);
            else Debug.Log(line);
        }
    }
}
