using System;
using System.Runtime.InteropServices;
using AvatarLab.Native;

namespace AvatarLab
{
    public enum SessionState { None = 0, Connecting = 1, Streaming = 2, Ended = 3, Failed = 4, Cancelled = 5 }
    public enum MouthCurveSet { Visemes = 1, Blendshapes = 2 }
    public enum SessionEventType { Started = 1, FrameReady = 2, AudioReady = 3, Ended = 4, Error = 5, Retrying = 6 }

    public struct SessionEvent
    {
        public SessionEventType Type;
        public AvlStatus Status;
        public long FrameIndex;
        public long PtsMs;

        public bool IsTerminal { get { return Type == SessionEventType.Ended || Type == SessionEventType.Error; } }
    }

    // One Animate or Speak session. Control calls (push, end, cancel, poll, info) work from any
    // thread; Present/CopySurface belong to ONE thread at a time (SurfacePresenter does that).
    public sealed class FaceSession : IDisposable
    {
        public enum Kind { Animate, Speak }

        readonly SessionHandle _h;
        short[] _scratch = new short[0];
        readonly object _pushLock = new object();

        public Kind SessionKind { get; private set; }
        public int Channels { get; private set; }

        internal FaceSession(SessionHandle h, Kind kind, int channels)
        {
            _h = h;
            SessionKind = kind;
            Channels = channels < 1 ? 1 : channels;
        }

        public SessionState State { get { return (SessionState)NativeMethods.avl_session_get_state(_h); } }
        public bool IsTerminal { get { SessionState s = State; return s >= SessionState.Ended; } }

        // Queues interleaved int16 PCM (copied; never blocks on the network).
        public void PushAudio(short[] samples, int offset, int count)
        {
            if (samples == null) throw new ArgumentNullException("samples");
            if (offset < 0 || count < 0 || offset + count > samples.Length)
                throw new ArgumentOutOfRangeException("count", "offset/count outside the array");
            if (count == 0) return;
            GCHandle pin = GCHandle.Alloc(samples, GCHandleType.Pinned);
            try
            {
                IntPtr at = new IntPtr(pin.AddrOfPinnedObject().ToInt64() + offset * 2L);
                AvatarLabException.Check(NativeMethods.avl_session_push_audio(_h, at, (UIntPtr)(count * 2)),
                                         "avl_session_push_audio");
            }
            finally { pin.Free(); }
        }

        // Queues interleaved float PCM in [-1, 1] (Unity's AudioClip.GetData format) as int16.
        public void PushAudio(float[] samples, int offset, int count)
        {
            lock (_pushLock)
            {
                if (_scratch.Length < count) _scratch = new short[count];
                Pcm.FloatToS16(samples, offset, _scratch, 0, count);
                PushAudio(_scratch, 0, count);
            }
        }

        public void EndAudio()
        {
            AvatarLabException.Check(NativeMethods.avl_session_end_audio(_h), "avl_session_end_audio");
        }

        public void Cancel() { NativeMethods.avl_session_cancel(_h); }

        // Blocks; for tools and tests, never the game thread.
        public AvlStatus Wait(int timeoutMs) { return (AvlStatus)NativeMethods.avl_session_wait(_h, timeoutMs); }

        public bool TryPollEvent(out SessionEvent e)
        {
            AvlEvent n;
            e = default(SessionEvent);
            if (NativeMethods.avl_session_poll_event(_h, out n) != 0) return false;
            e.Type = (SessionEventType)n.type;
            e.Status = (AvlStatus)n.status;
            e.FrameIndex = n.frame_index;
            e.PtsMs = n.pts_ms;
            return true;
        }

        // The terminal error's status and message ("" when none).
        public AvlStatus GetError(out string message)
        {
            int length;
            int status = NativeMethods.avl_session_error(_h, null, 0, out length);
            byte[] buffer = new byte[length + 1];
            NativeMethods.avl_session_error(_h, buffer, buffer.Length, out length);
            message = Utf8.DecodeBuffer(buffer);
            return (AvlStatus)status;
        }

        public bool TryGetInfo(out AvlSessionInfo info)
        {
            return NativeMethods.avl_session_get_info(_h, out info) == 0;
        }

