"""Alembic environment: async engines, one history for SQLite and PostgreSQL.

The database URL is, in order: ``config.attributes["url"]`` (programmatic use), ``-x url=...``
on the command line, the ``AGENT_CONTAINERS_DATABASE_URL`` environment variable, and the
embedded default SQLite file. A caller may also hand over an open *sync* connection in
``config.attributes["connection"]`` (from ``AsyncConnection.run_sync``, as
``agent_containers.store.migrations`` does); the migrations then run in the caller's
transaction, on the caller's connection.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection, make_url

from agent_containers.store.database import (
    DATABASE_URL_ENV,
    DEFAULT_DATABASE_URL,
    create_engine,
)
from agent_containers.store.migrations import context_options
from agent_containers.store.models import Base

config = context.config

if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


MIGRATION_LOCK_KEY = 0x61637F_0001  # arbitrary, fixed: the advisory lock every migrator takes


def database_url() -> str:
    url = config.attributes.get("url")
    if url:
        return str(url)
    url = context.get_x_argument(as_dictionary=True).get("url")
    if url:
        return url
    return os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL


def run_migrations_offline() -> None:
    """Emit the SQL to stdout (``alembic upgrade head --sql``) instead of running it."""
    url = make_url(database_url())
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **context_options(url.get_backend_name()),
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        **context_options(connection.dialect.name),
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Replicas that start together migrate one at a time; the later ones find head.
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
        context.run_migrations()
        if connection.dialect.name == "sqlite":
            # Migrations run with foreign keys off (see store.migrations); prove nothing broke.
            violations = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if violations:
                raise RuntimeError(f"foreign key violations after migrating: {violations!r}")


async def run_async_migrations() -> None:
    engine = create_engine(database_url(), sqlite_foreign_keys=False)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        asyncio.run(run_async_migrations())
    elif isinstance(connection, Connection):
        do_run_migrations(connection)
    else:
        raise TypeError(
            'config.attributes["connection"] must be a sync Connection: pass it from '
            "AsyncConnection.run_sync, as agent_containers.store.migrations does"
        )


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
