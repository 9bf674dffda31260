"""The reconciler: keeps the recorded truth in line with upstream without waiting for calls.

Every process runs one; exactly one works at a time across replicas (store/leadership.py). Each
period the working one lists every container upstream once (a list keeps nothing alive, unlike a
retrieve), then:

- settles CREATING rows whose create can no longer be in flight: RUNNING when their `ac-<id>`
  container exists, FAILED once upstream has had every chance to create it late and has not;
- brings RUNNING rows in line with upstream: activity, expiry, and EXPIRED when upstream says so
  or no longer has the container;
- finds orphans, containers of ours that no live row accounts for: one whose row is still
  CREATING is adopted; any other is deleted upstream (or only reported, by setting);
- announces when the pass started, so that every process knows its RUNNING facts were confirmed
  as of then (the liveness bound of tool resolution rests on that).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from opentelemetry.trace import Tracer
from sqlalchemy.ext.asyncio import AsyncSession

from agent_containers.domain.budgets import TimeBudgets
from agent_containers.domain.clock import Clock
from agent_containers.domain.containers import (
    Container,
    ContainerStatus,
    UpstreamFacts,
    container_id_of_upstream_name,
    upstream_name,
)
from agent_containers.domain.errors import DomainError, UpstreamNotFound
from agent_containers.observability.metrics import ReconcilerMetrics
from agent_containers.services.container_creation import ContainerCreation
from agent_containers.services.container_refresh import ContainerRefresh
from agent_containers.store import containers as rows
from agent_containers.store.leadership import Leadership
from agent_containers.store.notifications import reconciled
from agent_containers.store.unit_of_work import Transaction, UnitOfWork
from agent_containers.upstream.gateway import ContainersGateway, UpstreamContainer

log = logging.getLogger(__name__)

BATCH_SIZE = 500


@dataclass
class ReconcileReport:
    """What one pass did; logged, and exported by the metrics."""

    settled: int = 0
    """CREATING rows whose container was found upstream (now RUNNING)."""
    failed: int = 0
    """CREATING rows upstream never made a container for (now FAILED)."""
    unknown: int = 0
    """CREATING rows whose outcome is not known yet (left for a later pass)."""
    refreshed: int = 0
    """RUNNING rows whose activity or expiry upstream changed."""
    expired: int = 0
    """RUNNING rows upstream says expired, or no longer has."""
    adopted: int = 0
    """Orphans whose row was still CREATING (counted in `settled` too)."""
    orphans_deleted: int = 0
    orphans_reported: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return {field.name: getattr(self, field.name) for field in fields(self)}

    def __bool__(self) -> bool:
        return any(self.as_dict().values())


class Reconciler:
    """The background loop of one process, and one pass of it."""

    def __init__(
        self,
        uow: UnitOfWork,
        gateway: ContainersGateway,
        creation: ContainerCreation,
        refresh: ContainerRefresh,
        leadership: Leadership,
        clock: Clock,
        budgets: TimeBudgets,
        *,
        period_seconds: float,
        outcome_window: timedelta,
        delete_orphans: bool,
        tenant_quota: int,
        metrics: ReconcilerMetrics,
        tracer: Tracer | None = None,
    ) -> None:
        self._uow = uow
        self._tracer = tracer
        self._gateway = gateway
        self._creation = creation
        self._refresh = refresh
        self._leadership = leadership
        self._clock = clock
        self._budgets = budgets
        self._period = period_seconds
        self._outcome_window = outcome_window
        self._delete_orphans = delete_orphans
        self._tenant_quota = tenant_quota
        self._metrics = metrics
        self._task: asyncio.Task[None] | None = None
        self._pass_lock = asyncio.Lock()
        self.totals = ReconcileReport()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="reconciler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._leadership.release()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._period)
            try:
                leads = await self._leadership.held()
                self._metrics.leading(leads)
                if leads:
                    await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the loop outlives any one failure
                self.totals.errors += 1
                self._metrics.failed()
                log.warning("reconciliation failed", extra={"error": repr(error)})

    async def run_once(self) -> ReconcileReport:
        """One pass (tests and the loop call it); passes never overlap in one process."""
        async with self._pass_lock:
            if self._tracer is None:
                return await self._pass()
            # Traced, one pass is one trace: its SQL and upstream spans are this span's children.
            with self._tracer.start_as_current_span("reconcile") as span:
                report = await self._pass()
                span.set_attributes({f"reconcile.{k}": v for k, v in report.as_dict().items()})
                return report

    async def _pass(self) -> ReconcileReport:
        report = ReconcileReport()
        started = self._clock.now()
        timer = time.perf_counter()
        try:
            listed = await self._list_upstream()
        except DomainError as error:
            report.errors += 1
            log.warning("reconciler cannot list upstream", extra={"reason": error.reason})
            listed = None
        if listed is not None:
            await self._settle_creating(listed, started, report)
            await self._check_running(listed, started, report)
            await self._sweep_orphans(listed, started, report)
            if not report.errors:
                await self._announce(started)
        for name, value in report.as_dict().items():
            setattr(self.totals, name, getattr(self.totals, name) + value)
        succeeded = listed is not None and not report.errors
        self._metrics.pass_finished(
            report.as_dict(),
            time.perf_counter() - timer,
            self._clock.now().timestamp() if succeeded else None,
        )
        await self._count()
        level = logging.INFO if report else logging.DEBUG
        log.log(level, "reconciled", extra=report.as_dict())
        return report

    async def _count(self) -> None:
        """Live containers by state and tier, and tenants at quota, for the metrics."""

        async def count(session: AsyncSession) -> tuple[dict[tuple[str, str], int], int]:
            live = await rows.count_live_by_state_and_tier(session)
            return live, await rows.count_tenants_at_quota(session, self._tenant_quota)

        live, at_quota = await self._uow.read(count)
        self._metrics.counted(live, at_quota)

    async def _list_upstream(self) -> dict[str, UpstreamContainer]:
        """Every container upstream by upstream id."""
        return {container.openai_id: container async for container in self._gateway.list_all()}

    # --- CREATING rows ------------------------------------------------------------------------

    async def _settle_creating(
        self, listed: dict[str, UpstreamContainer], started: datetime, report: ReconcileReport
    ) -> None:
        by_name = {container.name: container for container in listed.values()}
        in_flight_since = started - timedelta(seconds=self._budgets.create_in_flight)
        give_up_before = in_flight_since - self._outcome_window
        async for creating in self._batches(ContainerStatus.CREATING, in_flight_since):
            found = by_name.get(upstream_name(creating.id))
            try:
                if found is not None:
                    await self._creation.settle(creating, found.facts)
                    report.settled += 1
                elif creating.created_at < give_up_before:
                    await self._creation.fail(
                        creating, "no upstream container was created (settled by the reconciler)"
                    )
                    report.failed += 1
                else:
                    report.unknown += 1
            except DomainError as error:
                report.errors += 1
                log.warning(
                    "could not settle a CREATING row",
                    extra={
                        **creating.log_fields(),
                        "openai_id": found.openai_id if found is not None else None,
                        "reason": error.reason,
                    },
                )

    # --- RUNNING rows -------------------------------------------------------------------------

    async def _check_running(
        self, listed: dict[str, UpstreamContainer], started: datetime, report: ReconcileReport
    ) -> None:
        async for running in self._batches(ContainerStatus.RUNNING, None):
            if running.refreshed_at is not None and running.refreshed_at > started:
                continue  # confirmed after the listing began: newer than what it says
            upstream = listed.get(running.openai_id or "")
            # Missing from a complete listing is gone: a cursor listing misses nothing that
            # existed before it began and still exists.
            facts = None if upstream is None else upstream.facts
            if facts is not None and _agrees(running, facts):
                continue
            try:
                updated = await self._refresh.apply(running, facts, self._clock.now())
            except DomainError as error:
                report.errors += 1
                log.warning(
                    "could not record a container's state",
                    extra={**running.log_fields(), "reason": error.reason},
                )
                continue
            if updated.status is ContainerStatus.EXPIRED:
                report.expired += 1
            elif updated.status is ContainerStatus.RUNNING:
                report.refreshed += 1

    # --- orphans ------------------------------------------------------------------------------

    async def _sweep_orphans(
        self, listed: dict[str, UpstreamContainer], started: datetime, report: ReconcileReport
    ) -> None:
        ours = {
            container_id: upstream
            for upstream in listed.values()
            if not upstream.expired
            and (container_id := container_id_of_upstream_name(upstream.name)) is not None
        }
        ids = list(ours)
        for offset in range(0, len(ids), BATCH_SIZE):
            batch = ids[offset : offset + BATCH_SIZE]

            async def load(
                session: AsyncSession, batch: list[uuid.UUID] = batch
            ) -> dict[uuid.UUID, Container]:
                return await rows.by_ids(session, batch)

            known = await self._uow.read(load)
            for container_id in batch:
                upstream = ours[container_id]
                row = known.get(container_id)
                accounted_for = (
                    row is not None
                    and row.openai_id == upstream.openai_id
                    and row.status is ContainerStatus.RUNNING
                )
                if accounted_for:
                    continue
                if row is not None and row.status is ContainerStatus.CREATING:
                    try:
                        await self._creation.settle(row, upstream.facts)
                        report.adopted += 1
                        report.settled += 1
                    except DomainError:
                        report.errors += 1
                    continue
                await self._orphan(upstream, row, report)

    async def _orphan(
        self, upstream: UpstreamContainer, row: Container | None, report: ReconcileReport
    ) -> None:
        container_id = container_id_of_upstream_name(upstream.name)
        extra = {
            "container_id": str(container_id) if container_id is not None else None,
            "openai_id": upstream.openai_id,
            "upstream_name": upstream.name,
            "row_state": row.status.value if row is not None else None,
        }
        if not self._delete_orphans:
            report.orphans_reported += 1
            log.warning("orphan container upstream (left alone by setting)", extra=extra)
            return
        try:
            await self._gateway.delete(upstream.openai_id)
        except UpstreamNotFound:
            pass
        except DomainError as error:
            report.errors += 1
            log.warning("could not delete an orphan", extra={**extra, "reason": error.reason})
            return
        report.orphans_deleted += 1
        log.warning("deleted an orphan container upstream", extra=extra)

    # --- helpers ------------------------------------------------------------------------------

    async def _batches(
        self, status: ContainerStatus, created_before: datetime | None
    ) -> AsyncIterator[Container]:
        """Every row in a state (created before a moment), a batch at a time."""
        after: uuid.UUID | None = None
        while True:

            async def load(
                session: AsyncSession, after: uuid.UUID | None = after
            ) -> list[Container]:
                return await rows.in_status(
                    session, status, after=after, limit=BATCH_SIZE, created_before=created_before
                )

            batch = await self._uow.read(load)
            for container in batch:
                yield container
            if len(batch) < BATCH_SIZE:
                return
            after = batch[-1].id

    async def _announce(self, started: datetime) -> None:
        async def write(transaction: Transaction) -> None:
            transaction.announce(reconciled(started))

        await self._uow.write(write)


def _agrees(container: Container, facts: UpstreamFacts) -> bool:
    """Whether a RUNNING row already says what upstream says."""
    return (
        not facts.expired
        and facts.openai_id == container.openai_id
        and (facts.last_active_at is None or facts.last_active_at == container.last_active_at)
        and (not facts.expiry_minutes or facts.expiry_minutes == container.expiry_minutes)
    )
