using System;
using System.Threading;
using Unity.Collections;
using UnityEngine;

namespace AvatarLab.Unity
{
    // Behaviour of AvatarFace. Threads: Unity calls (texture, AudioSource, Microphone, events)
    // stay on the main thread; frames are presented and decoded on the client's PresentWorker;
    // speech audio is handed to Unity's audio thread through a SpeechBuffer.
    public sealed partial class AvatarFace
    {
        enum Mode { None, Speak, Clip, Microphone, Stream }

        FacePlayback _playback;
        SurfacePresenter _presenter; // kept after a session ends until its last rows are uploaded
        Mode _mode;
        AudioSource _audio;
        Texture2D _texture;
        readonly TextureWriter _writer = new TextureWriter();
        AudioClip _speechClip;
        bool _audioStarted;
        string _micDevice;
        AudioClip _micClip;
        int _micRate;
        float _micStoppedAt;
        int _streamRate;
        MicrophoneCursor _micCursor;
        readonly int[] _segOffsets = new int[2], _segCounts = new int[2];

        AvatarLabClient Client { get { return client != null ? client : (client = AvatarLabClient.Shared); } }

        // ------------------------------------------------------------------ public API

        // The service speaks `text` with voiceId; voice and face stream together.
        public void Speak(string text)
        {
            if (string.IsNullOrEmpty(text)) { Fail("Speak: text is empty"); return; }
            Begin(Mode.Speak, () => Client.Connection.OpenSpeak(avatarId, text, voiceId, options));
        }

        // Animates the face to a clip and plays it. The clip's Load Type must be
        // "Decompress On Load" (AudioClip.GetData cannot read streamed clips); mono or stereo.
        public void Play(AudioClip clip)
        {
            if (clip == null) { Fail("Play: clip is null"); return; }
            if (clip.channels < 1 || clip.channels > 2) { Fail("Play: " + clip.name + " has " + clip.channels + " channels; use a mono or stereo clip"); return; }
            if (clip.loadType == AudioClipLoadType.Streaming) { Fail("Play: set the Load Type of " + clip.name + " to Decompress On Load (streamed clips cannot be read)"); return; }
            if (clip.loadState != AudioDataLoadState.Loaded && !clip.LoadAudioData()) { Fail("Play: could not load the audio data of " + clip.name); return; }
            var pcm = new float[clip.samples * clip.channels];
            if (!clip.GetData(pcm, 0)) { Fail("Play: AudioClip.GetData failed for " + clip.name); return; }
            if (!Begin(Mode.Clip, () => Client.Connection.OpenAnimate(avatarId, options, clip.frequency, clip.channels))) return;
            _audio.clip = clip;
            _audio.loop = false;
            FaceSession session = _playback.Session;
            // Conversion and queueing off the main thread; the clip data was read above (main thread only).
            ThreadPool.QueueUserWorkItem(_ => PushAll(session, pcm));
        }

        // Streams the microphone to the face (the voice is not played back). Stop with
        // StopMicrophone; the face finishes the frames it has and ends.
        public void StartMicrophone(string device = null, int frequency = 16000)
        {
            if (Microphone.devices.Length == 0) { Fail("StartMicrophone: no microphone found"); return; }
            AudioClip clip = Microphone.Start(device, true, Mathf.Max(1, microphoneBufferSeconds), frequency);
            if (clip == null) { Fail("StartMicrophone: Microphone.Start failed for device '" + device + "'"); return; }
            if (!Begin(Mode.Microphone, () => Client.Connection.OpenAnimate(avatarId, options, clip.frequency, clip.channels)))
            {
                Microphone.End(device);
                return;
            }
            _micDevice = device;
            _micClip = clip;
            _micRate = clip.frequency;
            _micCursor = new MicrophoneCursor(clip.samples, Microphone.GetPosition(device));
        }

