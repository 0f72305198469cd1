"""The server's edge: the one place that maps exceptions to gRPC status codes, bearer-token authentication,
admission before a request body is read, and timeouts for clients that stall.

Domain errors keep their code and message (cut to MAX_STATUS_BYTES); anything else becomes INTERNAL with a
generic message and an incident id, while the traceback goes to the log (kserve's pattern).

Every method is served as a request-streaming handler, whatever its declared shape, so this module decides
when a request body is read: after the token check and after admission (CreateAvatar's gate), and only for
`message_timeout_s`. Responses are written with `context.write` under `stalled_reader_timeout_s`, so a peer
that stops reading (never opens its HTTP/2 flow-control window) loses its call and its session slot."""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import inspect
import logging
import uuid
from typing import Callable

import grpc

from avatar_service.errors import AvatarLabError, Unauthenticated
from avatar_service.server.sessions import WorkGate, bearer_token
from avatar_service.server.wire import CheckedRequests, Watchdog, first_message, tolerant_deserializer

log = logging.getLogger(__name__)

HEALTH, REFLECTION = "/grpc.health.v1.Health/", "/grpc.reflection."
# gRPC sends the status message as an HTTP/2 trailer: a long one (past ~64 KiB) is never delivered and stalls
# every call on the connection. Ours are a sentence; this bound catches any value a message quotes.
MAX_STATUS_BYTES = 400

ErrorHook = Callable[[str, grpc.StatusCode], None]  # (method, code): counts errors by status code


def bounded(message: str, limit: int = MAX_STATUS_BYTES) -> str:
    data = message.encode("utf-8", "replace")
    if len(data) <= limit:
        return message
    return data[:limit - 16].decode("utf-8", "ignore") + " ... (truncated)"


@dataclasses.dataclass(frozen=True)
class EdgePolicy:
    tokens: tuple[bytes, ...] = ()  # empty: no authentication
    open_methods: tuple[str, ...] = (HEALTH,)  # method prefixes that need no token
    message_timeout_s: float = 10.0
    stalled_reader_timeout_s: float = 20.0
    gates: dict[str, WorkGate] = dataclasses.field(default_factory=dict)  # method -> gate entered before the body

    @classmethod
    def from_settings(cls, s, gates: dict[str, WorkGate] | None = None) -> "EdgePolicy":
        open_methods = (HEALTH,) * s.health_without_token + (REFLECTION,) * s.reflection_without_token
        return cls(tuple(t.encode() for t in s.auth_tokens), open_methods, s.message_timeout_s,
                   s.stalled_reader_timeout_s, gates or {})


class WriteWatch:
    """Writes a call's responses; a write that waits `timeout_s` for the peer's flow-control window (the
    peer reads nothing) cancels the call's task, with `stalled` set (one Watchdog per call)."""

    def __init__(self, timeout_s: float):
        self.timeout_s, self.stalled = timeout_s, False
        self._since: float | None = None  # when the pending write began
        self._task: asyncio.Task | None = None
        self._watch: Watchdog | None = None

    async def write(self, context, item) -> None:
        # context.write completes once HTTP/2 flow control lets the message out, so this waits on the peer
        if self._watch is None:
            self._task = asyncio.current_task()
            self._watch = Watchdog(self.timeout_s, lambda: self._since, self._stall)
        self._since = asyncio.get_running_loop().time()
        try:
            await context.write(item)
        finally:
            self._since = None

    def _stall(self) -> None:
        self.stalled = True
        self._task.cancel()

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()


class EdgeCall:
    """One method's handler, wrapped: authenticate, admit, read the body, run, write, map errors."""

    def __init__(self, policy: EdgePolicy, method: str, behavior, streaming_request: bool, on_error: ErrorHook):
        self.policy, self.method, self.behavior, self.on_error = policy, method, behavior, on_error
        self.streaming_request = streaming_request
        self.needs_token = bool(policy.tokens) and not method.startswith(policy.open_methods)
        self.gate = policy.gates.get(method)

    def authenticate(self, context) -> None:
        if not self.needs_token:
            return
        token = bearer_token(context.invocation_metadata())
        if token is None or not any(hmac.compare_digest(token.encode(), t) for t in self.policy.tokens):
            raise Unauthenticated("missing or invalid bearer token in the 'authorization' metadata")

    @contextlib.asynccontextmanager
    async def admitted(self, context):
        self.authenticate(context)  # before anything of the body is read
        if self.gate is None:
            yield
        else:
            async with self.gate.enter():
                yield

    async def request(self, requests):
        if self.streaming_request:
            return CheckedRequests(requests)
        return await first_message(requests, self.policy.message_timeout_s, "request message", "message_timeout_s")

    async def unary(self, requests, context):
        try:
            async with self.admitted(context):
                result = self.behavior(await self.request(requests), context)
                return await result if inspect.isawaitable(result) else result
        except asyncio.CancelledError:  # grpc cancels the handler when the client cancels or goes away
            self.on_error(self.method, grpc.StatusCode.CANCELLED)
            raise
        except Exception as e:  # noqa: BLE001 - mapped to a status below
            await self.fail(context, e)

    async def stream(self, requests, context):
        watch = WriteWatch(self.policy.stalled_reader_timeout_s)
        try:
            async with self.admitted(context):
                out = self.behavior(await self.request(requests), context)
                if inspect.isawaitable(out):  # a handler that writes for itself (grpc health's Watch)
                    await out
                    return
                responses = out.__aiter__()
                try:
                    async for item in responses:
                        await watch.write(context, item)
                finally:  # also on a stalled peer: the handler's own cleanup (its session slot) runs now
                    await responses.aclose()
        except asyncio.CancelledError:
            if not watch.stalled:
                self.on_error(self.method, grpc.StatusCode.CANCELLED)
                raise
            # No status can reach a peer that reads nothing (grpc refuses to queue one behind the stuck
            # message). Ending the handler as cancelled makes grpc drop the call, which resets the stream.
            self.on_error(self.method, grpc.StatusCode.DEADLINE_EXCEEDED)
            log.warning("%s: the client read nothing for %g s (stalled_reader_timeout_s); call dropped",
                        self.method, self.policy.stalled_reader_timeout_s)
            raise
        except Exception as e:  # noqa: BLE001
            await self.fail(context, e)
        finally:
            watch.close()

    async def fail(self, context, e: Exception):
        if isinstance(e, grpc.aio.AbortError) or type(e).__name__ == "AbortError":
            self.on_error(self.method, context.code() or grpc.StatusCode.UNKNOWN)  # aborted in the handler itself
            raise e
        if isinstance(e, AvatarLabError):
            self.on_error(self.method, e.metric_code)
            await context.abort(e.code, bounded(e.message))
        self.on_error(self.method, grpc.StatusCode.INTERNAL)
        incident = uuid.uuid4().hex[:12]
        log.error("incident %s in %s", incident, self.method, exc_info=e)
        await context.abort(grpc.StatusCode.INTERNAL, f"internal error (incident {incident}); see the server log")


class ServiceInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, policy: EdgePolicy, on_error: ErrorHook | None = None):
        self.policy = policy
        self.on_error = on_error or (lambda method, code: None)

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        behavior = handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
        call = EdgeCall(self.policy, handler_call_details.method, behavior, handler.request_streaming, self.on_error)
        parse, serialize = tolerant_deserializer(handler.request_deserializer), handler.response_serializer
        if handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(call.stream, parse, serialize)
        return grpc.stream_unary_rpc_method_handler(call.unary, parse, serialize)
