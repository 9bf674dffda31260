"""The one interceptor of the service's RPCs: it binds the caller's identity, turns domain errors
into statuses and reports each call's outcome to the observers (metrics, access log). One layer,
not one per concern: it sits on every call of the hot path."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc

from agent_containers.api.errors import set_domain_status, set_unexpected_status
from agent_containers.api.handlers import UNREADABLE, Behaviour, WrappingInterceptor
from agent_containers.api.identity import bind_identity
from agent_containers.api.request_ids import bind_request, return_request_id
from agent_containers.domain.errors import DomainError, MalformedRequest
from agent_containers.observability.calls import CallKind, CallObserver, FinishedCall

Context = grpc.aio.ServicerContext[Any, Any]


class ServiceInterceptor(WrappingInterceptor):
    """Identity required, errors mapped, outcomes reported, on every RPC but health checks and
    reflection.

    The identity is checked before the request is judged, an unreadable body included: a caller
    without identity learns nothing, not even that its body could not be read (and the answer to
    an unreadable body names no field and no internals either way).
    """

    def __init__(self, observers: Sequence[CallObserver] = ()) -> None:
        super().__init__()
        self._observers = tuple(observers)

    def _started(self, method: str, kind: CallKind, context: Context) -> tuple[float, str | None]:
        """The call's start time, and its peer (read now: see FinishedCall.peer)."""
        if not self._observers:
            return time.perf_counter(), None
        for observer in self._observers:
            observer.call_started(method, kind)
        return time.perf_counter(), context.peer()

    def _finished(
        self,
        method: str,
        kind: CallKind,
        started: tuple[float, str | None],
        context: Context,
        reason: str | None,
        cancelled: bool,
        received: int,
        sent: int,
    ) -> None:
        if not cancelled:
            return_request_id(context)
        if not self._observers:
            return
        began, peer = started
        seconds = time.perf_counter() - began
        code = grpc.StatusCode.CANCELLED if cancelled else context.code() or grpc.StatusCode.OK
        call = FinishedCall(method, kind, code, seconds, reason, context, received, sent, peer)
        for observer in self._observers:
            observer.call_finished(call)

    def wrap_unary(self, method: str, kind: CallKind, inner: Behaviour) -> Behaviour:
        reads_stream = kind is CallKind.CLIENT_STREAM

        async def unary(request: Any, context: Context) -> Any:
            started = self._started(method, kind, context)
            reason: str | None = None
            cancelled = False
            metadata = context.invocation_metadata() or ()
            bind_request(metadata)
            reading = _Reading() if reads_stream else None
            sent = 0
            try:
                bind_identity(metadata)
                if request is UNREADABLE:
                    raise MalformedRequest()
                response = await inner(request if reading is None else reading(request), context)
                sent = 1
                return response
            except DomainError as error:
                reason = error.reason
                set_domain_status(method, error, context)
            except grpc.aio.AbortError:
                raise
            except asyncio.CancelledError:
                cancelled = True
                raise
            except Exception as error:
                reason = "INTERNAL"
                set_unexpected_status(method, error, context)
            finally:
                received = int(request is not UNREADABLE) if reading is None else reading.count
                self._finished(method, kind, started, context, reason, cancelled, received, sent)
            return None  # the status is set: grpc.aio sends it instead of a response

        return unary

    def wrap_stream(self, method: str, kind: CallKind, inner: Behaviour) -> Behaviour:
        reads_stream = kind is CallKind.BIDI_STREAM

        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            started = self._started(method, kind, context)
            reason: str | None = None
            cancelled = False
            metadata = context.invocation_metadata() or ()
            bind_request(metadata)
            reading = _Reading() if reads_stream else None
            sent = 0
            try:
                bind_identity(metadata)
                if request is UNREADABLE:
                    raise MalformedRequest()
                async for response in inner(
                    request if reading is None else reading(request), context
                ):
                    yield response
                    sent += 1  # grpc.aio resumes the generator once the message is written
            except DomainError as error:
                reason = error.reason
                set_domain_status(method, error, context)
            except grpc.aio.AbortError:
                raise
            except (asyncio.CancelledError, GeneratorExit):
                cancelled = True
                raise
            except Exception as error:
                reason = "INTERNAL"
                set_unexpected_status(method, error, context)
            finally:
                received = int(request is not UNREADABLE) if reading is None else reading.count
                self._finished(method, kind, started, context, reason, cancelled, received, sent)

        return stream


class _Reading:
    """Counts the readable messages of a request stream as the method reads them."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for request in requests:
            if request is not UNREADABLE:
                self.count += 1
            yield request
