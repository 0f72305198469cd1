using System;
using System.Collections.Generic;
using AvatarLab.Native;

namespace AvatarLab
{
    public enum Transport { Plaintext = 0, Tls = 1 }
    public enum AvatarSource { Unspecified = 0, Portrait = 1, IdleVideo = 2 }
    public enum WireFormat { Default = 0, Rgba8 = 1, Rgb8 = 2, Jpeg = 3 }
    public enum FrameMode { Default = 0, Full = 1, Delta = 2 }
    public enum AudioEncoding { Unspecified = 0, PcmS16 = 1, PcmF32 = 2 }

    // Where and how to connect. Zero timeouts and retries mean the library's defaults.
    [Serializable]
    public sealed class ConnectionSettings
    {
        public string Address = "127.0.0.1:50051";
        public string BearerToken = "";
        public Transport Transport = Transport.Plaintext;
        public string TlsRootCertsPem = null; // null: system roots
        public int ConnectTimeoutMs;
        public int CallTimeoutMs;
        public int RetryMaxAttempts;
        public int RetryInitialBackoffMs;
        public int RetryMaxBackoffMs;
        // A connection that dies silently (mobile network gone) is noticed by an unanswered
        // HTTP/2 PING: every KeepaliveTimeMs (0 = 15000, at least 5000, -1 = off), unanswered for
        // KeepaliveTimeoutMs (0 = 5000), it ends the session with Unavailable.
        public int KeepaliveTimeMs;
        public int KeepaliveTimeoutMs;
        // Deadline of one session's stream (0 = 30 minutes, -1 = none): DeadlineExceeded past it.
        public int StreamDeadlineMs;
    }

    // A copy of an avatar's metadata (the native handle is released right away).
    public sealed class AvatarInfo
    {
        public string Id;
        public string DisplayName;
        public string ModelId;
        public AvatarSource Source;
        public int FaceWidthPx;
        public int FaceHeightPx;
        public int PoseFrameCount;
        public long CreateTimeUnixMs;

        internal static AvatarInfo From(AvatarHandle h)
        {
            AvlAvatarInfo n;
            AvatarLabException.Check(NativeMethods.avl_avatar_get_info(h, out n), "avl_avatar_get_info");
            return new AvatarInfo
            {
                Id = Utf8.Decode(NativeMethods.avl_avatar_id(h)),
                DisplayName = Utf8.Decode(NativeMethods.avl_avatar_display_name(h)),
                ModelId = Utf8.Decode(NativeMethods.avl_avatar_model_id(h)),
                Source = (AvatarSource)n.source,
                FaceWidthPx = n.face_width_px,
                FaceHeightPx = n.face_height_px,
                PoseFrameCount = n.pose_frame_count,
                CreateTimeUnixMs = n.create_time_unix_ms,
            };
        }
    }

    // Options of one Animate or Speak session; zero = the server's default.
    [Serializable]
    public sealed class SessionOptions
    {
        public int Fps;
        public int WidthPx;
        public int HeightPx;
        public WireFormat WireFormat = WireFormat.Jpeg;
        public int JpegQuality;
        public FrameMode FrameMode = FrameMode.Delta;
        public int SamplerSteps;
        public float GuidanceScale;
        public bool UseSeed;
        public ulong Seed;
        // Frames carry only the mouth curves (visemes, ARKit blendshapes) for a 3D rig, no pixels:
        // the server generates no image, so it holds many more sessions (API 1.2).
        public bool MotionOnly;

        internal AvlSessionSettings ToNative(AudioEncoding encoding, int sampleRateHz, int channels)
        {
            return new AvlSessionSettings
            {
                seed = Seed,
                has_seed = UseSeed ? 1 : 0,
                audio_encoding = (int)encoding,
                sample_rate_hz = sampleRateHz,
                channels = channels,
                fps = Fps,
                width_px = WidthPx,
                height_px = HeightPx,
                wire_format = (int)WireFormat,
                jpeg_quality = JpegQuality,
                frame_mode = (int)FrameMode,
                sampler_steps = SamplerSteps,
                guidance_scale = GuidanceScale,
                motion_only = MotionOnly ? 1 : 0,
            };
        }
    }

    // One connection (gRPC channel) to the service, shared by every face in a scene. Blocking
    // calls (everything but Open*) must not run on the game thread: use a worker or Task.Run.
    public sealed class AvatarLabConnection : IDisposable
    {
        readonly ClientHandle _client;
        public string Address { get; private set; }

