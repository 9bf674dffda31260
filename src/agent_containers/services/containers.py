"""Container use cases: create, get, list, delete, with quota, idempotency and refresh.

Create reserves the row (CREATING) in one transaction, calls upstream outside any transaction,
then settles the row (RUNNING or FAILED), so no upstream container exists without a row that
points at it, and no transaction is held open across a network call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agent_containers.domain import pagination
from agent_containers.domain.clock import Clock
from agent_containers.domain.containers import (
    ContainerDraft,
    ContainerPolicy,
    ContainerSpec,
    ContainerStatus,
    expire_time,
    is_overdue,
    validate_draft,
)
from agent_containers.domain.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    NotFound,
    PreconditionViolation,
    QuotaExceeded,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
)
from agent_containers.domain.identity import Identity
from agent_containers.services.resolution_cache import ResolutionCache
from agent_containers.store import containers as rows
from agent_containers.store.models import ContainerRecord
from agent_containers.store.notifications import binding_changed, container_changed
from agent_containers.upstream.gateway import ContainersGateway, UpstreamContainer

log = logging.getLogger(__name__)

CONTAINER = "container"
SETTLE_POLL_SECONDS = 0.05
RECONCILE_DEADLINE_SECONDS = 5.0


@dataclass(frozen=True)
class ContainerPage:
    """One page of a container listing."""

    containers: Sequence[ContainerRecord]
    next_page_token: str


def upstream_name(container_id: uuid.UUID) -> str:
    """The name a container gets upstream: unique across tenants (who share one API key), and
    findable again when a create's outcome is unknown (a timeout, a crash)."""
    return f"ac-{container_id}"


def container_expire_time(row: ContainerRecord) -> datetime | None:
    """When the row's container expires unless used again."""
    return expire_time(row.last_active_at, int(row.expires_after["minutes"]))


