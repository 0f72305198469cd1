"""Thin translators between protobuf and the domain layer; no logic beyond reshaping messages."""
from __future__ import annotations

import asyncio
import logging
import platform
import uuid

import grpc

from avatar_service import __version__
from avatar_service.api import pb, pb_grpc
from avatar_service.errors import InvalidArgument
from avatar_service.runtime.audio_stream import AudioStream
from avatar_service.server.animate import FrameProducer, GenSpec, read_audio_requests
from avatar_service.server import logs
from avatar_service.server.avatars import VOICE_ID, Avatars, check_id
from avatar_service.server.frames import VideoSpec
from avatar_service.server.wire import IdleRequests, first_message
from avatar_service.store import AvatarRecord

log = logging.getLogger(__name__)

def avatar_pb(r: AvatarRecord) -> pb.Avatar:
    return pb.Avatar(avatar_id=r.avatar_id, display_name=r.display_name, source_kind=r.source_kind,
                     face_width_px=r.face_px, face_height_px=r.face_px, pose_frame_count=r.pose_frame_count,
                     create_time_unix_ms=r.create_time_unix_ms, model_id=r.model_id)


class AvatarServicer(pb_grpc.AvatarServiceServicer):
    def __init__(self, app):
        self.app = app  # avatar_service.server.app.App: avatars, engine, settings, slots, speech

    @property
    def avatars(self) -> Avatars:
        return self.app.avatars

    async def CreateAvatar(self, request, context):
        self.app.require_ready()
        kind = request.WhichOneof("source")
        rec = await self.avatars.create(request.display_name, request.portrait_image if kind == "portrait_image" else None,
                                        request.idle_video if kind == "idle_video" else None)
        return avatar_pb(rec)

    # The registry may be a database across the network: its calls run off the event loop.
    async def GetAvatar(self, request, context):
        return avatar_pb(await asyncio.to_thread(self.avatars.get, request.avatar_id))

    async def ListAvatars(self, request, context):
        page, token = await asyncio.to_thread(self.avatars.list, request.page_size, request.page_token)
        return pb.ListAvatarsResponse(avatars=[avatar_pb(r) for r in page], next_page_token=token)

    async def DeleteAvatar(self, request, context):
        await asyncio.to_thread(self.avatars.delete, request.avatar_id)
        return pb.DeleteAvatarResponse()

    async def Animate(self, request_iterator, context):
        self.app.require_ready()
        settings = self.app.settings
        requests = request_iterator.__aiter__()
        first = await first_message(requests, settings.config_timeout_s, "config message", "config_timeout_s")
        if first.WhichOneof("message") != "config":
            raise InvalidArgument("the first AnimateRequest must carry config (audio came before config)")
        cfg = first.config
        model = self.app.engine.backend.config
        video = VideoSpec.from_options(cfg.video, self.app.settings.face_px)
        gen = GenSpec.from_options(cfg.generation, model.sampling.default_steps, model.sampling.default_guidance)
        audio = AudioStream(cfg.audio_format.encoding, cfg.audio_format.sample_rate_hz, cfg.audio_format.channels,
                            model.mel.sample_rate_hz, self.app.settings.limits.max_audio_seconds_per_session)
        avatar = await self.avatars.state(cfg.avatar_id)
        async with self.app.slots.acquire(context):
            producer = FrameProducer(self.app.engine, avatar, audio, video, gen)
            session_id = uuid.uuid4().hex[:16]
            logs.session_id.set(session_id)  # every log record of this stream carries it
            self.app.metrics.session_started()
            log.info("session %s started: avatar %s", session_id, cfg.avatar_id, extra={"avatar_id": cfg.avatar_id})
            yield pb.AnimateResponse(started=producer.started(session_id))
            # a client that sends no audio while no frames are due holds its slot only idle_session_timeout_s
            idle = IdleRequests(requests, settings.idle_session_timeout_s, "no audio and no frames due",
                                armed=lambda: not producer.audio.ended)
            reader = asyncio.create_task(read_audio_requests(idle, producer))
            try:
                async for frame in producer.frames():
                    idle.touch()
                    yield pb.AnimateResponse(frame=frame)
                yield pb.AnimateResponse(ended=pb.SessionEnded(stats=producer.stats()))
            finally:
                reader.cancel()
                log.info("session %s ended after %d frames", session_id, producer.counters.frames_sent,
                         extra={"frames_sent": producer.counters.frames_sent})

    async def Speak(self, request, context):
        self.app.require_ready()
        check_id(request.avatar_id, "avatar_id")
        check_id(request.voice_id, "voice_id", required=False, chars=VOICE_ID)
        if self.app.speech is None:
            from avatar_service.errors import FailedPrecondition
            raise FailedPrecondition("text-to-speech is not installed on this server (pip install avatarlab[speech])")
        async for msg in self.app.speech.speak(request, context):
            yield msg

    async def GetServerInfo(self, request, context):
        s, b = self.app.settings, self.app.engine.backend
        import google.protobuf
        import numpy
        import torch

        lim = s.limits
        voices = self.app.speech.voices() if self.app.speech else []
        return pb.ServerInfo(
            server_version=__version__, api_version="avatarlab.v1", model_id=self.avatars.model_id,
            backend=b.name, device=b.device, model_sample_rate_hz=b.config.mel.sample_rate_hz, face_size_px=s.face_px,
            default_sampler_steps=b.config.sampling.default_steps,
            default_guidance_scale=b.config.sampling.default_guidance,
            limits=pb.Limits(**{k: v for k, v in lim.model_dump().items() if k in pb.Limits.DESCRIPTOR.fields_by_name}),
            voices=voices,
            versions={"python": platform.python_version(), "grpcio": grpc.__version__, "torch": torch.__version__,
                      "numpy": numpy.__version__, "protobuf": google.protobuf.__version__})
