"""Agent bindings: an agent runs its code interpreter in the container it is bound to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from agent_containers.domain import pagination
from agent_containers.domain.bindings import AgentBinding
from agent_containers.domain.clock import Clock
from agent_containers.domain.containers import ContainerStatus, not_running, parse_container_id
from agent_containers.domain.errors import (
    InvalidArgument,
    NotFound,
)
from agent_containers.domain.identity import Identity
from agent_containers.domain.tools import parse_optional_container_id, validate_agent_key
from agent_containers.services.containers import ContainerService
from agent_containers.store import bindings as rows
from agent_containers.store.unit_of_work import Transaction, UnitOfWork

BINDING = "binding"


@dataclass(frozen=True)
class BindingPage:
    """One page of a binding listing."""

    bindings: Sequence[AgentBinding]
    next_page_token: str


def _checked_agent_key(agent_key: str) -> str:
    violations = validate_agent_key(agent_key)
    if violations:
        raise InvalidArgument(violations)
    return agent_key


def _not_bound(agent_key: str) -> NotFound:
    return NotFound(BINDING, f"agents/{agent_key}/binding", reason="BINDING_NOT_FOUND")


class BindingService:
    """Bind, unbind, get and list a tenant's agent bindings."""

    def __init__(self, uow: UnitOfWork, containers: ContainerService, clock: Clock) -> None:
        self._uow = uow
        self._containers = containers
        self._clock = clock

    async def bind(self, identity: Identity, agent_key: str, container_id: str) -> AgentBinding:
        _checked_agent_key(agent_key)
        target = parse_container_id(container_id, "container_id")
        # Read through the container service first: a stale or overdue copy is refreshed from
        # upstream, so a container that expired there is refused here.
        await self._containers.get(identity, target)
        tenant = identity.tenant_id

        async def write(transaction: Transaction) -> AgentBinding | None:
            session = transaction.session
            container = await rows.lock_container(session, tenant, target)
            if container is None:  # deleted between the read and the lock? it stays hidden
                raise NotFound("container", str(target), reason="CONTAINER_NOT_FOUND")
            if container.status is not ContainerStatus.RUNNING:
                raise not_running(container.id, container.status, "bindings")
            await rows.upsert(session, tenant, agent_key, target, self._clock.now())
            transaction.binding_changed(tenant, agent_key)
            return await rows.get(session, tenant, agent_key)  # as written, not as read later

        bound = await self._uow.write(write)
        assert bound is not None
        return bound

    async def unbind(self, identity: Identity, agent_key: str) -> AgentBinding:
        _checked_agent_key(agent_key)
        tenant = identity.tenant_id

        async def write(transaction: Transaction) -> AgentBinding:
            found = await rows.get(transaction.session, tenant, agent_key)
            if found is None:
                raise _not_bound(agent_key)
            await rows.delete(transaction.session, tenant, agent_key)
            transaction.binding_changed(tenant, agent_key)
            return found

        return await self._uow.write(write)

    async def get(self, identity: Identity, agent_key: str) -> AgentBinding:
        _checked_agent_key(agent_key)
        found = await self.find(identity, agent_key)
        if found is None:
            raise _not_bound(agent_key)
        return found

    async def find(self, identity: Identity, agent_key: str) -> AgentBinding | None:
        """The binding, or None (for the tool catalog)."""

        async def load(session: AsyncSession) -> AgentBinding | None:
            return await rows.get(session, identity.tenant_id, agent_key)

        return await self._uow.read(load)

    async def list(
        self, identity: Identity, *, page_size: int, page_token: str, container_id: str
    ) -> BindingPage:
        size = pagination.page_size(page_size)
        target, violations = parse_optional_container_id(container_id, "container_id")
        if violations:
            raise InvalidArgument(violations)
        fingerprint = pagination.query_fingerprint("bindings", identity.tenant_id, container_id)
        key = pagination.decode_page_token(page_token, fingerprint, 1)
        if key is not None and validate_agent_key(key[0]):
            raise pagination.invalid_page_token()  # forged: tokens carry only real agent keys

        async def load(session: AsyncSession) -> list[AgentBinding]:
            return await rows.page(
                session,
                identity.tenant_id,
                container_id=target,
                after=key[0] if key else None,
                limit=size + 1,
            )

        found = await self._uow.read(load)
        page = found[:size]
        token = ""
        if len(found) > size:
            token = pagination.encode_page_token(fingerprint, [page[-1].agent_key])
        return BindingPage(bindings=page, next_page_token=token)
