"""The caller's identity, read once per RPC and made available to servicers.

Interim tenancy: `x-tenant-id` / `x-user-id` metadata, required on every call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import grpc

from agent_containers.api.handlers import Behaviour, is_infrastructure, wrap_handler
from agent_containers.domain.identity import Identity

_current: ContextVar[Identity] = ContextVar("identity")


def current_identity() -> Identity:
    """The identity of the RPC being served (set by IdentityInterceptor)."""
    return _current.get()


def _identify(context: grpc.aio.ServicerContext[Any, Any]) -> Identity:
    metadata = {key: value for key, value in context.invocation_metadata() or ()}
    tenant, user = metadata.get("x-tenant-id"), metadata.get("x-user-id")
    return Identity.from_headers(
        tenant if isinstance(tenant, str) else None, user if isinstance(user, str) else None
    )


async def _around_unary(
    method: str, inner: Behaviour, request: Any, context: grpc.aio.ServicerContext[Any, Any]
) -> Any:
    token = _current.set(_identify(context))
    try:
        return await inner(request, context)
    finally:
        _current.reset(token)


async def _around_stream(
    method: str, inner: Behaviour, request: Any, context: grpc.aio.ServicerContext[Any, Any]
) -> AsyncIterator[Any]:
    # Each RPC runs in a task of its own, so the value needs no reset: it ends with the task.
    _current.set(_identify(context))
    async for response in inner(request, context):
        yield response


class IdentityInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Requires an identity on every service RPC and exposes it through current_identity()."""

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
        return wrap_handler(method, handler, _around_unary, _around_stream)
