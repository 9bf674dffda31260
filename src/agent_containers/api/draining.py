"""The shutdown gate: counts the service's calls in flight and, once closed, refuses new ones.

grpc.aio's own `server.stop()` cancels the calls its transport has accepted but not yet handed to
Python (CANCELLED, which clients do not retry), and under load there always are some. So shutdown
closes this gate first, while the server still runs: from then on a new call is answered at once,
before identity or any work, with UNAVAILABLE (retryable; ErrorInfo reason SHUTTING_DOWN and a
RetryInfo). The server is stopped only once the calls in flight have finished and no new call has
arrived for a short quiet interval (`settled`), or when the grace runs out.

A client that ignores the refusals and keeps sending would still race that stop, so the gate
holds the calls arriving in its last moments (`hold`) unanswered, stops the server, and refuses
them only once the server has told every connection to go away (`release`): a client whose call
is held sends nothing more on that connection, and its next call finds the listener closed
(UNAVAILABLE from its channel, never CANCELLED).

Health checks and reflection pass through untouched and uncounted: they go on answering (with
NOT_SERVING) while the gate refuses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from agent_containers.api.errors import set_domain_status
from agent_containers.api.handlers import Behaviour, WrappingInterceptor
from agent_containers.domain.errors import ShuttingDown
from agent_containers.observability.calls import CallKind

Context = grpc.aio.ServicerContext[Any, Any]

_POLL_SECONDS = 0.01


class ShutdownGate(WrappingInterceptor):
    """The outermost interceptor but tracing's: open, it counts calls in flight; closed, it
    refuses new ones."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = False
        self.in_flight = 0
        """Service calls running now (refused ones are never counted)."""
        self.refused = 0
        """Calls refused since the gate closed."""
        self._last_arrival = time.monotonic()
        self._holding = False
        self._released = asyncio.Event()

    def close(self) -> None:
        """From now on every new service call is refused with UNAVAILABLE."""
        self.closed = True

    def hold(self) -> None:
        """From now on new calls wait, unanswered, for `release` before they are refused."""
        self.closed = True
        self._holding = True

    def release(self) -> None:
        """Refuses the held calls, and answers new ones at once again."""
        self._holding = False
        self._released.set()

    async def settled(self, *, quiet: float, within: float) -> bool:
        """Waits until no call is in flight and none has arrived for `quiet` seconds: True then,
        False when `within` seconds ran out first."""
        deadline = time.monotonic() + within
        while True:
            now = time.monotonic()
            if self.in_flight == 0:
                pause = self._last_arrival + quiet - now
                if pause <= 0:
                    return True
            else:
                pause = _POLL_SECONDS
            if now >= deadline:
                return False
            await asyncio.sleep(min(pause, deadline - now))

    async def _refuse(self, method: str, context: Context) -> None:
        self.refused += 1
        if self._holding:
            await self._released.wait()
        set_domain_status(method, ShuttingDown(), context)

    def wrap_unary(self, method: str, kind: CallKind, inner: Behaviour) -> Behaviour:
        async def unary(request: Any, context: Context) -> Any:
            self._last_arrival = time.monotonic()
            if self.closed:
                await self._refuse(method, context)
                return None  # the status is set: grpc.aio sends it instead of a response
            self.in_flight += 1
            try:
                return await inner(request, context)
            finally:
                self.in_flight -= 1

        return unary

    def wrap_stream(self, method: str, kind: CallKind, inner: Behaviour) -> Behaviour:
        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            self._last_arrival = time.monotonic()
            if self.closed:
                await self._refuse(method, context)
                return
            self.in_flight += 1
            try:
                async for response in inner(request, context):
                    yield response
            finally:
                self.in_flight -= 1

        return stream
