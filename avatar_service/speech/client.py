"""Client side of Speak: raw stream, and whole arrays for offline rendering (`avatarlab render --text`)."""
from __future__ import annotations

from typing import Iterator

import numpy as np

from avatar_service.api import pb
from avatar_service.client import AvatarLabClient, Surface
from avatar_service.responses import items


def speak_stream(client: AvatarLabClient, avatar_id: str, text: str, voice_id: str = "",
                 video: pb.VideoOptions | None = None, generation: pb.GenerationOptions | None = None,
                 audio_sample_rate_hz: int = 0, timeout_s: float | None = None, motion_only: bool = False,
                 max_frames_per_message: int = 0) -> Iterator[pb.SpeakResponse]:
    """The raw SpeakResponse stream (a grpc call object: `.cancel()` stops the line); with
    max_frames_per_message > 1 frames may come in `frames` batches (avatar_service.responses.items)."""
    req = pb.SpeakRequest(avatar_id=avatar_id, text=text, voice_id=voice_id, video=video or pb.VideoOptions(),
                          generation=generation or pb.GenerationOptions(), audio_sample_rate_hz=audio_sample_rate_hz,
                          motion_only=motion_only, max_frames_per_message=max_frames_per_message)
    return client.stub.Speak(req, metadata=client.metadata, timeout=timeout_s)


def speak_to_arrays(client: AvatarLabClient, avatar_id: str, text: str, voice_id: str = "",
                    video: pb.VideoOptions | None = None, generation: pb.GenerationOptions | None = None,
                    audio_sample_rate_hz: int = 0) -> tuple[list[np.ndarray], np.ndarray, int]:
    """Whole frames (H, W, 3) uint8 RGB with deltas applied, mono float32 audio, and its sample rate."""
    return arrays_of(speak_stream(client, avatar_id, text, voice_id, video, generation, audio_sample_rate_hz))


def arrays_of(responses) -> tuple[list[np.ndarray], np.ndarray, int]:
    """speak_to_arrays of SpeakResponses already received."""
    frames: list[np.ndarray] = []
    pcm: list[bytes] = []
    surface, rate, ended = None, 0, False
    for kind, value in items(responses):
        if kind == "started":
            surface, rate = Surface(value.video), value.audio_sample_rate_hz
        elif kind == "audio":
            pcm.append(value.pcm_s16le)
        elif kind == "frame":
            surface.apply(value)
            frames.append(surface.image.copy())
        elif kind == "ended":
            ended = True
    if not ended:
        raise RuntimeError("the Speak stream closed without SessionEnded")
    audio = np.frombuffer(b"".join(pcm), "<i2").astype(np.float32) / 32768.0
    return frames, audio, rate
