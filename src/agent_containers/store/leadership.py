"""Which process does the background work: exactly one at a time across replicas.

With PostgreSQL, the leader holds a session-level advisory lock on a connection of its own (not
one of the pool's). When that process dies, its connection closes and the lock is free: another
process takes it at its next attempt. A leader that loses its connection stops leading at once.
SQLite has one process per file, which always leads.
"""

from __future__ import annotations

import contextlib
import logging

import asyncpg
from sqlalchemy.engine import make_url

from agent_containers.store.database import plain_postgresql_dsn

log = logging.getLogger(__name__)

# The advisory lock key (a bigint): "agent-containers reconciler", stable across versions.
RECONCILER_LOCK_KEY = 0x61632D7265636F6E
CONNECT_TIMEOUT_SECONDS = 5.0


class Leadership:
    """Whether this process is the one that reconciles."""

    def __init__(self, database_url: str) -> None:
        self._shared = make_url(database_url).get_backend_name() == "postgresql"
        self._dsn = plain_postgresql_dsn(database_url)
        self._connection: asyncpg.Connection | None = None

    async def held(self) -> bool:
        """True while this process leads; tries to become the leader when it does not."""
        if not self._shared:
            return True
        if self._connection is not None:
            try:
                await self._connection.fetchval("SELECT 1", timeout=CONNECT_TIMEOUT_SECONDS)
                return True
            except Exception as error:  # any failure: the lock may be gone with the connection
                log.warning("reconciler lost its leadership", extra={"error": repr(error)})
                await self.release()
        connection = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_SECONDS)
        try:
            won = await connection.fetchval(
                "SELECT pg_try_advisory_lock($1)", RECONCILER_LOCK_KEY, timeout=5
            )
        except BaseException:
            await connection.close(timeout=1)
            raise
        if not won:
            await connection.close(timeout=1)
            return False
        self._connection = connection
        log.info("this process now runs the reconciler")
        return True

    async def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close(timeout=1)
