using System;
using UnityEngine;
using UnityEngine.Events;

namespace AvatarLab.Unity
{
    [Serializable] public sealed class AvatarFaceErrorEvent : UnityEvent<string> { }

    // A talking face: Speak(text), Play(clip), PushAudio(samples, rate) for a streamed voice,
    // an AvatarFaceAudioTap on any AudioSource, or StartMicrophone(); shown on a texture that
    // follows the voice. Serialized settings live here; behaviour in AvatarFace.Playback.cs.
    [RequireComponent(typeof(AudioSource))]
    [AddComponentMenu("AvatarLab/Avatar Face")]
    public sealed partial class AvatarFace : MonoBehaviour
    {
        [Tooltip("The scene's AvatarLab Client; empty: AvatarLabClient.Shared")]
        public AvatarLabClient client;
        [Tooltip("Id of an avatar registered on the service (avatarlab create-avatar, or AvatarLabConnection.CreateAvatar)")]
        public string avatarId = "";
        [Tooltip("Voice for Speak; empty: the service's default voice")]
        public string voiceId = "";
        public SessionOptions options = new SessionOptions { WidthPx = 256, HeightPx = 256 };

        [Tooltip("Renderer whose material shows the face; empty: this GameObject's Renderer, if any")]
        public Renderer targetRenderer;
        [Tooltip("Texture property to set; empty: material.mainTexture and the render pipeline's property (_MainTex, _BaseMap, _UnlitColorMap)")]
        public string texturePropertyName = "";

        [Tooltip("Video (and streamed voice) received before the voice starts, so frames are there in time (ms)")]
        public int extraStartDelayMs = 300;
        [Tooltip("Audio Unity has mixed but the listener has not heard yet (ms); the frame shown moves back by it. -1: the DSP buffer (AudioSettings.GetDSPBufferSize); raise it on Android if the mouth leads the voice")]
        public int outputLatencyMs = -1;
        [Tooltip("Length of the looping microphone buffer (s); must exceed one frame's worth of audio")]
        public int microphoneBufferSeconds = 1;

        public UnityEvent onStarted = new UnityEvent();
        public UnityEvent onEnded = new UnityEvent();
        public AvatarFaceErrorEvent onError = new AvatarFaceErrorEvent();

        // The face texture (RGBA32, created when the first session starts). Assign it to a
        // RawImage or material yourself if you do not use targetRenderer.
        public Texture2D Texture { get { return _texture; } }

        public bool IsTalking { get { return _playback != null; } }

        // The session of the line being said (null between lines): its mouth curves follow the
        // same audio clock as the texture (AvatarLabBlendshapeDriver reads them).
        public FaceSession Session { get { return _playback != null ? _playback.Session : null; } }
    }
}
