"""A small Python client for the AvatarLab service (blocking API over grpc)."""
from __future__ import annotations

import dataclasses
import pathlib
import threading
from typing import Iterator

import grpc
import numpy as np

from avatar_service.api import pb, pb_grpc
from avatar_service.responses import items


@dataclasses.dataclass
class Frame:
    index: int
    pts_ms: int
    image: np.ndarray  # (H, W, 3) uint8 RGB: the whole frame, deltas already applied


class Surface:
    """The persistent image a delta stream is drawn on (what an engine texture holds)."""

    def __init__(self, started: pb.SessionStarted):
        self.fmt = started.pixel_format or pb.PIXEL_FORMAT_RGBA8
        self.image = np.zeros((started.height_px, started.width_px, 3), np.uint8)
        self.apply(started.base_frame)

    def apply(self, f: pb.VideoFrame) -> None:
        r = f.rect
        if r.width == 0 or r.height == 0:
            return
        if self.fmt == pb.PIXEL_FORMAT_JPEG:
            import cv2
            px = cv2.imdecode(np.frombuffer(f.pixels, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
        else:
            ch = 3 if self.fmt == pb.PIXEL_FORMAT_RGB8 else 4
            px = np.frombuffer(f.pixels, np.uint8).reshape(r.height, r.width, ch)[..., :3]
        self.image[r.y:r.y + r.height, r.x:r.x + r.width] = px


class AvatarLabClient:
    def __init__(self, target: str = "127.0.0.1:50051", token: str | None = None,
                 credentials: grpc.ChannelCredentials | None = None):
        opts = [("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ("grpc.max_send_message_length", 64 * 1024 * 1024)]
        self.channel = grpc.secure_channel(target, credentials, opts) if credentials else grpc.insecure_channel(target, opts)
        self.stub = pb_grpc.AvatarServiceStub(self.channel)
        self.metadata = [("authorization", f"Bearer {token}")] if token else None

    def close(self) -> None:
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        grpc.channel_ready_future(self.channel).result(timeout=timeout_s)

    def create_avatar(self, image: bytes | str | pathlib.Path | None = None, video: bytes | str | pathlib.Path | None = None,
                      display_name: str = "") -> pb.Avatar:
        def read(x):
            return x if isinstance(x, (bytes, bytearray)) else pathlib.Path(x).read_bytes()
        req = pb.CreateAvatarRequest(display_name=display_name)
        if image is not None:
            req.portrait_image = read(image)
        elif video is not None:
            req.idle_video = read(video)
        return self.stub.CreateAvatar(req, metadata=self.metadata)

    def server_info(self) -> pb.ServerInfo:
        return self.stub.GetServerInfo(pb.GetServerInfoRequest(), metadata=self.metadata)

    def animate_stream(self, avatar_id: str, audio: np.ndarray, sample_rate_hz: int, chunk_ms: int = 100,
                       video: pb.VideoOptions | None = None, generation: pb.GenerationOptions | None = None,
                       realtime: bool = False, motion_only: bool = False,
                       max_frames_per_message: int = 0) -> Iterator[pb.AnimateResponse]:
        """Raw responses of one Animate session fed from a mono float array (with max_frames_per_message > 1
        frames may come in `frames` batches: avatar_service.responses.items unpacks them)."""
        pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
        step = max(1, sample_rate_hz * chunk_ms // 1000)

        def requests():
            yield pb.AnimateRequest(config=pb.AnimateConfig(
                avatar_id=avatar_id, video=video or pb.VideoOptions(), generation=generation or pb.GenerationOptions(),
                motion_only=motion_only, max_frames_per_message=max_frames_per_message,
                audio_format=pb.AudioFormat(encoding=pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=sample_rate_hz, channels=1)))
            for i in range(0, len(pcm), step):
                if realtime:
                    threading.Event().wait(chunk_ms / 1000)
                yield pb.AnimateRequest(audio=pb.AudioChunk(data=pcm[i:i + step].tobytes()))
            yield pb.AnimateRequest(end_of_audio=pb.EndOfAudio())
        return self.stub.Animate(requests(), metadata=self.metadata)

    def animate(self, avatar_id: str, audio: np.ndarray, sample_rate_hz: int, **kw) -> tuple[list[Frame], pb.SessionStats]:
        """Whole frames (deltas applied) and the session's stats."""
        frames, surface, stats = [], None, None
        for kind, value in items(self.animate_stream(avatar_id, audio, sample_rate_hz, **kw)):
            if kind == "started":
                surface = Surface(value)
            elif kind == "frame":
                surface.apply(value)
                frames.append(Frame(value.index, value.pts_ms, surface.image.copy()))
            elif kind == "ended":
                stats = value.stats
        return frames, stats
