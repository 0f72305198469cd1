// The bindings and the face pipeline against a live `avatarlab serve --model tiny` that the
// fixture starts on a free loopback port (bearer token on, one frame per model batch so two
// sessions with one seed give identical frames).
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Threading;
using AvatarLab.Native;
using NUnit.Framework;
#if AVL_NUNIT2
using OneTimeSetUp = NUnit.Framework.TestFixtureSetUpAttribute;
using OneTimeTearDown = NUnit.Framework.TestFixtureTearDownAttribute;
#endif

namespace AvatarLab.Tests
{
    [TestFixture]
    public class LiveServiceTests
    {
        const string Token = "unity-s3cret";
        const int AudioMs = 2400; // 60 frames at 25 fps
        const int SessionTimeoutMs = 120000;

        ServerProcess _server;
        AvatarLabConnection _connection;
        PresentWorker _worker;
        string _avatarId;
        string _skip, _failure;
        short[] _audio;
        int _rate;

        [OneTimeSetUp]
        public void StartService()
        {
            try
            {
                _server = new ServerProcess(new Dictionary<string, string>
                {
                    { "AVATARLAB_AUTH_TOKENS", Token }, { "AVATARLAB_MAX_BATCH", "1" },
                });
            }
            catch (FileNotFoundException e) { _skip = e.Message; return; }
            catch (InvalidOperationException e) { _skip = e.Message; return; } // no repository (e.g. inside Unity without AVATARLAB_REPO_ROOT)
            _connection = new AvatarLabConnection(new ConnectionSettings
            {
                Address = _server.Target, BearerToken = Token, ConnectTimeoutMs = 2000,
                RetryMaxAttempts = 40, RetryInitialBackoffMs = 100, RetryMaxBackoffMs = 1000,
            });
            _worker = new PresentWorker("avatarlab-test-present");
            var clock = Stopwatch.StartNew();
            try
            {
                _connection.WaitReady(180000); // model load + warm-up on a busy 2-core machine
                Console.WriteLine("[ live ] server SERVING after {0} ms at {1}", clock.ElapsedMilliseconds, _server.Target);
                byte[] png = File.ReadAllBytes(Path.Combine(Env.RepoRoot(), "avatar_service/assets/astronaut.png"));
                _avatarId = _connection.CreateAvatar("astronaut", AvatarSource.Portrait, png).Id;
            }
            catch (AvatarLabException e) { _failure = e.Message + "\n--- server log:\n" + _server.LogTail(); }
            int channels;
            short[] wav = Env.ReadWav(Path.Combine(Env.RepoRoot(), "avatar_service/assets/demo_line.wav"), out _rate, out channels);
            Assert.AreEqual(1, channels);
            _audio = new short[Math.Min(wav.Length, _rate * AudioMs / 1000)];
            Array.Copy(wav, _audio, _audio.Length);
        }

        [OneTimeTearDown]
        public void StopService()
        {
            if (_worker != null) _worker.Dispose();
            if (_connection != null) _connection.Dispose();
            if (_server != null) _server.Dispose();
        }

        [SetUp]
        public void RequireService()
        {
            if (_skip != null) Env.SkipOrFail(_skip);
            if (_failure != null) Assert.Fail(_failure);
        }

        static SessionOptions Options(WireFormat wire, FrameMode mode, ulong seed)
        {
            return new SessionOptions { WireFormat = wire, FrameMode = mode, WidthPx = 128, HeightPx = 128, UseSeed = true, Seed = seed };
        }

        // Pushes the whole line, then drains events "on the main thread" until the end.
        // Returns the playback with every FRAME_READY pts recorded in `pts`.
        FacePlayback RunToEnd(SessionOptions options, List<SessionEventType> events, List<long> pts)
        {
            FaceSession session = _connection.OpenAnimate(_avatarId, options, _rate, 1);
            var playback = new FacePlayback(session, _worker, 300);
            session.PushAudio(_audio, 0, _audio.Length);
            session.EndAudio();
            var clock = Stopwatch.StartNew();
            while (!playback.SessionEnded && playback.Error == AvlStatus.Ok && clock.ElapsedMilliseconds < SessionTimeoutMs)
            {
                foreach (SessionEvent e in playback.PollEvents())
                {
                    events.Add(e.Type);
                    if (e.Type == SessionEventType.FrameReady)
                    {
                        Assert.AreEqual(pts.Count, e.FrameIndex, "frames arrive in order");
                        pts.Add(e.PtsMs);
                    }
                }
                Thread.Sleep(5);
            }
            Assert.AreEqual(AvlStatus.Ok, playback.Error, playback.ErrorMessage);
            Assert.IsTrue(playback.SessionEnded, "session did not end within the timeout");
            return playback;
        }