        public void StopMicrophone()
        {
            if (_mode != Mode.Microphone || _micClip == null) return;
            PumpMicrophone();
            Microphone.End(_micDevice);
            _micClip = null;
            _micStoppedAt = Time.unscaledTime;
            TryEndAudio(_playback.Session);
        }

        // Streams a voice as it arrives (a studio's TTS, an LLM voice): mono samples in [-1, 1] at
        // `sampleRate` (the same rate for the whole line). The first push opens a session; the
        // face plays the voice through its AudioSource once the preroll has arrived, with the
        // mouth on it. Call EndAudio after the last chunk. Main thread.
        public void PushAudio(float[] samples, int sampleRate)
        {
            if (samples == null) { Fail("PushAudio: samples is null"); return; }
            FacePlayback playback = _mode == Mode.Stream && _streamRate == sampleRate ? _playback : BeginVoiceStream(sampleRate);
            if (playback == null) return;
            try { playback.PushVoice(samples, 0, samples.Length); }
            catch (AvatarLabException e) { Finish(e.Message, true); }
        }

        // No more audio for the streamed line: the face finishes it, then onEnded.
        public void EndAudio()
        {
            if (_mode != Mode.Stream || _playback == null) return;
            try { _playback.EndVoice(); }
            catch (AvatarLabException e) { Debug.LogWarning("[AvatarLab] " + e.Message); }
        }

        // Opens a streamed-voice session at `sampleRate` (mono) and returns the playback that
        // takes the samples from any thread (AvatarFaceAudioTap pushes from the audio thread);
        // null if it could not open (onError says why). Main thread.
        public FacePlayback BeginVoiceStream(int sampleRate)
        {
            if (sampleRate < 8000 || sampleRate > 192000) { Fail("PushAudio: sample rate " + sampleRate + " Hz is outside 8000..192000"); return null; }
            if (!Begin(Mode.Stream, () => Client.Connection.OpenAnimate(avatarId, options, sampleRate, 1))) return null;
            _streamRate = sampleRate;
            SpeechBuffer voice = _playback.StartVoice(sampleRate);
            _speechClip = AudioClip.Create("AvatarLab voice", sampleRate * 600, 1, sampleRate, true, voice.Read);
            _audio.clip = _speechClip;
            _audio.loop = false;
            return _playback;
        }

        // Stops at once (no ended event) and shows the neutral face.
        public void Stop() { Finish(null, false); }

        // ------------------------------------------------------------------ Unity lifecycle

        void Awake()
        {
            _audio = GetComponent<AudioSource>();
            _audio.playOnAwake = false;
            if (targetRenderer == null) targetRenderer = GetComponent<Renderer>();
        }

        void OnDisable() { Finish(null, false); }

        void OnDestroy()
        {
            if (_texture != null) Destroy(_texture);
            _texture = null;
        }

        void Update()
        {
            if (_playback != null) Step();
            Upload();
        }

        // ------------------------------------------------------------------ session

        bool Begin(Mode mode, Func<FaceSession> open)
        {
            Finish(null, false);
            if (string.IsNullOrEmpty(avatarId)) { Fail(name + ": AvatarFace.avatarId is empty; register an avatar and paste its id"); return false; }
            FaceSession session;
            try { session = open(); }
            catch (AvatarLabException e) { Fail(e.Message); return false; }
            catch (DllNotFoundException e) { Fail(AvatarLabRuntime.MissingLibraryMessage + " (" + e.Message + ")"); return false; }
            _playback = new FacePlayback(session, Client.Worker, extraStartDelayMs);
            _playback.SetPlayback(extraStartDelayMs, OutputLatencyMs());
            _mode = mode;
            _audioStarted = false;
            return true;
        }

