using System;

namespace AvatarLab
{
    // Voice-over that already plays through an engine audio source drives the face. Each block
    // the engine mixes for that source (Unity: OnAudioFilterRead, interleaved float, any channel
    // count, at the output rate) is downmixed to mono and pushed to the face's streamed voice
    // (FacePlayback.PushVoice): the service gets it, and the face plays it back in sync, late by
    // the preroll, through its own audio source. The tapped source is muted so the line is heard
    // once. Runs on the audio thread; pushing never waits on the network.
    public sealed class AudioTap
    {
        float[] _mono = new float[0];
        volatile FacePlayback _target;

        public bool MuteSource = true;
        public long SamplesTapped { get; private set; }

        // The face's streamed voice to feed (null: pass audio through untouched).
        public FacePlayback Target
        {
            get { return _target; }
            set { _target = value; }
        }

        public void Process(float[] data, int channels)
        {
            FacePlayback target = _target;
            if (target == null || data == null || channels <= 0) return;
            int frames = data.Length / channels;
            if (_mono.Length < frames) _mono = new float[frames];
            for (int f = 0; f < frames; f++)
            {
                float sum = 0f;
                for (int c = 0; c < channels; c++) sum += data[f * channels + c];
                _mono[f] = sum / channels;
            }
            if (!target.TryPushVoice(_mono, 0, frames)) { _target = null; return; } // the line is over
            SamplesTapped += frames;
            if (MuteSource) Array.Clear(data, 0, data.Length);
        }
    }
}
