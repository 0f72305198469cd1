"""Admission control for streaming sessions: a global cap and a per-client cap."""
from __future__ import annotations

import collections
import contextlib
import hashlib

from avatar_service.errors import ResourceExhausted
from avatar_service.server.settings import Limits


def client_key(context) -> str:
    """A client is its bearer token when auth is on, else its peer address (host, without port)."""
    md = dict(context.invocation_metadata() or ())
    if md.get("authorization"):  # hashed whole: tokens sharing a suffix are still different clients
        return "token:" + hashlib.sha256(md["authorization"].encode()).hexdigest()[:16]
    peer = context.peer() or ""
    return peer.rsplit(":", 1)[0]


class SessionSlots:
    def __init__(self, limits: Limits):
        self.limits = limits
        self.active = 0
        self.per_client: collections.Counter[str] = collections.Counter()

    @contextlib.asynccontextmanager
    async def acquire(self, context):
        key = client_key(context)
        if self.active >= self.limits.max_concurrent_sessions:
            raise ResourceExhausted(f"the server runs its limit of {self.limits.max_concurrent_sessions} sessions; retry later")
        if self.per_client[key] >= self.limits.max_sessions_per_client:
            raise ResourceExhausted(f"this client has its limit of {self.limits.max_sessions_per_client} open sessions")
        self.active += 1
        self.per_client[key] += 1
        try:
            yield
        finally:
            self.active -= 1
            self.per_client[key] -= 1
            if not self.per_client[key]:
                del self.per_client[key]
