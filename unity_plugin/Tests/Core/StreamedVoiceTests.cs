// A streamed voice drives a live face: AvatarFace.PushAudio's path (FacePlayback.PushVoice) and
// the AudioSource tap (AudioTap, Unity's OnAudioFilterRead), with the engine's audio thread and
// player simulated; plus the output-latency offset and the missing native library.
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
    public class StreamedVoiceTests
    {
        const int AudioMs = 2400;
        ServerProcess _server;
        AvatarLabConnection _connection;
        PresentWorker _worker;
        string _avatarId, _skip, _failure;
        float[] _voice;
        int _rate;

        [OneTimeSetUp]
        public void StartService()
        {
            try { _server = new ServerProcess(new Dictionary<string, string> { { "AVATARLAB_MAX_BATCH", "1" } }); }
            catch (FileNotFoundException e) { _skip = e.Message; return; }
            catch (InvalidOperationException e) { _skip = e.Message; return; }
            _connection = new AvatarLabConnection(new ConnectionSettings { Address = _server.Target, RetryMaxAttempts = 40 });
            _worker = new PresentWorker("avatarlab-voice-test");
            try
            {
                _connection.WaitReady(180000);
                byte[] png = File.ReadAllBytes(Path.Combine(Env.RepoRoot(), "avatar_service/assets/astronaut.png"));
                _avatarId = _connection.CreateAvatar("astronaut", AvatarSource.Portrait, png).Id;
            }
            catch (AvatarLabException e) { _failure = e.Message + "\n--- server log:\n" + _server.LogTail(); }
            int channels;
            short[] wav = Env.ReadWav(Path.Combine(Env.RepoRoot(), "avatar_service/assets/demo_line.wav"), out _rate, out channels);
            _voice = new float[Math.Min(wav.Length, _rate * AudioMs / 1000)];
            Pcm.S16ToFloat(wav, 0, _voice, 0, _voice.Length);
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

        FacePlayback Open()
        {
            var options = new SessionOptions { WireFormat = WireFormat.Jpeg, FrameMode = FrameMode.Delta, WidthPx = 128, HeightPx = 128, UseSeed = true, Seed = 21 };
            var playback = new FacePlayback(_connection.OpenAnimate(_avatarId, options, _rate, 1), _worker, 300);
            playback.SetPlayback(300, 0);
            playback.StartVoice(_rate);
            return playback;
        }

        // The engine side of a streamed line: `feed` hands over the next chunk of voice (false when
        // there is none left), the face's AudioSource pulls 1024-sample blocks from the voice buffer
        // once the policy says start, and every "game frame" presents at what was played.
        // Returns the pts of every frame, checking each never runs ahead of the audio pushed so far.
        List<long> Drive(FacePlayback playback, Func<bool> feed, Func<long> pushedMs)
        {
            var pts = new List<long>();
            var block = new float[1024];
            long clip = 0;
            bool feeding = true;
            var clock = Stopwatch.StartNew();
            while (!playback.PlaybackFinished && playback.Error == AvlStatus.Ok && clock.ElapsedMilliseconds < 120000)
            {
                if (feeding) feeding = feed();
                foreach (SessionEvent e in playback.PollEvents())
                {
                    if (e.Type != SessionEventType.FrameReady) continue;
                    Assert.AreEqual(pts.Count, e.FrameIndex, "frames arrive in order");
                    Assert.LessOrEqual(e.PtsMs, pushedMs(), "a frame for audio not pushed yet");
                    pts.Add(e.PtsMs);
                }
                if (!playback.Started) { Thread.Sleep(5); continue; }
                SpeechBuffer voice = playback.Voice;
                if (playback.StartPlayback) { voice.Read(block); clip += block.Length; } // the audio thread's pull
                playback.RequestPlayback(voice.ReceivedMs, playback.StartPlayback ? voice.SpeechPositionMs(clip) : -1);
                _worker.Flush();
                Thread.Sleep(2);
            }
            Assert.AreEqual(AvlStatus.Ok, playback.Error, playback.ErrorMessage);
            Assert.IsTrue(playback.PlaybackFinished, "the line never finished");
            return pts;
        }

        static void AssertFramesFollowTheAudio(List<long> pts, FacePlayback playback, long audioMs)
        {
            Assert.AreEqual(audioMs * 25 / 1000, pts.Count, "one frame per 40 ms of pushed audio");
            for (int k = 0; k < pts.Count; k++) Assert.AreEqual(k * 40, pts[k], "pts of frame " + k);
            Assert.AreEqual(pts.Count - 1, playback.Presenter.LastFrame.frame_index, "the last frame shows at the end of the voice");
            Assert.GreaterOrEqual(playback.HeardMs, pts[pts.Count - 1]);
        }

        [Test]
        public void PushAudioStreamsAVoiceThatDrivesTheFace()
        {
            using (FacePlayback playback = Open())
            {
                int chunk = _rate / 10, at = 0; // 100 ms chunks, as a TTS stream delivers them
                List<long> pts = Drive(playback, () =>
                {
                    if (at >= _voice.Length) { playback.EndVoice(); return false; }
                    int n = Math.Min(chunk, _voice.Length - at);
                    playback.PushVoice(_voice, at, n);
                    at += n;
                    return true;
                }, () => Pcm.SamplesToMs(at, _rate));
                AssertFramesFollowTheAudio(pts, playback, AudioMs);
                Assert.AreEqual(_voice.Length, playback.Voice.ReceivedSamples);
                Console.WriteLine("[ live ] PushAudio: {0} frames for {1} ms pushed in 100 ms chunks", pts.Count, AudioMs);
            }
        }

        [Test]
        public void AudioSourceTapDrivesTheFaceAndMutesTheSource()
        {
            using (FacePlayback playback = Open())
            {
                var tap = new AudioTap { Target = playback };
                int frames = 512, at = 0; // stereo blocks as OnAudioFilterRead gets them
                var data = new float[frames * 2];
                bool silent = true;
                List<long> pts = Drive(playback, () =>
                {
                    if (at >= _voice.Length) { tap.Target = null; playback.EndVoice(); return false; }
                    int n = Math.Min(frames, _voice.Length - at);
                    var block = n == frames ? data : new float[n * 2];
                    for (int i = 0; i < n; i++) { block[2 * i] = _voice[at + i]; block[2 * i + 1] = _voice[at + i]; }
                    tap.Process(block, 2);
                    foreach (float v in block) silent &= v == 0f;
                    at += n;
                    return true;
                }, () => Pcm.SamplesToMs(at, _rate));
                AssertFramesFollowTheAudio(pts, playback, AudioMs);
                Assert.AreEqual(_voice.Length, tap.SamplesTapped);
                Assert.IsTrue(silent, "the tapped source is muted: the face plays the voice");
                Assert.AreEqual(_voice.Length, playback.Voice.ReceivedSamples, "the face got the downmixed voice");
                Console.WriteLine("[ live ] AudioSource tap: {0} frames for {1} samples tapped", pts.Count, tap.SamplesTapped);
            }
        }

        [Test]
        public void OutputLatencyShiftsTheChosenFrameByItsLengthInFrames()
        {
            using (FacePlayback playback = Open())
            {
                playback.PushVoice(_voice, 0, _voice.Length);
                playback.EndVoice();
                var clock = Stopwatch.StartNew();
                while (!playback.SessionEnded && playback.Error == AvlStatus.Ok && clock.ElapsedMilliseconds < 120000)
                {
                    playback.PollEvents();
                    Thread.Sleep(5);
                }
                Assert.IsTrue(playback.SessionEnded, playback.ErrorMessage);
                // 1000 ms played; 200 ms of it still in the output buffers = 5 frames at 25 fps.
                playback.SetPlayback(300, 200);
                playback.RequestPlayback(AudioMs, 1000);
                _worker.Flush();
                Assert.AreEqual(800, playback.HeardMs);
                Assert.AreEqual(20, playback.Presenter.LastFrame.frame_index);
                playback.SetPlayback(300, 0);
                playback.RequestPlayback(AudioMs, 1000);
                _worker.Flush();
                Assert.AreEqual(25, playback.Presenter.LastFrame.frame_index, "without the offset: 5 frames later");
            }
        }
    }

    // Runs only in run_tests.sh's pass without the library (AVL_EXPECT_NO_NATIVE=1).
    [TestFixture]
    public class MissingNativeLibraryTests
    {
        [Test]
        public void TheFirstCallSaysWhichLibraryIsMissingAndHowToStageIt()
        {
            if (Environment.GetEnvironmentVariable("AVL_EXPECT_NO_NATIVE") != "1")
                Assert.Ignore("runs without the native library only (run_tests.sh does that pass)");
            var e = Assert.Throws<AvatarLabException>(() => new AvatarLabConnection(new ConnectionSettings()));
            Assert.AreEqual(AvlStatus.Unavailable, e.Status);
            StringAssert.Contains("Plugins/Linux/x86_64/libavatarlab_client.so", e.Message);
            StringAssert.Contains("make plugins", e.Message);
            Console.WriteLine("[ missing ] " + e.Message);
        }
    }
}
