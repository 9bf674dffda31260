"""Wrapping grpc.aio method handlers, so interceptors can run code around every RPC kind."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import grpc

# Every wrapper receives the RPC's full method name, the request (or request iterator) and the
# context, and the original behaviour to call.
Behaviour = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Any]
UnaryAround = Callable[[str, Behaviour, Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]
StreamAround = Callable[
    [str, Behaviour, Any, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Any]
]


def wrap_handler(
    method: str,
    handler: grpc.RpcMethodHandler[Any, Any],
    around_unary: UnaryAround,
    around_stream: StreamAround,
) -> grpc.RpcMethodHandler[Any, Any]:
    """Returns a handler that runs the original behaviour inside the given wrappers."""
    if handler.unary_unary or handler.stream_unary:
        inner = cast(Behaviour, handler.unary_unary or handler.stream_unary)

        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            return await around_unary(method, inner, request, context)

        factory = (
            grpc.unary_unary_rpc_method_handler
            if handler.unary_unary
            else grpc.stream_unary_rpc_method_handler
        )
        return factory(
            unary,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    streaming = cast(Behaviour, handler.unary_stream or handler.stream_stream)

    # grpc.aio tells async streaming handlers apart by being async generator functions.
    async def stream(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        async for response in around_stream(method, streaming, request, context):
            yield response

    stream_factory = (
        grpc.unary_stream_rpc_method_handler
        if handler.unary_stream
        else grpc.stream_stream_rpc_method_handler
    )
    return stream_factory(
        stream,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def is_infrastructure(method: str) -> bool:
    """Health checks and reflection need no identity and have their own errors."""
    return method.startswith("/grpc.")
