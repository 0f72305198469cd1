"""The avatar registry: metadata plus precomputed per-avatar state, behind one small interface."""
from __future__ import annotations

from avatar_service.store.base import POSTGRES_SCHEMES, AvatarRecord, AvatarStore
from avatar_service.store.local import LocalAvatarStore

__all__ = ["AvatarRecord", "AvatarStore", "LocalAvatarStore", "open_store"]


def open_store(location: str, sweep: bool = True) -> AvatarStore:
    """A `postgresql://` URL selects the shared PostgreSQL registry (for several replicas); anything else
    is a local directory (one server, or the processes of one `serve --processes N`; `sweep`: see
    LocalAvatarStore)."""
    if location.startswith(POSTGRES_SCHEMES):
        try:
            from avatar_service.store.postgres import PostgresAvatarStore
        except ImportError as e:
            raise ValueError(f"a PostgreSQL avatar store needs psycopg: pip install 'avatarlab[ops]' ({e})") from None
        return PostgresAvatarStore(location)
    return LocalAvatarStore(location, sweep)
