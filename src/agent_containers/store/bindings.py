"""Agent binding rows, always read with the container they point at, scoped by tenant."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from agent_containers.domain.bindings import AgentBinding
from agent_containers.domain.containers import Container
from agent_containers.store.containers import to_value
from agent_containers.store.models import AgentBindingRecord, ContainerRecord


def _with_container() -> sa.Select[AgentBindingRecord, ContainerRecord]:
    return sa.select(AgentBindingRecord, ContainerRecord).join(
        ContainerRecord, ContainerRecord.id == AgentBindingRecord.container_id
    )


def _binding(binding: AgentBindingRecord, container: ContainerRecord) -> AgentBinding:
    return AgentBinding(
        agent_key=binding.agent_key,
        container=to_value(container),
        created_at=binding.created_at,
        updated_at=binding.updated_at,
    )


async def get(session: AsyncSession, tenant_id: str, agent_key: str) -> AgentBinding | None:
    result = await session.execute(
        _with_container().where(
            AgentBindingRecord.tenant_id == tenant_id, AgentBindingRecord.agent_key == agent_key
        )
    )
    row = result.first()
    return None if row is None else _binding(row[0], row[1])


async def bound_container_id(
    session: AsyncSession, tenant_id: str, agent_key: str
) -> uuid.UUID | None:
    return await session.scalar(
        sa.select(AgentBindingRecord.container_id).where(
            AgentBindingRecord.tenant_id == tenant_id, AgentBindingRecord.agent_key == agent_key
        )
    )


async def lock_container(
    session: AsyncSession, tenant_id: str, container_id: uuid.UUID
) -> Container | None:
    """The tenant's container, locked until the transaction ends so a delete cannot interleave.

    PostgreSQL: SELECT ... FOR UPDATE. SQLite: the transaction's BEGIN IMMEDIATE already holds
    the database's write lock (and SQLAlchemy leaves FOR UPDATE out there).
    """
    row = await session.scalar(
        sa.select(ContainerRecord)
        .where(ContainerRecord.id == container_id, ContainerRecord.tenant_id == tenant_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return None if row is None else to_value(row)


async def upsert(
    session: AsyncSession, tenant_id: str, agent_key: str, container_id: uuid.UUID, now: datetime
) -> None:
    """Binds the agent to the container, replacing any earlier binding."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(AgentBindingRecord).values(
        tenant_id=tenant_id,
        agent_key=agent_key,
        container_id=container_id,
        created_at=now,
        updated_at=now,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[AgentBindingRecord.tenant_id, AgentBindingRecord.agent_key],
            set_={"container_id": container_id, "updated_at": now},
        )
    )


async def delete(session: AsyncSession, tenant_id: str, agent_key: str) -> None:
    await session.execute(
        sa.delete(AgentBindingRecord).where(
            AgentBindingRecord.tenant_id == tenant_id, AgentBindingRecord.agent_key == agent_key
        )
    )


async def page(
    session: AsyncSession,
    tenant_id: str,
    *,
    container_id: uuid.UUID | None,
    after: str | None,
    limit: int,
) -> list[AgentBinding]:
    """One page of the tenant's bindings, by agent key."""
    query = _with_container().where(AgentBindingRecord.tenant_id == tenant_id)
    if container_id is not None:
        query = query.where(AgentBindingRecord.container_id == container_id)
    if after is not None:
        query = query.where(AgentBindingRecord.agent_key > after)
    result = await session.execute(query.order_by(AgentBindingRecord.agent_key).limit(limit))
    return [_binding(binding, container) for binding, container in result.all()]
