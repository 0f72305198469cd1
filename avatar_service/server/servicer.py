"""Thin translators between protobuf and the domain layer; no logic beyond reshaping messages."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import uuid

import grpc

from avatar_service import __version__
from avatar_service.api import pb, pb_grpc
from avatar_service.errors import FailedPrecondition, InvalidArgument
from avatar_service.runtime.audio_stream import AudioStream, SampleFormat
from avatar_service.runtime.frame_encoder import VideoSpec
from avatar_service.runtime.session import GenSpec, Session, SessionStats
from avatar_service.server import logs, translate
from avatar_service.server.avatars import VOICE_ID, Avatars, check_id
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

    @contextlib.asynccontextmanager
    async def _session(self, context, avatar_id: str, audio: AudioStream, video: VideoSpec, gen: GenSpec,
                       first_batch: int | None = 2, motion_only: bool = False, mouth=None):
        """The one way a stream opens a session: the avatar, a session slot, a session id on every log
        record of the stream."""
        avatar = await self.avatars.state(avatar_id)
        async with self.app.slots.acquire(context):
            session = Session(self.app.renderer, avatar, audio, video, gen, mouth or self.app.mouth,
                              first_batch=first_batch, motion_only=motion_only)
            session_id = uuid.uuid4().hex[:16]
            logs.session_id.set(session_id)  # every log record of this stream carries it
            self.app.metrics.session_started()
            log.info("session %s started: avatar %s", session_id, avatar_id, extra={"avatar_id": avatar_id})
            try:
                yield session, session_id
            finally:
                c = session.counters
                log.info("session %s ended after %d frames in %d messages", session_id, c.frames_sent, c.messages_sent,
                         extra={"frames_sent": c.frames_sent, "frame_messages": c.messages_sent})

    @staticmethod
    def _frame_messages(session: Session, run: list, per_message: int, response):
        """A run of the session's frames as `response` messages of at most `per_message` frames, counted."""
        for msg in translate.frame_messages(run, per_message, response):
            session.counters.messages_sent += 1
            yield msg

    async def Animate(self, request_iterator, context):
        self.app.require_ready()
        settings = self.app.settings
        requests = request_iterator.__aiter__()
        first = await first_message(requests, settings.config_timeout_s, "config message", "config_timeout_s")
        if first.WhichOneof("message") != "config":
            raise InvalidArgument("the first AnimateRequest must carry config (audio came before config)")
        cfg, model, limits = first.config, self.app.engine.backend.config, self.app.settings.limits
        video = translate.video_spec(cfg.video, self.app.settings.face_px)
        gen = translate.gen_spec(cfg.generation, model.serving.sampling)
        audio = translate.audio_stream(cfg.audio_format, model.mel.sample_rate_hz, limits.max_audio_seconds_per_session)
        per_message = translate.frames_per_message(cfg.max_frames_per_message)
        async with self._session(context, cfg.avatar_id, audio, video, gen, motion_only=cfg.motion_only,
                                 mouth=self.app.motion_mouth if cfg.motion_only else None) as (session, session_id):
            yield pb.AnimateResponse(started=translate.started_pb(session.info, session_id))
            # a client that sends no audio while no frames are due holds its slot only idle_session_timeout_s
            idle = IdleRequests(requests, settings.idle_session_timeout_s, "no audio and no frames due",
                                armed=lambda: not session.audio.ended)
            reader = asyncio.create_task(translate.read_audio_requests(idle, session))
            try:
                async for run in session.frame_runs():
                    idle.touch()
                    for msg in self._frame_messages(session, run, per_message, pb.AnimateResponse):
                        yield msg
                yield pb.AnimateResponse(ended=pb.SessionEnded(stats=translate.stats_pb(session.stats())))
            finally:
                idle.close()
                reader.cancel()

    async def Speak(self, request, context):
        self.app.require_ready()
        check_id(request.avatar_id, "avatar_id")
        check_id(request.voice_id, "voice_id", required=False, chars=VOICE_ID)
        speech = self.app.speech
        if speech is None:
            raise FailedPrecondition("text-to-speech is not installed on this server (pip install avatarlab[speech])")
        from avatar_service.speech.service import SpeakLine
        from avatar_service.speech.session import SpeechAudio, SpeechStarted
        from avatar_service.speech.text_mouth import TextMouth

        limits, model = self.app.settings.limits, self.app.engine.backend.config
        text, voice = speech.line(request.text, request.voice_id, limits.max_text_chars)
        out_rate = translate.check_rate(request.audio_sample_rate_hz or voice.sample_rate_hz, "audio_sample_rate_hz",
                                        f"0 (the voice's {voice.sample_rate_hz} Hz) or ")
        video = translate.video_spec(request.video, self.app.settings.face_px)
        gen = translate.gen_spec(request.generation, model.serving.sampling)
        per_message = translate.frames_per_message(request.max_frames_per_message)
        audio = AudioStream(SampleFormat.F32LE, voice.sample_rate_hz, 1, model.mel.sample_rate_hz,
                            limits.max_audio_seconds_per_session)
        async with self._session(context, request.avatar_id, audio, video, gen, first_batch=speech.config.first_batch,
                                 motion_only=request.motion_only, mouth=TextMouth(self.app.mouth)
                                 ) as (session, session_id):
            async for ev in speech.speak(SpeakLine(text, voice, out_rate, per_message), session):
                if isinstance(ev, list):  # a run of frames, at most per_message
                    for msg in self._frame_messages(session, ev, per_message, pb.SpeakResponse):
                        yield msg
                elif isinstance(ev, SpeechAudio):
                    yield pb.SpeakResponse(audio=pb.SpeechAudio(pcm_s16le=ev.pcm_s16le, pts_ms=ev.pts_ms))
                elif isinstance(ev, SpeechStarted):
                    yield pb.SpeakResponse(started=pb.SpeechStarted(
                        video=translate.started_pb(ev.video, session_id), audio_sample_rate_hz=ev.audio_sample_rate_hz,
                        voice_id=ev.voice_id))
                elif isinstance(ev, SessionStats):
                    yield pb.SpeakResponse(ended=pb.SessionEnded(stats=translate.stats_pb(ev)))

    async def GetServerInfo(self, request, context):
        s, b = self.app.settings, self.app.engine.backend
        import google.protobuf
        import numpy
        import torch

        lim = s.limits
        voices = [pb.Voice(voice_id=v.config.voice_id, language=v.config.language, backend=v.backend_name,
                           sample_rate_hz=v.sample_rate_hz, license=v.license)
                  for v in (self.app.speech.voices() if self.app.speech else [])]
        return pb.ServerInfo(
            server_version=__version__, api_version="avatarlab.v1", model_id=self.avatars.model_id,
            backend=b.name, device=b.device, model_sample_rate_hz=b.config.mel.sample_rate_hz, face_size_px=s.face_px,
            default_sampler_steps=b.config.serving.sampling.default_steps,
            default_guidance_scale=b.config.serving.sampling.default_guidance,
            limits=pb.Limits(**{k: v for k, v in lim.model_dump().items() if k in pb.Limits.DESCRIPTOR.fields_by_name}),
            voices=voices,
            versions={"python": platform.python_version(), "grpcio": grpc.__version__, "torch": torch.__version__,
                      "numpy": numpy.__version__, "protobuf": google.protobuf.__version__})
