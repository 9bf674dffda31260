"""Container use cases: create (services/container_creation.py), get, list and delete.

A request does only its own work: what upstream decides on its own (expiry, late creates, orphans)
is the reconciler's (services/reconciler.py), so a call's cost does not grow with a tenant's rows.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from agent_containers.detached import Detached
from agent_containers.domain import pagination
from agent_containers.domain.clock import Clock
from agent_containers.domain.containers import (
    Container,
    ContainerDraft,
    ContainerStatus,
    is_overdue,
)
from agent_containers.domain.errors import (
    DomainError,
    FailedPrecondition,
    NotFound,
    PreconditionViolation,
    UpstreamNotFound,
    UpstreamUnavailable,
)
from agent_containers.domain.identity import Identity
from agent_containers.services.container_creation import CONTAINER, ContainerCreation
from agent_containers.services.container_refresh import ContainerRefresh
from agent_containers.store import containers as rows
from agent_containers.store.unit_of_work import Transaction, UnitOfWork
from agent_containers.upstream.gateway import ContainersGateway

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContainerPage:
    """One page of a container listing."""

    containers: Sequence[Container]
    next_page_token: str


def _not_found(container_id: uuid.UUID) -> NotFound:
    return NotFound(CONTAINER, str(container_id), reason="CONTAINER_NOT_FOUND")


class ContainerService:
    """The container use cases of one server process."""

    def __init__(
        self,
        uow: UnitOfWork,
        gateway: ContainersGateway,
        creation: ContainerCreation,
        refresh: ContainerRefresh,
        clock: Clock,
        detached: Detached,
        *,
        refresh_staleness: timedelta,
    ) -> None:
        self._uow = uow
        self._gateway = gateway
        self._creation = creation
        self._refresh = refresh
        self._clock = clock
        self._detached = detached
        self._refresh_staleness = refresh_staleness

    async def create(self, identity: Identity, draft: ContainerDraft) -> Container:
        return await self._creation.create(identity, draft)

    # --- get ------------------------------------------------------------------------------

    async def find(self, identity: Identity, container_id: uuid.UUID) -> Container | None:
        """The tenant's container as recorded, without asking upstream; None if there is none."""

        async def load(session: AsyncSession) -> Container | None:
            return await rows.get(session, identity.tenant_id, container_id)

        return await self._uow.read(load)

    async def get(self, identity: Identity, container_id: uuid.UUID) -> Container:
        container = await self.find(identity, container_id)
        if container is None:
            raise _not_found(container_id)
        if container.status is not ContainerStatus.RUNNING:
            return container
        now = self._clock.now()
        fresh = (
            container.refreshed_at is not None
            and now - container.refreshed_at < self._refresh_staleness
        )
        # Overdue locally is only a guess: agent runs use the container through OpenAI, which
        # moves last_active_at without us. Only upstream may declare it expired.
        if fresh and not is_overdue(container.status, container.expire_time, now):
            return container
        return await self._refresh.retrieve(container)

    # --- list -----------------------------------------------------------------------------

    async def list(
        self,
        identity: Identity,
        *,
        page_size: int,
        page_token: str,
        status: ContainerStatus | None,
        show_deleted: bool,
    ) -> ContainerPage:
        size = pagination.page_size(page_size)
        include_deleted = show_deleted or status in (
            ContainerStatus.DELETED,
            ContainerStatus.FAILED,
        )
        fingerprint = pagination.query_fingerprint(
            "containers", identity.tenant_id, status, include_deleted
        )
        key = pagination.decode_page_token(page_token, fingerprint, 2)
        after = None
        if key is not None:
            try:
                # Forged tokens can pass the fingerprint: every part is checked as untrusted.
                created_at = datetime.fromisoformat(key[0]).astimezone(UTC)
                after = (created_at, uuid.UUID(key[1]))
            except (ValueError, OverflowError):
                raise pagination.invalid_page_token() from None
            if key[0] != created_at.isoformat():
                raise pagination.invalid_page_token()

        async def load(session: AsyncSession) -> list[Container]:
            return await rows.page(
                session,
                identity.tenant_id,
                status=status,
                include_deleted=include_deleted,
                after=after,
                limit=size + 1,
            )

        found = await self._uow.read(load)
        page, more = found[:size], len(found) > size
        token = ""
        if more:
            last = page[-1]
            token = pagination.encode_page_token(
                fingerprint, [last.created_at.isoformat(), str(last.id)]
            )
        return ContainerPage(containers=page, next_page_token=token)

    # --- delete ---------------------------------------------------------------------------

    async def delete(self, identity: Identity, container_id: uuid.UUID) -> Container:
        # Like a create, a delete that reached upstream runs to its end even if its caller hangs
        # up: a container gone upstream must not stay RUNNING (and bound) here.
        return await asyncio.shield(self._detached.start(self._delete(identity, container_id)))

    async def _delete(self, identity: Identity, container_id: uuid.UUID) -> Container:
        container = await self.find(identity, container_id)
        if container is None:
            raise _not_found(container_id)
        if container.status is ContainerStatus.DELETED:
            return container
        if container.status is ContainerStatus.CREATING:
            raise FailedPrecondition(
                "the container is still being created; delete it once it is RUNNING",
                [PreconditionViolation("STATE", f"containers/{container.id}", "state is CREATING")],
                reason="CONTAINER_CREATING",
            )
        if container.openai_id is not None:
            await self._delete_upstream(container.openai_id)

        async def write(transaction: Transaction) -> Container:
            deleted, unbound = await rows.mark_deleted(
                transaction.session, identity.tenant_id, container_id, self._clock.now()
            )
            transaction.container_changed(identity.tenant_id, container_id)
            for agent_key in unbound:
                transaction.binding_changed(identity.tenant_id, agent_key)
            return deleted

        deleted = await self._uow.write(write)
        log.info(
            "container deleted",
            extra=container.log_fields(),
        )
        return deleted

    async def _delete_upstream(self, openai_id: str) -> None:
        """Deletes upstream; a container already gone there counts as deleted."""
        try:
            await self._gateway.delete(openai_id)
        except UpstreamNotFound:
            pass  # expired and collected, or deleted directly
        except UpstreamUnavailable:
            # The delete may have happened before the error: look before reporting failure.
            try:
                await self._gateway.retrieve(openai_id)
            except UpstreamNotFound:
                return
            except DomainError:
                pass
            raise
