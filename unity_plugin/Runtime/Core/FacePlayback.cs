using System;
using System.Collections.Generic;
using AvatarLab.Native;

namespace AvatarLab
{
    // Everything an engine face does with one session, minus the engine: events are drained on
    // the main thread, presenting (network data -> decoded surface -> mirror) and pulling speech
    // audio run on the PresentWorker, and the main thread only uploads finished rows.
    // AvatarFace (Unity) is a thin shell around this class.
    public sealed class FacePlayback : PresentJob, IDisposable
    {
        readonly PresentWorker _worker;
        readonly int _extraDelayMs;
        readonly List<SessionEvent> _events = new List<SessionEvent>();
        readonly object _runLock = new object();
        readonly short[] _pcm = new short[4096];
        volatile SurfacePresenter _presenter;
        volatile SpeechBuffer _speech;
        long _targetMs = -1;
        long _bufferedMs, _playedMs = -1;
        int _usePolicy;     // 1: the last request was RequestPlayback
        volatile bool _startPlayback, _finished;
        bool _disposed;

        public FaceSession Session { get; private set; }
        public AvlSessionInfo Info { get; private set; }
        public bool Started { get { return _presenter != null; } }
        public SurfacePresenter Presenter { get { return _presenter; } }
        public SpeechBuffer Speech { get { return _speech; } }
        public bool SessionEnded { get; private set; }
        public AvlStatus Error { get; private set; }
        public string ErrorMessage { get; private set; }

        // Audio to hold back before playback starts so the frames for it have arrived
        // (lookahead_ms of the model + a network margin; 300 ms per the core README).
        public int StartDelayMs { get { return Info.lookahead_ms + _extraDelayMs; } }

        // The core's playback policy (avl_session_present_playback), read after RequestPlayback:
        // start the voice now; the line is over (every frame shown, the last audio heard).
        public bool StartPlayback { get { return _startPlayback; } }
        public bool PlaybackFinished { get { return _finished; } }
        public long HeardMs { get; private set; }

        // Preroll (video and audio received before the voice starts; 0 = 300 ms) and output
        // latency (audio consumed by the player but not yet heard; the chosen frame moves back by
        // it). Any thread; applies to the next present.
        public void SetPlayback(int prerollMs, int outputLatencyMs)
        {
            Session.SetPlayback(prerollMs, outputLatencyMs);
        }

        // ---------------------------------------------------------------- streamed voice (Animate)

        // The voice pushed with PushVoice, played back by the engine from this buffer once the
        // policy says start (Unity: a streamed AudioClip reading it). Created by StartVoice.
        public SpeechBuffer Voice { get { return _speech; } }

        // Any thread, once, before the first PushVoice: the rate the session was opened with.
        public SpeechBuffer StartVoice(int sampleRateHz)
        {
            if (_speech == null) _speech = new SpeechBuffer(sampleRateHz, -1);
            return _speech;
        }

        // Any thread (e.g. the audio thread of a tap): mono float samples to the service and to
        // the voice buffer. Throws AvatarLabException when the session no longer takes audio.
        public void PushVoice(float[] mono, int offset, int count)
        {
            SpeechBuffer voice = _speech;
            if (voice == null) throw new InvalidOperationException("PushVoice before StartVoice");
            Session.PushAudio(mono, offset, count);
            voice.Write(mono, offset, count);
        }

        // As PushVoice; false instead of an exception once the session is over or disposed.
        public bool TryPushVoice(float[] mono, int offset, int count)
        {
            try { PushVoice(mono, offset, count); return true; }
            catch (AvatarLabException) { return false; }
            catch (ObjectDisposedException) { return false; }
        }

        // No more voice: the service sends the remaining frames; the buffer plays out.
        public void EndVoice()
        {
            SpeechBuffer voice = _speech;
            if (voice != null) voice.MarkComplete();
            Session.EndAudio();
        }

        public FacePlayback(FaceSession session, PresentWorker worker, int extraDelayMs)
        {
            if (session == null) throw new ArgumentNullException("session");
            if (worker == null) throw new ArgumentNullException("worker");
            Session = session;
            _worker = worker;
            _extraDelayMs = extraDelayMs;
        }

