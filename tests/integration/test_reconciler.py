"""The reconciler and unclear outcomes: late creates, orphans, leadership, the liveness bound."""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
import pytest
from agentcontainers.v1 import (
    binding_service_pb2,
    container_pb2,
    container_service_pb2,
    tool_service_pb2,
)

from agent_containers.domain.containers import upstream_name
from agent_containers.store.leadership import Leadership
from tests.integration.conftest import StartService
from tests.support.databases import PostgresServer
from tests.support.service import RunningService, identity

State = container_pb2.ContainerState
Source = tool_service_pb2.ToolSource
Reason = tool_service_pb2.FallbackReason


def ours_upstream(service: RunningService) -> list[str]:
    """Upstream ids of the service's own live containers (`ac-<id>` names)."""
    return [
        container.id
        for container in service.emulator.state.containers.values()
        if container.name.startswith("ac-") and not container.expired
    ]


async def states(service: RunningService) -> dict[str, int]:
    listed = await service.containers.ListContainers(
        container_service_pb2.ListContainersRequest(show_deleted=True, page_size=100),
        metadata=identity(),
    )
    return {container.name: container.state for container in listed.containers}


async def wait_until_upstream_has(service: RunningService, count: int) -> None:
    for _ in range(100):
        if len(ours_upstream(service)) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the late container never appeared")


# --- section 3: an unclear create never leaves an orphan or a duplicate -----------------------


async def test_a_late_create_converges_on_one_container_through_a_retry(
    start_service: StartService,
) -> None:
    """Upstream hangs past the timeout, then creates the container late. The caller retries
    with the same request id, as the docs advise: one container upstream, one RUNNING row."""
    # A 1 s timeout, not less: on a loaded machine the request must still reach upstream in full
    # before the client gives up, or upstream never does the work at all.
    service = await start_service(openai_timeout_seconds=1.0)
    service.emulator.state.delays["containers.create"] = 2.0
    request_id = str(uuid.uuid4())
    with pytest.raises(grpc.aio.AioRpcError) as timed_out:
        await service.create("late", request_id=request_id)
    assert timed_out.value.code() == grpc.StatusCode.UNAVAILABLE
    assert await states(service) == {"late": State.CONTAINER_STATE_CREATING}
    service.clock.advance(seconds=8)  # past the create's budget: it is no longer in flight
    with pytest.raises(grpc.aio.AioRpcError) as too_soon:  # upstream has not made it yet
        await service.create("late", request_id=request_id)
    assert too_soon.value.code() == grpc.StatusCode.UNAVAILABLE
    await wait_until_upstream_has(service, 1)  # upstream creates it, late
    retried = await service.create("late", request_id=request_id)
    assert retried.state == State.CONTAINER_STATE_RUNNING
    assert [retried.openai_container_id] == ours_upstream(service)
    assert await states(service) == {"late": State.CONTAINER_STATE_RUNNING}
    assert service.emulator.state.calls["containers.create"] == 1
    await service.reconcile()  # and the reconciler finds nothing left to do
    assert [retried.openai_container_id] == ours_upstream(service)


async def test_a_late_create_is_settled_by_the_reconciler_without_any_call(
    start_service: StartService,
) -> None:
    service = await start_service(openai_timeout_seconds=1.0)  # see the test above
    service.emulator.state.delays["containers.create"] = 2.0
    with pytest.raises(grpc.aio.AioRpcError):
        await service.create("late")
    service.clock.advance(seconds=8)
    await service.reconcile()  # right after the timeout: nothing found is not an answer
    assert await states(service) == {"late": State.CONTAINER_STATE_CREATING}
    await wait_until_upstream_has(service, 1)
    report = await service.server.reconciler.run_once()  # type: ignore[union-attr]
    assert report.settled == 1
    assert await states(service) == {"late": State.CONTAINER_STATE_RUNNING}
    assert len(ours_upstream(service)) == 1


# --- orphans --------------------------------------------------------------------------------


