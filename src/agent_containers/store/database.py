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

``BEGIN IMMEDIATE`` follows SQLAlchemy's documented recipe: the driver's own transaction
handling is switched off (``isolation_level = None`` on the DBAPI connection, which SQLAlchemy's
aiosqlite adapter forwards to the ``sqlite3`` connection on aiosqlite's worker thread) and the
engine's ``begin`` event emits the ``BEGIN`` itself. ``COMMIT`` and ``ROLLBACK`` still go through
the driver.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

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
        url,
        echo=echo,
        # sqlite3's own busy handler; the PRAGMA below sets the same value explicitly.
        connect_args={"timeout": busy_timeout_ms / 1000},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
        # Stop the driver from emitting its own (deferred) BEGIN; _on_begin emits ours.
        # Through SQLAlchemy's aiosqlite adapter this setter runs on the aiosqlite thread.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
            if path is not None:
                cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return
        dbapi_connection = connection.connection.dbapi_connection
        if dbapi_connection is not None and dbapi_connection.isolation_level is not None:
            # SQLAlchemy put the driver back in its legacy mode when it reset the connection
            # from AUTOCOMMIT (or another isolation level); switch it off again.
            dbapi_connection.isolation_level = None
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _reset_in_begin(connection)
            raise

    return engine


def _reset_in_begin(connection: Connection) -> None:
    """Undo SQLAlchemy's "inside BEGIN" mark after a failed BEGIN (e.g. "database is locked").

    ``Connection._begin_impl`` sets a private ``__in_begin`` flag *before* it dispatches the
    ``begin`` event and only clears it in a ``finally`` around ``dialect.do_begin``. When a
    ``begin`` handler raises, the flag stays set, and that ``Connection`` never autobegins again:
    every later statement on it would run without any BEGIN, i.e. in autocommit mode. (Sessions
    take a new ``Connection`` after a rollback; a reused ``AsyncConnection`` does not.) A test
    covers this, so a rename of the private attribute upstream shows up as a failure.
    """
    if hasattr(connection, _IN_BEGIN_ATTRIBUTE):
        setattr(connection, _IN_BEGIN_ATTRIBUTE, False)


_IN_BEGIN_ATTRIBUTE = "_Connection__in_begin"
