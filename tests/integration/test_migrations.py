"""The schema on real SQLite and PostgreSQL databases: migrations, models, and the rules they hold.

Each test with a ``database_url`` / ``migrated_database_url`` / ``engine`` runs on both backends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from agent_containers.domain.containers import ContainerStatus
from agent_containers.store.database import (
    DATABASE_URL_ENV,
    create_engine,
    create_session_factory,
    is_sqlite,
)
from agent_containers.store.migrations import (
    ALEMBIC_INI,
    alembic_config,
    context_options,
    downgrade_to_base,
    upgrade_to_head,
)
from agent_containers.store.models import AgentBindingRecord, Base, ContainerRecord
from tests.support.databases import PostgresServer, sqlite_url
from tests.support.processes import CLI, spawned

APP_TABLES = {"containers", "agent_containers"}
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
EXPIRES_AFTER = {"anchor": "last_active_at", "minutes": 20}
COUNT = sa.select(sa.func.count()).select_from(ContainerRecord)


def new_container(tenant_id: str = "tenant-a", name: str = "box", **fields: Any) -> ContainerRecord:
    values: dict[str, Any] = {
        "owner_user_id": "user-1",
        "memory_limit": "1g",
        "status": ContainerStatus.RUNNING,
        "expires_after": EXPIRES_AFTER,
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(fields)
    return ContainerRecord(tenant_id=tenant_id, name=name, **values)


async def add(session_factory: async_sessionmaker[AsyncSession], *rows: Any) -> None:
    """Insert the rows in one transaction."""
    async with session_factory() as session, session.begin():
        session.add_all(rows)


async def inspect(url: str, reader: Callable[[sa.Inspector], Any]) -> Any:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(lambda sync: reader(sa.inspect(sync)))
    finally:
        await engine.dispose()


async def table_names(url: str) -> set[str]:
    names: list[str] = await inspect(url, lambda inspector: inspector.get_table_names())
    return set(names)


async def alembic_versions(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(sa.text("SELECT version_num FROM alembic_version"))
            return [row[0] for row in result]
    finally:
        await engine.dispose()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


# --- migrations -----------------------------------------------------------------------------


async def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    await upgrade_to_head(database_url)
    assert await table_names(database_url) == APP_TABLES | {"alembic_version"}
    assert await alembic_versions(database_url) == [head_revision()]

    await downgrade_to_base(database_url)
    assert await table_names(database_url) - {"alembic_version"} == set()
    assert await alembic_versions(database_url) == []

    await upgrade_to_head(database_url)
    assert await table_names(database_url) == APP_TABLES | {"alembic_version"}
    assert await alembic_versions(database_url) == [head_revision()]
    indexes = await inspect(
        database_url, lambda i: {x["name"] for x in i.get_indexes("containers")}
    )
    assert "ix_containers_tenant_id_name_live" in indexes


async def test_upgrade_is_idempotent(migrated_database_url: str) -> None:
    await upgrade_to_head(migrated_database_url)
    assert await alembic_versions(migrated_database_url) == [head_revision()]


def _diff(connection: Connection, metadata: sa.MetaData) -> list[Any]:
    context = MigrationContext.configure(connection, opts=context_options(connection.dialect.name))
    diff: list[Any] = compare_metadata(context, metadata)
    return diff


async def test_models_match_migrations(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        diff = await connection.run_sync(_diff, Base.metadata)
    assert diff == []


async def test_model_comparison_sees_drift(engine: AsyncEngine) -> None:
    """The comparison above is not vacuous: it sees a changed type, default and index."""
    drifted = sa.MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(drifted)
    containers = drifted.tables["containers"]
    containers.c.openai_id.type = sa.String(65)
    containers.c.metadata.server_default = sa.DefaultClause(sa.text("'{\"x\": 1}'"))
    containers.indexes.remove(
        next(ix for ix in containers.indexes if ix.name == "ix_containers_tenant_id_status")
    )

    async with engine.connect() as connection:
        diff = await connection.run_sync(_diff, drifted)

    flat = [change for entry in diff for change in (entry if isinstance(entry, list) else [entry])]
    kinds = {change[0] for change in flat}
    assert "modify_type" in kinds
    assert "modify_default" in kinds
    assert "remove_index" in kinds


def _normalize_sql(clause: Any) -> str:
    return re.sub(r"\s+", " ", str(clause).replace("(", "").replace(")", "")).strip().lower()


async def test_partial_indexes_and_constraints_match_models(engine: AsyncEngine) -> None:
    """What autogenerate does not compare: partial-index predicates, CHECK and FK options."""
    dialect = engine.dialect

    def expected(table: sa.Table) -> dict[str, tuple[tuple[str, ...], bool, str | None]]:
        indexes: dict[str, tuple[tuple[str, ...], bool, str | None]] = {}
        for index in table.indexes:
            where = index.dialect_options[dialect.name]["where"]
            predicate = None if where is None else _normalize_sql(where.compile(dialect=dialect))
            columns = tuple(column.name for column in index.columns)
            indexes[str(index.name)] = (columns, bool(index.unique), predicate)
        return indexes

    def reflect(connection: Connection) -> dict[str, Any]:
        inspector = sa.inspect(connection)
        found: dict[str, Any] = {}
        for table in APP_TABLES:
            indexes = {}
            for index in inspector.get_indexes(table):
                if index.get("duplicates_constraint"):
                    continue  # PostgreSQL lists a UNIQUE constraint's index too
                where = index.get("dialect_options", {}).get(f"{dialect.name}_where")
                indexes[index["name"]] = (
                    tuple(index["column_names"]),
                    bool(index["unique"]),
                    None if where is None else _normalize_sql(where),
                )
            found[table] = {
                "indexes": indexes,
                "checks": {c["name"] for c in inspector.get_check_constraints(table)},
                "uniques": {
                    (c["name"], tuple(c["column_names"]))
                    for c in inspector.get_unique_constraints(table)
                },
                "fks": [
                    (fk["name"], fk["constrained_columns"], fk["referred_table"], fk["options"])
                    for fk in inspector.get_foreign_keys(table)
                ],
            }
        return found

    async with engine.connect() as connection:
        found = await connection.run_sync(reflect)

    containers, bindings = ContainerRecord.__table__, AgentBindingRecord.__table__
    assert isinstance(containers, sa.Table)
    assert isinstance(bindings, sa.Table)
    assert found["containers"]["indexes"] == expected(containers)
    assert found["agent_containers"]["indexes"] == expected(bindings)
    assert found["containers"]["indexes"]["ix_containers_tenant_id_name_live"][2] == (
        "deleted_at is null"
    )
    assert found["containers"]["checks"] == {"ck_containers_status"}
    assert found["containers"]["uniques"] == {("uq_containers_openai_id", ("openai_id",))}
    assert found["agent_containers"]["fks"] == [
        (
            "fk_agent_containers_container_id_containers",
            ["container_id"],
            "containers",
            {"ondelete": "CASCADE"},
        )
    ]


def test_offline_sql_renders_for_both_databases(capsys: pytest.CaptureFixture[str]) -> None:
    for url in ("sqlite+aiosqlite:///unused.db", "postgresql+asyncpg://unused/unused"):
        command.upgrade(alembic_config(url), "head", sql=True)
        sql = capsys.readouterr().out
        assert "CREATE TABLE containers" in sql
        assert re.search(
            r"CREATE UNIQUE INDEX ix_containers_tenant_id_name_live ON containers "
            r"\(tenant_id, name\) WHERE deleted_at IS NULL",
            sql,
        )
    assert "JSONB" in sql  # the last one was PostgreSQL


async def test_alembic_command_line_uses_environment_url(tmp_path: Path) -> None:
    """``alembic`` from any directory, URL from the environment (the async env.py path)."""
    database = tmp_path / "cli" / "cli.db"
    env = {**os.environ, DATABASE_URL_ENV: sqlite_url(database)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "alembic",
        "-c",
        str(ALEMBIC_INI),
        "upgrade",
        "head",
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    assert await alembic_versions(sqlite_url(database)) == [head_revision()]


# --- rules the schema holds -------------------------------------------------------------------


async def test_live_name_is_unique_per_tenant(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    first = new_container(name="box")
    await add(session_factory, first)

    with pytest.raises(sa.exc.IntegrityError):
        await add(session_factory, new_container(name="box"))

    # Soft-deleting the first frees the name.
    async with session_factory() as session, session.begin():
        row = await session.get_one(ContainerRecord, first.id)
        row.status = ContainerStatus.DELETED
        row.deleted_at = NOW
    await add(session_factory, new_container(name="box"))
    # Deleted rows do not collide with each other either.
    await add(
        session_factory,
        new_container(name="box", status=ContainerStatus.DELETED, deleted_at=NOW),
    )
    # Another tenant may use the name.
    await add(session_factory, new_container(tenant_id="tenant-b", name="box"))

    async with session_factory() as session:
        live = await session.scalar(
            sa.select(sa.func.count())
            .select_from(ContainerRecord)
            .where(ContainerRecord.name == "box", ContainerRecord.deleted_at.is_(None))
        )
    assert live == 2


async def test_request_id_is_unique_per_tenant(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    request_id = uuid.uuid4()
    await add(session_factory, new_container(name="one", request_id=request_id))

    with pytest.raises(sa.exc.IntegrityError):
        await add(session_factory, new_container(name="two", request_id=request_id))

    await add(session_factory, new_container("tenant-b", name="two", request_id=request_id))
    await add(session_factory, new_container(name="three"), new_container(name="four"))


async def test_openai_id_is_unique_and_nullable(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await add(
        session_factory,
        new_container(name="creating-1", status=ContainerStatus.CREATING),
        new_container(name="creating-2", status=ContainerStatus.CREATING),
        new_container(name="running", openai_id="cntr_1"),
    )
    with pytest.raises(sa.exc.IntegrityError):
        await add(session_factory, new_container("tenant-b", name="other", openai_id="cntr_1"))


async def test_status_is_checked(engine: AsyncEngine) -> None:
    row_id = uuid.uuid4()
    insert = sa.text(
        "INSERT INTO containers (id, tenant_id, owner_user_id, name, memory_limit, status, "
        "expires_after, created_at, updated_at) VALUES (:id, 't', 'u', 'n', '1g', :status, "
        ":expires_after, :now, :now)"
    ).bindparams(
        sa.bindparam("id", type_=sa.Uuid()),
        sa.bindparam("expires_after", type_=ContainerRecord.__table__.c.expires_after.type),
        sa.bindparam("now", type_=ContainerRecord.__table__.c.created_at.type),
    )
    values = {"id": row_id, "expires_after": EXPIRES_AFTER, "now": NOW}
    with pytest.raises(sa.exc.IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(insert, {**values, "status": "BOGUS"})
    async with engine.begin() as connection:
        await connection.execute(insert, {**values, "status": "CREATING"})

    # The server default of metadata, and the status read back as the enum.
    async with create_session_factory(engine)() as session:
        row = await session.get_one(ContainerRecord, row_id)
    assert row.metadata_ == {}
    assert row.status is ContainerStatus.CREATING


async def test_values_round_trip(session_factory: async_sessionmaker[AsyncSession]) -> None:
    request_id = uuid.uuid4()
    row = new_container(
        request_id=request_id,
        metadata_={"team": "data", "nested": {"n": 1}},
        failure_reason=None,
    )
    await add(session_factory, row)
    async with session_factory() as session:
        read = await session.get_one(ContainerRecord, row.id)
    assert isinstance(read.id, uuid.UUID)
    assert read.request_id == request_id
    assert read.expires_after == EXPIRES_AFTER
    assert read.metadata_ == {"team": "data", "nested": {"n": 1}}
    assert read.status is ContainerStatus.RUNNING
    assert read.openai_id is None
    assert read.last_active_at is None


async def test_timestamps_are_utc_aware(session_factory: async_sessionmaker[AsyncSession]) -> None:
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2026, 3, 1, 14, 30, 15, 123456, tzinfo=plus_two)
    row = new_container(created_at=local, last_active_at=local, refreshed_at=NOW)
    await add(session_factory, row)

    async with session_factory() as session:
        read = await session.get_one(ContainerRecord, row.id)
        for value in (read.created_at, read.updated_at, read.last_active_at, read.refreshed_at):
            assert value is not None
            assert value.tzinfo is UTC
        assert read.created_at == local
        assert read.created_at.hour == 12  # 14:30 at +02:00 is 12:30 UTC
        assert read.created_at.microsecond == 123456
        assert read.deleted_at is None

        # Comparisons happen in UTC whatever the offset of the bound value.
        same_instant = local.astimezone(timezone(timedelta(hours=-5)))
        found = await session.scalar(
            sa.select(ContainerRecord.id).where(ContainerRecord.created_at == same_instant)
        )
        assert found == row.id
        earlier = await session.scalar(
            sa.select(sa.func.count())
            .select_from(ContainerRecord)
            .where(ContainerRecord.created_at < local - timedelta(microseconds=1))
        )
        assert earlier == 0


async def test_naive_timestamps_are_refused(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        await add(session_factory, new_container(created_at=datetime(2026, 1, 1, 12, 0)))


async def test_deleting_a_container_deletes_its_bindings(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    kept, doomed = new_container(name="kept"), new_container(name="doomed")
    await add(session_factory, kept, doomed)
    await add(
        session_factory,
        AgentBindingRecord(
            tenant_id="tenant-a",
            agent_key="a1",
            container_id=doomed.id,
            created_at=NOW,
            updated_at=NOW,
        ),
        AgentBindingRecord(
            tenant_id="tenant-a",
            agent_key="a2",
            container_id=doomed.id,
            created_at=NOW,
            updated_at=NOW,
        ),
        AgentBindingRecord(
            tenant_id="tenant-a",
            agent_key="a3",
            container_id=kept.id,
            created_at=NOW,
            updated_at=NOW,
        ),
    )

    async with session_factory() as session, session.begin():
        await session.execute(sa.delete(ContainerRecord).where(ContainerRecord.id == doomed.id))

    async with session_factory() as session:
        keys = (await session.scalars(sa.select(AgentBindingRecord.agent_key))).all()
    assert keys == ["a3"]


async def test_binding_requires_an_existing_container(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(sa.exc.IntegrityError):
        await add(
            session_factory,
            AgentBindingRecord(
                tenant_id="tenant-a",
                agent_key="a1",
                container_id=uuid.uuid4(),
                created_at=NOW,
                updated_at=NOW,
            ),
        )


# --- SQLite transactions ----------------------------------------------------------------------


@pytest.fixture
async def sqlite_database(tmp_path: Path) -> str:
    url = sqlite_url(tmp_path / "nested" / "dir" / "immediate.db")
    await upgrade_to_head(url)
    return url


async def test_sqlite_file_and_pragmas(sqlite_database: str, tmp_path: Path) -> None:
    assert (tmp_path / "nested" / "dir" / "immediate.db").is_file()
    engine = create_engine(sqlite_database, sqlite_busy_timeout_ms=1234)
    try:
        assert is_sqlite(engine)
        async with engine.connect() as connection:

            async def pragma(name: str) -> Any:
                return (await connection.exec_driver_sql(f"PRAGMA {name}")).scalar()

            assert await pragma("foreign_keys") == 1
            assert await pragma("journal_mode") == "wal"
            assert await pragma("busy_timeout") == 1234
    finally:
        await engine.dispose()


async def test_sqlite_transactions_begin_immediate(sqlite_database: str) -> None:
    """A transaction that has only read already holds the write lock, so a second one cannot
    even start. With SQLite's default deferred BEGIN (or the driver's legacy mode, which emits no
    BEGIN before a SELECT) the second read would succeed."""
    engine = create_engine(sqlite_database, sqlite_busy_timeout_ms=100)
    try:
        async with engine.connect() as first, engine.connect() as second:
            assert await first.scalar(COUNT) == 0  # only a read
            assert first.in_transaction()
            with pytest.raises(sa.exc.OperationalError, match="database is locked"):
                await second.scalar(COUNT)
    finally:
        await engine.dispose()


async def test_sqlite_connection_begins_again_after_a_busy_begin(sqlite_database: str) -> None:
    """After a BEGIN IMMEDIATE that failed with "database is locked", the same connection still
    begins its next transaction with BEGIN IMMEDIATE: the BEGIN is the dialect's do_begin, so a
    failed one leaves SQLAlchemy's connection as any failed statement would."""
    engine = create_engine(sqlite_database, sqlite_busy_timeout_ms=100)
    try:
        async with engine.connect() as first, engine.connect() as second:
            await first.scalar(COUNT)
            with pytest.raises(sa.exc.OperationalError, match="database is locked"):
                await second.scalar(COUNT)
            await second.rollback()
            await first.rollback()

            assert await second.scalar(COUNT) == 0  # the lock is free again
            assert second.in_transaction()
            with pytest.raises(sa.exc.OperationalError, match="database is locked"):
                await first.scalar(COUNT)  # because second holds the write lock again
    finally:
        await engine.dispose()


