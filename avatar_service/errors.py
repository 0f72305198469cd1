"""Domain errors. The service layer raises these; exactly one place (server/interceptors.py) turns
them into gRPC status codes, and anything else into INTERNAL with an incident id."""
from __future__ import annotations

import grpc


class AvatarLabError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    @property
    def metric_code(self) -> grpc.StatusCode:
        """The code the error metric counts; the status code unless a subclass knows better."""
        return self.code


class InvalidArgument(AvatarLabError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(AvatarLabError):
    code = grpc.StatusCode.NOT_FOUND


class ResourceExhausted(AvatarLabError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(AvatarLabError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Unavailable(AvatarLabError):
    code = grpc.StatusCode.UNAVAILABLE


class Unauthenticated(AvatarLabError):
    code = grpc.StatusCode.UNAUTHENTICATED


class DeadlineExceeded(AvatarLabError):
    """The client let one of the server's own timeouts run out (no config, no audio, no request message)."""
    code = grpc.StatusCode.DEADLINE_EXCEEDED


def quote(value: str, limit: int = 64) -> str:
    """A client's value for a status message: repr'd and cut to `limit` characters, so that echoing an
    oversized id can never blow the message up (gRPC trailers past ~64 KiB stall the whole connection)."""
    return repr(value) if len(value) <= limit else repr(value[:limit]) + f"... ({len(value)} characters)"
