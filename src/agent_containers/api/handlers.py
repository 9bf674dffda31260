"""Wrapping grpc.aio method handlers, so an interceptor can run code around every RPC kind."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

import grpc

# A method's behaviour: (request or request iterator, context) -> response, or an async
# generator of responses for server streaming.
Behaviour = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Any]


def is_infrastructure(method: str) -> bool:
    """Health checks and reflection need no identity and have their own errors."""
    return method.startswith("/grpc.")


class WrappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Wraps the behaviour of every service RPC (not health, reflection).

    `wrap_unary(method, inner)` returns a coroutine function used in place of a unary-response
    behaviour; `wrap_stream(method, inner)` an async generator function (grpc.aio tells streaming
    handlers apart by that) for a streaming-response one. grpc.aio asks every interceptor for a
    handler on every call: the wrapped handler is built once per method and reused, and the
    wrappers call the behaviour directly, so the hot path pays one extra frame.
    """

    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[object, grpc.RpcMethodHandler[Any, Any]]] = {}

    def wrap_unary(self, method: str, inner: Behaviour) -> Behaviour:
        raise NotImplementedError

    def wrap_stream(self, method: str, inner: Behaviour) -> Behaviour:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or is_infrastructure(method):
            return handler
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        options = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self.wrap_unary(method, cast(Behaviour, handler.unary_unary)), **options
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self.wrap_unary(method, cast(Behaviour, handler.stream_unary)), **options
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self.wrap_stream(method, cast(Behaviour, handler.unary_stream)), **options
            )
        return grpc.stream_stream_rpc_method_handler(
            self.wrap_stream(method, cast(Behaviour, handler.stream_stream)), **options
        )