        // Presents on the worker (as the face does) and waits for it.
        void PresentAt(FacePlayback playback, long ms)
        {
            playback.RequestPresent(ms);
            _worker.Flush();
        }

        // Uploads everything pending, `budgetBytes` per simulated engine frame.
        static int UploadAll(SurfacePresenter presenter, ManagedTexture texture, UploadBudget budget)
        {
            int frames = 0;
            while (!presenter.Pending.IsEmpty)
            {
                budget.NextFrame();
                Assert.Greater(presenter.Upload(budget, texture), 0, "budget too small for one row");
                Assert.LessOrEqual(budget.BytesPerFrame - budget.Left, budget.BytesPerFrame);
                frames++;
            }
            return frames;
        }

        // The texture must equal the native surface flipped to bottom-up rows.
        static void AssertTextureIsFlippedSurface(FaceSession session, ManagedTexture texture, int w, int h, string what)
        {
            byte[] surface = new byte[w * h * 4];
            var pin = System.Runtime.InteropServices.GCHandle.Alloc(surface, System.Runtime.InteropServices.GCHandleType.Pinned);
            try { session.CopySurface(0, 0, w, h, pin.AddrOfPinnedObject(), w * 4, surface.Length); }
            finally { pin.Free(); }
            for (int y = 0; y < h; y++)
                for (int i = 0; i < w * 4; i++)
                    if (surface[y * w * 4 + i] != texture.Pixels[(h - 1 - y) * w * 4 + i])
                        Assert.Fail(what + ": texture differs from the surface at row " + y + " byte " + i);
        }

        [Test]
        public void SessionLifecycleStartedFramesEnded()
        {
            var events = new List<SessionEventType>();
            var pts = new List<long>();
            FacePlayback playback = RunToEnd(Options(WireFormat.Jpeg, FrameMode.Full, 11), events, pts);
            try
            {
                Assert.AreEqual(SessionEventType.Started, events[0]);
                Assert.AreEqual(SessionEventType.Ended, events[events.Count - 1]);
                Assert.AreEqual(60, events.FindAll(t => t == SessionEventType.FrameReady).Count);
                Assert.AreEqual(SessionState.Ended, playback.Session.State);
                Assert.IsTrue(playback.Started);
                Assert.AreEqual(128, playback.Info.width_px);
                Assert.AreEqual((int)WireFormat.Jpeg, playback.Info.wire_format);
                Assert.IsNotEmpty(playback.Session.Id);
                AvlSessionStats stats = playback.Session.GetStats();
                Assert.AreEqual(60, stats.frames_sent);

                // Before the first frame: the base image, which is also the neutral face.
                var texture = new ManagedTexture(128, 128);
                var budget = new UploadBudget(128 * 4 * 128);
                PresentAt(playback, -1);
                Assert.AreEqual(-1, playback.Presenter.LastFrame.frame_index);
                UploadAll(playback.Presenter, texture, budget);
                byte[] neutral = (byte[])texture.Pixels.Clone();
                CollectionAssert.AreEqual(playback.Presenter.NeutralCopy(), neutral);

                PresentAt(playback, AudioMs);
                Assert.AreEqual(59, playback.Presenter.LastFrame.frame_index);
                UploadAll(playback.Presenter, texture, budget);
                AssertTextureIsFlippedSurface(playback.Session, texture, 128, 128, "last frame");
                CollectionAssert.AreNotEqual(neutral, texture.Pixels, "a talking frame differs from the neutral face");

                Assert.IsTrue(playback.Presenter.ShowNeutral());
                UploadAll(playback.Presenter, texture, budget);
                CollectionAssert.AreEqual(neutral, texture.Pixels, "silence shows the neutral face");
            }
            finally { playback.Dispose(); }
            Assert.IsTrue(playback.Session.IsDisposed);
        }

