"""The gRPC health service's answers, kept to what the process can do now.

Names (the Kubernetes probes use them; docs/runbook.md says the same):
- `""` and each service's full name (`agentcontainers.v1.ContainerService`, ...): readiness.
  SERVING while the database answers and the cache channel is connected; NOT_SERVING while
  either is lost (checked every period, and at once when the channel changes), SERVING again
  when both are back, and NOT_SERVING for good once shutdown begins.
- `liveness`: SERVING from start until shutdown, whatever the database does: a replica that
  lost its database is not helped by a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health_pb2

from agent_containers.services.readiness import Readiness, ReadinessState

LIVENESS = "liveness"
log = logging.getLogger(__name__)

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthReporter:
    """Sets the readiness names from periodic probes; `liveness` is SERVING throughout."""

    def __init__(
        self,
        health: health_aio.HealthServicer,
        readiness: Readiness,
        readiness_names: Sequence[str],
        *,
        period_seconds: float,
    ) -> None:
        self._health = health
        self._readiness = readiness
        self._names = tuple(readiness_names)
        self._period = period_seconds
        self._poked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.state: ReadinessState | None = None

    async def start(self) -> None:
        """Sets every name once (readiness from a first probe), then keeps them current."""
        await self._health.set(LIVENESS, _SERVING)
        await self._report(await self._readiness.probe())
        self._task = asyncio.create_task(self._run(), name="health-reporter")

    def poke(self) -> None:
        """Probe now: something readiness depends on changed."""
        self._poked.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poked.wait(), self._period)
            self._poked.clear()
            try:
                await self._report(await self._readiness.probe())
            except Exception as error:  # never let the reporter die: readiness would freeze
                log.warning("readiness probe failed", extra={"error": repr(error)})

    async def _report(self, state: ReadinessState) -> None:
        if state == self.state:
            return
        if self.state is not None or not state.ready:
            log_call = log.info if state.ready else log.warning
            log_call(
                "readiness changed",
                extra={
                    "ready": state.ready,
                    "database": state.database,
                    "cache_channel": state.cache_channel,
                },
            )
        self.state = state
        status = _SERVING if state.ready else _NOT_SERVING
        for name in self._names:
            await self._health.set(name, status)  # ignored once shutdown has begun
