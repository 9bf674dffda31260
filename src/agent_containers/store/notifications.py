"""Cache invalidations between server processes that share one PostgreSQL database.

A writer publishes with pg_notify inside its transaction, so the message is delivered exactly
when (and only if) the transaction commits. Every process listens on one dedicated connection.
SQLite has no such channel: with SQLite the service is one process and evicts locally.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from agent_containers.store.database import plain_postgresql_dsn

CHANNEL = "agent_containers_invalidations"
PROBE_INTERVAL_SECONDS = 5.0
PROBE_TIMEOUT_SECONDS = 5.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Invalidation:
    """One cached fact that changed: a binding (key = agent key), a container (key = id), or
    the reconciler's progress (key = the start of its newest complete pass)."""

    kind: str
    tenant_id: str
    key: str

    def to_json(self) -> str:
        return json.dumps([self.kind, self.tenant_id, self.key], separators=(",", ":"))

    @classmethod
    def from_json(cls, payload: str) -> Invalidation:
        kind, tenant_id, key = json.loads(payload)
        return cls(str(kind), str(tenant_id), str(key))


def binding_changed(tenant_id: str, agent_key: str) -> Invalidation:
    return Invalidation("binding", tenant_id, agent_key)


def container_changed(tenant_id: str, container_id: object) -> Invalidation:
    return Invalidation("container", tenant_id, str(container_id))


def reconciled(verified_through: datetime) -> Invalidation:
    """A reconciliation pass that started at `verified_through` finished: every RUNNING row it
    did not change was confirmed upstream as of then."""
    return Invalidation("reconciled", "", verified_through.isoformat())


async def publish(session: AsyncSession, invalidations: Iterable[Invalidation]) -> None:
    """Announces the invalidations to every listening process when the transaction commits."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for invalidation in invalidations:
        await session.execute(sa.select(sa.func.pg_notify(CHANNEL, invalidation.to_json())))


class InvalidationListener:
    """Listens for invalidations on PostgreSQL and hands them to a callback.

    `on_connected(True)` fires once LISTEN is in place (the cache may serve again, after it
    forgot everything it could have missed); `on_connected(False)` when the connection is lost
    (the cache must stop serving until it is back).
    """

    def __init__(
        self,
        database_url: str,
        on_invalidation: Callable[[Invalidation], None],
        on_connected: Callable[[bool], None],
        *,
        retry_seconds: float = 1.0,
    ) -> None:
        self._dsn = plain_postgresql_dsn(database_url)
        self._on_invalidation = on_invalidation
        self._on_connected = on_connected
        self._retry_seconds = retry_seconds
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        """Set while LISTEN is in place."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="invalidation-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _deliver(self, connection: object, pid: int, channel: str, payload: str) -> None:
        try:
            self._on_invalidation(Invalidation.from_json(payload))
        except (ValueError, TypeError):
            log.warning("ignored a malformed invalidation", extra={"payload": payload[:200]})

    async def _run(self) -> None:
        while True:
            try:
                await self._listen_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # any failure: the cache must not trust it; retry
                log.warning("invalidation listener failed", extra={"error": repr(error)})
            await asyncio.sleep(self._retry_seconds)

    async def _listen_once(self) -> None:
        """Listens until the connection is lost or stops answering."""
        connection = await asyncpg.connect(self._dsn, timeout=PROBE_TIMEOUT_SECONDS)
        lost = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _, closed=lost: closed.set())
            await connection.add_listener(CHANNEL, self._deliver)
            self.connected.set()
            self._on_connected(True)
            # A network that drops silently closes nothing: probe, or evictions could be missed
            # for as long as the cache keeps serving.
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), PROBE_INTERVAL_SECONDS)
                if not lost.is_set():
                    await connection.fetchval("SELECT 1", timeout=PROBE_TIMEOUT_SECONDS)
            log.warning("invalidation listener lost its connection; reconnecting")
        finally:
            self.connected.clear()
            self._on_connected(False)
            with contextlib.suppress(Exception):
                await connection.close(timeout=1)
