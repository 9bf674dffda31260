"""The tables, as SQLAlchemy 2 typed declarative models.

The migrations in ``migrations/versions/`` create exactly this schema; a test compares the two on
SQLite and PostgreSQL. Every timestamp is a timezone-aware UTC ``datetime`` on both databases
(:class:`UtcDateTime`); nothing here has a default of "now": the service's :class:`Clock` is the one
source of time, so callers set ``created_at`` and ``updated_at`` themselves.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from agent_containers.domain.containers import ContainerStatus

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Names for constraints and indexes, so that migrations can refer to them on every database."""

JSON_DOCUMENT = sa.JSON().with_variant(JSONB(), "postgresql")
"""JSON on SQLite, JSONB on PostgreSQL."""

EMPTY_JSON_OBJECT = sa.text("'{}'")
"""Server default of an empty JSON object, valid for both SQLite JSON text and PostgreSQL JSONB."""

EMPTY_JSON_ARRAY = sa.text("'[]'")
"""Server default of an empty JSON array, on both databases."""

LIVE_ROWS = sa.text("deleted_at IS NULL")
"""Partial-index predicate: rows that are not soft-deleted."""

WITH_REQUEST_ID = sa.text("request_id IS NOT NULL")
"""Partial-index predicate: rows created with an idempotency key."""


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database.

    Writes refuse naive datetimes (their instant is ambiguous) and store the value converted to
    UTC; reads always return an aware datetime in UTC. SQLite keeps no offset (SQLAlchemy stores
    a fixed-width ISO string, so stored values still sort correctly), hence the ``replace`` on read.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: give it a timezone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class ContainerStatusType(sa.TypeDecorator[ContainerStatus]):
    """``containers.status``: a VARCHAR(16) in the database, a :class:`ContainerStatus` in Python.

    The accepted values are enforced in the database by the ``ck_containers_status`` CHECK.
    """

    impl = sa.String(16)
    cache_ok = True

    def process_bind_param(
        self, value: ContainerStatus | str | None, dialect: Dialect
    ) -> str | None:
        if value is None:
            return None
        return ContainerStatus(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> ContainerStatus | None:
        if value is None:
            return None
        return ContainerStatus(value)


def _status_check() -> str:
    values = ", ".join(f"'{status.value}'" for status in ContainerStatus)
    return f"status IN ({values})"


class Base(DeclarativeBase):
    """The declarative base of every table; carries the constraint naming convention."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - read by SQLAlchemy, never mutated
        datetime: UtcDateTime(),
        dict[str, Any]: JSON_DOCUMENT,
        list[Any]: JSON_DOCUMENT,
        uuid.UUID: sa.Uuid(),
    }


class ContainerRecord(Base):
    """One container of one tenant, from its reservation (CREATING) to its end."""

    __tablename__ = "containers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    openai_id: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    """The upstream id; NULL while CREATING."""
    tenant_id: Mapped[str] = mapped_column(sa.String(128))
    owner_user_id: Mapped[str] = mapped_column(sa.String(128))
    name: Mapped[str] = mapped_column(sa.String(128))
    memory_limit: Mapped[str] = mapped_column(sa.String(8))
    status: Mapped[ContainerStatus] = mapped_column(ContainerStatusType())
    expires_after: Mapped[dict[str, Any]]
    """As upstream has it, e.g. ``{"anchor": "last_active_at", "minutes": 20}``."""
    last_active_at: Mapped[datetime | None]
    refreshed_at: Mapped[datetime | None]
    """When the row was last refreshed from upstream."""
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", default=dict, server_default=EMPTY_JSON_OBJECT
    )
    failure_reason: Mapped[str | None] = mapped_column(sa.Text())
    request_id: Mapped[uuid.UUID | None]
    """The caller's idempotency key for Create, unique per tenant."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]
    initial_file_ids: Mapped[list[Any]] = mapped_column(
        default=list, server_default=EMPTY_JSON_ARRAY
    )
    """OpenAI file ids copied in at create."""
    network_policy: Mapped[dict[str, Any]] = mapped_column(
        default=dict, server_default=EMPTY_JSON_OBJECT
    )
    """As upstream has it, secret values left out: ``{}`` (disabled), or
    ``{"type": "allowlist", "allowed_domains": [...], "domain_secrets": [{"domain", "name"}]}``."""
    skills: Mapped[list[Any]] = mapped_column(default=list, server_default=EMPTY_JSON_ARRAY)
    """References (``skill_reference``: id, version) and inline skills (name, description, size
    and SHA-256 of the bundle, never the bundle)."""

    __table_args__ = (
        sa.CheckConstraint(_status_check(), name="status"),
        sa.Index(
            "ix_containers_tenant_id_name_live",
            "tenant_id",
            "name",
            unique=True,
            sqlite_where=LIVE_ROWS,
            postgresql_where=LIVE_ROWS,
        ),
        sa.Index(
            "ix_containers_tenant_id_request_id",
            "tenant_id",
            "request_id",
            unique=True,
            sqlite_where=WITH_REQUEST_ID,
            postgresql_where=WITH_REQUEST_ID,
        ),
        sa.Index("ix_containers_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
        sa.Index("ix_containers_tenant_id_status", "tenant_id", "status"),
    )


class AgentBindingRecord(Base):
    """The container an agent of a tenant is bound to (at most one per agent)."""

    __tablename__ = "agent_containers"

    tenant_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    agent_key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    container_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("containers.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
