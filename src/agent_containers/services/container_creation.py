"""Creating a container: reserve a row, make the container upstream once, settle the row.

The reservation (a CREATING row: quota and name held) commits before upstream is called, so no
container exists upstream without a row that points at it, and no transaction is held across a
network call. Upstream takes no idempotency key, so the POST is sent once; the container is named
`ac-<row id>` so that it can be found again when the outcome is not known.

An outcome is known when upstream answered (the container, or a refusal). A timeout, a dropped
connection or a 5xx is not an answer: upstream may still create the container late. Such a row
stays CREATING (it keeps its quota, name and request id) and the call answers UNAVAILABLE; a
retry with the same request id, or the reconciler, settles it once upstream's answer is known.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from prometheus_client import Counter
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from agent_containers.detached import Detached
from agent_containers.domain.budgets import TimeBudgets
from agent_containers.domain.clock import Clock
from agent_containers.domain.containers import (
    Container,
    ContainerDraft,
    ContainerPolicy,
    ContainerSpec,
    ContainerStatus,
    UpstreamFacts,
    upstream_name,
    validate_draft,
)
from agent_containers.domain.errors import (
    AlreadyExists,
    DomainError,
    QuotaExceeded,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
)
from agent_containers.domain.identity import Identity
from agent_containers.store import containers as rows
from agent_containers.store.unit_of_work import Transaction, UnitOfWork
from agent_containers.upstream.gateway import ContainersGateway

log = logging.getLogger(__name__)

CONTAINER = "container"
SETTLE_POLL_SECONDS = 0.05
UNKNOWN_OUTCOME_RETRY_SECONDS = 5.0


class ContainerCreation:
    """The create use case, and settling a CREATING row from what upstream says."""

    def __init__(
        self,
        uow: UnitOfWork,
        gateway: ContainersGateway,
        policy: ContainerPolicy,
        clock: Clock,
        budgets: TimeBudgets,
        detached: Detached,
        *,
        quota_refusals: Counter,
    ) -> None:
        self._uow = uow
        self._gateway = gateway
        self._policy = policy
        self._clock = clock
        self._budgets = budgets
        self._detached = detached
        self._quota_refusals = quota_refusals
        # This process's creates in flight, by row id: a retry with the same request id waits
        # for the first call instead of guessing.
        self._in_flight: dict[uuid.UUID, asyncio.Task[Container]] = {}

    async def create(self, identity: Identity, draft: ContainerDraft) -> Container:
        spec = validate_draft(draft, self._policy)
        try:
            reserved, earlier = await self._reserve(identity, spec)
        except QuotaExceeded:
            self._quota_refusals.inc()
            raise
        if earlier is not None:
            return await self._converge(earlier)
        assert reserved is not None
        # Once reserved, the create runs to its end even if the caller hangs up (a deadline):
        # a committed reservation must be followed by its POST and its settlement.
        task = self._detached.start(self._create_upstream(reserved, spec))
        self._in_flight[reserved.id] = task
        task.add_done_callback(lambda _: self._in_flight.pop(reserved.id, None))
        return await asyncio.shield(task)

    async def _reserve(
        self, identity: Identity, spec: ContainerSpec
    ) -> tuple[Container | None, Container | None]:
        """Writes the CREATING row, or finds the row an earlier call with the request id made."""
        tenant = identity.tenant_id

        async def reserve(transaction: Transaction) -> tuple[Container | None, Container | None]:
            session = transaction.session
            await rows.lock_tenant(session, tenant)
            if spec.request_id is not None:
                earlier = await rows.find_by_request_id(session, tenant, spec.request_id)
                if earlier is not None:
                    return None, earlier
            holder = await rows.find_live_by_name(session, tenant, spec.name)
            if holder is not None:
                raise AlreadyExists(
                    CONTAINER,
                    spec.name,
                    reason="CONTAINER_NAME_TAKEN",
                    hint=f"it is {holder.status.value}: delete it to reuse the name",
                )
            live = await rows.count_live(session, tenant)
            if live >= self._policy.max_containers:
                raise QuotaExceeded(
                    f"tenant:{tenant}",
                    f"tenant holds {live} of {self._policy.max_containers} containers "
                    "(CREATING and RUNNING); delete one or wait for one to expire",
                )
            reserved = await rows.insert_creating(
                session,
                container_id=uuid.uuid4(),
                tenant_id=tenant,
                owner_user_id=identity.user_id,
                spec=spec,
                now=self._clock.now(),
            )
            transaction.container_changed(tenant, reserved.id)
            return reserved, None

        try:
            return await self._uow.write(reserve)
        except IntegrityError as error:
            # The tenant lock makes this unreachable in one database; kept as the last word of
            # the unique index should a writer bypass the lock.
            raise AlreadyExists(CONTAINER, spec.name, reason="CONTAINER_NAME_TAKEN") from error

    async def _create_upstream(self, reserved: Container, spec: ContainerSpec) -> Container:
        try:
            created = await self._gateway.create(
                name=upstream_name(reserved.id),
                memory_limit=spec.memory_tier,
                expires_after_minutes=spec.expiry_minutes,
                file_ids=list(spec.file_ids),
                network_policy=spec.network_policy,
                skills=spec.skills,
            )
        except UpstreamUnavailable as error:
            if not error.outcome_unknown:
                await self.fail(reserved, error.message)
                raise
            return await self._unknown_outcome(reserved, error)
        except DomainError as error:
            # Upstream answered: nothing was created.
            await self.fail(reserved, error.message)
            if isinstance(error, UpstreamNotFound):
                # On create, a 404 names something the request referred to (a file id).
                raise UpstreamRejected(error.message, http_status=404) from error
            raise
        settled = await self.settle(reserved, created.facts)
        log.info(
            "container created",
            extra={**reserved.log_fields(), "openai_id": created.openai_id},
        )
        return settled

    async def _unknown_outcome(self, reserved: Container, error: UpstreamUnavailable) -> Container:
        """The POST got no answer: a quick look may tell; if not, the row stays CREATING."""
        with contextlib.suppress(DomainError):
            found = await self._gateway.find_by_name(upstream_name(reserved.id))
            if found is not None:
                return await self.settle(reserved, found.facts)
        log.warning(
            "container create outcome unknown; the reconciler settles it",
            extra={**reserved.log_fields(), "reason": error.message},
        )
        raise UpstreamUnavailable(
            f"{error.message}; whether the container was created is not known yet: retry with "
            "the same request_id to get it",
            retry_after_seconds=UNKNOWN_OUTCOME_RETRY_SECONDS,
        ) from error

    async def _converge(self, earlier: Container) -> Container:
        """The outcome of the first call with the same request id, whenever it becomes known."""
        first = self._in_flight.get(earlier.id)
        if first is not None:
            return await asyncio.shield(first)
        row = earlier
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._budgets.create_in_flight
        # Another process may have that create in flight: wait for it while it may be.
        while row.status is ContainerStatus.CREATING and self._may_be_in_flight(row):
            if loop.time() > deadline:
                break
            await asyncio.sleep(SETTLE_POLL_SECONDS)
            row = await self._reload(row)
        if row.status is ContainerStatus.CREATING:
            found = await self._gateway.find_by_name(upstream_name(row.id))
            if found is None:
                raise UpstreamUnavailable(
                    "an earlier call with this request_id has no known outcome yet; retry later",
                    retry_after_seconds=UNKNOWN_OUTCOME_RETRY_SECONDS,
                )
            return await self.settle(row, found.facts)
        if row.status is ContainerStatus.FAILED:
            raise UpstreamUnavailable(
                f"an earlier call with this request_id failed ({row.failure_reason}); retry"
            )
        return row

    def _may_be_in_flight(self, row: Container) -> bool:
        age = (self._clock.now() - row.created_at).total_seconds()
        return age < self._budgets.create_in_flight

    async def _reload(self, row: Container) -> Container:
        async def load(session: AsyncSession) -> Container | None:
            return await rows.get(session, row.tenant_id, row.id)

        found = await self._uow.read(load)
        assert found is not None
        return found

    # --- settling, shared with the reconciler -----------------------------------------------

    async def settle(self, reserved: Container, facts: UpstreamFacts) -> Container:
        """A CREATING row takes the container upstream made for it."""

        async def write(transaction: Transaction) -> Container:
            settled, changed = await rows.settle_created(
                transaction.session, reserved.id, facts, self._clock.now()
            )
            if changed:
                transaction.container_changed(reserved.tenant_id, reserved.id)
            return settled

        settled = await self._uow.write(write)
        if settled.openai_id != facts.openai_id:
            # The row was given up meanwhile (FAILED): the container made for it has no row to
            # point at it, so it must not stay upstream.
            with contextlib.suppress(DomainError):
                await self._gateway.delete(facts.openai_id)
            raise UpstreamUnavailable("the create was given up while it ran; retry")
        return settled

    async def fail(self, reserved: Container, reason: str) -> None:
        """FAILED is terminal and not live: it frees the name, and the request id for a retry."""

        async def write(transaction: Transaction) -> bool:
            _, changed = await rows.mark_failed(
                transaction.session, reserved.id, reason, self._clock.now()
            )
            if changed:
                transaction.container_changed(reserved.tenant_id, reserved.id)
            return changed

        if await self._uow.write(write):
            log.warning(
                "container creation failed",
                extra={**reserved.log_fields(), "reason": reason},
            )
