"""ContainerService end to end: a real server on a real port, real SQL, the SDK and the emulator."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import grpc
import pytest
from agentcontainers.v1 import container_pb2, container_service_pb2
from google.rpc import error_details_pb2
from sqlalchemy import select

from agent_containers.domain.containers import ContainerStatus, upstream_name
from agent_containers.store.database import create_engine, create_session_factory
from agent_containers.store.models import AgentBindingRecord, ContainerRecord
from tests.integration.conftest import StartService
from tests.support.service import RunningService, error_info, identity, unpack

State = container_pb2.ContainerState
pb = container_service_pb2


async def list_all(
    service: RunningService, *, tenant: str = "acme", page_size: int = 0, **filters: object
) -> list[container_pb2.Container]:
    found: list[container_pb2.Container] = []
    token = ""
    while True:
        page = await service.containers.ListContainers(
            pb.ListContainersRequest(page_size=page_size, page_token=token, **filters),
            metadata=identity(tenant),
        )
        found.extend(page.containers)
        token = page.next_page_token
        if not token:
            return found


async def test_create_get_list_delete(service: RunningService) -> None:
    created = await service.create(
        "analysis", memory_tier=container_pb2.MEMORY_TIER_4G, metadata={"team": "data"}
    )
    assert created.state == State.CONTAINER_STATE_RUNNING
    assert created.openai_container_id.startswith("cntr_")
    assert created.memory_tier == container_pb2.MEMORY_TIER_4G
    assert created.expires_after_minutes == 20
    assert created.owner_user_id == "alice"
    assert dict(created.metadata) == {"team": "data"}
    assert created.expire_time.ToSeconds() == created.last_active_time.ToSeconds() + 20 * 60

    upstream = service.emulator.state.containers[created.openai_container_id]
    assert upstream.name == f"ac-{created.id}"  # traceable to its row, unique across tenants
    assert upstream.memory_limit == "4g"

    fetched = await service.containers.GetContainer(
        pb.GetContainerRequest(id=created.id), metadata=identity()
    )
    assert fetched == created  # fresh enough: no upstream read, nothing changed

    assert [c.id for c in await list_all(service)] == [created.id]

    deleted = await service.containers.DeleteContainer(
        pb.DeleteContainerRequest(id=created.id), metadata=identity()
    )
    assert deleted.state == State.CONTAINER_STATE_DELETED
    assert deleted.HasField("delete_time")
    assert created.openai_container_id not in service.emulator.state.containers
    assert await list_all(service) == []
    assert [c.id for c in await list_all(service, show_deleted=True)] == [created.id]
    again = await service.containers.GetContainer(
        pb.GetContainerRequest(id=created.id), metadata=identity()
    )
    assert again.state == State.CONTAINER_STATE_DELETED


async def test_defaults_come_from_settings(start_service: StartService) -> None:
    service = await start_service(
        default_memory_tier="4g", allowed_memory_tiers=["1g", "4g"], default_expiry_minutes=7
    )
    created = await service.create("defaults")
    assert created.memory_tier == container_pb2.MEMORY_TIER_4G
    assert created.expires_after_minutes == 7
    upstream = service.emulator.state.containers[created.openai_container_id]
    assert upstream.expires_after_minutes == 7


async def test_quota_holds_under_50_concurrent_creates(start_service: StartService) -> None:
    service = await start_service(max_containers_per_tenant=10)
    results = await asyncio.gather(
        *(service.create(f"c{i}") for i in range(50)), return_exceptions=True
    )
    created = [r for r in results if isinstance(r, container_pb2.Container)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(created) == 10
    assert len(refused) == 40
    assert all(r.state == State.CONTAINER_STATE_RUNNING for r in created)
    for error in refused:
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_info(error).reason == "CONTAINER_QUOTA_EXCEEDED"
        quota = unpack(error, error_details_pb2.QuotaFailure)
        assert quota.violations[0].subject == "tenant:acme"
    assert len(service.emulator.state.containers) == 10
    assert service.emulator.state.calls["containers.create"] == 10
    listed = await list_all(service, state=State.CONTAINER_STATE_RUNNING)
    assert len(listed) == 10
    # Another tenant has a quota of its own.
    assert (await service.create("c0", tenant="globex")).state == State.CONTAINER_STATE_RUNNING


async def test_quota_frees_when_a_container_is_deleted_or_expires(
    start_service: StartService,
) -> None:
    service = await start_service(max_containers_per_tenant=2)
    first = await service.create("one", expires_after_minutes=5)
    await service.create("two", expires_after_minutes=60)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.create("three")
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    service.clock.advance(minutes=6)  # "one" expires; nobody has read it since
    await service.reconcile()  # the background pass learns it, not the next create
    await service.create("three")
    with pytest.raises(grpc.aio.AioRpcError):
        await service.create("four")
    fetched = await service.containers.GetContainer(
        pb.GetContainerRequest(id=first.id), metadata=identity()
    )
    assert fetched.state == State.CONTAINER_STATE_EXPIRED


async def test_one_request_id_gives_one_container(service: RunningService) -> None:
    service.emulator.state.latency = 0.2  # keep the first create in flight while others arrive
    request_id = str(uuid.uuid4())
    results = await asyncio.gather(
        *(service.create("same", request_id=request_id) for _ in range(20))
    )
    assert len({r.id for r in results}) == 1
    assert all(r.state == State.CONTAINER_STATE_RUNNING for r in results)
    assert service.emulator.state.calls["containers.create"] == 1
    assert len(service.emulator.state.containers) == 1
    # A later retry returns the first result too.
    assert (await service.create("same", request_id=request_id)).id == results[0].id


async def test_live_name_is_unique_but_reusable_after_delete(service: RunningService) -> None:
    first = await service.create("notebook")
    with pytest.raises(grpc.aio.AioRpcError) as taken:
        await service.create("notebook")
    assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_info(taken.value).reason == "CONTAINER_NAME_TAKEN"
    assert unpack(taken.value, error_details_pb2.ResourceInfo).resource_name == "notebook"
    assert service.emulator.state.calls["containers.create"] == 1

    await service.containers.DeleteContainer(
        pb.DeleteContainerRequest(id=first.id), metadata=identity()
    )
    service.clock.advance(seconds=1)  # newest first: make "newer" unambiguous
    second = await service.create("notebook")
    assert second.id != first.id
    assert second.state == State.CONTAINER_STATE_RUNNING
    names = [(c.name, c.state) for c in await list_all(service, show_deleted=True)]
    assert names == [
        ("notebook", State.CONTAINER_STATE_RUNNING),
        ("notebook", State.CONTAINER_STATE_DELETED),
    ]
    # The same name in another tenant never collides.
    await service.create("notebook", tenant="globex")


async def test_expiry_is_seen_through_get(service: RunningService) -> None:
    created = await service.create("short", expires_after_minutes=5)
    service.clock.advance(minutes=3)
    kept = await service.containers.GetContainer(
        pb.GetContainerRequest(id=created.id), metadata=identity()
    )
    # Stale after 3 minutes: refreshed from upstream, which counts the read as activity.
    assert kept.state == State.CONTAINER_STATE_RUNNING
    assert kept.last_active_time.ToSeconds() == created.last_active_time.ToSeconds() + 180
    assert kept.refresh_time.ToSeconds() > created.refresh_time.ToSeconds()
    assert service.emulator.state.calls["containers.retrieve"] == 1

    service.clock.advance(minutes=5, seconds=1)
    expired = await service.containers.GetContainer(
        pb.GetContainerRequest(id=created.id), metadata=identity()
    )
    assert expired.state == State.CONTAINER_STATE_EXPIRED
    assert await list_all(service, state=State.CONTAINER_STATE_RUNNING) == []


async def test_activity_seen_only_upstream_keeps_a_container_running(
    service: RunningService,
) -> None:
    created = await service.create("busy", expires_after_minutes=5)
    service.clock.advance(minutes=4)
    # An agent run uses the container through OpenAI: upstream sees activity, we do not.
    service.emulator.state.touch(service.emulator.state.containers[created.openai_container_id])
    service.clock.advance(minutes=4)  # overdue by our last reading, alive upstream
    listed = await list_all(service, state=State.CONTAINER_STATE_RUNNING)
    assert [c.id for c in listed] == [created.id]
    fetched = await service.containers.GetContainer(
        pb.GetContainerRequest(id=created.id), metadata=identity()
    )
    assert fetched.state == State.CONTAINER_STATE_RUNNING
    assert fetched.last_active_time.ToSeconds() >= created.last_active_time.ToSeconds() + 240


async def test_an_expired_container_keeps_its_name_until_deleted(service: RunningService) -> None:
    created = await service.create("daily", expires_after_minutes=1)
    service.clock.advance(minutes=2)
    await service.reconcile()
    with pytest.raises(grpc.aio.AioRpcError) as taken:
        await service.create("daily")
    assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "EXPIRED: delete it to reuse the name" in (taken.value.details() or "")
    await service.containers.DeleteContainer(
        pb.DeleteContainerRequest(id=created.id), metadata=identity()
    )
    assert (await service.create("daily")).state == State.CONTAINER_STATE_RUNNING


async def test_get_marks_expired_when_upstream_says_so(service: RunningService) -> None:
    created = await service.create("gone")
    service.emulator.state.expire(created.openai_container_id)
    service.clock.advance(seconds=31)  # past the staleness, well before local expiry
    fetched = await service.containers.GetContainer(
        pb.GetContainerRequest(id=created.id), metadata=identity()
    )
    assert fetched.state == State.CONTAINER_STATE_EXPIRED


async def test_get_marks_expired_when_upstream_forgot_it(service: RunningService) -> None:
    created = await service.create("forgotten")
    del service.emulator.state.containers[created.openai_container_id]
    service.clock.advance(seconds=31)
    fetched = await service.containers.GetContainer(
        pb.GetContainerRequest(id=created.id), metadata=identity()
    )
    assert fetched.state == State.CONTAINER_STATE_EXPIRED


async def test_get_serves_local_copy_when_upstream_is_down(service: RunningService) -> None:
    created = await service.create("steady")
    service.clock.advance(seconds=31)
    service.emulator.state.fail_next(503, operations="containers.retrieve")
    fetched = await service.containers.GetContainer(
        pb.GetContainerRequest(id=created.id), metadata=identity()
    )
    assert fetched.state == State.CONTAINER_STATE_RUNNING
    assert fetched.refresh_time == created.refresh_time


async def test_page_walk_returns_each_container_once(start_service: StartService) -> None:
    service = await start_service(max_containers_per_tenant=300)
    ids: set[str] = set()
    for batch in range(10):
        # Ten distinct creation times, 25 rows sharing each: both halves of the keyset
        # predicate (earlier time; same time, smaller id) carry the walk.
        service.clock.advance(seconds=1)
        created = await asyncio.gather(
            *(service.create(f"c{batch:02d}-{i:02d}") for i in range(25))
        )
        ids.update(c.id for c in created)
    await service.create("other-tenant", tenant="globex")
    walked = await list_all(service, page_size=7)
    assert len(walked) == 250
    assert {c.id for c in walked} == ids
    keys = [(c.create_time.ToNanoseconds(), c.id) for c in walked]
    assert keys == sorted(keys, reverse=True)  # newest first
    default_page = await service.containers.ListContainers(
        pb.ListContainersRequest(), metadata=identity()
    )
    assert len(default_page.containers) == 50
    clamped = await service.containers.ListContainers(
        pb.ListContainersRequest(page_size=5000), metadata=identity()
    )
    assert len(clamped.containers) == 250
    assert clamped.next_page_token == ""


async def test_page_token_is_bound_to_its_query(service: RunningService) -> None:
    for i in range(3):
        await service.create(f"c{i}")
    page = await service.containers.ListContainers(
        pb.ListContainersRequest(page_size=1), metadata=identity()
    )
    assert page.next_page_token
    with pytest.raises(grpc.aio.AioRpcError) as other_query:
        await service.containers.ListContainers(
            pb.ListContainersRequest(
                page_size=1, page_token=page.next_page_token, show_deleted=True
            ),
            metadata=identity(),
        )
    assert other_query.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as other_tenant:
        await service.containers.ListContainers(
            pb.ListContainersRequest(page_size=1, page_token=page.next_page_token),
            metadata=identity("globex"),
        )
    assert other_tenant.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_tenants_cannot_see_each_other(service: RunningService) -> None:
    mine = await service.create("private")
    for call, request in (
        (service.containers.GetContainer, pb.GetContainerRequest(id=mine.id)),
        (service.containers.DeleteContainer, pb.DeleteContainerRequest(id=mine.id)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as hidden:
            await call(request, metadata=identity("globex"))
        assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
        assert error_info(hidden.value).reason == "CONTAINER_NOT_FOUND"
    assert await list_all(service, tenant="globex", show_deleted=True) == []
    still = await service.containers.GetContainer(
        pb.GetContainerRequest(id=mine.id), metadata=identity()
    )
    assert still.state == State.CONTAINER_STATE_RUNNING


async def test_identity_is_required(service: RunningService) -> None:
    for metadata in ((), (("x-tenant-id", "acme"),), (("x-user-id", "alice"),)):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await service.containers.ListContainers(pb.ListContainersRequest(), metadata=metadata)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error_info(refused.value).reason == "IDENTITY_MISSING"
    with pytest.raises(grpc.aio.AioRpcError) as malformed:
        await service.containers.ListContainers(
            pb.ListContainersRequest(), metadata=identity("acme corp")
        )
    assert malformed.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_delete_counts_upstream_404_as_gone(service: RunningService) -> None:
    created = await service.create("vanished")
    del service.emulator.state.containers[created.openai_container_id]
    deleted = await service.containers.DeleteContainer(
        pb.DeleteContainerRequest(id=created.id), metadata=identity()
    )
    assert deleted.state == State.CONTAINER_STATE_DELETED


async def test_delete_keeps_the_row_when_upstream_fails(service: RunningService) -> None:
    created = await service.create("sturdy")
    service.emulator.state.fail_next(500, operations="containers.delete")
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await service.containers.DeleteContainer(
            pb.DeleteContainerRequest(id=created.id), metadata=identity()
        )
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    fetched = await service.containers.GetContainer(
        pb.GetContainerRequest(id=created.id), metadata=identity()
    )
    assert fetched.state == State.CONTAINER_STATE_RUNNING


async def test_delete_removes_agent_bindings(
    service: RunningService, migrated_database_url: str
) -> None:
    created = await service.create("bound")
    kept = await service.create("kept")
    engine = create_engine(migrated_database_url)
    sessions = create_session_factory(engine)
    now = service.clock.now()
    try:
        async with sessions.begin() as session:
            for agent, container in (("agent-a", created), ("agent-b", kept)):
                session.add(
                    AgentBindingRecord(
                        tenant_id="acme",
                        agent_key=agent,
                        container_id=uuid.UUID(container.id),
                        created_at=now,
                        updated_at=now,
                    )
                )
        await service.containers.DeleteContainer(
            pb.DeleteContainerRequest(id=created.id), metadata=identity()
        )
        async with sessions() as session:
            left = (await session.scalars(select(AgentBindingRecord.agent_key))).all()
        assert left == ["agent-b"]
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("http_status", "code", "reason", "detail"),
    [
        (429, grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED", error_details_pb2.RetryInfo),
        (
            400,
            grpc.StatusCode.FAILED_PRECONDITION,
            "UPSTREAM_REJECTED",
            error_details_pb2.PreconditionFailure,
        ),
        (401, grpc.StatusCode.UNAVAILABLE, "UPSTREAM_UNAUTHORIZED", error_details_pb2.RetryInfo),
    ],
)
async def test_upstream_failure_on_create(
    service: RunningService,
    http_status: int,
    code: grpc.StatusCode,
    reason: str,
    detail: type,
) -> None:
    service.emulator.state.fail_next(http_status, retry_after=7, operations="containers.create")
    request_id = str(uuid.uuid4())
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await service.create("flaky", request_id=request_id)
    assert failed.value.code() == code
    assert error_info(failed.value).reason == reason
    unpack(failed.value, detail)
    if http_status == 429:
        assert unpack(failed.value, error_details_pb2.RetryInfo).retry_delay.seconds == 7
    # Nothing live is left: the attempt is FAILED, it frees the name and the request id.
    assert await list_all(service) == []
    failed_rows = await list_all(service, state=State.CONTAINER_STATE_FAILED)
    assert [c.name for c in failed_rows] == ["flaky"]
    assert failed_rows[0].failure_reason
    retried = await service.create("flaky", request_id=request_id)
    assert retried.state == State.CONTAINER_STATE_RUNNING
    assert len(service.emulator.state.containers) == 1


@pytest.mark.parametrize("http_status", [500, 503])
async def test_a_5xx_on_create_leaves_the_outcome_unknown_until_upstream_tells(
    service: RunningService, http_status: int
) -> None:
    """A 5xx may come after upstream created the container: the row is not guessed FAILED."""
    service.emulator.state.fail_next(http_status, operations="containers.create")
    request_id = str(uuid.uuid4())
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await service.create("flaky", request_id=request_id)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "retry with the same request_id" in (failed.value.details() or "")
    unpack(failed.value, error_details_pb2.RetryInfo)
    [pending] = await list_all(service)
    assert pending.state == State.CONTAINER_STATE_CREATING  # name and quota stay held
    service.clock.advance(seconds=26)  # past the create's budget: no longer in flight
    with pytest.raises(grpc.aio.AioRpcError) as still_unknown:
        await service.create("flaky", request_id=request_id)
    assert still_unknown.value.code() == grpc.StatusCode.UNAVAILABLE
    await service.reconcile()  # within the outcome window: nothing found is not an answer
    assert [c.state for c in await list_all(service)] == [State.CONTAINER_STATE_CREATING]
    service.clock.advance(seconds=301)  # past the outcome window: upstream never made it
    await service.reconcile()
    [failed_row] = await list_all(service, show_deleted=True)
    assert failed_row.state == State.CONTAINER_STATE_FAILED
    assert "no upstream container was created" in failed_row.failure_reason
    retried = await service.create("flaky", request_id=request_id)  # the id is free again
    assert retried.state == State.CONTAINER_STATE_RUNNING
    assert len(service.emulator.state.containers) == 1


async def test_unreachable_upstream_is_unavailable(start_service: StartService) -> None:
    service = await start_service()
    await service.emulator.stop()
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await service.create("nowhere")
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(failed.value).reason == "UPSTREAM_UNAVAILABLE"


async def test_a_caller_hanging_up_does_not_strand_the_create(service: RunningService) -> None:
    service.emulator.state.latency = 0.5
    with pytest.raises(grpc.aio.AioRpcError) as hung_up:
        await service.containers.CreateContainer(
            pb.CreateContainerRequest(container=container_pb2.Container(name="impatient")),
            metadata=identity(),
            timeout=0.1,
        )
    assert hung_up.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await service.server.stop()  # waits for the create its caller left behind
    state = service.emulator.state
    assert [c.name.startswith("ac-") for c in state.containers.values()] == [True]


async def test_create_is_attempted_once_upstream(start_service: StartService) -> None:
    """The SDK would retry a timed-out POST and could leave duplicates: create is not retried."""
    service = await start_service(openai_max_retries=3, openai_timeout_seconds=0.3)
    service.emulator.state.latency = 1.0
    with pytest.raises(grpc.aio.AioRpcError) as timed_out:
        await service.create("slow")
    assert timed_out.value.code() == grpc.StatusCode.UNAVAILABLE
    assert service.emulator.state.calls["containers.create"] == 1
    # The service looked for the container under its upstream name, and did not find it yet.
    assert service.emulator.state.calls["containers.list"] >= 1
    assert [c.state for c in await list_all(service, show_deleted=True)] == [
        State.CONTAINER_STATE_CREATING
    ]


async def test_rows_abandoned_in_creating_are_reconciled(
    service: RunningService, migrated_database_url: str
) -> None:
    engine = create_engine(migrated_database_url)
    sessions = create_session_factory(engine)
    long_ago = service.clock.now() - timedelta(hours=1)
    made, lost = uuid.uuid4(), uuid.uuid4()
    try:
        async with sessions.begin() as session:
            for container_id, name in ((made, "made"), (lost, "lost")):
                session.add(
                    ContainerRecord(
                        id=container_id,
                        tenant_id="acme",
                        owner_user_id="alice",
                        name=name,
                        memory_limit="1g",
                        status=ContainerStatus.CREATING,
                        expires_after={"anchor": "last_active_at", "minutes": 20},
                        created_at=long_ago,
                        updated_at=long_ago,
                    )
                )
    finally:
        await engine.dispose()
    # A process crashed after upstream created "made" and before it wrote RUNNING.
    upstream = service.emulator.state.create_container(upstream_name(made))
    # No tenant calls: the reconciler settles both.
    await service.reconcile()
    listed = {c.name: c for c in await list_all(service, show_deleted=True)}
    assert listed["made"].state == State.CONTAINER_STATE_RUNNING
    assert listed["made"].openai_container_id == upstream.id
    assert listed["lost"].state == State.CONTAINER_STATE_FAILED
    assert "no upstream container was created" in listed["lost"].failure_reason


async def test_get_asks_upstream_once_the_expiry_time_passes_even_if_fresh(
    start_service: StartService,
) -> None:
    service = await start_service(refresh_staleness_seconds=3600)
    created = await service.create("short", expires_after_minutes=5)
    service.clock.advance(minutes=6)  # still "fresh" by the staleness, but overdue
    fetched = await service.containers.GetContainer(
        pb.GetContainerRequest(id=created.id), metadata=identity()
    )
    assert fetched.state == State.CONTAINER_STATE_EXPIRED
    assert service.emulator.state.calls["containers.retrieve"] == 1


async def test_the_reconciler_settles_overdue_containers_with_upstream(
    service: RunningService,
) -> None:
    expiring = await service.create("short", expires_after_minutes=5)
    kept = await service.create("kept", expires_after_minutes=60)
    service.clock.advance(minutes=6)
    listed = service.emulator.state.calls["containers.list"]
    await service.reconcile()
    states = {c.id: c.state for c in await list_all(service)}
    assert states == {
        expiring.id: State.CONTAINER_STATE_EXPIRED,
        kept.id: State.CONTAINER_STATE_RUNNING,
    }
    # It lists, which keeps nothing alive; a retrieve would count as activity upstream.
    assert service.emulator.state.calls["containers.retrieve"] == 0
    assert service.emulator.state.calls["containers.list"] == listed + 1


async def test_a_list_does_not_grow_with_the_tenants_rows(service: RunningService) -> None:
    """Requests do not do the reconciler's work: listing asks upstream nothing."""
    await service.create("short", expires_after_minutes=5)
    service.clock.advance(minutes=6)  # overdue locally
    before = dict(service.emulator.state.calls)
    await list_all(service)
    await service.create("another")
    after = dict(service.emulator.state.calls)
    assert after.get("containers.retrieve", 0) == before.get("containers.retrieve", 0)
    assert after.get("containers.list", 0) == before.get("containers.list", 0)
