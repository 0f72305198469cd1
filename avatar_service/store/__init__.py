"""The avatar registry: metadata plus precomputed per-avatar state, behind one small interface."""
from avatar_service.store.base import AvatarRecord, AvatarStore
from avatar_service.store.local import LocalAvatarStore

__all__ = ["AvatarRecord", "AvatarStore", "LocalAvatarStore"]
