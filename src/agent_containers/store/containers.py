"""Container rows: every query and write the container use cases need, as domain values.

Rows never leave this module: callers get :class:`Container` values. Writes that settle a row
lock it first (``FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already holds the only
write lock), and each write says whether it changed anything, so callers publish only real changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from agent_containers.domain.containers import (
    LIVE_STATUSES,
    Container,
    ContainerSpec,
    ContainerStatus,
    UpstreamFacts,
)
from agent_containers.domain.create_options import (
    DISABLED,
    DomainSecret,
    InlineSkill,
    NetworkAccess,
    NetworkPolicy,
    Skill,
    SkillReference,
)
from agent_containers.store.models import AgentBindingRecord, ContainerRecord


def to_value(row: ContainerRecord) -> Container:
    """The domain value of a row."""
    return Container(
        id=row.id,
        tenant_id=row.tenant_id,
        owner_user_id=row.owner_user_id,
        name=row.name,
        memory_tier=row.memory_limit,
        status=row.status,
        expiry_minutes=int(row.expires_after["minutes"]),
        metadata={str(key): str(value) for key, value in row.metadata_.items()},
        openai_id=row.openai_id,
        last_active_at=row.last_active_at,
        refreshed_at=row.refreshed_at,
        failure_reason=row.failure_reason,
        request_id=row.request_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
        initial_file_ids=tuple(str(file_id) for file_id in row.initial_file_ids),
        network_policy=_network_policy(row.network_policy),
        skills=tuple(_skill(entry) for entry in row.skills),
    )


def _network_policy_document(policy: NetworkPolicy) -> dict[str, Any]:
    """The policy as stored: upstream's shape, secret values left out."""
    if policy.access is NetworkAccess.DISABLED:
        return {}
    return {
        "type": policy.access.value,
        "allowed_domains": list(policy.allowed_domains),
        "domain_secrets": [{"domain": s.domain, "name": s.name} for s in policy.secrets],
    }


def _network_policy(document: dict[str, Any]) -> NetworkPolicy:
    if document.get("type") != NetworkAccess.ALLOWLIST.value:
        return DISABLED
    return NetworkPolicy(
        NetworkAccess.ALLOWLIST,
        tuple(document.get("allowed_domains", ())),
        tuple(DomainSecret(s["domain"], s["name"]) for s in document.get("domain_secrets", ())),
    )


def _skill_document(skill: Skill) -> dict[str, Any]:
    """A skill as stored: an inline skill's bundle is left out (its size and digest stay)."""
    if isinstance(skill, SkillReference):
        return {"type": "skill_reference", "skill_id": skill.skill_id, "version": skill.version}
    return {
        "type": "inline",
        "name": skill.name,
        "description": skill.description,
        "size_bytes": skill.size_bytes,
        "sha256": skill.sha256,
    }


def _skill(document: dict[str, Any]) -> Skill:
    if document.get("type") == "skill_reference":
        return SkillReference(str(document["skill_id"]), str(document.get("version", "")))
    return InlineSkill(
        name=str(document["name"]),
        description=str(document["description"]),
        size_bytes=int(document.get("size_bytes", 0)),
        sha256=str(document.get("sha256", "")),
    )


def _expires_after(minutes: int) -> dict[str, object]:
    return {"anchor": "last_active_at", "minutes": minutes}


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


async def _locked(session: AsyncSession, container_id: uuid.UUID) -> ContainerRecord | None:
    return await session.get(
        ContainerRecord, container_id, with_for_update=True, populate_existing=True
    )


# --- reads ----------------------------------------------------------------------------------


async def get(session: AsyncSession, tenant_id: str, container_id: uuid.UUID) -> Container | None:
    """The tenant's container with that id (deleted ones included), or None."""
    row = await session.get(ContainerRecord, container_id)
    return to_value(row) if row is not None and row.tenant_id == tenant_id else None


async def get_by_openai_id(
    session: AsyncSession, tenant_id: str, openai_id: str
) -> Container | None:
    """The tenant's container with that upstream id, or None (another tenant's included)."""
    row = await session.scalar(
        sa.select(ContainerRecord).where(
            ContainerRecord.openai_id == openai_id, ContainerRecord.tenant_id == tenant_id
        )
    )
    return None if row is None else to_value(row)