        public AvlSessionStats GetStats()
        {
            AvlSessionStats stats;
            AvatarLabException.Check(NativeMethods.avl_session_get_stats(_h, out stats), "avl_session_get_stats");
            return stats;
        }

        public string Id
        {
            get
            {
                byte[] buffer = new byte[128];
                NativeMethods.avl_session_id(_h, buffer, buffer.Length);
                return Utf8.DecodeBuffer(buffer);
            }
        }

        // Speak: takes received speech samples (mono int16); returns how many (0 if none yet).
        public int ReadAudio(short[] dst, int maxSamples)
        {
            int got;
            AvatarLabException.Check(NativeMethods.avl_session_read_audio(_h, dst, Math.Min(maxSamples, dst.Length), out got),
                                     "avl_session_read_audio");
            return got;
        }

        // Presentation thread only. Returns Ok (surface changed), NoNewFrame, BadState (not
        // started) or the error that failed the session (Decode / Protocol).
        public AvlStatus Present(long audioPositionMs, out AvlFrameInfo info)
        {
            return (AvlStatus)NativeMethods.avl_session_present(_h, audioPositionMs, out info);
        }

        // Sets preroll and output latency (the core's playback policy; 0 preroll = 300 ms).
        public void SetPlayback(int prerollMs, int outputLatencyMs)
        {
            var settings = new AvlPlaybackSettings { preroll_ms = prerollMs, output_latency_ms = outputLatencyMs };
            AvatarLabException.Check(NativeMethods.avl_session_set_playback(_h, ref settings), "avl_session_set_playback");
        }

        // Presentation thread only. Presents the frame for what the listener hears now (the
        // played position less the output latency) and says whether to start the voice and
        // whether the line is over.
        public AvlStatus PresentPlayback(long audioBufferedMs, long audioPlayedMs, out AvlPlaybackAdvice advice,
                                         out AvlFrameInfo info)
        {
            var clock = new AvlPlaybackClock { audio_buffered_ms = audioBufferedMs, audio_played_ms = audioPlayedMs };
            return (AvlStatus)NativeMethods.avl_session_present_playback(_h, ref clock, out advice, out info);
        }

        // Presentation thread only. Copies a rectangle of the RGBA surface to dst (rows dstStride apart).
        public void CopySurface(int x, int y, int width, int height, IntPtr dst, int dstStride, long dstSize)
        {
            AvatarLabException.Check(
                NativeMethods.avl_session_copy_surface(_h, x, y, width, height, dst, dstStride, (UIntPtr)(ulong)dstSize),
                "avl_session_copy_surface");
        }

        public bool IsDisposed { get { return _h.IsClosed; } }

        // ------------------------------------------------------------------ mouth motion (API 1.2)

        // The names of the session's viseme or blendshape curves in the order ReadMouth fills them
        // (SessionStarted's); empty before Started or when the server sends no motion.
        public string[] MouthNames(MouthCurveSet set)
        {
            int n = NativeMethods.avl_session_mouth_count(_h, (int)set);
            string[] names = new string[n < 0 ? 0 : n];
            for (int i = 0; i < names.Length; i++)
                names[i] = Utf8.Decode(NativeMethods.avl_session_mouth_name(_h, (int)set, i)) ?? "";
            return names;
        }

        // The mouth block of the frame the last present chose on the audio clock (`latest`: the
        // newest received). True with a frame's weights; false with the rest pose (sil 1) before one
        // was presented, or before Started. Any thread; arrays of any length (extra entries 0).
        public bool ReadMouth(float[] visemes, float[] blendshapes, out long ptsMs, bool latest = false)
        {
            int nv = visemes == null ? 0 : visemes.Length, nb = blendshapes == null ? 0 : blendshapes.Length;
            int status = latest ? NativeMethods.avl_session_mouth_latest(_h, visemes, nv, blendshapes, nb, out ptsMs)
                                : NativeMethods.avl_session_mouth(_h, visemes, nv, blendshapes, nb, out ptsMs);
            if (status < 0 && status != (int)AvlStatus.BadState)
                AvatarLabException.Check(status, latest ? "avl_session_mouth_latest" : "avl_session_mouth");
            return status == 0;
        }

        public void Dispose() { _h.Dispose(); }
    }
}
