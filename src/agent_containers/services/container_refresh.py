"""Learning from upstream what became of a container, and writing it down.

Two ways to ask: `retrieve` (upstream counts it as activity, a keep-alive: used when a caller
reads the container) and `look_up` (a list by the container's upstream name: no side effect,
used to revalidate what resolution knows). Either way, what was learnt goes through `apply`.
"""

from __future__ import annotations

import logging
from datetime import datetime

from agent_containers.domain.clock import Clock
from agent_containers.domain.containers import Container, UpstreamFacts, upstream_name
from agent_containers.domain.errors import DomainError, UpstreamNotFound
from agent_containers.store import containers as rows
from agent_containers.store.unit_of_work import Transaction, UnitOfWork
from agent_containers.upstream.gateway import ContainersGateway

log = logging.getLogger(__name__)


class ContainerRefresh:
    """Reads a container's state upstream and records it."""

    def __init__(self, uow: UnitOfWork, gateway: ContainersGateway, clock: Clock) -> None:
        self._uow = uow
        self._gateway = gateway
        self._clock = clock

    async def retrieve(self, container: Container) -> Container:
        """Reads the container upstream (a keep-alive there) and records what it says; serves
        the local copy when upstream cannot answer (a read can live with a stale copy: the
        caller sees refresh_time and decides)."""
        assert container.openai_id is not None
        try:
            facts: UpstreamFacts | None = (await self._gateway.retrieve(container.openai_id)).facts
        except UpstreamNotFound:
            facts = None
        except DomainError as error:
            log.warning(
                "refresh failed; serving the local copy",
                extra={**container.log_fields(), "reason": error.reason},
            )
            return container
        return await self.apply(container, facts, self._clock.now())

    async def look_up(self, container: Container) -> Container:
        """Revalidates the container without touching it upstream; raises when upstream cannot
        answer (the caller decides what the old facts are worth then)."""
        found = await self._gateway.find_by_name(upstream_name(container.id))
        facts = None if found is None or found.openai_id != container.openai_id else found.facts
        return await self.apply(container, facts, self._clock.now())

    async def apply(
        self, container: Container, facts: UpstreamFacts | None, now: datetime
    ) -> Container:
        """Records what upstream said (None: the container is gone there)."""
        tenant_id, container_id = container.tenant_id, container.id

        async def write(transaction: Transaction) -> Container:
            updated, changed = await rows.apply_facts(transaction.session, container_id, facts, now)
            if changed:
                transaction.container_changed(tenant_id, container_id)
            return updated

        updated = await self._uow.write(write)
        if updated.status is not container.status:
            log.info(
                "container state changed upstream",
                extra={**container.log_fields(), "state": updated.status.value},
            )
        return updated
