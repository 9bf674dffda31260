"""Fresh, throw-away databases for the tests: a SQLite file, or a PostgreSQL database.

PostgreSQL is found at ``AGENT_CONTAINERS_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``); the URL names a database to connect to for
``CREATE DATABASE`` / ``DROP DATABASE``, never one the tests write into.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL, make_url

POSTGRES_URL_ENV = "AGENT_CONTAINERS_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgresql")
CONNECT_TIMEOUT_S = 5.0


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@dataclass(frozen=True)
class PostgresServer:
    """Where the test PostgreSQL is, and whether it answered when the session started."""

    admin_url: URL
    """A libpq-style URL (``postgresql://``) of the maintenance database."""
    error: str | None = None
    """Why it is unusable, or None when it is reachable."""

    @classmethod
    def from_env(cls) -> PostgresServer:
        url = make_url(os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL)
        return cls(admin_url=url.set(drivername="postgresql"))

    @property
    def address(self) -> str:
        return f"{self.admin_url.host or 'localhost'}:{self.admin_url.port or 5432}"

    @property
    def unreachable_reason(self) -> str:
        return f"PostgreSQL not reachable at {self.address}: {self.error}"

    def _dsn(self) -> str:
        return self.admin_url.render_as_string(hide_password=False)

    async def probe(self) -> PostgresServer:
        """This server, with ``error`` set if it cannot be connected to."""
        try:
            connection = await asyncpg.connect(self._dsn(), timeout=CONNECT_TIMEOUT_S)
        except Exception as exc:  # refused, timed out, bad auth, missing database, ...
            return PostgresServer(self.admin_url, f"{type(exc).__name__}: {exc}")
        try:
            await connection.fetchval("SELECT 1")
        finally:
            await connection.close()
        return self

    async def create_database(self) -> str:
        """Create an empty, uniquely named database; return its ``postgresql+asyncpg`` URL."""
        name = f"ac_{uuid.uuid4().hex[:16]}"
        connection = await asyncpg.connect(self._dsn(), timeout=CONNECT_TIMEOUT_S)
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        return self.admin_url.set(drivername="postgresql+asyncpg", database=name).render_as_string(
            hide_password=False
        )

    async def drop_database(self, url: str) -> None:
        """Drop a database made by :meth:`create_database`, even with sessions still open."""
        name = make_url(url).database
        if not name or not name.startswith("ac_"):
            raise ValueError(f"refusing to drop {name!r}: not a test database")
        connection = await asyncpg.connect(self._dsn(), timeout=CONNECT_TIMEOUT_S)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()
