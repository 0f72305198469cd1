// Bindings against the real native library with no service (or a dead address), and the
// plain-C# pieces of the playback pipeline.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Threading;
using AvatarLab.Native;
using NUnit.Framework;

namespace AvatarLab.Tests
{
    [TestFixture]
    public class NativeBindingTests
    {
        [Test]
        public void LibraryVersionMatchesTheBindingsMajor()
        {
            uint v = AvatarLabRuntime.LibraryVersion;
            Assert.AreEqual(NativeMethods.ApiVersionMajor, (int)(v >> 16), AvatarLabRuntime.VersionString(v));
            Assert.IsFalse(AvatarLabRuntime.Context.IsInvalid);
        }

        [Test]
        public void StructLayoutsMatchTheHeaderSizes()
        {
            Assert.AreEqual(40, Marshal.SizeOf(typeof(AvlClientSettings))); // 24 in API 1.0
            Assert.AreEqual(8, Marshal.SizeOf(typeof(AvlPlaybackSettings)));
            Assert.AreEqual(16, Marshal.SizeOf(typeof(AvlPlaybackClock)));
            Assert.AreEqual(16, Marshal.SizeOf(typeof(AvlPlaybackAdvice)));
            Assert.AreEqual(40, Marshal.SizeOf(typeof(AvlServerInfo)));
            Assert.AreEqual(24, Marshal.SizeOf(typeof(AvlAvatarInfo)));
            Assert.AreEqual(64, Marshal.SizeOf(typeof(AvlSessionSettings))); // 56 before API 1.2
            Assert.AreEqual(24, Marshal.SizeOf(typeof(AvlEvent)));
            Assert.AreEqual(64, Marshal.SizeOf(typeof(AvlSessionInfo))); // 48 before API 1.2
            Assert.AreEqual(40, Marshal.SizeOf(typeof(AvlSessionStats)));
            Assert.AreEqual(56, Marshal.SizeOf(typeof(AvlFrameInfo)));
        }

        [Test]
        public void StatusNamesComeFromTheLibrary()
        {
            StringAssert.StartsWith("AVL_ERR_UNAVAILABLE", AvatarLabException.StatusName((int)AvlStatus.Unavailable));
            StringAssert.StartsWith("AVL_ERR_UNKNOWN", AvatarLabException.StatusName(-1234));
        }

        [Test]
        public void InvalidArgumentsThrowWithTheNativeMessage()
        {
            var e = Assert.Throws<ArgumentException>(() => new AvatarLabConnection(new ConnectionSettings { Address = "" }));
            StringAssert.Contains("host:port", e.Message);
            using (var c = new AvatarLabConnection(new ConnectionSettings { Address = "127.0.0.1:1" }))
            {
                // fps 0..60: 500 is rejected by the library before anything is sent.
                var ex = Assert.Throws<AvatarLabException>(() =>
                    c.OpenAnimate("a", new SessionOptions { Fps = 500 }, 16000, 1));
                Assert.AreEqual(AvlStatus.InvalidArgument, ex.Status);
                StringAssert.Contains("OpenAnimate(a)", ex.Message);
                StringAssert.Contains("fps", ex.Message);
            }
        }

        [Test]
        public void ServiceDownGivesACleanUnavailableError()
        {
            string address = "127.0.0.1:" + Env.FreePort();
            var settings = new ConnectionSettings
            {
                Address = address, ConnectTimeoutMs = 500, CallTimeoutMs = 1000,
                RetryMaxAttempts = 2, RetryInitialBackoffMs = 50, RetryMaxBackoffMs = 50,
            };
            var logs = new List<string>();
            Action<LogLevel, string> oldSink = AvatarLabRuntime.Sink;
            AvatarLabRuntime.Sink = (level, message) => { lock (logs) logs.Add(level + ": " + message); };
            try
            {
                using (var connection = new AvatarLabConnection(settings))
                using (var worker = new PresentWorker("test-present"))
                {
                    var e = Assert.Throws<AvatarLabException>(() => connection.ListAvatars());
                    Assert.AreEqual(AvlStatus.Unavailable, e.Status, e.Message);
                    StringAssert.Contains(address, e.Message);

                    var session = connection.OpenAnimate("any-avatar", new SessionOptions(), 16000, 1);
                    var playback = new FacePlayback(session, worker, 300);
                    connection.Dispose(); // the session keeps the native client alive
                    session.PushAudio(new short[1600], 0, 1600);
                    session.EndAudio();
                    var seen = new List<SessionEventType>();
                    var clock = Stopwatch.StartNew();
                    while (playback.Error == AvlStatus.Ok && clock.ElapsedMilliseconds < 20000)
                    {
                        foreach (SessionEvent ev in playback.PollEvents()) seen.Add(ev.Type);
                        Thread.Sleep(10);
                    }
                    Assert.AreEqual(AvlStatus.Unavailable, playback.Error, playback.ErrorMessage);
                    StringAssert.Contains(address, playback.ErrorMessage);
                    CollectionAssert.Contains(seen, SessionEventType.Retrying);
                    Assert.AreEqual(SessionEventType.Error, seen[seen.Count - 1]);
                    Assert.IsFalse(playback.Started);
                    Assert.AreEqual(SessionState.Failed, session.State);
                    playback.Dispose();
                    playback.Dispose(); // idempotent
                    Assert.IsTrue(session.IsDisposed);
                }
            }
            finally { AvatarLabRuntime.Sink = oldSink; }
            lock (logs)
                Assert.IsTrue(logs.Exists(l => l.Contains(address)),
                              "native log lines reach the managed sink: " + string.Join(" | ", logs.ToArray()));
        }
    }