        // Main thread: takes queued session events. Started creates the presenter (and, for
        // Speak, the speech buffer); a terminal error fills Error / ErrorMessage.
        public List<SessionEvent> PollEvents()
        {
            _events.Clear();
            if (_disposed) return _events;
            SessionEvent e;
            while (Session.TryPollEvent(out e))
            {
                if (e.Type == SessionEventType.Started) OnStarted();
                else if (e.Type == SessionEventType.Ended) SessionEnded = true;
                else if (e.Type == SessionEventType.Error)
                {
                    string message;
                    Error = Session.GetError(out message);
                    if (Error == AvlStatus.Ok) Error = e.Status;
                    ErrorMessage = message;
                }
                _events.Add(e);
            }
            return _events;
        }

        void OnStarted()
        {
            AvlSessionInfo info;
            if (!Session.TryGetInfo(out info)) return;
            Info = info;
            if (Session.SessionKind == FaceSession.Kind.Speak && info.audio_sample_rate_hz > 0)
                _speech = new SpeechBuffer(info.audio_sample_rate_hz, StartDelayMs);
            _presenter = new SurfacePresenter(Session, info.width_px, info.height_px);
        }

        // Main thread: asks the worker to bring the face to `audioPositionMs` on the session's
        // audio clock (negative: before the first frame, the base image).
        public void RequestPresent(long audioPositionMs)
        {
            System.Threading.Interlocked.Exchange(ref _targetMs, audioPositionMs);
            System.Threading.Interlocked.Exchange(ref _usePolicy, 0);
            if (_presenter != null) _worker.Request(this);
        }

        // Main thread: what the engine's player has done (ms of the session's audio clock: handed
        // to it, and consumed by it, -1 before it started). The worker presents the frame for what
        // is heard and updates StartPlayback / PlaybackFinished.
        public void RequestPlayback(long audioBufferedMs, long audioPlayedMs)
        {
            System.Threading.Interlocked.Exchange(ref _bufferedMs, audioBufferedMs);
            System.Threading.Interlocked.Exchange(ref _playedMs, audioPlayedMs);
            System.Threading.Interlocked.Exchange(ref _usePolicy, 1);
            if (_presenter != null) _worker.Request(this);
        }

        // Worker thread.
        public override void Run()
        {
            lock (_runLock)
            {
                if (_disposed) return;
                SurfacePresenter presenter = _presenter;
                if (presenter == null) return;
                if (System.Threading.Interlocked.CompareExchange(ref _usePolicy, 0, 0) == 1)
                {
                    AvlPlaybackAdvice advice;
                    AvlStatus status = presenter.PresentPlayback(System.Threading.Interlocked.Read(ref _bufferedMs),
                                                                 System.Threading.Interlocked.Read(ref _playedMs), out advice);
                    if (status >= AvlStatus.Ok)
                    {
                        HeardMs = advice.heard_ms;
                        if (advice.start_playback != 0)
                        {
                            SpeechBuffer voice = _speech;
                            if (voice != null) voice.Release();
                            _startPlayback = true;
                        }
                        _finished = advice.finished != 0;
                    }
                }
                else presenter.Present(System.Threading.Interlocked.Read(ref _targetMs));
                PumpSpeech();
            }
        }

        void PumpSpeech()
        {
            SpeechBuffer speech = _speech;
            if (speech == null || Session.SessionKind != FaceSession.Kind.Speak) return;
            bool terminal = Session.IsTerminal; // read first: all audio has arrived before the state turns terminal
            int got;
            while ((got = Session.ReadAudio(_pcm, _pcm.Length)) > 0) speech.Write(_pcm, got);
            if (terminal) speech.MarkComplete();
        }

        public void Dispose()
        {
            lock (_runLock)
            {
                if (_disposed) return;
                _disposed = true;
                SurfacePresenter presenter = _presenter;
                if (presenter != null) presenter.Dispose(); // mirror stays readable for the last uploads
                Session.Dispose();
            }
        }
    }
}
