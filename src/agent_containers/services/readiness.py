"""Readiness: whether this process should be sent calls now.

It is ready while its database answers and, where several processes share PostgreSQL, while the
channel that keeps its resolution cache coherent is connected. Upstream trouble does not count:
every replica shares the same upstream, so taking one out of rotation would help no caller (the
calls that need upstream answer UNAVAILABLE on their own, and the metrics and logs tell).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry.instrumentation.utils import suppress_instrumentation

from agent_containers.domain.errors import DatabaseUnavailable
from agent_containers.store.database import ping
from agent_containers.store.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReadinessState:
    database: bool
    cache_channel: bool

    @property
    def ready(self) -> bool:
        return self.database and self.cache_channel


class Readiness:
    """Probes what readiness depends on."""

    def __init__(
        self,
        uow: UnitOfWork,
        cache_channel_connected: Callable[[], bool],
        *,
        probe_timeout_seconds: float,
    ) -> None:
        self._uow = uow
        self._cache_channel_connected = cache_channel_connected
        self._probe_timeout = probe_timeout_seconds

    async def probe(self) -> ReadinessState:
        return ReadinessState(
            database=await self._database_answers(), cache_channel=self._cache_channel_connected()
        )

    async def _database_answers(self) -> bool:
        try:
            # Every 2 s on every replica: traced, each probe would be a trace of its own.
            with suppress_instrumentation():
                async with asyncio.timeout(self._probe_timeout):
                    await self._uow.read(ping)
        except (DatabaseUnavailable, TimeoutError):
            return False
        except Exception as error:  # an outage the taxonomy does not know yet: not ready
            log.warning("database probe failed", extra={"error": repr(error)})
            return False
        return True
