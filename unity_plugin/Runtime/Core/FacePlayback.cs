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
                presenter.Present(System.Threading.Interlocked.Read(ref _targetMs));
                PumpSpeech();
            }
        }

        void PumpSpeech()
        {
            SpeechBuffer speech = _speech;
            if (speech == null) return;
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
