"""Engines and sessions for SQLite (aiosqlite) and PostgreSQL (asyncpg).

SQLite connections are set up so that the service can rely on them under concurrency:

- ``PRAGMA foreign_keys=ON`` (SQLite ignores foreign keys, and so ON DELETE CASCADE, otherwise);
- ``PRAGMA journal_mode=WAL`` (a reader outside a transaction, such as the sqlite3 shell or a
  backup, does not block the writer; the service itself begins every transaction IMMEDIATE,
  reads included, so its transactions run one at a time);
- ``PRAGMA busy_timeout`` (wait for a lock instead of failing at once with "database is locked");
- every transaction starts with ``BEGIN IMMEDIATE``, which takes the database's write lock at the
  start of the transaction. SQLite ignores ``SELECT ... FOR UPDATE``, so this is what makes a
  read-check-write sequence (the container quota) atomic: a second transaction waits at its
  ``BEGIN`` until the first one ends, then reads what the first one wrote.

``BEGIN IMMEDIATE`` is emitted by the dialect's ``do_begin`` (a registered subclass of SQLAlchemy's
aiosqlite dialect), where SQLAlchemy expects the BEGIN to happen: a BEGIN that fails ("database is
locked") is then an ordinary failed statement, and the connection begins normally next time. The
driver stays in its default mode, which emits no BEGIN of its own once ours is open; in
``AUTOCOMMIT`` (``isolation_level`` None) no BEGIN is emitted at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

IMMEDIATE_SQLITE_DRIVER = "aiosqlite_immediate"


class ImmediateSQLiteDialect(SQLiteDialect_aiosqlite):
    """aiosqlite whose transactions begin with ``BEGIN IMMEDIATE`` (see the module docstring)."""

    supports_statement_cache = True

    def do_begin(self, dbapi_connection: PoolProxiedConnection) -> None:
        if dbapi_connection.isolation_level is None:
            return  # AUTOCOMMIT: no transaction at all
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
        finally:
            cursor.close()


registry.register(
    f"sqlite.{IMMEDIATE_SQLITE_DRIVER}", "agent_containers.store.database", "ImmediateSQLiteDialect"
)

DATABASE_URL_ENV = "AGENT_CONTAINERS_DATABASE_URL"
"""The environment variable that names the database (read by ``migrations/env.py``)."""

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/agent-containers.db"
"""The embedded default: a SQLite file under ``./var`` (relative to the working directory)."""

DEFAULT_SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite connection waits for a lock before it fails with "database is locked"."""


def is_sqlite(engine: AsyncEngine | Connection) -> bool:
    """Whether the engine (or a sync connection, e.g. inside ``run_sync``) talks to SQLite."""
    return engine.dialect.name == "sqlite"


def is_postgresql(engine: AsyncEngine | Connection) -> bool:
    """Whether the engine (or a sync connection) talks to PostgreSQL."""
    return engine.dialect.name == "postgresql"


def create_engine(
    url: str | URL,
    *,
    echo: bool = False,
    sqlite_busy_timeout_ms: int = DEFAULT_SQLITE_BUSY_TIMEOUT_MS,
    sqlite_foreign_keys: bool = True,
    pool_size: int = 10,
    max_overflow: int = 10,
) -> AsyncEngine:
    """An async engine for ``sqlite+aiosqlite://`` or ``postgresql+asyncpg://`` URLs.

    For a SQLite file, its parent directory is created if missing. ``sqlite_foreign_keys=False``
    is for migrations only (a batch migration that rebuilds a table must not cascade deletes).
    ``pool_size`` and ``max_overflow`` apply to PostgreSQL.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _create_sqlite_engine(
            parsed,
            echo=echo,
            busy_timeout_ms=sqlite_busy_timeout_ms,
            foreign_keys=sqlite_foreign_keys,
        )
    if backend == "postgresql":
        return _create_async_engine(
            parsed,
            echo=echo,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_pre_ping=True,
            pool_recycle=1800,
            pool_timeout=30,
        )
    raise ValueError(
        f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}: "
        "use sqlite+aiosqlite:// or postgresql+asyncpg://"
    )


def plain_postgresql_dsn(url: str | URL) -> str:
    """The DSN asyncpg takes for a ``postgresql+asyncpg://`` URL: for the connections that live
    outside the pool (the invalidation listener, the reconciler's leadership)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions bound to the engine; objects stay readable after commit (no lazy reloads)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def _sqlite_file(url: URL) -> Path | None:
    """The file behind a SQLite URL, or None for in-memory and ``file:`` URI databases."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _create_sqlite_engine(
    url: URL, *, echo: bool, busy_timeout_ms: int, foreign_keys: bool
) -> AsyncEngine:
    if busy_timeout_ms < 0:
        raise ValueError("sqlite_busy_timeout_ms must be >= 0")
    path = _sqlite_file(url)
    if path is not None:
        path.expanduser().parent.mkdir(parents=True, exist_ok=True)

    engine = _create_async_engine(
        url.set(drivername=f"sqlite+{IMMEDIATE_SQLITE_DRIVER}"),
        echo=echo,
        # sqlite3's own busy handler; the PRAGMA below sets the same value explicitly.
        connect_args={"timeout": busy_timeout_ms / 1000},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
            if path is not None:
                cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    return engine


async def ping(session: AsyncSession) -> None:
    """One round trip to the database: it answers, or the driver says why not."""
    await session.execute(text("SELECT 1"))