        void Step()
        {
            foreach (SessionEvent e in _playback.PollEvents())
            {
                if (e.Type == SessionEventType.Started) OnSessionStarted();
                else if (e.Type == SessionEventType.Error) { Finish(_playback.ErrorMessage, true); return; }
            }
            if (!_playback.Started) return;
            if (_mode == Mode.Microphone) PumpMicrophone();
            // Clip and streamed voice: the core's playback policy says when to start.
            if ((_mode == Mode.Clip || _mode == Mode.Stream) && !_audioStarted && _playback.StartPlayback)
            {
                _audio.Play();
                _audioStarted = true;
            }
            if (_mode == Mode.Microphone) _playback.RequestPresent(PositionMs());
            else _playback.RequestPlayback(BufferedMs(), PositionMs());
            if (Finished()) Finish(null, true);
        }

        void OnSessionStarted()
        {
            EnsureTexture(_playback.Info.width_px, _playback.Info.height_px);
            _presenter = _playback.Presenter;
            if (_mode == Mode.Speak && _playback.Speech != null)
            {
                SpeechBuffer speech = _playback.Speech;
                // Streamed clip: Unity pulls samples on its audio thread; 10 minutes is the
                // longest line the service accepts by default, so the clip never runs out first.
                _speechClip = AudioClip.Create("AvatarLab speech", speech.SampleRateHz * 600, 1, speech.SampleRateHz, true,
                                               speech.Read);
                _audio.clip = _speechClip;
                _audio.loop = false;
                _audio.Play();
                _audioStarted = true;
            }
            onStarted.Invoke();
        }

        int OutputLatencyMs()
        {
            if (outputLatencyMs >= 0) return outputLatencyMs;
            int length, count;
            AudioSettings.GetDSPBufferSize(out length, out count);
            int rate = AudioSettings.outputSampleRate;
            return rate > 0 ? (int)((long)length * count * 1000 / rate) : 0;
        }

        // Audio handed to the player so far, on the session's clock.
        long BufferedMs()
        {
            switch (_mode)
            {
                case Mode.Speak:
                case Mode.Stream:
                    return _playback.Speech != null ? _playback.Speech.ReceivedMs : 0;
                case Mode.Clip:
                    return _audio.clip != null ? Pcm.SamplesToMs(_audio.clip.samples, _audio.clip.frequency) : 0;
                default:
                    return 0;
            }
        }

        // The session's audio clock, read from what the AudioSource has played.
        long PositionMs()
        {
            switch (_mode)
            {
                case Mode.Speak:
                case Mode.Stream:
                    return _playback.Speech != null && _audioStarted ? _playback.Speech.SpeechPositionMs(_audio.timeSamples) : -1;
                case Mode.Clip:
                    if (!_audioStarted) return -1;
                    // A clip that has played out reports timeSamples 0: count it as all played.
                    return _audio.isPlaying ? Pcm.SamplesToMs(_audio.timeSamples, _audio.clip.frequency) : BufferedMs();
                case Mode.Microphone:
                    // Nothing is played back: show the frame for the audio captured StartDelayMs ago;
                    // after StopMicrophone the clock runs on so the last frames are shown too.
                    long captured = Pcm.SamplesToMs(_micCursor.TotalSamples, _micRate);
                    if (_micClip == null) captured += (long)((Time.unscaledTime - _micStoppedAt) * 1000f);
                    return captured - _playback.StartDelayMs;
                default:
                    return -1;
            }
        }

        bool Finished()
        {
            if (!_playback.SessionEnded) return false;
            switch (_mode)
            {
                case Mode.Speak:
                case Mode.Stream:
                case Mode.Clip:
                    return _playback.PlaybackFinished; // every frame shown, the last audio heard
                default:
                    return _playback.Presenter == null || _playback.Presenter.LastFrame.frames_buffered == 0;
            }
        }

