"""Container rows: the queries the container use cases need, scoped by tenant."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from agent_containers.domain.containers import LIVE_STATUSES, ContainerStatus
from agent_containers.store.models import AgentBindingRecord, ContainerRecord


async def lock_tenant(session: AsyncSession, tenant_id: str) -> None:
    """Serialises a tenant's quota and name checks until the transaction ends.

    PostgreSQL takes a transaction-scoped advisory lock keyed by the tenant, which holds across
    every process sharing the database. SQLite needs nothing more: each transaction there starts
    with BEGIN IMMEDIATE, which already holds the database's only write lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(tenant_id, 0)))
        )


async def get(
    session: AsyncSession, tenant_id: str, container_id: uuid.UUID
) -> ContainerRecord | None:
    """The tenant's container with that id (deleted ones included), or None."""
    row = await session.get(ContainerRecord, container_id)
    return row if row is not None and row.tenant_id == tenant_id else None


async def find_by_request_id(
    session: AsyncSession, tenant_id: str, request_id: uuid.UUID
) -> ContainerRecord | None:
    return await session.scalar(
        sa.select(ContainerRecord).where(
            ContainerRecord.tenant_id == tenant_id, ContainerRecord.request_id == request_id
        )
    )


async def find_live_by_name(
    session: AsyncSession, tenant_id: str, name: str
) -> ContainerRecord | None:
    return await session.scalar(
        sa.select(ContainerRecord).where(
            ContainerRecord.tenant_id == tenant_id,
            ContainerRecord.name == name,
            ContainerRecord.deleted_at.is_(None),
        )
    )


async def count_live(session: AsyncSession, tenant_id: str) -> int:
    """Containers that count against the quota: CREATING and RUNNING."""
    count = await session.scalar(
        sa.select(sa.func.count())
        .select_from(ContainerRecord)
        .where(ContainerRecord.tenant_id == tenant_id, ContainerRecord.status.in_(LIVE_STATUSES))
    )
    return int(count or 0)


async def running(session: AsyncSession, tenant_id: str) -> Sequence[ContainerRecord]:
    """The tenant's RUNNING containers (at most its quota, so few)."""
    result = await session.scalars(
        sa.select(ContainerRecord).where(
            ContainerRecord.tenant_id == tenant_id,
            ContainerRecord.status == ContainerStatus.RUNNING,
        )
    )
    return result.all()


async def stale_creating(
    session: AsyncSession, tenant_id: str, created_before: datetime
) -> Sequence[ContainerRecord]:
    """The tenant's CREATING rows older than any create still in flight could be."""
    result = await session.scalars(
        sa.select(ContainerRecord).where(
            ContainerRecord.tenant_id == tenant_id,
            ContainerRecord.status == ContainerStatus.CREATING,
            ContainerRecord.created_at < created_before,
        )
    )
    return result.all()


async def page(
    session: AsyncSession,
    tenant_id: str,
    *,
    status: ContainerStatus | None,
    include_deleted: bool,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[ContainerRecord]:
    """One page of the tenant's containers, newest first, after the (created_at, id) key."""
    query = sa.select(ContainerRecord).where(ContainerRecord.tenant_id == tenant_id)
    if status is not None:
        query = query.where(ContainerRecord.status == status)
    if not include_deleted:
        query = query.where(ContainerRecord.deleted_at.is_(None))
    if after is not None:
        created_at, container_id = after
        query = query.where(
            sa.or_(
                ContainerRecord.created_at < created_at,
                sa.and_(
                    ContainerRecord.created_at == created_at, ContainerRecord.id < container_id
                ),
            )
        )
    query = query.order_by(ContainerRecord.created_at.desc(), ContainerRecord.id.desc()).limit(
        limit
    )
    return (await session.scalars(query)).all()


async def delete_bindings(session: AsyncSession, container_id: uuid.UUID) -> list[str]:
    """Removes every agent binding to the container; returns the agents' keys."""
    result = await session.execute(
        sa.delete(AgentBindingRecord)
        .where(AgentBindingRecord.container_id == container_id)
        .returning(AgentBindingRecord.agent_key)
    )
    return list(result.scalars().all())
