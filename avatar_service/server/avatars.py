"""Avatar domain logic: create from media, look up, list, delete; loaded states cached in memory."""
from __future__ import annotations

import asyncio
import collections
import threading
import time
import uuid

from avatar_service.errors import InvalidArgument, NotFound, ResourceExhausted
from avatar_service.face.detect import FaceDetector, FaceError
from avatar_service.media import MediaError, MediaTooLarge, decode_image, decode_video
from avatar_service.runtime.avatar import AvatarState
from avatar_service.runtime.avatar_setup import prepare_avatar
from avatar_service.runtime.warp_renderer import texture_meshes
from avatar_service.runtime.backend import Backend
from avatar_service.runtime.models import model_id
from avatar_service.server.settings import ServerSettings
from avatar_service.store import AvatarRecord, AvatarStore

PORTRAIT, IDLE_VIDEO = 1, 2


class Avatars:
    def __init__(self, store: AvatarStore, backend: Backend, settings: ServerSettings, cache_size: int = 64):
        self.store, self.backend, self.settings = store, backend, settings
        self.model_id = model_id(backend)
        self._cache: collections.OrderedDict[str, AvatarState] = collections.OrderedDict()
        self._cache_size = cache_size
        self._local = threading.local()  # one face detector per worker thread
        # Avatar creation is heavy (detection, encoding); bound how many run at once.
        self._create_slots = asyncio.Semaphore(2)
        self._creating = 0  # admitted, not yet stored; counted against max_avatars so racing creates cannot overshoot

    def _detector(self) -> FaceDetector:
        if not hasattr(self._local, "det"):
            self._local.det = FaceDetector()
        return self._local.det

    async def create(self, display_name: str, portrait: bytes | None, video: bytes | None) -> AvatarRecord:
        if len(display_name) > 128:
            raise InvalidArgument("display_name is longer than 128 characters")
        if not portrait and not video:
            raise InvalidArgument("set portrait_image or idle_video")
        if await asyncio.to_thread(self.store.count) + self._creating >= self.settings.limits.max_avatars:
            raise ResourceExhausted(f"the avatar store holds its limit of {self.settings.limits.max_avatars} avatars; "
                                    "delete some first")
        self._creating += 1
        try:
            async with self._create_slots:
                state = await asyncio.to_thread(self._prepare, portrait, video)
                record = AvatarRecord(
                    avatar_id=uuid.uuid4().hex[:20], display_name=display_name,
                    source_kind=PORTRAIT if portrait else IDLE_VIDEO, face_px=state.texture_px,
                    pose_frame_count=state.pose_count, create_time_unix_ms=int(time.time() * 1000), model_id=self.model_id)
                await asyncio.to_thread(self.store.put, record, state.to_bytes())
        finally:
            self._creating -= 1
        self._remember(record.avatar_id, state)
        return record

    def _prepare(self, portrait: bytes | None, video: bytes | None) -> AvatarState:
        lim = self.settings.limits
        try:
            if portrait:
                frames = [decode_image(portrait, lim.max_portrait_pixels)]
            else:
                frames = decode_video(video, lim.max_idle_video_seconds, fps=25.0, max_pixels=lim.max_portrait_pixels)
            return prepare_avatar(self.backend, frames, self.settings.face_px, self._detector(),
                                  require_mesh=self.settings.renderer == "warp")
        except MediaTooLarge as e:
            raise ResourceExhausted(str(e)) from None
        except (MediaError, FaceError) as e:
            raise InvalidArgument(str(e)) from None

    def get(self, avatar_id: str) -> AvatarRecord:
        if not avatar_id:
            raise InvalidArgument("avatar_id is required")
        rec = self.store.get(avatar_id)
        if rec is None:
            raise NotFound(f"avatar {avatar_id!r} does not exist")
        return rec

    async def state(self, avatar_id: str) -> AvatarState:
        # The registry may be shared by several replicas: ask it (metadata only, cheap) on every session,
        # so an avatar deleted through another replica stops here too; only the heavy state is cached.
        rec = await asyncio.to_thread(self.get, avatar_id)
        if avatar_id in self._cache:
            self._cache.move_to_end(avatar_id)
            return self._cache[avatar_id]
        if rec.model_id.split("@")[-1] != self.model_id.split("@")[-1]:
            raise InvalidArgument(f"avatar {avatar_id!r} was made for model {rec.model_id}; this server runs "
                                  f"{self.model_id}: create it again")
        data = await asyncio.to_thread(self.store.load_state, avatar_id)
        if data is None:
            raise NotFound(f"avatar {avatar_id!r} does not exist")
        state = await asyncio.to_thread(AvatarState.from_bytes, data)
        if state.meshes is None and self.settings.renderer == "warp":  # stored before the warp renderer
            try:
                state.meshes = await asyncio.to_thread(texture_meshes, state.textures, True)
            except FaceError as e:
                raise InvalidArgument(f"avatar {avatar_id!r}: {e}") from None
        self._remember(avatar_id, state)
        return state

    def _remember(self, avatar_id: str, state: AvatarState) -> None:
        self._cache[avatar_id] = state
        self._cache.move_to_end(avatar_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def list(self, page_size: int, page_token: str) -> tuple[list[AvatarRecord], str]:
        if page_size < 0:
            raise InvalidArgument("page_size must not be negative")
        size = min(page_size or 100, 1000)
        try:
            start = int(page_token) if page_token else 0
        except ValueError:
            raise InvalidArgument("page_token is not one this server issued") from None
        records = self.store.list()
        page = records[start:start + size]
        nxt = str(start + size) if start + size < len(records) else ""
        return page, nxt

    def delete(self, avatar_id: str) -> None:
        if not avatar_id:
            raise InvalidArgument("avatar_id is required")
        self._cache.pop(avatar_id, None)
        if not self.store.delete(avatar_id):
            raise NotFound(f"avatar {avatar_id!r} does not exist")