        public AvatarLabConnection(ConnectionSettings settings)
        {
            if (settings == null) throw new ArgumentNullException("settings");
            if (string.IsNullOrEmpty(settings.Address))
                throw new ArgumentException("ConnectionSettings.Address is empty; use \"host:port\"", "settings");
            Address = settings.Address;
            ContextHandle context = AvatarLabRuntime.Context;
            var native = new AvlClientSettings
            {
                transport = (int)settings.Transport,
                connect_timeout_ms = settings.ConnectTimeoutMs,
                call_timeout_ms = settings.CallTimeoutMs,
                retry_max_attempts = settings.RetryMaxAttempts,
                retry_initial_backoff_ms = settings.RetryInitialBackoffMs,
                retry_max_backoff_ms = settings.RetryMaxBackoffMs,
                keepalive_time_ms = settings.KeepaliveTimeMs,
                keepalive_timeout_ms = settings.KeepaliveTimeoutMs,
                stream_deadline_ms = settings.StreamDeadlineMs,
            };
            string pem = string.IsNullOrEmpty(settings.TlsRootCertsPem) ? null : settings.TlsRootCertsPem;
            string token = string.IsNullOrEmpty(settings.BearerToken) ? null : settings.BearerToken;
            AvatarLabException.Check(
                NativeMethods.avl_client_create(context, Utf8.Encode(settings.Address), ref native,
                                                Utf8.Encode(pem), Utf8.Encode(token), out _client),
                "avl_client_create(" + settings.Address + ")");
            _client.KeepAlive(context);
        }

        internal ClientHandle Handle { get { return _client; } }

        public void SetBearerToken(string token)
        {
            AvatarLabException.Check(
                NativeMethods.avl_client_set_bearer_token(_client, Utf8.Encode(string.IsNullOrEmpty(token) ? null : token)),
                "avl_client_set_bearer_token");
        }

        // Blocks until grpc.health says SERVING; throws Unavailable / DeadlineExceeded otherwise.
        public void WaitReady(int timeoutMs)
        {
            AvatarLabException.Check(NativeMethods.avl_client_wait_ready(_client, timeoutMs),
                                     "WaitReady(" + Address + ")");
        }

        public AvlServerInfo GetServerInfo(out string version)
        {
            AvlServerInfo info;
            byte[] buffer = new byte[512];
            AvatarLabException.Check(NativeMethods.avl_client_get_server_info(_client, out info, buffer, buffer.Length),
                                     "GetServerInfo");
            version = Utf8.DecodeBuffer(buffer);
            return info;
        }

        public AvatarInfo CreateAvatar(string displayName, AvatarSource source, byte[] media)
        {
            if (media == null || media.Length == 0) throw new ArgumentException("media is empty", "media");
            AvatarHandle h;
            AvatarLabException.Check(
                NativeMethods.avl_client_create_avatar(_client, Utf8.Encode(displayName), (int)source, media,
                                                       (UIntPtr)media.Length, out h),
                "CreateAvatar(" + displayName + ")");
            using (h) return AvatarInfo.From(h);
        }

        public AvatarInfo GetAvatar(string avatarId)
        {
            AvatarHandle h;
            AvatarLabException.Check(NativeMethods.avl_client_get_avatar(_client, Utf8.Encode(avatarId), out h),
                                     "GetAvatar(" + avatarId + ")");
            using (h) return AvatarInfo.From(h);
        }

        public void DeleteAvatar(string avatarId)
        {
            AvatarLabException.Check(NativeMethods.avl_client_delete_avatar(_client, Utf8.Encode(avatarId)),
                                     "DeleteAvatar(" + avatarId + ")");
        }

        public List<AvatarInfo> ListAvatars()
        {
            AvatarListHandle list;
            AvatarLabException.Check(NativeMethods.avl_client_list_avatars(_client, out list), "ListAvatars");
            using (list)
            {
                int n = NativeMethods.avl_avatar_list_count(list);
                var result = new List<AvatarInfo>(n);
                for (int i = 0; i < n; i++)
                {
                    AvatarHandle h;
                    AvatarLabException.Check(NativeMethods.avl_avatar_list_get(list, i, out h), "avl_avatar_list_get");
                    using (h) result.Add(AvatarInfo.From(h));
                }
                return result;
            }
        }

        // Returns at once; the stream opens on the session's own threads. Events are polled
        // (FaceSession.TryPollEvent), which suits IL2CPP and keeps Unity calls on the main thread.
        public FaceSession OpenAnimate(string avatarId, SessionOptions options, int sampleRateHz, int channels)
        {
            if (options == null) options = new SessionOptions();
            AvlSessionSettings s = options.ToNative(AudioEncoding.PcmS16, sampleRateHz, channels);
            SessionHandle h;
            AvatarLabException.Check(
                NativeMethods.avl_client_open_animate(_client, Utf8.Encode(avatarId), ref s, null, IntPtr.Zero, out h),
                "OpenAnimate(" + avatarId + ")");
            h.KeepAlive(_client);
            return new FaceSession(h, FaceSession.Kind.Animate, channels);
        }

        public FaceSession OpenSpeak(string avatarId, string text, string voiceId, SessionOptions options)
        {
            if (options == null) options = new SessionOptions();
            AvlSessionSettings s = options.ToNative(AudioEncoding.Unspecified, 0, 0);
            SessionHandle h;
            AvatarLabException.Check(
                NativeMethods.avl_client_open_speak(_client, Utf8.Encode(avatarId), Utf8.Encode(text),
                                                    Utf8.Encode(string.IsNullOrEmpty(voiceId) ? null : voiceId),
                                                    ref s, null, IntPtr.Zero, out h),
                "OpenSpeak(" + avatarId + ")");
            h.KeepAlive(_client);
            return new FaceSession(h, FaceSession.Kind.Speak, 1);
        }

        public void Dispose() { _client.Dispose(); }
    }
}
