// Every P/Invoke declaration of the package, one per function of
// client_core/include/avatarlab/avatarlab.h (API 1.2, 46 functions), in header order.
// Plain C#: no UnityEngine here, so the bindings are tested with Mono outside Unity.
//
// Marshalling choices, so the same file works on Mono, IL2CPP and .NET:
//  - input strings are passed as NUL-terminated UTF-8 byte[] (Utf8.Encode), never as string,
//    because the default string marshalling differs between runtimes and Windows uses ANSI;
//  - returned const char* are IntPtr, decoded by Utf8.Decode;
//  - size_t is UIntPtr (mcs has no nuint);
//  - handles are SafeHandle subclasses; release functions take `ref IntPtr` and are only called
//    from SafeHandle.ReleaseHandle;
//  - callbacks are static [MonoPInvokeCallback] methods (IL2CPP and iOS AOT need that).
using System;
using System.Runtime.InteropServices;

namespace AvatarLab.Native
{
    public static class NativeMethods
    {
#if UNITY_IOS && !UNITY_EDITOR
        public const string Library = "__Internal"; // iOS links the static library into the app
#else
        public const string Library = "avatarlab_client";
#endif
        const CallingConvention Cdecl = CallingConvention.Cdecl;

        public const int ApiVersionMajor = 1;
        public const int ApiVersionMinor = 2;
        public const int ApiVersionPatch = 0;
        public const uint ApiVersion = (ApiVersionMajor << 16) | (ApiVersionMinor << 8) | ApiVersionPatch;

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        public delegate void LogFn(IntPtr user, int level, IntPtr message);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        public delegate void EventFn(IntPtr user, IntPtr session, ref AvlEvent evt);

        // ---------------------------------------------------------------- version and status
        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern uint avl_get_version();

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern IntPtr avl_status_string(int status);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern IntPtr avl_last_error();

        // ---------------------------------------------------------------- context
        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_context_create(uint apiVersion, LogFn logFn, IntPtr logUser,
                                                    int minLevel, out ContextHandle context);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_context_set_log_level(ContextHandle context, int minLevel);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern void avl_context_release(ref IntPtr context);

        // ---------------------------------------------------------------- client
        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_client_create(ContextHandle context, byte[] target,
                                                   ref AvlClientSettings settings, byte[] tlsRootCertsPem,
                                                   byte[] bearerToken, out ClientHandle client);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_client_set_bearer_token(ClientHandle client, byte[] bearerToken);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_client_wait_ready(ClientHandle client, int timeoutMs);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern void avl_client_release(ref IntPtr client);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_client_get_server_info(ClientHandle client, out AvlServerInfo info,
                                                            byte[] versionBuffer, int versionBufferSize);

        // ---------------------------------------------------------------- avatars
        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_client_create_avatar(ClientHandle client, byte[] displayName, int source,
                                                          byte[] media, UIntPtr mediaSize, out AvatarHandle avatar);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_client_get_avatar(ClientHandle client, byte[] avatarId, out AvatarHandle avatar);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_client_delete_avatar(ClientHandle client, byte[] avatarId);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_client_list_avatars(ClientHandle client, out AvatarListHandle list);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_avatar_list_count(AvatarListHandle list);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_avatar_list_get(AvatarListHandle list, int index, out AvatarHandle avatar);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern void avl_avatar_list_release(ref IntPtr list);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern IntPtr avl_avatar_id(AvatarHandle avatar);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern IntPtr avl_avatar_display_name(AvatarHandle avatar);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern IntPtr avl_avatar_model_id(AvatarHandle avatar);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_avatar_get_info(AvatarHandle avatar, out AvlAvatarInfo info);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern void avl_avatar_release(ref IntPtr avatar);

        // ---------------------------------------------------------------- sessions: lifecycle
        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_client_open_animate(ClientHandle client, byte[] avatarId,
                                                         ref AvlSessionSettings settings, EventFn eventFn,
                                                         IntPtr user, out SessionHandle session);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_client_open_speak(ClientHandle client, byte[] avatarId, byte[] text,
                                                       byte[] voiceId, ref AvlSessionSettings settings,
                                                       EventFn eventFn, IntPtr user, out SessionHandle session);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_session_push_audio(SessionHandle session, IntPtr data, UIntPtr sizeBytes);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_session_end_audio(SessionHandle session);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_session_cancel(SessionHandle session);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_session_get_state(SessionHandle session);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_session_wait(SessionHandle session, int timeoutMs);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_session_poll_event(SessionHandle session, out AvlEvent evt);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_session_error(SessionHandle session, byte[] buffer, int bufferSize,
                                                   out int messageLength);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern void avl_session_release(ref IntPtr session);

        // ---------------------------------------------------------------- sessions: stream info
        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_session_get_info(SessionHandle session, out AvlSessionInfo info);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_session_id(SessionHandle session, byte[] buffer, int bufferSize);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_session_get_stats(SessionHandle session, out AvlSessionStats stats);

        // ---------------------------------------------------------------- sessions: presentation
        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_session_present(SessionHandle session, long audioPositionMs,
                                                     out AvlFrameInfo info);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern IntPtr avl_session_surface_pixels(SessionHandle session);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_session_copy_surface(SessionHandle session, int x, int y, int width,
                                                          int height, IntPtr dst, int dstStride, UIntPtr dstSize);