async def test_orphans_with_no_row_or_a_dead_row_are_deleted_upstream(
    service: RunningService,
) -> None:
    kept = await service.create("kept")
    state = service.emulator.state
    no_row = state.create_container(upstream_name(uuid.uuid4()))
    failed_row_container = await service.create("gone")
    await service.containers.DeleteContainer(
        container_service_pb2.DeleteContainerRequest(id=failed_row_container.id),
        metadata=identity(),
    )
    # A duplicate made for the deleted row (an old bug, a restore): its row says it is gone.
    duplicate = state.create_container(upstream_name(uuid.UUID(failed_row_container.id)))
    someone_elses = state.create_container("not-ours")
    report = await service.server.reconciler.run_once()  # type: ignore[union-attr]
    assert report.orphans_deleted == 2
    assert no_row.id not in state.containers
    assert duplicate.id not in state.containers
    assert kept.openai_container_id in state.containers
    assert someone_elses.id in state.containers  # never touches what is not ours


async def test_orphans_are_only_reported_when_told(start_service: StartService) -> None:
    service = await start_service(reconciler_orphans="report")
    orphan = service.emulator.state.create_container(upstream_name(uuid.uuid4()))
    report = await service.server.reconciler.run_once()  # type: ignore[union-attr]
    assert (report.orphans_reported, report.orphans_deleted) == (1, 0)
    assert orphan.id in service.emulator.state.containers


async def test_an_orphan_whose_row_is_still_creating_is_adopted(
    start_service: StartService,
) -> None:
    # A 1 s timeout, not less: on a loaded machine the request must reach upstream in full
    # before the client gives up, or upstream never does the work.
    service = await start_service(openai_timeout_seconds=1.0)
    service.emulator.state.delays["containers.create"] = 2.0
    with pytest.raises(grpc.aio.AioRpcError):
        await service.create("adoptee")
    await wait_until_upstream_has(service, 1)
    report = await service.server.reconciler.run_once()  # type: ignore[union-attr]
    assert report.adopted == 1
    assert await states(service) == {"adoptee": State.CONTAINER_STATE_RUNNING}


async def test_upstream_expiry_and_out_of_band_deletes_are_recorded(
    service: RunningService,
) -> None:
    expired = await service.create("expired")
    deleted = await service.create("deleted")
    active = await service.create("active")
    state = service.emulator.state
    state.expire(expired.openai_container_id)
    del state.containers[deleted.openai_container_id]
    service.clock.advance(minutes=5)
    state.touch(state.containers[active.openai_container_id])  # used through OpenAI meanwhile
    report = await service.server.reconciler.run_once()  # type: ignore[union-attr]
    assert (report.expired, report.refreshed) == (2, 1)
    assert await states(service) == {
        "expired": State.CONTAINER_STATE_EXPIRED,
        "deleted": State.CONTAINER_STATE_EXPIRED,
        "active": State.CONTAINER_STATE_RUNNING,
    }
    assert state.calls["containers.retrieve"] == 0  # nothing was kept alive by looking


async def test_the_reconciler_runs_by_itself(start_service: StartService) -> None:
    service = await start_service(reconciler_period_seconds=0.1)
    created = await service.create("watched")
    del service.emulator.state.containers[created.openai_container_id]
    for _ in range(100):
        if (await states(service))["watched"] == State.CONTAINER_STATE_EXPIRED:
            break
        await asyncio.sleep(0.05)
    assert (await states(service))["watched"] == State.CONTAINER_STATE_EXPIRED


# --- section 4: resolution never trusts old liveness facts ------------------------------------


async def bind_and_resolve(service: RunningService, name: str) -> container_pb2.Container:
    container = await service.create(name)
    await service.bindings.BindContainer(
        binding_service_pb2.BindContainerRequest(agent_key="agent", container_id=container.id),
        metadata=identity(),
    )
    assert (await resolve(service)).source == Source.TOOL_SOURCE_BINDING
    return container


async def resolve(service: RunningService) -> tool_service_pb2.ResolvedTool:
    resolved: tool_service_pb2.ResolvedTool = await service.tools.ResolveTool(
        tool_service_pb2.ResolveToolRequest(agent_key="agent", tool="code_interpreter"),
        metadata=identity(),
    )
    return resolved


