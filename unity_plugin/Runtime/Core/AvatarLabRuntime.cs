using System;
using AOT;
using AvatarLab.Native;

namespace AvatarLab
{
    public enum LogLevel { Debug = 0, Info = 1, Warning = 2, Error = 3, Off = 4 }

    // The process-wide native context and its log callback. One context serves every
    // connection; the callback is a static method (IL2CPP/AOT cannot marshal instance delegates)
    // and forwards to Sink, which the Unity layer points at Debug.Log*.
    public static class AvatarLabRuntime
    {
        static readonly object Gate = new object();
        static ContextHandle _context;
        // Held in a static field for the life of the process: the native side keeps calling it.
        static readonly NativeMethods.LogFn LogCallback = OnNativeLog;
        static LogLevel _level = LogLevel.Info;

        // Receives native log lines on library threads, possibly concurrently; must be thread-safe.
        public static volatile Action<LogLevel, string> Sink = DefaultSink;

        static AvatarLabRuntime()
        {
            // The Unity Editor keeps native libraries loaded across script reloads, but the log
            // callback's thunk dies with the old domain: silence the library before that.
            AppDomain.CurrentDomain.DomainUnload += (sender, args) => Shutdown();
        }

        // Stops log callbacks for good and releases the context once every object made from it
        // is gone. Called on domain unload; a later Context call creates a fresh context.
        public static void Shutdown()
        {
            lock (Gate)
            {
                if (_context == null) return;
                NativeMethods.avl_context_set_log_level(_context, (int)LogLevel.Off);
                _context.Dispose();
                _context = null;
            }
        }

        public static uint LibraryVersion { get { return NativeMethods.avl_get_version(); } }

        public static string VersionString(uint v)
        {
            return (v >> 16) + "." + ((v >> 8) & 0xff) + "." + (v & 0xff);
        }

        public static LogLevel Level
        {
            get { return _level; }
            set
            {
                lock (Gate)
                {
                    _level = value;
                    if (_context != null)
                        AvatarLabException.Check(
                            NativeMethods.avl_context_set_log_level(_context, (int)value), "avl_context_set_log_level");
                }
            }
        }

        // The one message for a missing or unloadable native library, wherever it is noticed.
        public const string MissingLibraryMessage =
            "native library avatarlab_client not found or not loadable for this platform. It belongs in the " +
            "package's Plugins folder: Plugins/Linux/x86_64/libavatarlab_client.so, " +
            "Plugins/Windows/x86_64/avatarlab_client.dll, Plugins/macOS/libavatarlab_client.dylib, " +
            "Plugins/Android/arm64-v8a/libavatarlab_client.so or Plugins/iOS/libavatarlab_client.a. " +
            "Build and stage it with `make plugins` (Linux) or client_core/packaging/ (see Plugins/README.md)";

        // Created on first use. Throws AvatarLabException: VersionMismatch when the native
        // library's major version differs from these bindings', Unavailable with
        // MissingLibraryMessage when the library is missing from Plugins/.
        public static ContextHandle Context
        {
            get
            {
                lock (Gate)
                {
                    if (_context != null && !_context.IsClosed) return _context;
                    ContextHandle ctx;
                    int status;
                    try
                    {
                        status = NativeMethods.avl_context_create(NativeMethods.ApiVersion, LogCallback,
                                                                  IntPtr.Zero, (int)_level, out ctx);
                    }
                    catch (DllNotFoundException e)
                    {
                        throw new AvatarLabException(AvlStatus.Unavailable, MissingLibraryMessage + " (" + e.Message + ")");
                    }
                    catch (EntryPointNotFoundException e)
                    {
                        throw new AvatarLabException(AvlStatus.Unavailable,
                            "native library avatarlab_client is older than these bindings (API " +
                            VersionString(NativeMethods.ApiVersion) + "); restage it with `make plugins` (" + e.Message + ")");
                    }
                    if (status < 0)
                    {
                        string message = "avl_context_create: bindings speak API " +
                                         VersionString(NativeMethods.ApiVersion) + ", library is " +
                                         VersionString(LibraryVersion) + ": " +
                                         Utf8.Decode(NativeMethods.avl_last_error());
                        throw new AvatarLabException((AvlStatus)status, message);
                    }
                    _context = ctx;
                    return ctx;
                }
            }
        }

        [MonoPInvokeCallback(typeof(NativeMethods.LogFn))]
        static void OnNativeLog(IntPtr user, int level, IntPtr message)
        {
            Action<LogLevel, string> sink = Sink;
            if (sink == null) return;
            try
            {
                sink((LogLevel)level, Utf8.Decode(message));
            }
            catch (Exception e)
            {
                // An exception must not unwind into native code (that aborts the process).
                Console.Error.WriteLine("AvatarLab log sink threw: " + e);
            }
        }

        static void DefaultSink(LogLevel level, string message)
        {
            Console.Error.WriteLine("[avatarlab " + level + "] " + message);
        }
    }
}
