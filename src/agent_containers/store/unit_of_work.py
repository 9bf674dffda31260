"""The one way the service talks to its database: reads, and writes that publish what changed.

A write is one transaction. Its body records what it changed (a container, a binding); just
before the commit those changes are announced to the other processes (PostgreSQL NOTIFY, sent
only if the commit happens), and after the transaction ends this process is told too, whatever
happened: an eviction too many only costs a reload. No write can forget to keep the caches
coherent, because no write happens anywhere else.

Every read and write runs to its end in a task of its own: a caller that is cancelled (a client
that hung up, a deadline) stops waiting, but never leaves a connection half-used, a transaction
open or a SQLite write lock held. Losing the database is an error worth a retry
(:class:`DatabaseUnavailable`), not an internal one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

import sqlalchemy.exc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agent_containers.detached import Detached
from agent_containers.domain.errors import DatabaseUnavailable
from agent_containers.store import notifications
from agent_containers.store.notifications import Invalidation, binding_changed, container_changed

T = TypeVar("T")
log = logging.getLogger(__name__)

# SQLSTATE classes that mean the server went away or is not taking connections: connection
# exceptions, operator intervention (shutdown, restart), insufficient resources.
_UNAVAILABLE_SQLSTATES = ("08", "57P", "53")
# What the drivers say when the database is busy or out of reach without a SQLSTATE (SQLite's
# lock timeout, a file that cannot be opened, a socket that closed).
_UNAVAILABLE_MESSAGES = ("database is locked", "unable to open", "connect", "closed", "timeout")


class Transaction:
    """One write transaction: the session the store's functions take, and what it changed."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.changes: list[Invalidation] = []

    def container_changed(self, tenant_id: str, container_id: object) -> None:
        self.changes.append(container_changed(tenant_id, container_id))

    def binding_changed(self, tenant_id: str, agent_key: str) -> None:
        self.changes.append(binding_changed(tenant_id, agent_key))

    def announce(self, invalidation: Invalidation) -> None:
        """Anything else the other processes must hear of (reconciliation progress)."""
        self.changes.append(invalidation)


class UnitOfWork:
    """Reads and writes, each in a task that runs to its end; writes publish their changes."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        on_committed: Callable[[Iterable[Invalidation]], None],
    ) -> None:
        """`on_committed(changes)`: this process's own caches, told after every write."""
        self._sessions = sessions
        self._on_committed = on_committed
        self._detached = Detached()

    async def read(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """`work(session)` in a transaction that is rolled back at the end."""
        return await self._run_to_end(self._read(work))

    async def write(self, work: Callable[[Transaction], Awaitable[T]]) -> T:
        """`work(transaction)` in a transaction that commits unless it raises."""
        return await self._run_to_end(self._write(work))

    async def _read(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async with self._sessions() as session:
            return await work(session)

    async def _write(self, work: Callable[[Transaction], Awaitable[T]]) -> T:
        transaction: Transaction | None = None
        try:
            async with self._sessions.begin() as session:
                transaction = Transaction(session)
                result = await work(transaction)
                await notifications.publish(session, transaction.changes)
            return result
        finally:
            if transaction is not None and transaction.changes:
                self._on_committed(transaction.changes)

    async def _run_to_end(self, work: Coroutine[Any, Any, T]) -> T:
        try:
            return await asyncio.shield(self._detached.start(work))
        except Exception as error:
            unavailable = database_unavailable(error)
            if unavailable is not None:
                raise unavailable from error
            raise

    async def wait_idle(self) -> None:
        """Waits for reads and writes whose callers stopped waiting (used at shutdown)."""
        await self._detached.wait()


def database_unavailable(error: BaseException) -> DatabaseUnavailable | None:
    """The retryable error a lost, refused, busy or overloaded database amounts to; None for
    anything else (a missing table, a constraint: those are bugs, not outages)."""
    match error:
        case sqlalchemy.exc.DBAPIError(connection_invalidated=True):
            return DatabaseUnavailable("the database connection was lost; retry")
        case sqlalchemy.exc.InterfaceError():
            return DatabaseUnavailable("the database connection is unusable; retry")
        case sqlalchemy.exc.DBAPIError(orig=orig) if str(
            getattr(orig, "sqlstate", "") or ""
        ).startswith(_UNAVAILABLE_SQLSTATES):
            return DatabaseUnavailable("the database is unavailable; retry")
        case sqlalchemy.exc.OperationalError() if any(
            sign in str(error.orig).lower() for sign in _UNAVAILABLE_MESSAGES
        ):
            return DatabaseUnavailable("the database is busy or unreachable; retry")
        case sqlalchemy.exc.TimeoutError():
            return DatabaseUnavailable("no database connection was free in time; retry")
        case OSError() | TimeoutError():
            return DatabaseUnavailable("the database could not be reached; retry")
    return None
