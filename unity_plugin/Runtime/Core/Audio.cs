using System;
using System.Collections.Generic;

namespace AvatarLab
{
    public static class Pcm
    {
        public static void FloatToS16(float[] src, int srcOffset, short[] dst, int dstOffset, int count)
        {
            for (int i = 0; i < count; i++)
            {
                float v = src[srcOffset + i];
                if (v > 1f) v = 1f; else if (v < -1f) v = -1f;
                dst[dstOffset + i] = (short)Math.Round(v * 32767f);
            }
        }

        public static void S16ToFloat(short[] src, int srcOffset, float[] dst, int dstOffset, int count)
        {
            for (int i = 0; i < count; i++) dst[dstOffset + i] = src[srcOffset + i] / 32768f;
        }

        // Position on an audio clock, in ms, from a sample count (AudioSource.timeSamples / frequency).
        public static long SamplesToMs(long samples, int sampleRateHz)
        {
            if (sampleRateHz <= 0) return 0;
            return samples * 1000 / sampleRateHz;
        }
    }

    // Speech audio between the session (worker thread writes) and the engine's audio callback
    // (audio thread reads; Unity's PCMReaderCallback). The callback must always fill its buffer,
    // so when speech is late it plays silence; those silent stretches are recorded, so that the
    // clip's play position (AudioSource.timeSamples) maps back to the speech clock and the face
    // stays on the voice even after a network stall.
    public sealed class SpeechBuffer
    {
        readonly object _gate = new object();
        readonly Queue<float> _samples = new Queue<float>();
        readonly List<long[]> _gaps = new List<long[]>(); // {clip sample where silence began, length}
        readonly long _prebufferSamples;
        bool _released;     // the playback policy said start
        long _clipServed;   // samples handed to the audio callback so far
        long _speechServed; // of those, speech samples
        long _received;
        bool _playing;      // prebuffer reached once
        bool _complete;     // no more speech will arrive

        public int SampleRateHz { get; private set; }

        // `prebufferMs`: speech held back before the voice starts, so frames are there in time
        // (the core README suggests lookahead + 300 ms); negative: only Release() (the core's
        // playback policy) or the end of the speech starts it.
        public SpeechBuffer(int sampleRateHz, int prebufferMs)
        {
            if (sampleRateHz <= 0) throw new ArgumentException("sample rate must be positive", "sampleRateHz");
            SampleRateHz = sampleRateHz;
            _prebufferSamples = prebufferMs < 0 ? long.MaxValue : (long)sampleRateHz * prebufferMs / 1000;
        }

        // Starts the voice with what is buffered (avl_playback_advice.start_playback).
        public void Release() { lock (_gate) _released = true; }

        // Mono float samples in [-1, 1] (a streamed voice).
        public void Write(float[] pcm, int offset, int count)
        {
            lock (_gate)
            {
                for (int i = 0; i < count; i++) _samples.Enqueue(pcm[offset + i]);
                _received += count;
            }
        }

        public long ReceivedMs { get { return Pcm.SamplesToMs(ReceivedSamples, SampleRateHz); } }

        public void Write(short[] pcm, int count)
        {
            lock (_gate)
            {
                for (int i = 0; i < count; i++) _samples.Enqueue(pcm[i] / 32768f);
                _received += count;
            }
        }

        public void MarkComplete() { lock (_gate) _complete = true; }

        public long ReceivedSamples { get { lock (_gate) return _received; } }

        // True when all speech has been received and handed to the audio callback.
        public bool Drained { get { lock (_gate) return _complete && _samples.Count == 0; } }

        // Audio thread: fills `data` (mono) with speech, or silence while waiting.
        public void Read(float[] data)
        {
            lock (_gate)
            {
                if (!_playing && (_released || _samples.Count >= _prebufferSamples || _complete)) _playing = true;
                int i = 0;
                if (_playing)
                {
                    for (; i < data.Length && _samples.Count > 0; i++) data[i] = _samples.Dequeue();
                    _speechServed += i;
                }
                if (i < data.Length)
                {
                    int silence = data.Length - i;
                    Array.Clear(data, i, silence);
                    long start = _clipServed + i;
                    long[] last = _gaps.Count > 0 ? _gaps[_gaps.Count - 1] : null;
                    if (last != null && last[0] + last[1] == start) last[1] += silence;
                    else _gaps.Add(new long[] { start, silence });
                }
                _clipServed += data.Length;
            }
        }

        // Speech samples played by the time the clip has played `clipSamples` (timeSamples).
        public long SpeechPosition(long clipSamples)
        {
            lock (_gate)
            {
                long silence = 0;
                foreach (long[] g in _gaps)
                {
                    if (clipSamples <= g[0]) break;
                    silence += Math.Min(clipSamples - g[0], g[1]);
                }
                return Math.Max(0, clipSamples - silence);
            }
        }

        public long SpeechPositionMs(long clipSamples)
        {
            return Pcm.SamplesToMs(SpeechPosition(clipSamples), SampleRateHz);
        }
    }

    // New samples of a looping microphone clip (Unity's Microphone.Start(loop: true)): the write
    // position wraps at the clip's length, so one poll may return two segments.
    public sealed class MicrophoneCursor
    {
        readonly int _clipSamples;
        int _read;

        public long TotalSamples { get; private set; }

        public MicrophoneCursor(int clipSamples, int startPosition)
        {
            if (clipSamples <= 0) throw new ArgumentException("clip length must be positive", "clipSamples");
            _clipSamples = clipSamples;
            _read = startPosition;
        }

        // `writePosition`: Microphone.GetPosition. Fills up to two (offset, count) segments of
        // the clip to read; returns how many segments. Assumes polls come more often than one
        // clip length (a 1 s clip polled every frame).
        public int Advance(int writePosition, int[] offsets, int[] counts)
        {
            if (writePosition < 0 || writePosition >= _clipSamples) return 0;
            int n = 0;
            if (writePosition >= _read)
            {
                if (writePosition > _read) { offsets[n] = _read; counts[n++] = writePosition - _read; }
            }
            else
            {
                offsets[n] = _read; counts[n++] = _clipSamples - _read;
                if (writePosition > 0) { offsets[n] = 0; counts[n++] = writePosition; }
            }
            for (int i = 0; i < n; i++) TotalSamples += counts[i];
            _read = writePosition;
            return n;
        }
    }
}