async def find_by_request_id(
    session: AsyncSession, tenant_id: str, request_id: uuid.UUID
) -> Container | None:
    row = await session.scalar(
        sa.select(ContainerRecord).where(
            ContainerRecord.tenant_id == tenant_id, ContainerRecord.request_id == request_id
        )
    )
    return None if row is None else to_value(row)


async def find_live_by_name(session: AsyncSession, tenant_id: str, name: str) -> Container | None:
    row = await session.scalar(
        sa.select(ContainerRecord).where(
            ContainerRecord.tenant_id == tenant_id,
            ContainerRecord.name == name,
            ContainerRecord.deleted_at.is_(None),
        )
    )
    return None if row is None else to_value(row)


async def count_live(session: AsyncSession, tenant_id: str) -> int:
    """Containers that count against the quota: CREATING and RUNNING."""
    count = await session.scalar(
        sa.select(sa.func.count())
        .select_from(ContainerRecord)
        .where(ContainerRecord.tenant_id == tenant_id, ContainerRecord.status.in_(LIVE_STATUSES))
    )
    return int(count or 0)


async def count_live_by_state_and_tier(session: AsyncSession) -> dict[tuple[str, str], int]:
    """Live containers (CREATING, RUNNING) of every tenant by (state, memory tier): one grouped
    scan of the live rows, for the metrics."""
    rows = await session.execute(
        sa.select(ContainerRecord.status, ContainerRecord.memory_limit, sa.func.count())
        .where(ContainerRecord.status.in_(LIVE_STATUSES))
        .group_by(ContainerRecord.status, ContainerRecord.memory_limit)
    )
    return {(status.value, tier): int(count) for status, tier, count in rows.all()}


async def count_tenants_at_quota(session: AsyncSession, quota: int) -> int:
    """Tenants holding at least `quota` live containers."""
    at_quota = (
        sa.select(ContainerRecord.tenant_id)
        .where(ContainerRecord.status.in_(LIVE_STATUSES))
        .group_by(ContainerRecord.tenant_id)
        .having(sa.func.count() >= quota)
        .subquery()
    )
    count = await session.scalar(sa.select(sa.func.count()).select_from(at_quota))
    return int(count or 0)


async def page(
    session: AsyncSession,
    tenant_id: str,
    *,
    status: ContainerStatus | None,
    include_deleted: bool,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Container]:
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
    return [to_value(row) for row in (await session.scalars(query)).all()]


async def in_status(
    session: AsyncSession,
    status: ContainerStatus,
    *,
    after: uuid.UUID | None,
    limit: int,
    created_before: datetime | None = None,
) -> list[Container]:
    """Every tenant's containers in a state, by id after `after` (the reconciler's batches)."""
    query = sa.select(ContainerRecord).where(ContainerRecord.status == status)
    if created_before is not None:
        query = query.where(ContainerRecord.created_at < created_before)
    if after is not None:
        query = query.where(ContainerRecord.id > after)
    query = query.order_by(ContainerRecord.id).limit(limit)
    return [to_value(row) for row in (await session.scalars(query)).all()]


async def by_ids(session: AsyncSession, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Container]:
    """The containers with these ids, whatever their tenant."""
    if not ids:
        return {}
    rows = await session.scalars(sa.select(ContainerRecord).where(ContainerRecord.id.in_(ids)))
    return {row.id: to_value(row) for row in rows.all()}


# --- writes ---------------------------------------------------------------------------------


