"""The one interceptor of the service's RPCs: it binds the caller's identity and turns domain
errors into statuses. One layer, not one per concern: it sits on every call of the hot path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from agent_containers.api.errors import set_domain_status, set_unexpected_status
from agent_containers.api.handlers import UNREADABLE, Behaviour, WrappingInterceptor
from agent_containers.api.identity import bind_identity
from agent_containers.domain.errors import DomainError, MalformedRequest

Context = grpc.aio.ServicerContext[Any, Any]


class ServiceInterceptor(WrappingInterceptor):
    """Identity required, errors mapped, on every RPC but health checks and reflection.

    The identity is checked before the request is judged, an unreadable body included: a caller
    without identity learns nothing, not even that its body could not be read (and the answer to
    an unreadable body names no field and no internals either way).
    """

    def wrap_unary(self, method: str, inner: Behaviour) -> Behaviour:
        async def unary(request: Any, context: Context) -> Any:
            try:
                bind_identity(context)
                if request is UNREADABLE:
                    raise MalformedRequest()
                return await inner(request, context)
            except DomainError as error:
                set_domain_status(method, error, context)
            except grpc.aio.AbortError:
                raise
            except Exception as error:
                set_unexpected_status(method, error, context)
            return None  # the status is set: grpc.aio sends it instead of a response

        return unary

    def wrap_stream(self, method: str, inner: Behaviour) -> Behaviour:
        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            try:
                bind_identity(context)
                if request is UNREADABLE:
                    raise MalformedRequest()
                async for response in inner(request, context):
                    yield response
            except DomainError as error:
                set_domain_status(method, error, context)
            except grpc.aio.AbortError:
                raise
            except Exception as error:
                set_unexpected_status(method, error, context)

        return stream
