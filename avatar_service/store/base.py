from __future__ import annotations

import dataclasses
from typing import Protocol


@dataclasses.dataclass(frozen=True)
class AvatarRecord:
    avatar_id: str
    display_name: str
    source_kind: int  # AvatarSourceKind value
    face_px: int
    pose_frame_count: int
    create_time_unix_ms: int
    model_id: str


class AvatarStore(Protocol):
    """Durable: `put` returns only once the avatar survives a crash; a crash during `put` leaves nothing."""

    def put(self, record: AvatarRecord, state: bytes) -> None: ...
    def get(self, avatar_id: str) -> AvatarRecord | None: ...
    def load_state(self, avatar_id: str) -> bytes | None: ...
    def list(self) -> list[AvatarRecord]: ...  # oldest first
    def delete(self, avatar_id: str) -> bool: ...
    def count(self) -> int: ...


POSTGRES_SCHEMES = ("postgresql://", "postgres://")  # locations open_store sends to the shared registry