async def test_sqlite_autocommit_takes_no_lock(sqlite_database: str) -> None:
    engine = create_engine(sqlite_database, sqlite_busy_timeout_ms=100)
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    try:
        async with autocommit.connect() as reader, engine.connect() as writer:
            assert await reader.scalar(COUNT) == 0
            assert await writer.scalar(COUNT) == 0  # not blocked by the autocommit reader
            await writer.rollback()
        # The pooled connection is back to BEGIN IMMEDIATE after its AUTOCOMMIT use.
        async with engine.connect() as first, engine.connect() as second:
            await first.scalar(COUNT)
            with pytest.raises(sa.exc.OperationalError, match="database is locked"):
                await second.scalar(COUNT)
    finally:
        await engine.dispose()


async def test_sqlite_read_check_write_is_serialized(sqlite_database: str) -> None:
    """The quota pattern: count, then insert. The second transaction waits at its BEGIN and then
    counts the first one's row; with a deferred BEGIN both would count 0."""
    engine = create_engine(sqlite_database, sqlite_busy_timeout_ms=10_000)
    sessions = create_session_factory(engine)
    first_has_counted = asyncio.Event()

    async def reserve(name: str, *, hold: bool) -> int:
        async with sessions() as session, session.begin():
            running = await session.scalar(
                sa.select(sa.func.count())
                .select_from(ContainerRecord)
                .where(
                    ContainerRecord.tenant_id == "tenant-a",
                    ContainerRecord.status.in_([ContainerStatus.CREATING, ContainerStatus.RUNNING]),
                )
            )
            assert running is not None
            if hold:
                first_has_counted.set()
                await asyncio.sleep(0.3)
            session.add(new_container(name=name, status=ContainerStatus.CREATING))
            return running

    async def second() -> int:
        await first_has_counted.wait()
        return await reserve("second", hold=False)

    try:
        seen = await asyncio.gather(reserve("first", hold=True), second())
    finally:
        await engine.dispose()
    assert seen == [0, 1]


async def test_concurrent_upgrades_on_postgresql_all_succeed(
    require_postgres: PostgresServer,
) -> None:
    """Replicas starting together each run `migrate`; one migrates, the others find head.

    Separate processes, as in a deployment (Alembic's context is process-global state).
    """
    url = await require_postgres.create_database()
    try:
        env = {**os.environ, "AGENT_CONTAINERS_DATABASE_URL": url}
        async with contextlib.AsyncExitStack() as stack:
            migrators = [
                await stack.enter_async_context(
                    spawned(*CLI, "migrate", env=env, stderr=asyncio.subprocess.PIPE)
                )
                for _ in range(3)
            ]
            codes = [await migrator.exited(within=60) for migrator in migrators]
        assert codes == [0, 0, 0], [m.stderr.decode() for m in migrators]
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                versions = (
                    await connection.execute(sa.text("SELECT version_num FROM alembic_version"))
                ).all()
        finally:
            await engine.dispose()
        assert len(versions) == 1
    finally:
        await require_postgres.drop_database(url)
