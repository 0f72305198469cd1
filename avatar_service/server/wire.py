"""Requests that do not parse are the client's fault: INVALID_ARGUMENT, not grpc's default UNKNOWN.

grpc calls the request deserializer outside any handler code, so a parse error there cannot reach the
error-mapping interceptor. Instead the deserializer returns a marker, and the interceptor raises
InvalidArgument when the handler (or a stream's reader) meets it."""
from __future__ import annotations

from google.protobuf.message import DecodeError

from avatar_service.errors import InvalidArgument


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
        self._inner = inner.__aiter__()

    def __aiter__(self):
        return self

    async def __anext__(self):
        return check_request(await self._inner.__anext__())