        // An engine's AudioSource simulated: timeSamples advances in DSP blocks of 256 samples
        // while game frames tick at 60 Hz on a device clock running 5% fast. The frame shown must
        // be the newest whose pts is at or before timeSamples / frequency, never the wall clock's.
        [Test]
        public void AudioClockChoosesTheFrame()
        {
            var events = new List<SessionEventType>();
            var pts = new List<long>();
            FacePlayback playback = RunToEnd(Options(WireFormat.Jpeg, FrameMode.Delta, 21), events, pts);
            try
            {
                const int block = 256; // 16 ms at 16 kHz, less than a frame (40 ms)
                long timeSamples = 0;
                double audioDue = 0;
                int checkedTicks = 0, distinct = 0;
                long lastShown = -2;
                for (int tick = 0; timeSamples < (long)_rate * AudioMs / 1000; tick++)
                {
                    audioDue += _rate / 60.0 * 1.05; // device clock 5% fast: the mixer consumes more per game frame
                    while (timeSamples + block <= audioDue) timeSamples += block;
                    long ms = Pcm.SamplesToMs(timeSamples, _rate);
                    PresentAt(playback, ms);
                    long expected = pts.FindLastIndex(p => p <= ms);
                    Assert.AreEqual(expected, playback.Presenter.LastFrame.frame_index, "tick " + tick + " at " + ms + " ms");
                    Assert.AreEqual(0, playback.Presenter.LastFrame.starved);
                    if (expected != lastShown) distinct++;
                    lastShown = expected;
                    checkedTicks++;
                }
                Assert.AreEqual(pts.Count, distinct, "with 16 ms audio blocks every 40 ms frame is shown");
                Console.WriteLine("[ live ] audio clock: {0} ticks, {1} distinct frames shown", checkedTicks, distinct);
            }
            finally { playback.Dispose(); }
        }

        [Test]
        public void DeltaUploadsMatchFullFramesByteForByte()
        {
            FacePlayback full = RunToEnd(Options(WireFormat.Rgba8, FrameMode.Full, 1234), new List<SessionEventType>(), new List<long>());
            var ptsDelta = new List<long>();
            FacePlayback delta = RunToEnd(Options(WireFormat.Rgba8, FrameMode.Delta, 1234), new List<SessionEventType>(), ptsDelta);
            try
            {
                Assert.AreEqual((int)FrameMode.Delta, delta.Info.frame_mode);
                var fullTex = new ManagedTexture(128, 128);
                var deltaTex = new ManagedTexture(128, 128);
                var budget = new UploadBudget(128 * 4 * 40); // 40 rows a frame: a full frame takes 4 engine frames
                int partial = 0;
                for (int k = 0; k < ptsDelta.Count; k++)
                {
                    PresentAt(full, ptsDelta[k]);
                    PresentAt(delta, ptsDelta[k]);
                    Assert.AreEqual(k, delta.Presenter.LastFrame.frame_index);
                    PixelRect dirty = delta.Presenter.Pending;
                    if (dirty.Width * dirty.Height < 128 * 128) partial++;
                    UploadAll(full.Presenter, fullTex, budget);
                    UploadAll(delta.Presenter, deltaTex, budget);
                    if (!System.Linq.Enumerable.SequenceEqual(fullTex.Pixels, deltaTex.Pixels))
                        Assert.Fail("delta texture differs from the full one at frame " + k);
                }
                AssertTextureIsFlippedSurface(delta.Session, deltaTex, 128, 128, "delta");
                Assert.Greater(partial, 0, "a talking face changes less than the whole image");
                Assert.Less(deltaTex.BytesWritten, fullTex.BytesWritten, "only dirty rectangles are uploaded");
                Console.WriteLine("[ live ] uploads: delta {0} bytes vs full {1} bytes over {2} frames ({3} partial)",
                                  deltaTex.BytesWritten, fullTex.BytesWritten, ptsDelta.Count, partial);
            }
            finally { full.Dispose(); delta.Dispose(); }
        }

