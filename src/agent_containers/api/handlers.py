"""Wrapping grpc.aio method handlers, so an interceptor can run code around every RPC kind."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final, cast

import grpc
from google.protobuf.message import DecodeError

from agent_containers.domain.errors import MalformedRequest
from agent_containers.observability.calls import CallKind

# A method's behaviour: (request or request iterator, context) -> response, or an async
# generator of responses for server streaming.
Behaviour = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Any]
Deserializer = Callable[[bytes], Any]


class _Unreadable:
    """The type of UNREADABLE, for `is` checks and a readable repr."""

    def __repr__(self) -> str:
        return "UNREADABLE"


# What a wrapped deserializer returns for bytes that are not a message of the method's type.
# grpc.aio answers a deserializer's exception itself, with UNKNOWN and the exception's class in
# the message, before any interceptor code runs; a value instead lets the wrapped behaviour give
# the answer (INVALID_ARGUMENT, after the identity check, like any other malformed request).
UNREADABLE: Final = _Unreadable()


def _tolerant(deserializer: Deserializer | None) -> Deserializer | None:
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError:
            return UNREADABLE

    return deserialize


async def _readable(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """A request stream that raises MalformedRequest at the first unreadable message."""
    async for request in requests:
        if request is UNREADABLE:
            raise MalformedRequest()
        yield request


def _reading_checked(inner: Behaviour) -> Behaviour:
    """A streaming-request behaviour whose request stream is checked as it is read."""

    def behaviour(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return inner(_readable(requests), context)

    return behaviour


def is_infrastructure(method: str) -> bool:
    """Health checks and reflection need no identity and have their own errors."""
    return method.startswith("/grpc.")


class WrappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Wraps the behaviour of every service RPC (not health, reflection).

    `wrap_unary(method, kind, inner)` returns a coroutine function used in place of a
    unary-response behaviour; `wrap_stream(method, kind, inner)` an async generator function
    (grpc.aio tells streaming handlers apart by that) for a streaming-response one. grpc.aio asks
    every interceptor for a handler on every call: the wrapped handler is built once per method
    and reused, and the wrappers call the behaviour directly, so the hot path pays one extra
    frame.

    A request that is not a message of the method's type reaches a unary-request wrapper as
    UNREADABLE (the wrapper must refuse it); in a request stream, reading it raises
    MalformedRequest from inside the wrapped behaviour.
    """

    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[object, grpc.RpcMethodHandler[Any, Any]]] = {}

    def wrap_unary(self, method: str, kind: CallKind, inner: Behaviour) -> Behaviour:
        raise NotImplementedError

    def wrap_stream(self, method: str, kind: CallKind, inner: Behaviour) -> Behaviour:
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
            "request_deserializer": _tolerant(handler.request_deserializer),
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self.wrap_unary(method, CallKind.UNARY, cast(Behaviour, handler.unary_unary)),
                **options,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self.wrap_unary(
                    method,
                    CallKind.CLIENT_STREAM,
                    _reading_checked(cast(Behaviour, handler.stream_unary)),
                ),
                **options,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self.wrap_stream(
                    method, CallKind.SERVER_STREAM, cast(Behaviour, handler.unary_stream)
                ),
                **options,
            )
        return grpc.stream_stream_rpc_method_handler(
            self.wrap_stream(
                method,
                CallKind.BIDI_STREAM,
                _reading_checked(cast(Behaviour, handler.stream_stream)),
            ),
            **options,
        )
