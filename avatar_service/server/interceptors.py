"""The one place that maps exceptions to gRPC status codes, and bearer-token authentication.

Domain errors keep their code and message; anything else becomes INTERNAL with a generic message and
an incident id, while the traceback goes to the log (kserve's pattern)."""
from __future__ import annotations

import hmac
import inspect
import logging
import uuid
from typing import Callable

import grpc

from avatar_service.errors import AvatarLabError
from avatar_service.server.wire import CheckedRequests, check_request, tolerant_deserializer

log = logging.getLogger(__name__)

OPEN_METHODS = ("/grpc.health.v1.Health/", "/grpc.reflection.")  # probes and discovery need no token


ErrorHook = Callable[[str, grpc.StatusCode], None]  # (method, code): counts errors by status code


def _wrap(behavior, streaming_response: bool, method: str, check, on_error: ErrorHook, streaming_request: bool):
    def checked(request):
        return CheckedRequests(request) if streaming_request else check_request(request)

    if streaming_response:
        async def stream_wrapper(request, context):
            try:
                check(context)
                async for item in behavior(checked(request), context):
                    yield item
            except Exception as e:  # noqa: BLE001 - mapped to a status below
                await _abort(context, e, method, on_error)
        return stream_wrapper

    async def unary_wrapper(request, context):
        try:
            check(context)
            result = behavior(checked(request), context)
            return await result if inspect.isawaitable(result) else result
        except Exception as e:  # noqa: BLE001
            await _abort(context, e, method, on_error)
    return unary_wrapper


async def _abort(context, e: Exception, method: str, on_error: ErrorHook):
    if isinstance(e, AvatarLabError):
        on_error(method, e.code)
        await context.abort(e.code, e.message)
    if isinstance(e, grpc.aio.AbortError) or type(e).__name__ == "AbortError":
        on_error(method, context.code() or grpc.StatusCode.UNKNOWN)  # aborted in the handler itself
        raise e
    on_error(method, grpc.StatusCode.INTERNAL)
    incident = uuid.uuid4().hex[:12]
    log.error("incident %s in %s", incident, method, exc_info=e)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error (incident {incident}); see the server log")


class ServiceInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, tokens: list[str], on_error: ErrorHook | None = None):
        self.tokens = [t.encode() for t in tokens]
        self.on_error = on_error or (lambda method, code: None)

    def _check(self, method: str):
        if not self.tokens or method.startswith(OPEN_METHODS):
            return lambda context: None

        def check(context):
            md = dict(context.invocation_metadata() or ())
            auth = md.get("authorization", "")
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not any(hmac.compare_digest(token.encode(), t) for t in self.tokens):
                from avatar_service.errors import Unauthenticated
                raise Unauthenticated("missing or invalid bearer token in the 'authorization' metadata")
        return check

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        check = self._check(method)
        parse, serialize = tolerant_deserializer(handler.request_deserializer), handler.response_serializer
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(_wrap(handler.unary_unary, False, method, check, self.on_error, False),
                                                       parse, serialize)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(_wrap(handler.unary_stream, True, method, check, self.on_error, False),
                                                        parse, serialize)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(_wrap(handler.stream_unary, False, method, check, self.on_error, True),
                                                        parse, serialize)
        return grpc.stream_stream_rpc_method_handler(_wrap(handler.stream_stream, True, method, check, self.on_error, True),
                                                     parse, serialize)
