"""Admission control: who a client is, the session caps (global and per client), and the CreateAvatar gate."""
from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
from typing import Callable

from avatar_service.errors import ResourceExhausted, Unauthenticated
from avatar_service.server.settings import Limits


def bearer_token(metadata) -> str | None:
    """The token of the one `authorization: Bearer <token>` header (scheme in any case), else None.

    Several `authorization` headers are refused: which one a proxy or the server would honour is
    ambiguous, and letting the last one win lets a client present two identities at once."""
    values = [v for k, v in metadata or () if k.lower() == "authorization"]
    if len(values) > 1:
        raise Unauthenticated(f"{len(values)} 'authorization' headers: send exactly one")
    if not values or not isinstance(values[0], str):
        return None
    scheme, _, token = values[0].strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def client_key(context, by_token: bool) -> str:
    """A client is its verified bearer token when auth is on, else its peer address (host, without port).

    Only the token itself counts (not the header's spelling), and only when the server checks tokens: without
    auth a header is just a string the client chooses, so it cannot be what the per-client cap counts."""
    if by_token:
        token = bearer_token(context.invocation_metadata())
        if token:  # hashed whole: tokens sharing a suffix are still different clients
            return "token:" + hashlib.sha256(token.encode()).hexdigest()[:16]
    peer = context.peer() or ""
    return peer.rsplit(":", 1)[0]


class SessionSlots:
    def __init__(self, limits: Limits, by_token: bool = False):
        self.limits = limits
        self.by_token = by_token
        self.active = 0
        self.per_client: collections.Counter[str] = collections.Counter()

    @contextlib.asynccontextmanager
    async def acquire(self, context):
        key = client_key(context, self.by_token)
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


class WorkGate:
    """At most `workers` calls work at once and `queued` more wait; any further call is refused at once.

    The interceptor enters the gate before it reads a call's request body, so waiting and refused calls
    cost no memory for their (possibly 16 MiB) bodies."""

    def __init__(self, what: str, workers: int, queued: int, after: Callable[[], None] | None = None):
        self.what, self.workers, self.queued = what, workers, queued
        self.after = after  # run off the event loop when a call leaves the gate (its request is garbage by then)
        self.admitted = 0
        self._slots: asyncio.Semaphore | None = None  # made on first use, inside the server's event loop

    @contextlib.asynccontextmanager
    async def enter(self):
        if self.admitted >= self.workers + self.queued:
            raise ResourceExhausted(f"{self.admitted} {self.what} calls are running or waiting, the server's limit; "
                                    "retry later")
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers)
        self.admitted += 1
        try:
            async with self._slots:
                yield
        finally:
            self.admitted -= 1
            if self.after is not None:
                await asyncio.to_thread(self.after)
