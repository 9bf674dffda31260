"""Apply the Alembic history (``migrations/`` at the repository root) from Python.

The service and the tests call these; the ``alembic`` command line runs the same ``env.py``.
The options Alembic runs with live here (:func:`context_options`) so that ``env.py`` and the test
that compares the models with the migrations use the very same ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from sqlalchemy.engine import URL, Connection

from agent_containers.store.database import create_engine

REPO_ROOT = Path(__file__).resolve().parents[3]
"""The repository root (the package is installed in editable mode)."""

ALEMBIC_INI = REPO_ROOT / "alembic.ini"
MIGRATIONS_DIR = REPO_ROOT / "migrations"


def context_options(dialect_name: str) -> dict[str, Any]:
    """Keyword arguments for ``EnvironmentContext.configure`` / ``MigrationContext.configure``.

    On SQLite: batch mode (ALTER TABLE is rebuilt as copy-and-move), and transactional DDL, which
    holds because our engines emit a real ``BEGIN IMMEDIATE`` (a failed upgrade leaves nothing).
    """
    sqlite = dialect_name == "sqlite"
    options: dict[str, Any] = {
        "compare_type": True,
        "compare_server_default": True,
        "render_as_batch": sqlite,
        "render_item": render_item,
    }
    if sqlite:
        options["transactional_ddl"] = True
    return options


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """Autogenerate renders our TypeDecorators as their plain SQLAlchemy type.

    Revisions then never import application code (``UtcDateTime`` becomes
    ``sa.DateTime(timezone=True)``, ``ContainerStatusType`` becomes ``sa.String(length=16)``).
    """
    if type_ == "type" and isinstance(obj, sa.TypeDecorator):
        impl = obj.impl_instance
        if type(impl).__module__.startswith("sqlalchemy.sql."):
            return f"sa.{impl!r}"
    return False


def alembic_config(url: str | URL | None = None) -> Config:
    """The Alembic configuration of the repository, optionally bound to a database URL."""
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # The caller's logging setup wins over alembic.ini's.
    config.attributes["configure_logger"] = False
    if url is not None:
        config.attributes["url"] = url if isinstance(url, str) else url.render_as_string(False)
    return config


async def upgrade_to_head(url: str) -> None:
    """Apply every migration not yet applied to the database at ``url``."""
    await _run(url, _upgrade, "head")


async def downgrade_to_base(url: str) -> None:
    """Revert every migration applied to the database at ``url``."""
    await _run(url, _downgrade, "base")


async def _run(url: str, operation: Any, revision: str) -> None:
    # Foreign keys off on SQLite: a batch migration that rebuilds a table would otherwise
    # cascade-delete the rows that reference it. env.py runs PRAGMA foreign_key_check afterwards.
    engine = create_engine(url, sqlite_foreign_keys=False)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(operation, alembic_config(url), revision)
    finally:
        await engine.dispose()


def _upgrade(connection: Connection, config: Config, revision: str) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _downgrade(connection: Connection, config: Config, revision: str) -> None:
    config.attributes["connection"] = connection
    command.downgrade(config, revision)
