"""Avatar domain logic: create from media, look up, list, delete; loaded states cached in memory.

Everything a client sends is checked here before it is used: ids and names are bounded, page tokens are
ones this registry issued, and an idle video is decoded frame by frame into no more than the avatar keeps."""
from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import hmac
import os
import re
import struct
import threading
import time
import unicodedata
import uuid

import numpy as np

from avatar_service.api import pb
from avatar_service.errors import InvalidArgument, NotFound, ResourceExhausted, quote
from avatar_service.face.detect import FaceDetector, FaceError
from avatar_service.media import MediaError, MediaTooLarge, decode_image, decode_video
from avatar_service.runtime.avatar import AvatarState
from avatar_service.runtime.avatar_setup import prepare_avatar
from avatar_service.runtime.warp_renderer import texture_meshes
from avatar_service.runtime.backend import Backend
from avatar_service.runtime.models import model_id
from avatar_service.server.settings import ServerSettings
from avatar_service.store import AvatarRecord, AvatarStore

PORTRAIT, IDLE_VIDEO = pb.AVATAR_SOURCE_KIND_PORTRAIT, pb.AVATAR_SOURCE_KIND_IDLE_VIDEO  # stored as these numbers
VIDEO_FPS = 25.0
MAX_ID_CHARS = 64
_ID = re.compile(r"[A-Za-z0-9._-]+")  # avatar ids (the server makes them: hex)
VOICE_ID = re.compile(r"[!-~]+")  # voice ids are the operator's choice ("espeak-ng/en-us"): visible ASCII
# Unicode categories a display name may not hold: controls, invisible formatting (bidi overrides, zero-width
# joiners), line and paragraph separators, surrogates, private use, unassigned.
_UNPRINTABLE = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


def check_id(value: str, field: str, required: bool = True, chars: re.Pattern = _ID) -> None:
    """Ids are at most 64 characters of `chars` (avatar ids: A-Z a-z 0-9 . _ -); anything else is refused
    before any lookup."""
    if not value:
        if required:
            raise InvalidArgument(f"{field} is required")
        return
    if len(value) > MAX_ID_CHARS:
        raise InvalidArgument(f"{field} is {len(value)} characters long; ids are at most {MAX_ID_CHARS}")
    if not chars.fullmatch(value):
        allowed = "A-Z a-z 0-9 . _ -" if chars is _ID else "visible ASCII"
        raise InvalidArgument(f"{field} {quote(value)} has characters no id has (only {allowed})")


def check_display_name(name: str, max_chars: int) -> None:
    if len(name) > max_chars:
        raise InvalidArgument(f"display_name is {len(name)} characters long; the limit is {max_chars}")
    for i, ch in enumerate(name):
        if unicodedata.category(ch) in _UNPRINTABLE:
            raise InvalidArgument(f"display_name has an unprintable character U+{ord(ch):04X} at position {i}: "
                                  "no control, bidirectional-override or invisible formatting characters")


class PageTokens:
    """Opaque page tokens: an offset signed with a key derived from the registry's location, so replicas that
    share a registry accept each other's tokens and nothing else is taken for one."""

    def __init__(self, registry: str):
        self._key = hashlib.sha256(b"avatarlab page token\0" + registry.encode()).digest()

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:12]

    def issue(self, offset: int) -> str:
        body = struct.pack(">BQ", 1, offset)
        return base64.urlsafe_b64encode(body + self._mac(body)).decode().rstrip("=")

    def offset(self, token: str) -> int:
        if not token:
            return 0
        try:
            raw = base64.urlsafe_b64decode(token.encode("ascii") + b"=" * (-len(token) % 4))
        except (ValueError, UnicodeEncodeError):
            raw = b""
        body, mac = raw[:9], raw[9:]
        if len(raw) != 21 or not hmac.compare_digest(mac, self._mac(body)):
            raise InvalidArgument("page_token is not one this server issued; start again with an empty token")
        return struct.unpack(">BQ", body)[1]


