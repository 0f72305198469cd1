using UnityEngine;

namespace AvatarLab.Unity
{
    // Put this next to any AudioSource that plays voice-over (a clip, a TTS stream, a timeline):
    // while the source plays, what Unity mixes for it is streamed to `face` (OnAudioFilterRead),
    // muted here and played back by the face in sync with its mouth, late by the preroll. When
    // the source stops, the face finishes the line.
    [RequireComponent(typeof(AudioSource))]
    [AddComponentMenu("AvatarLab/Avatar Face Audio Tap")]
    public sealed class AvatarFaceAudioTap : MonoBehaviour
    {
        [Tooltip("The face this voice drives")]
        public AvatarFace face;
        [Tooltip("Mute this source (the face plays the voice); off: both play, the mouth lags the voice")]
        public bool muteSource = true;

        readonly AudioTap _tap = new AudioTap();
        AudioSource _source;
        bool _streaming;

        void Awake() { _source = GetComponent<AudioSource>(); }

        void Update()
        {
            _tap.MuteSource = muteSource;
            if (face == null) return;
            if (_source.isPlaying && !_streaming)
            {
                _tap.Target = face.BeginVoiceStream(AudioSettings.outputSampleRate);
                _streaming = _tap.Target != null;
            }
            else if (!_source.isPlaying && _streaming)
            {
                _tap.Target = null;
                _streaming = false;
                face.EndAudio();
            }
        }

        void OnDisable()
        {
            _tap.Target = null;
            if (_streaming && face != null) face.EndAudio();
            _streaming = false;
        }

        // Audio thread.
        void OnAudioFilterRead(float[] data, int channels) { _tap.Process(data, channels); }
    }
}