        // Ends the current session: neutral face, audio stopped, native session released.
        void Finish(string error, bool raiseEvents)
        {
            if (_playback == null) return;
            FacePlayback playback = _playback;
            Mode mode = _mode;
            _playback = null;
            _mode = Mode.None;
            if (_presenter != null) _presenter.ShowNeutral();
            if (_audio != null) _audio.Stop();
            if (_speechClip != null) { Destroy(_speechClip); _speechClip = null; }
            if (mode == Mode.Microphone && _micClip != null) { Microphone.End(_micDevice); _micClip = null; }
            playback.Dispose();
            if (!raiseEvents) return;
            if (error != null) Fail(error);
            else onEnded.Invoke();
        }

        void Fail(string message)
        {
            Debug.LogError("[AvatarLab] " + name + ": " + message, this);
            onError.Invoke(message);
        }

        void PumpMicrophone()
        {
            if (_micClip == null) return;
            int n = _micCursor.Advance(Microphone.GetPosition(_micDevice), _segOffsets, _segCounts);
            for (int i = 0; i < n; i++)
            {
                var data = new float[_segCounts[i] * _micClip.channels];
                _micClip.GetData(data, _segOffsets[i]);
                try { _playback.Session.PushAudio(data, 0, data.Length); } // a queue copy; never waits on the network
                catch (AvatarLabException e) { Finish(e.Message, true); return; }
            }
        }

        static void PushAll(FaceSession session, float[] pcm)
        {
            try
            {
                session.PushAudio(pcm, 0, pcm.Length);
                session.EndAudio();
            }
            catch (AvatarLabException e) { Debug.LogWarning("[AvatarLab] audio not sent: " + e.Message); }
            catch (ObjectDisposedException) { /* the face stopped the session before the audio went out */ }
        }

        static void TryEndAudio(FaceSession session)
        {
            try { session.EndAudio(); }
            catch (AvatarLabException e) { Debug.LogWarning("[AvatarLab] " + e.Message); }
        }

        // ------------------------------------------------------------------ texture

        void EnsureTexture(int width, int height)
        {
            if (width <= 0 || height <= 0) return; // a motion-only session: curves only (AvatarLabBlendshapeDriver)
            if (_texture != null && _texture.width == width && _texture.height == height) return;
            if (_texture != null) Destroy(_texture);
            _texture = new Texture2D(width, height, TextureFormat.RGBA32, false, false)
            {
                name = "AvatarLab face " + name,
                wrapMode = TextureWrapMode.Clamp,
                filterMode = FilterMode.Bilinear,
            };
            if (targetRenderer != null) FaceMaterials.Assign(targetRenderer.material, _texture, texturePropertyName);
        }

        // Main thread: the pending rectangle of the mirror, within this frame's upload budget.
        // A whole-face change is one LoadRawTextureData from the pinned mirror; a smaller one
        // copies only the changed rows into the texture's CPU data (managed memcpy, no P/Invoke).
        // Unity's Apply then uploads the (small) texture; the budget bounds the CPU copy.
        void Upload()
        {
            SurfacePresenter presenter = _presenter;
            if (presenter == null || _texture == null || presenter.Pending.IsEmpty) return;
            if (presenter.Width != _texture.width || presenter.Height != _texture.height) return;
            int written;
            PixelRect pending = presenter.Pending;
            if (pending.Width * pending.Height * 2 > presenter.Width * presenter.Height && presenter.TakeAll(Client.Budget))
            {
                _texture.LoadRawTextureData(presenter.MirrorAddress, presenter.Mirror.Length);
                written = presenter.Mirror.Length;
            }
            else
            {
                _writer.Data = _texture.GetPixelData<byte>(0);
                written = presenter.Upload(Client.Budget, _writer);
            }
            if (written > 0) _texture.Apply(false);
            if (_playback == null && presenter.Pending.IsEmpty) _presenter = null; // ended and drained
        }

        sealed class TextureWriter : IPixelWriter
        {
            public NativeArray<byte> Data;
            public void Write(byte[] source, int offset, int length) { NativeArray<byte>.Copy(source, offset, Data, offset, length); }
        }
    }
}
