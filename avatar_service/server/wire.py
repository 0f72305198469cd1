"""Reading requests off the wire: unparsable messages and clients that send nothing are the client's fault.

grpc calls the request deserializer outside any handler code, so a parse error there cannot reach the
error-mapping interceptor. Instead the deserializer returns a marker, and the interceptor raises
InvalidArgument when the handler (or a stream's reader) meets it. A request message that does not come
ends the call with DEADLINE_EXCEEDED after a timeout, instead of holding it open forever."""
from __future__ import annotations

import asyncio
from typing import Callable

import grpc
from google.protobuf.message import DecodeError

from avatar_service.errors import DeadlineExceeded, InvalidArgument


class EndedEarly(InvalidArgument):
    """A request stream that ended before its first message. grpc shows a client's cancel here exactly like a
    half-close (the cancel reaches the handler only after it answered), and a cancel is by far the usual cause,
    so the error metric counts it as CANCELLED; a client still listening gets INVALID_ARGUMENT."""
    metric_code = grpc.StatusCode.CANCELLED


class Unparsable:
    """Stands in for a request message whose bytes were not valid protobuf."""

    def __init__(self, error: Exception):
        self.error = error

    def fail(self):
        raise InvalidArgument(f"request is not a valid protobuf message of the method's type ({self.error})")


def tolerant_deserializer(deserialize):
    if deserialize is None:
        return None

    def parse(data: bytes):
        try:
            return deserialize(data)
        except (DecodeError, ValueError, UnicodeDecodeError) as e:  # ValueError: bad UTF-8 in a string field
            return Unparsable(e)
    return parse


def check_request(request):
    if isinstance(request, Unparsable):
        request.fail()
    return request


class CheckedRequests:
    """Async iterator over a stream's requests that raises InvalidArgument at an unparsable one."""

    def __init__(self, inner):
        self._source, self._inner = inner, None  # grpc's generator is made on first read: none is left unawaited

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self._inner is None:
            self._inner = self._source.__aiter__()
        return check_request(await self._inner.__anext__())


async def first_message(requests, timeout_s: float, what: str, setting: str):
    """The first message of a request stream, which must come within `timeout_s`."""
    try:
        return check_request(await asyncio.wait_for(requests.__aiter__().__anext__(), timeout_s))
    except StopAsyncIteration:
        raise EndedEarly(f"the call ended before its {what}") from None
    except asyncio.TimeoutError:
        raise DeadlineExceeded(f"no {what} within {timeout_s:g} s ({setting})") from None


class Watchdog:
    """Calls `expire()` once the time `since()` gives (the loop's clock; None: nothing to watch now) is
    `seconds` old. One timer, re-armed lazily, not a task or a timeout per message: a server holding 200
    streams reads and writes 1000 messages a second each way."""

    def __init__(self, seconds: float, since: Callable[[], float | None], expire: Callable[[], None]):
        self.seconds, self.since, self.expire = seconds, since, expire
        self._loop = asyncio.get_running_loop()
        self._timer = self._loop.call_later(seconds, self._check)

    def _check(self) -> None:
        t = self.since()
        left = self.seconds if t is None else t + self.seconds - self._loop.time()
        if left > 0:
            self._timer = self._loop.call_later(left, self._check)
        else:
            self.expire()

    def close(self) -> None:
        self._timer.cancel()


class IdleRequests:
    """A request stream that ends with DEADLINE_EXCEEDED when nothing happened for `seconds`: no request came
    and nobody called `touch()` (the session touches it for each frame it sends). `armed()` False stops the
    clock, e.g. once the client said it has no more audio. On expiry the pending read is cancelled and
    raises the error in the reading task."""

    def __init__(self, requests, seconds: float, what: str, armed: Callable[[], bool] = lambda: True):
        self._inner = requests.__aiter__()
        self.seconds, self.what = seconds, what
        self._loop = asyncio.get_running_loop()
        self._reading: asyncio.Task | None = None
        self.expired: BaseException | None = None
        self.touch()
        self._watch = Watchdog(seconds, lambda: self.last if armed() else None, self._expire)

    def touch(self) -> None:
        self.last = self._loop.time()

    def close(self) -> None:
        self._watch.close()

    def _expire(self) -> None:
        self.expired = DeadlineExceeded(f"{self.what} for {self.seconds:g} s (idle_session_timeout_s)")
        if self._reading is not None:
            self._reading.cancel()

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self.expired is not None:
            raise self.expired
        self._reading = asyncio.current_task()
        try:
            request = await self._inner.__anext__()
        except asyncio.CancelledError:
            if self.expired is not None:  # cancelled by the idle timer, not by the call ending
                raise self.expired from None
            raise
        finally:
            self._reading = None
        self.touch()
        return check_request(request)