class FaceWindowFrames:
    """Converts an idle video's frames, one at a time, to the part the avatar uses: a square around the first
    frame's face (3.2 face widths: the texture window is 1.9, the rest is room for head motion), scaled so the
    face has no more pixels than the avatar samples it at and all frames together fit `budget_bytes`."""

    def __init__(self, detector: FaceDetector, face_px: int, crop_px: int, budget_bytes: int, max_frames: int):
        self.detector, self.face_px, self.crop_px = detector, face_px, crop_px
        self.frame_bytes = budget_bytes / max_frames
        self.region: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1 in source pixels
        self.scale = 1.0

    def _plan(self, frame) -> None:
        faces = self.detector.detect(frame.to_ndarray(format="rgb24"))  # one full frame, then never again
        if not faces:
            raise FaceError("no face in the video's first frame: trim the video to start on the face")
        x, y, w, h = faces[0].box
        side, cx, cy = max(w, h), x + w / 2, y + h / 2
        half = 1.6 * side
        x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
        x1, y1 = min(frame.width, int(np.ceil(cx + half))), min(frame.height, int(np.ceil(cy + half)))
        self.region = (x0, y0, x1, y1)
        need = max(self.face_px / 1.9, self.crop_px) / side  # the texture window is 1.9 face widths
        fit = (self.frame_bytes / (3 * (x1 - x0) * (y1 - y0))) ** 0.5
        self.scale = min(1.0, need, fit)

    def __call__(self, frame) -> np.ndarray:
        if self.region is None:
            self._plan(frame)
        s = self.scale
        x0, y0, x1, y1 = (round(v * s) for v in self.region)
        if s < 1.0:
            frame = frame.reformat(width=max(1, round(frame.width * s)), height=max(1, round(frame.height * s)))
        return np.ascontiguousarray(frame.to_ndarray(format="rgb24")[y0:y1, x0:x1])


def _nbytes(state: AvatarState) -> int:
    return sum(v.nbytes for v in vars(state).values() if isinstance(v, np.ndarray))