        [Test]
        public void UnknownAvatarGivesNotFound()
        {
            FaceSession session = _connection.OpenAnimate("no-such-avatar", Options(WireFormat.Jpeg, FrameMode.Full, 1), _rate, 1);
            using (var playback = new FacePlayback(session, _worker, 300))
            {
                session.PushAudio(_audio, 0, 1600);
                session.EndAudio();
                var seen = new List<SessionEventType>();
                var clock = Stopwatch.StartNew();
                while (playback.Error == AvlStatus.Ok && clock.ElapsedMilliseconds < 30000)
                {
                    foreach (SessionEvent e in playback.PollEvents()) seen.Add(e.Type);
                    Thread.Sleep(5);
                }
                Assert.AreEqual(AvlStatus.NotFound, playback.Error, playback.ErrorMessage);
                StringAssert.Contains("NOT_FOUND", playback.ErrorMessage);
                CollectionAssert.DoesNotContain(seen, SessionEventType.Retrying);
                CollectionAssert.DoesNotContain(seen, SessionEventType.Started);
            }
            var e2 = Assert.Throws<AvatarLabException>(() => _connection.GetAvatar("no-such-avatar"));
            Assert.AreEqual(AvlStatus.NotFound, e2.Status);
        }

        [Test]
        public void AvatarsServerInfoAndAuth()
        {
            Assert.IsTrue(_connection.ListAvatars().Exists(a => a.Id == _avatarId));
            AvatarInfo avatar = _connection.GetAvatar(_avatarId);
            Assert.AreEqual("astronaut", avatar.DisplayName);
            Assert.AreEqual(AvatarSource.Portrait, avatar.Source);
            string version;
            AvlServerInfo info = _connection.GetServerInfo(out version);
            Assert.Greater(info.face_size_px, 0);
            StringAssert.Contains("tiny", version);
            using (var wrong = new AvatarLabConnection(new ConnectionSettings { Address = _server.Target, BearerToken = "wrong" }))
            {
                var e = Assert.Throws<AvatarLabException>(() => wrong.ListAvatars());
                Assert.AreEqual(AvlStatus.Unauthenticated, e.Status, e.Message);
            }
        }

        // Speak: the voice plays through a SpeechBuffer read in 1024-sample blocks (the engine's
        // audio callback, simulated), and the face follows the speech clock to the last frame.
        [Test]
        public void SpeakPlaysVoiceAndFaceOnOneClock()
        {
            string version;
            AvlServerInfo server = _connection.GetServerInfo(out version);
            FaceSession session = _connection.OpenSpeak(_avatarId, "Hello there, traveller.", null, Options(WireFormat.Jpeg, FrameMode.Delta, 3));
            using (var playback = new FacePlayback(session, _worker, 300))
            {
                var block = new float[1024];
                long clipSamples = 0;
                int frames = 0;
                var clock = Stopwatch.StartNew();
                while (clock.ElapsedMilliseconds < SessionTimeoutMs && playback.Error == AvlStatus.Ok)
                {
                    foreach (SessionEvent e in playback.PollEvents())
                        if (e.Type == SessionEventType.FrameReady) frames++;
                    SpeechBuffer speech = playback.Speech;
                    if (speech != null)
                    {
                        PresentAt(playback, speech.SpeechPositionMs(clipSamples));
                        speech.Read(block); // the audio thread's pull
                        clipSamples += block.Length;
                        if (playback.SessionEnded && speech.Drained) break;
                    }
                    Thread.Sleep(2);
                }
                if (server.voice_count == 0)
                {
                    Assert.AreEqual(AvlStatus.FailedPrecondition, playback.Error, playback.ErrorMessage);
                    StringAssert.Contains("text-to-speech", playback.ErrorMessage);
                    return;
                }
                Assert.AreEqual(AvlStatus.Ok, playback.Error, playback.ErrorMessage);
                Assert.IsTrue(playback.SessionEnded);
                long speechMs = Pcm.SamplesToMs(playback.Speech.ReceivedSamples, playback.Speech.SampleRateHz);
                Assert.Greater(speechMs, 500);
                PresentAt(playback, playback.Speech.SpeechPositionMs(clipSamples));
                Assert.AreEqual(frames - 1, playback.Presenter.LastFrame.frame_index, "at the end of the voice the last frame shows");
                Assert.AreEqual(frames, speechMs * playback.Info.fps / 1000.0, 2.0);
                Console.WriteLine("[ live ] Speak: {0} ms of speech at {1} Hz, {2} frames", speechMs, playback.Speech.SampleRateHz, frames);
            }
        }
    }
}