async def test_a_container_deleted_out_of_band_stops_being_handed_out_within_a_period(
    start_service: StartService,
) -> None:
    """The reconciler notices, and every cache hears of it: measured, not assumed."""
    period, bound = 0.2, 2.0
    service = await start_service(reconciler_period_seconds=period, liveness_max_age_seconds=bound)
    container = await bind_and_resolve(service, "doomed")
    del service.emulator.state.containers[container.openai_container_id]
    deleted_at = time.monotonic()
    while (await resolve(service)).source == Source.TOOL_SOURCE_BINDING:
        await asyncio.sleep(0.01)
        assert time.monotonic() - deleted_at < bound, f"still handed out after {bound} s"
    window = time.monotonic() - deleted_at
    print(f"handed out for {window:.3f} s after the out-of-band delete (period {period} s)")
    fallen_back = await resolve(service)
    assert fallen_back.fallback_reason == Reason.FALLBACK_REASON_CONTAINER_EXPIRED


async def test_resolution_revalidates_facts_older_than_the_bound(
    start_service: StartService,
) -> None:
    """No reconciler pass (its period is an hour): once what resolution knows is older than
    the bound, it asks upstream (a lookup, not a keep-alive) before handing the container out."""
    service = await start_service(liveness_max_age_seconds=30)
    container = await bind_and_resolve(service, "doomed")
    del service.emulator.state.containers[container.openai_container_id]
    service.clock.advance(seconds=29)
    assert (await resolve(service)).source == Source.TOOL_SOURCE_BINDING  # within the bound
    service.clock.advance(seconds=2)
    fallen_back = await resolve(service)
    assert fallen_back.source == Source.TOOL_SOURCE_AUTO
    assert fallen_back.fallback_reason == Reason.FALLBACK_REASON_CONTAINER_EXPIRED
    assert service.emulator.state.calls["containers.retrieve"] == 0


async def test_a_reconciler_pass_keeps_resolution_a_memory_read(
    start_service: StartService,
) -> None:
    service = await start_service(liveness_max_age_seconds=30)
    await bind_and_resolve(service, "alive")
    service.clock.advance(seconds=25)
    await service.reconcile()  # confirms every RUNNING row as of now
    service.clock.advance(seconds=25)  # 50 s since the row was read, 25 s since the pass
    lists = service.emulator.state.calls["containers.list"]
    assert (await resolve(service)).source == Source.TOOL_SOURCE_BINDING
    assert service.emulator.state.calls["containers.list"] == lists  # upstream not asked


async def test_while_upstream_is_unreachable_resolution_serves_the_last_facts(
    start_service: StartService,
) -> None:
    service = await start_service(liveness_max_age_seconds=30, openai_timeout_seconds=0.5)
    container = await bind_and_resolve(service, "kept")
    service.clock.advance(seconds=31)
    service.emulator.state.fail_next(503, count=100, operations="containers.list")
    resolved = await resolve(service)
    assert resolved.source == Source.TOOL_SOURCE_BINDING
    assert resolved.container_id == container.id


# --- leadership -----------------------------------------------------------------------------


async def test_exactly_one_process_leads_and_another_takes_over(
    require_postgres: PostgresServer,
) -> None:
    url = await require_postgres.create_database()
    first, second = Leadership(url), Leadership(url)
    try:
        assert await first.held()
        assert not await second.held()
        assert await first.held()  # still the leader on the next period
        await first.release()  # the leader's process dies: its connection closes
        assert await second.held()
        assert not await first.held()
    finally:
        await first.release()
        await second.release()
        await require_postgres.drop_database(url)


async def test_sqlite_always_leads(tmp_path: object) -> None:
    assert await Leadership(f"sqlite+aiosqlite:///{tmp_path}/x.db").held()


async def test_a_hanging_revalidation_delays_runs_once_not_for_as_long_as_it_hangs(
    start_service: StartService,
) -> None:
    service = await start_service(liveness_max_age_seconds=30, openai_timeout_seconds=20)
    container = await bind_and_resolve(service, "slow")
    service.clock.advance(seconds=31)  # facts too old: the next run revalidates
    service.emulator.state.delays["containers.list"] = 15  # upstream hangs on the lookup
    first = await resolve(service)  # waits a few seconds, then is served the last facts
    assert first.container_id == container.id
    await asyncio.sleep(5.2)  # past the backoff; the lookup still hangs upstream
    second = await service.tools.ResolveTool(
        tool_service_pb2.ResolveToolRequest(agent_key="agent", tool="code_interpreter"),
        metadata=identity(),
        timeout=2.0,  # a run that waited on the hanging lookup again (3 s) would miss this
    )
    assert second.container_id == container.id