    [TestFixture]
    public class PipelineUnitTests
    {
        [Test]
        public void SpeechClockSkipsTheSilencePlayedWhileSpeechWasLate()
        {
            const int rate = 16000;
            var speech = new SpeechBuffer(rate, 100); // 1600 samples held back before the voice starts
            var block = new float[1024];
            var pcm = new short[4000];
            for (int i = 0; i < pcm.Length; i++) pcm[i] = 1000;

            speech.Read(block); // nothing yet: clip samples 0..1023 silent
            Assert.AreEqual(0, speech.SpeechPosition(1024));
            speech.Write(pcm, 1000);
            speech.Read(block); // 1000 < prebuffer: still silent (1024..2047)
            Assert.AreEqual(0f, block[0]);
            speech.Write(pcm, 3000); // 4000 received
            speech.Read(block); // speech 0..1023 at clip 2048..3071
            Assert.AreEqual(1000 / 32768f, block[0], 1e-6);
            speech.Read(block); speech.Read(block); // 3072 speech samples played, clip at 5120
            speech.Read(block); // 928 speech, then 96 silent samples (a stall) from clip 6048
            Assert.AreEqual(0f, block[1000]);
            speech.Write(pcm, 2000);
            speech.Read(block); // speech resumes at clip 6144

            Assert.AreEqual(0, speech.SpeechPosition(2048));
            Assert.AreEqual(500, speech.SpeechPosition(2548));
            Assert.AreEqual(4000, speech.SpeechPosition(2048 + 4000));
            Assert.AreEqual(4000, speech.SpeechPosition(6144), "the stall's silence does not advance the face");
            Assert.AreEqual(4100, speech.SpeechPosition(6244));
            Assert.AreEqual(256, speech.SpeechPositionMs(6244)); // 4100 samples at 16 kHz
            Assert.IsFalse(speech.Drained);
            speech.MarkComplete();
            speech.Read(new float[2000]);
            Assert.IsTrue(speech.Drained);
        }

        [Test]
        public void MicrophoneCursorReadsAcrossTheWrap()
        {
            var cursor = new MicrophoneCursor(1000, 900);
            var off = new int[2]; var cnt = new int[2];
            Assert.AreEqual(1, cursor.Advance(950, off, cnt));
            Assert.AreEqual(900, off[0]); Assert.AreEqual(50, cnt[0]);
            Assert.AreEqual(2, cursor.Advance(30, off, cnt));
            Assert.AreEqual(950, off[0]); Assert.AreEqual(50, cnt[0]);
            Assert.AreEqual(0, off[1]); Assert.AreEqual(30, cnt[1]);
            Assert.AreEqual(0, cursor.Advance(30, off, cnt));
            Assert.AreEqual(130, cursor.TotalSamples);
        }

        [Test]
        public void FloatPcmConvertsToClampedInt16()
        {
            var dst = new short[4];
            Pcm.FloatToS16(new[] { 0f, 1f, -2f, 0.5f }, 0, dst, 0, 4);
            CollectionAssert.AreEqual(new short[] { 0, 32767, -32767, 16384 }, dst);
            Assert.AreEqual(1500, Pcm.SamplesToMs(72000, 48000));
        }

        [Test]
        public void UploadBudgetIsSharedAndRenewedEachFrame()
        {
            var b = new UploadBudget(1000);
            Assert.AreEqual(600, b.Take(600));
            Assert.AreEqual(400, b.Take(600));
            Assert.AreEqual(0, b.Take(1));
            b.NextFrame();
            Assert.AreEqual(1000, b.Left);
        }
    }
}