async def insert_creating(
    session: AsyncSession,
    *,
    container_id: uuid.UUID,
    tenant_id: str,
    owner_user_id: str,
    spec: ContainerSpec,
    now: datetime,
) -> Container:
    """The reservation: a CREATING row that holds the name and a unit of quota."""
    row = ContainerRecord(
        id=container_id,
        tenant_id=tenant_id,
        owner_user_id=owner_user_id,
        name=spec.name,
        memory_limit=spec.memory_tier,
        status=ContainerStatus.CREATING,
        expires_after=_expires_after(spec.expiry_minutes),
        metadata_=dict(spec.metadata),
        request_id=spec.request_id,
        initial_file_ids=list(spec.file_ids),
        network_policy=_network_policy_document(spec.network_policy),
        skills=[_skill_document(skill) for skill in spec.skills],
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await session.flush()
    return to_value(row)


async def settle_created(
    session: AsyncSession, container_id: uuid.UUID, facts: UpstreamFacts, now: datetime
) -> tuple[Container, bool]:
    """A CREATING row becomes what upstream made of it (RUNNING, or EXPIRED if it already is).

    Returns the row as it stands and whether this call changed it: a row settled meanwhile (by
    another process) keeps that outcome.
    """
    row = await _locked(session, container_id)
    if row is None:
        raise LookupError(container_id)
    if row.status is not ContainerStatus.CREATING:
        return to_value(row), False
    row.status = ContainerStatus.EXPIRED if facts.expired else ContainerStatus.RUNNING
    row.openai_id = facts.openai_id
    row.last_active_at = facts.last_active_at or now
    if facts.expiry_minutes:
        row.expires_after = _expires_after(facts.expiry_minutes)
    row.refreshed_at = now
    row.updated_at = now
    return to_value(row), True


async def mark_failed(
    session: AsyncSession, container_id: uuid.UUID, reason: str, now: datetime
) -> tuple[Container, bool]:
    """A CREATING row whose container was never made: FAILED, which frees the name and the
    request id for a retry. A row settled meanwhile keeps that outcome."""
    row = await _locked(session, container_id)
    if row is None:
        raise LookupError(container_id)
    if row.status is not ContainerStatus.CREATING:
        return to_value(row), False
    row.status = ContainerStatus.FAILED
    row.failure_reason = reason
    row.request_id = None
    row.deleted_at = now
    row.updated_at = now
    return to_value(row), True


async def apply_facts(
    session: AsyncSession,
    container_id: uuid.UUID,
    facts: UpstreamFacts | None,
    now: datetime,
) -> tuple[Container, bool]:
    """What upstream said of a RUNNING container; None: it is gone there (deleted, collected).

    Only a RUNNING row takes it: a delete or an expiry committed meanwhile is newer than what
    was read. Returns the row and whether anything but the confirmation time changed.
    """
    row = await _locked(session, container_id)
    if row is None:
        raise LookupError(container_id)
    if row.status is not ContainerStatus.RUNNING:
        return to_value(row), False
    changed = False
    if facts is None or facts.expired or facts.openai_id != row.openai_id:
        row.status = ContainerStatus.EXPIRED
        changed = True
    else:
        if facts.last_active_at is not None and facts.last_active_at != row.last_active_at:
            row.last_active_at = facts.last_active_at
            changed = True
        if facts.expiry_minutes and facts.expiry_minutes != row.expires_after.get("minutes"):
            row.expires_after = _expires_after(facts.expiry_minutes)
            changed = True
    row.refreshed_at = now
    if changed:
        row.updated_at = now
    return to_value(row), changed


async def record_activity(
    session: AsyncSession, container_id: uuid.UUID, now: datetime
) -> tuple[Container, bool]:
    """A file operation touched the RUNNING container upstream, which counts it as activity:
    its last activity, and so its expiry, moves to now."""
    row = await _locked(session, container_id)
    if row is None:
        raise LookupError(container_id)
    if row.status is not ContainerStatus.RUNNING:
        return to_value(row), False
    row.last_active_at = now
    row.refreshed_at = now
    row.updated_at = now
    return to_value(row), True


async def mark_deleted(
    session: AsyncSession, tenant_id: str, container_id: uuid.UUID, now: datetime
) -> tuple[Container, list[str]]:
    """Soft-deletes the container and removes its bindings; returns it and the unbound agents."""
    row = await _locked(session, container_id)
    if row is None or row.tenant_id != tenant_id:
        raise LookupError(container_id)
    row.status = ContainerStatus.DELETED
    row.deleted_at = row.deleted_at or now
    row.updated_at = now
    result = await session.execute(
        sa.delete(AgentBindingRecord)
        .where(AgentBindingRecord.container_id == container_id)
        .returning(AgentBindingRecord.agent_key)
    )
    return to_value(row), list(result.scalars().all())


async def running_openai_ids(session: AsyncSession, openai_ids: Sequence[str]) -> set[str]:
    """Which of these upstream ids a RUNNING row points at."""
    if not openai_ids:
        return set()
    found = await session.scalars(
        sa.select(ContainerRecord.openai_id).where(
            ContainerRecord.openai_id.in_(openai_ids),
            ContainerRecord.status == ContainerStatus.RUNNING,
        )
    )
    return {openai_id for openai_id in found.all() if openai_id is not None}