class ContainerService:
    """The container use cases of one server process."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        gateway: ContainersGateway,
        policy: ContainerPolicy,
        clock: Clock,
        cache: ResolutionCache,
        *,
        refresh_staleness: timedelta,
        settle_timeout_seconds: float,
    ) -> None:
        self._sessions = sessions
        self._gateway = gateway
        self._policy = policy
        self._clock = clock
        self._cache = cache
        self._refresh_staleness = refresh_staleness
        self._settle_timeout = settle_timeout_seconds
        # Creates that go on after their caller hung up; kept so they are not garbage collected.
        self._settling: set[asyncio.Task[ContainerRecord]] = set()

    # --- create ---------------------------------------------------------------------------

    async def create(self, identity: Identity, draft: ContainerDraft) -> ContainerRecord:
        spec = validate_draft(draft, self._policy)
        # A caller that hangs up (or a deadline) must not leave a CREATING row behind, nor a
        # committed reservation with no create: once accepted, a create runs to its end in a
        # task of its own.
        task = asyncio.create_task(self._create(identity, spec))
        self._settling.add(task)
        task.add_done_callback(_forget_settled(self._settling))
        return await asyncio.shield(task)

    async def _create(self, identity: Identity, spec: ContainerSpec) -> ContainerRecord:
        await self._reconcile(identity.tenant_id)
        reserved, earlier = await self._reserve(identity, spec)
        if earlier is not None:
            return await self._await_settled(earlier)
        assert reserved is not None
        return await self._create_upstream(reserved, spec)

    async def _reserve(
        self, identity: Identity, spec: ContainerSpec
    ) -> tuple[ContainerRecord | None, ContainerRecord | None]:
        """Writes the CREATING row, or finds the row an earlier call with the request id made."""
        tenant = identity.tenant_id
        try:
            async with self._sessions.begin() as session:
                await rows.lock_tenant(session, tenant)
                if spec.request_id is not None:
                    earlier = await rows.find_by_request_id(session, tenant, spec.request_id)
                    if earlier is not None:
                        return None, earlier
                now = self._clock.now()
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
                row = ContainerRecord(
                    id=uuid.uuid4(),
                    tenant_id=tenant,
                    owner_user_id=identity.user_id,
                    name=spec.name,
                    memory_limit=spec.memory_tier,
                    status=ContainerStatus.CREATING,
                    expires_after={"anchor": "last_active_at", "minutes": spec.expiry_minutes},
                    metadata_=spec.metadata,
                    request_id=spec.request_id,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
        except IntegrityError as error:
            # The tenant lock makes this unreachable in one database; kept as the last word of
            # the unique index should a writer bypass the lock.
            raise AlreadyExists(CONTAINER, spec.name, reason="CONTAINER_NAME_TAKEN") from error
        return row, None

    async def _create_upstream(self, row: ContainerRecord, spec: ContainerSpec) -> ContainerRecord:
        try:
            created = await self._gateway.create(
                name=upstream_name(row.id),
                memory_limit=spec.memory_tier,
                expires_after_minutes=spec.expiry_minutes,
                file_ids=list(spec.file_ids),
            )
        except UpstreamUnavailable as error:
            # A timeout or a 5xx may come after upstream created the container: look before
            # declaring the attempt failed, or a container would live upstream with no row.
            found = await self._find_upstream(row.id)
            if found is None:
                await self._mark_failed(row.id, _failure_reason(error))
                raise
            created = found
        except BaseException as error:
            await self._mark_failed(row.id, _failure_reason(error))
            if isinstance(error, UpstreamNotFound):
                # On create, a 404 names something the request referred to (a file id).
                raise UpstreamRejected(error.message, http_status=404) from error
            raise
        settled = await self._settle_created(row, created)
        log.info(
            "container created",
            extra={
                "tenant_id": row.tenant_id,
                "container_id": str(row.id),
                "openai_id": created.openai_id,
            },
        )
        return settled

    async def _find_upstream(self, container_id: uuid.UUID) -> UpstreamContainer | None:
        try:
            return await self._gateway.find_by_name(upstream_name(container_id))
        except DomainError:
            return None

    async def _settle_created(
        self, row: ContainerRecord, created: UpstreamContainer
    ) -> ContainerRecord:
        async with self._cache.writing(self._sessions) as (session, changed):
            settled = await session.get(ContainerRecord, row.id, with_for_update=True)
            assert settled is not None
            if settled.status is ContainerStatus.CREATING:
                now = self._clock.now()
                settled.status = ContainerStatus.RUNNING
                settled.openai_id = created.openai_id
                settled.last_active_at = created.last_active_at or now
                settled.refreshed_at = now
                settled.updated_at = now
                changed.append(container_changed(row.tenant_id, row.id))
        if settled.openai_id != created.openai_id:
            # A reconciler gave the row up meanwhile (FAILED): the container made for it has no
            # row to point at it, so it must not stay upstream.
            with contextlib.suppress(DomainError):
                await self._gateway.delete(created.openai_id)
            raise UpstreamUnavailable("the create was given up while it ran; retry")
        return settled

    async def _mark_failed(self, container_id: uuid.UUID, reason: str) -> None:
        """FAILED is terminal and not live: it frees the name, and the request id for a retry."""
        async with self._cache.writing(self._sessions) as (session, changed):
            failed = await session.get(ContainerRecord, container_id, with_for_update=True)
            assert failed is not None
            if failed.status is not ContainerStatus.CREATING:
                return  # settled meanwhile (by a reconciling process): that outcome stands
            now = self._clock.now()
            failed.status = ContainerStatus.FAILED
            failed.failure_reason = reason
            failed.request_id = None
            failed.deleted_at = now
            failed.updated_at = now
            changed.append(container_changed(failed.tenant_id, container_id))
        log.warning(
            "container creation failed",
            extra={
                "tenant_id": failed.tenant_id,
                "container_id": str(container_id),
                "reason": reason,
            },
        )

    async def _await_settled(self, earlier: ContainerRecord) -> ContainerRecord:
        """Returns the outcome of the first call with the same request id."""
        deadline = asyncio.get_running_loop().time() + self._settle_timeout
        row = earlier
        while row.status is ContainerStatus.CREATING:
            if asyncio.get_running_loop().time() > deadline:
                raise UpstreamUnavailable("an earlier call with this request_id is still creating")
            await asyncio.sleep(SETTLE_POLL_SECONDS)
            async with self._sessions() as session:
                found = await session.get(ContainerRecord, earlier.id)
                assert found is not None
                row = found
        if row.status is ContainerStatus.FAILED:
            raise UpstreamUnavailable(
                f"an earlier call with this request_id failed ({row.failure_reason}); retry"
            )
        return row

    # --- get ------------------------------------------------------------------------------

    async def get(self, identity: Identity, container_id: uuid.UUID) -> ContainerRecord:
        async with self._sessions() as session:
            row = await rows.get(session, identity.tenant_id, container_id)
        if row is None:
            raise NotFound(CONTAINER, str(container_id), reason="CONTAINER_NOT_FOUND")
        if row.status is not ContainerStatus.RUNNING:
            return row
        now = self._clock.now()
        fresh = row.refreshed_at is not None and now - row.refreshed_at < self._refresh_staleness
        # Overdue locally is only a guess: agent runs use the container through OpenAI, which
        # moves last_active_at without us. Only upstream may declare it expired.
        if fresh and not is_overdue(row.status, container_expire_time(row), now):
            return row
        return await self._refresh(row)

    async def _refresh(self, row: ContainerRecord) -> ContainerRecord:
        """Reads the container upstream and writes what it says; serves the local copy on error."""
        assert row.openai_id is not None
        try:
            upstream = await self._gateway.retrieve(row.openai_id)
        except UpstreamNotFound:
            upstream = None
        except DomainError as error:
            # A read can live with a stale copy; the caller sees refresh_time and decides.
            log.warning(
                "refresh failed; serving the local copy",
                extra={"container_id": str(row.id), "reason": error.reason},
            )
            return row
        return await self._settle_refresh(row.id, upstream, self._clock.now())

    async def _reconcile(self, tenant_id: str) -> None:
        """Settles what only upstream can tell, before a create counts quota or a list reads.

        RUNNING containers that look expired locally are asked about: they hold quota until
        upstream confirms. CREATING rows older than any create in flight (a crashed process
        left them) are looked up by their upstream name: RUNNING if found, else FAILED. At most
        the tenant's quota of rows qualifies, asked concurrently and within a deadline, so a
        slow upstream delays the call by seconds, not by a retry budget per row.
        """
        now = self._clock.now()
        async with self._sessions() as session:
            overdue = [
                row
                for row in await rows.running(session, tenant_id)
                if is_overdue(row.status, container_expire_time(row), now)
            ]
            abandoned = await rows.stale_creating(
                session, tenant_id, now - timedelta(seconds=self._settle_timeout)
            )
        jobs: list[Awaitable[object]] = [self._refresh(row) for row in overdue]
        jobs += [self._settle_abandoned(row) for row in abandoned]
        if not jobs:
            return
        try:
            await asyncio.wait_for(asyncio.gather(*jobs), RECONCILE_DEADLINE_SECONDS)
        except TimeoutError:
            log.warning("reconciliation ran out of time", extra={"tenant_id": tenant_id})

    async def _settle_abandoned(self, row: ContainerRecord) -> None:
        try:
            found = await self._gateway.find_by_name(upstream_name(row.id))
        except DomainError:
            return  # cannot tell now; a later call tries again
        if found is not None:
            await self._settle_created(row, found)
        else:
            await self._mark_failed(row.id, "abandoned: no upstream container was created")

    async def _settle_refresh(
        self, container_id: uuid.UUID, upstream: UpstreamContainer | None, now: datetime
    ) -> ContainerRecord:
        """Writes what a refresh learnt; `upstream` None means the container is gone or expired."""
        async with self._cache.writing(self._sessions) as (session, changed):
            # Locked: a delete committing meanwhile must not be overwritten by this refresh.
            row = await session.get(ContainerRecord, container_id, with_for_update=True)
            assert row is not None
            if row.status is not ContainerStatus.RUNNING:
                return row  # deleted or expired meanwhile: that is newer than what we read
            if upstream is None or upstream.expired:
                row.status = ContainerStatus.EXPIRED
            else:
                row.last_active_at = upstream.last_active_at or row.last_active_at
                if upstream.expires_after_minutes:
                    row.expires_after = {
                        "anchor": "last_active_at",
                        "minutes": upstream.expires_after_minutes,
                    }
            row.refreshed_at = now
            row.updated_at = now
            changed.append(container_changed(row.tenant_id, row.id))
        return row

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
        await self._reconcile(identity.tenant_id)
        async with self._sessions() as session:
            found = await rows.page(
                session,
                identity.tenant_id,
                status=status,
                include_deleted=include_deleted,
                after=after,
                limit=size + 1,
            )
        page, more = found[:size], len(found) > size
        token = ""
        if more:
            last = page[-1]
            token = pagination.encode_page_token(
                fingerprint, [last.created_at.isoformat(), str(last.id)]
            )
        return ContainerPage(containers=page, next_page_token=token)

    # --- delete ---------------------------------------------------------------------------

    async def delete(self, identity: Identity, container_id: uuid.UUID) -> ContainerRecord:
        # Like a create, a delete that reached upstream runs to its end even if its caller hangs
        # up: a container gone upstream must not stay RUNNING (and bound) here.
        task = asyncio.create_task(self._delete(identity, container_id))
        self._settling.add(task)
        task.add_done_callback(_forget_settled(self._settling))
        return await asyncio.shield(task)

    async def _delete(self, identity: Identity, container_id: uuid.UUID) -> ContainerRecord:
        async with self._sessions() as session:
            row = await rows.get(session, identity.tenant_id, container_id)
        if row is None:
            raise NotFound(CONTAINER, str(container_id), reason="CONTAINER_NOT_FOUND")
        if row.status is ContainerStatus.DELETED:
            return row
        if row.status is ContainerStatus.CREATING:
            raise FailedPrecondition(
                "the container is still being created; delete it once it is RUNNING",
                [PreconditionViolation("STATE", f"containers/{row.id}", "state is CREATING")],
                reason="CONTAINER_CREATING",
            )
        if row.openai_id is not None:
            await self._delete_upstream(row.openai_id)
        async with self._cache.writing(self._sessions) as (session, changed):
            deleted = await session.get(ContainerRecord, container_id, with_for_update=True)
            assert deleted is not None
            now = self._clock.now()
            deleted.status = ContainerStatus.DELETED
            deleted.deleted_at = deleted.deleted_at or now
            deleted.updated_at = now
            unbound = await rows.delete_bindings(session, container_id)
            changed.append(container_changed(row.tenant_id, container_id))
            changed += [binding_changed(row.tenant_id, agent_key) for agent_key in unbound]
        log.info(
            "container deleted",
            extra={
                "tenant_id": row.tenant_id,
                "container_id": str(row.id),
                "openai_id": row.openai_id,
            },
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

    async def wait_settled(self) -> None:
        """Waits for creates whose callers hung up (used at shutdown)."""
        if self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)


def _failure_reason(error: BaseException) -> str:
    return error.message if isinstance(error, DomainError) else type(error).__name__


def _forget_settled(
    tasks: set[asyncio.Task[ContainerRecord]],
) -> Callable[[asyncio.Task[ContainerRecord]], None]:
    def forget(task: asyncio.Task[ContainerRecord]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: its caller may have hung up and never will

    return forget