        // ---------------------------------------------------------------- sessions: playback policy (API 1.1)
        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_session_set_playback(SessionHandle session, ref AvlPlaybackSettings settings);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_session_present_playback(SessionHandle session, ref AvlPlaybackClock clock,
                                                              out AvlPlaybackAdvice advice, out AvlFrameInfo info);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_session_read_audio(SessionHandle session, short[] dst, int maxSamples,
                                                        out int samples);

        // ---------------------------------------------------------------- sessions: mouth motion (API 1.2)

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_session_mouth_count(SessionHandle session, int set);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern IntPtr avl_session_mouth_name(SessionHandle session, int set, int index);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_session_mouth(SessionHandle session, float[] visemes, int nVisemes,
                                                   float[] blendshapes, int nBlendshapes, out long ptsMs);

        [DllImport(Library, CallingConvention = Cdecl)]
        public static extern int avl_session_mouth_latest(SessionHandle session, float[] visemes, int nVisemes,
                                                          float[] blendshapes, int nBlendshapes, out long ptsMs);
    }

    // ---------------------------------------------------------------- blittable structs (sizes from the header)

    [StructLayout(LayoutKind.Sequential)]
    public struct AvlClientSettings // 40 bytes
    {
        public int transport;
        public int connect_timeout_ms;
        public int call_timeout_ms;
        public int retry_max_attempts;
        public int retry_initial_backoff_ms;
        public int retry_max_backoff_ms;
        public int keepalive_time_ms;     // API 1.1
        public int keepalive_timeout_ms;
        public int stream_deadline_ms;
        public int reserved;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct AvlPlaybackSettings // 8 bytes
    {
        public int preroll_ms;
        public int output_latency_ms;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct AvlPlaybackClock // 16 bytes
    {
        public long audio_buffered_ms;
        public long audio_played_ms;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct AvlPlaybackAdvice // 16 bytes
    {
        public int start_playback;
        public int finished;
        public long heard_ms;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct AvlServerInfo // 40 bytes
    {
        public int model_sample_rate_hz;
        public int face_size_px;
        public int default_sampler_steps;
        public float default_guidance_scale;
        public int max_concurrent_sessions;
        public int max_sessions_per_client;
        public int max_audio_seconds_per_session;
        public int max_message_bytes;
        public int max_text_chars;
        public int voice_count;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct AvlAvatarInfo // 24 bytes
    {
        public long create_time_unix_ms;
        public int source;
        public int face_width_px;
        public int face_height_px;
        public int pose_frame_count;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct AvlSessionSettings // 64 bytes (56 before API 1.2)
    {
        public ulong seed;
        public int has_seed;
        public int audio_encoding;
        public int sample_rate_hz;
        public int channels;
        public int fps;
        public int width_px;
        public int height_px;
        public int wire_format;
        public int jpeg_quality;
        public int frame_mode;
        public int sampler_steps;
        public float guidance_scale;
        public int motion_only;           // API 1.2
        public int reserved;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct AvlEvent // 24 bytes
    {
        public int type;
        public int status;
        public long frame_index;
        public long pts_ms;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct AvlSessionInfo // 64 bytes (48 before API 1.2)
    {
        public int state;
        public int fps;
        public int width_px;
        public int height_px;
        public int wire_format;
        public int frame_mode;
        public int lookahead_ms;
        public int sampler_steps;
        public float guidance_scale;
        public int audio_sample_rate_hz;
        public long frames_received;
        public int motion_only;           // API 1.2
        public int viseme_count;
        public int blendshape_count;
        public int reserved;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct AvlSessionStats // 40 bytes
    {
        public long frames_sent;
        public long audio_received_ms;
        public long bytes_sent;
        public double first_frame_latency_ms;
        public double mean_generate_ms;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct AvlFrameInfo // 56 bytes
    {
        public long frame_index;
        public long pts_ms;
        public long duration_ms;
        public int dirty_x;
        public int dirty_y;
        public int dirty_width;
        public int dirty_height;
        public int frames_applied;
        public int frames_dropped;
        public int frames_buffered;
        public int starved;
    }
}

namespace AvatarLab.Native
{
    // IL2CPP's linker strips code only reflection or the marshaller reaches (SafeHandle
    // constructors, P/Invoke structs). UnityLinker honours any attribute named PreserveAttribute,
    // so this one keeps Runtime/Core free of UnityEngine (link.xml keeps the whole assembly too).
    [AttributeUsage(AttributeTargets.Class | AttributeTargets.Struct | AttributeTargets.Method |
                    AttributeTargets.Constructor | AttributeTargets.Field, Inherited = false)]
    public sealed class PreserveAttribute : Attribute { }
}

#if !UNITY_5_3_OR_NEWER
namespace AOT
{
    // Unity ships AOT.MonoPInvokeCallbackAttribute in UnityEngine; outside Unity (Mono tests) we
    // define the same attribute so the callback code is identical. Mono's AOT compiler matches it
    // by name.
    [AttributeUsage(AttributeTargets.Method)]
    public sealed class MonoPInvokeCallbackAttribute : Attribute
    {
        public MonoPInvokeCallbackAttribute(Type delegateType) { DelegateType = delegateType; }
        public Type DelegateType { get; private set; }
    }
}
#endif