class Avatars:
    def __init__(self, store: AvatarStore, backend: Backend, settings: ServerSettings):
        self.store, self.backend, self.settings = store, backend, settings
        self.model_id = model_id(backend)
        self.pages = PageTokens(settings.store_url or os.path.abspath(settings.store_dir))
        # Decoded states of avatars in use, least recently used first, bounded in bytes (an idle-video avatar
        # at 256 px is about 50 MB, a portrait's well under 1 MB).
        self._cache: collections.OrderedDict[str, AvatarState] = collections.OrderedDict()
        self._cache_bytes = 0
        self._local = threading.local()  # one face detector per worker thread
        # How many creates run at once is bounded at the edge (WorkGate), before their bodies are read.
        self._creating = 0  # admitted, not yet stored; counted against max_avatars so racing creates cannot overshoot

    def _detector(self) -> FaceDetector:
        if not hasattr(self._local, "det"):
            self._local.det = FaceDetector()
        return self._local.det

    async def create(self, display_name: str, portrait: bytes | None, video: bytes | None) -> AvatarRecord:
        check_display_name(display_name, self.settings.limits.max_display_name_chars)
        if not portrait and not video:
            raise InvalidArgument("set portrait_image or idle_video")
        if await asyncio.to_thread(self.store.count) + self._creating >= self.settings.limits.max_avatars:
            raise ResourceExhausted(f"the avatar store holds its limit of {self.settings.limits.max_avatars} avatars; "
                                    "delete some first")
        self._creating += 1
        try:
            state = await asyncio.to_thread(self._prepare, portrait, video)
            record = AvatarRecord(
                avatar_id=uuid.uuid4().hex[:20], display_name=display_name,
                source_kind=PORTRAIT if portrait else IDLE_VIDEO, face_px=state.texture_px,
                pose_frame_count=state.pose_count, create_time_unix_ms=int(time.time() * 1000), model_id=self.model_id)
            await asyncio.to_thread(self.store.put, record, state.to_bytes())
        finally:
            self._creating -= 1
        # Not cached here: a burst of creates must not fill memory with states nobody animates yet. The first
        # session loads it from the store (milliseconds).
        return record

    def _prepare(self, portrait: bytes | None, video: bytes | None) -> AvatarState:
        lim = self.settings.limits
        try:
            if portrait:
                frames = [decode_image(portrait, lim.max_portrait_pixels)]
            else:
                max_frames = int(lim.max_idle_video_seconds * VIDEO_FPS) + 2
                window = FaceWindowFrames(self._detector(), self.settings.face_px, self.backend.config.layout.crop_px,
                                          lim.max_idle_video_frame_bytes, max_frames)
                frames = decode_video(video, lim.max_idle_video_seconds, fps=VIDEO_FPS,
                                      max_pixels=lim.max_portrait_pixels, convert=window)
            return prepare_avatar(self.backend, frames, self.settings.face_px, self._detector(),
                                  require_mesh=self.settings.renderer == "warp")
        except MediaTooLarge as e:
            raise ResourceExhausted(str(e)) from None
        except (MediaError, FaceError) as e:
            raise InvalidArgument(str(e)) from None

    def get(self, avatar_id: str) -> AvatarRecord:
        check_id(avatar_id, "avatar_id")
        rec = self.store.get(avatar_id)
        if rec is None:
            raise NotFound(f"avatar {quote(avatar_id)} does not exist")
        return rec

    async def state(self, avatar_id: str) -> AvatarState:
        # The registry may be shared by several replicas: ask it (metadata only, cheap) on every session,
        # so an avatar deleted through another replica stops here too; only the heavy state is cached.
        rec = await asyncio.to_thread(self.get, avatar_id)
        if avatar_id in self._cache:
            self._cache.move_to_end(avatar_id)
            return self._cache[avatar_id]
        if rec.model_id.split("@")[-1] != self.model_id.split("@")[-1]:
            raise InvalidArgument(f"avatar {quote(avatar_id)} was made for model {rec.model_id}; this server runs "
                                  f"{self.model_id}: create it again")
        data = await asyncio.to_thread(self.store.load_state, avatar_id)
        if data is None:
            raise NotFound(f"avatar {quote(avatar_id)} does not exist")
        state = await asyncio.to_thread(AvatarState.from_bytes, data)
        if state.meshes is None and self.settings.renderer == "warp":  # stored before the warp renderer
            try:
                state.meshes = await asyncio.to_thread(texture_meshes, state.textures, True)
            except FaceError as e:
                raise InvalidArgument(f"avatar {quote(avatar_id)}: {e}") from None
        self._remember(avatar_id, state)
        return state

    def _remember(self, avatar_id: str, state: AvatarState) -> None:
        self._forget(avatar_id)
        self._cache[avatar_id] = state
        self._cache_bytes += _nbytes(state)
        while self._cache_bytes > self.settings.limits.avatar_cache_bytes and len(self._cache) > 1:
            self._forget(next(iter(self._cache)))

    def _forget(self, avatar_id: str) -> None:
        state = self._cache.pop(avatar_id, None)
        if state is not None:
            self._cache_bytes -= _nbytes(state)

    def list(self, page_size: int, page_token: str) -> tuple[list[AvatarRecord], str]:
        if page_size < 0:
            raise InvalidArgument("page_size must not be negative")
        size = min(page_size or 100, 1000)
        start = self.pages.offset(page_token)
        records = self.store.list()
        page = records[start:start + size]
        nxt = self.pages.issue(start + size) if start + size < len(records) else ""
        return page, nxt

    def delete(self, avatar_id: str) -> None:
        check_id(avatar_id, "avatar_id")
        self._forget(avatar_id)
        if not self.store.delete(avatar_id):
            raise NotFound(f"avatar {quote(avatar_id)} does not exist")
