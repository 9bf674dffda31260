"""Shared fixtures: throw-away databases on SQLite and PostgreSQL.

``database_url`` is parametrized over both backends (test ids ``[sqlite]`` and ``[postgresql]``)
and gives each test a fresh, empty database; ``migrated_database_url`` is the same after
``upgrade_to_head``; ``engine`` and ``session_factory`` sit on a migrated database.

PostgreSQL is probed once per session. When it cannot be reached the PostgreSQL cases are
skipped, or fail when the ``CI`` environment variable is set (CI must not go green by skipping).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from agent_containers.store.database import create_engine, create_session_factory
from agent_containers.store.migrations import upgrade_to_head
from tests.support.databases import BACKENDS, PostgresServer, sqlite_url


@pytest.fixture(scope="session")
async def postgres_server() -> PostgresServer:
    """The test PostgreSQL, probed once; ``error`` says why it is unusable, if it is."""
    return await PostgresServer.from_env().probe()


def usable_postgres(postgres_server: PostgresServer) -> PostgresServer:
    """The server if it answered; otherwise skip the test, or fail it when ``CI`` is set."""
    if postgres_server.error is not None:
        if os.environ.get("CI"):
            pytest.fail(
                f"{postgres_server.unreachable_reason} (CI is set, so this is an error; start "
                f"PostgreSQL or point AGENT_CONTAINERS_TEST_POSTGRES_URL at one)",
                pytrace=False,
            )
        pytest.skip(postgres_server.unreachable_reason)
    return postgres_server


@pytest.fixture
def require_postgres(postgres_server: PostgresServer) -> PostgresServer:
    """For PostgreSQL-only tests: the test PostgreSQL, or skip (fail under CI)."""
    return usable_postgres(postgres_server)


@pytest.fixture(params=BACKENDS)
def database_backend(request: pytest.FixtureRequest) -> str:
    """``"sqlite"`` or ``"postgresql"``."""
    backend: str = request.param
    return backend


@pytest.fixture
async def database_url(
    database_backend: str, postgres_server: PostgresServer, tmp_path: Path
) -> AsyncIterator[str]:
    """A fresh, empty database for this test; its SQLAlchemy async URL."""
    if database_backend == "sqlite":
        yield sqlite_url(tmp_path / "db" / "agent-containers.db")
        return
    server = usable_postgres(postgres_server)
    url = await server.create_database()
    try:
        yield url
    finally:
        await server.drop_database(url)


@pytest.fixture
async def migrated_database_url(database_url: str) -> str:
    """A fresh database with every migration applied."""
    await upgrade_to_head(database_url)
    return database_url


@pytest.fixture
async def engine(migrated_database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh, migrated database (disposed after the test)."""
    engine = create_engine(migrated_database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)
