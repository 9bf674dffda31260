"""Prometheus metrics: what a scrape says after real calls, on both databases.

Each server has a registry of its own, so a fresh server's scrape starts from zero and the
values below are exact.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import grpc
import httpx2
import pytest
from agentcontainers.v1 import (
    container_pb2,
    container_service_pb2,
    tool_service_pb2,
)
from prometheus_client import generate_latest
from sqlalchemy import text

from agent_containers.domain.containers import upstream_name
from agent_containers.server import AgentContainersServer
from agent_containers.store.database import create_engine
from agent_containers.upstream.emulator import EmulatorServer
from tests.integration.conftest import StartService
from tests.integration.test_files import download, upload
from tests.integration.test_resolution import bind, resolve
from tests.support.clock import FakeClock
from tests.support.metrics import Scrape, fetch_metrics, run_promtool, scrape
from tests.support.service import RunningService, identity, service_settings

CONTAINERS = "agentcontainers.v1.ContainerService"
TOOLS = "agentcontainers.v1.ToolResolutionService"
Mode = tool_service_pb2.ToolMode


def port_of(service: RunningService) -> int:
    assert service.server.metrics_port is not None
    return service.server.metrics_port


async def scraped(service: RunningService) -> Scrape:
    return await scrape(port_of(service))


def rpc(method: str, kind: str = "unary", service: str = CONTAINERS) -> dict[str, str]:
    return {"grpc_type": kind, "grpc_service": service, "grpc_method": method}


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(500):
        if await condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what}: not reached within 10 s")


# --- the endpoint -----------------------------------------------------------------------------


async def test_the_scrape_passes_promtool_and_speaks_openmetrics_on_request(
    service: RunningService,
) -> None:
    await service.create("first")
    await resolve(service)
    response = await fetch_metrics(port_of(service))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    code, output = await run_promtool("check", "metrics", stdin=response.content)
    assert code == 0, output

    openmetrics = await fetch_metrics(
        port_of(service), accept="application/openmetrics-text; version=1.0.0"
    )
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n")
    assert "grpc_server_handled_total{" in openmetrics.text

    async with httpx2.AsyncClient() as client:
        elsewhere = await client.get(f"http://127.0.0.1:{port_of(service)}/")
    assert elsewhere.status_code == 404


async def test_an_empty_address_turns_the_endpoint_off(start_service: StartService) -> None:
    """No endpoint, and nothing recorded on a call's path: nothing could read it."""
    service = await start_service(metrics_listen_address="")
    container = await service.create("first")
    await bind(service, "agent-one", container.id)
    for _ in range(3):
        await resolve(service, "agent-one")
    assert service.server.metrics_port is None
    recorded = Scrape.parse(generate_latest(service.server.metrics.registry).decode())
    for name in (
        "grpc_server_started_total",
        "grpc_server_handled_total",
        "agent_containers_resolutions_total",
        "agent_containers_resolution_cache_hits_total",
        "agent_containers_resolution_cache_misses_total",
    ):
        assert recorded.total(name) == 0, name
    # Off a call's path, the rest is kept as ever.
    assert recorded.total("agent_containers_upstream_requests_total") >= 1


async def test_the_endpoint_closes_when_the_server_stops(migrated_database_url: str) -> None:
    clock = FakeClock()
    async with EmulatorServer(clock=clock) as emulator:
        server = AgentContainersServer(
            service_settings(migrated_database_url, emulator), clock=clock
        )
        await server.start(migrate=False)
        try:
            assert server.metrics_port is not None
            port = server.metrics_port
            assert (await fetch_metrics(port)).status_code == 200
        finally:
            await server.stop()
    with pytest.raises(httpx2.ConnectError):
        await fetch_metrics(port)


# --- gRPC -------------------------------------------------------------------------------------


async def test_grpc_calls_are_counted_by_method_code_and_message(service: RunningService) -> None:
    created = await service.create("first")
    for _ in range(2):
        await service.containers.GetContainer(
            container_service_pb2.GetContainerRequest(id=created.id),
            metadata=identity(),
        )
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await service.containers.GetContainer(
            container_service_pb2.GetContainerRequest(id=str(uuid.uuid4())),
            metadata=identity(),
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await service.containers.GetContainer(
            container_service_pb2.GetContainerRequest(id="not-an-id"),
            metadata=identity(),
        )
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    data = bytes(range(256)) * 1024  # 256 KiB: the upload sends 1 + 4 messages
    uploaded = await upload(service, created.id, "data.bin", data)
    _, content, _ = await download(service, created.id, uploaded.id)
    assert content == data

    found = await scraped(service)
    get = rpc("GetContainer")
    assert found.value("grpc_server_started_total", **get) == 4
    assert found.value("grpc_server_handled_total", **get, grpc_code="OK") == 2
    assert found.value("grpc_server_handled_total", **get, grpc_code="NotFound") == 1
    assert found.value("grpc_server_handled_total", **get, grpc_code="InvalidArgument") == 1
    assert found.value("grpc_server_handling_seconds_count", **get) == 4
    assert found.value("grpc_server_handling_seconds_bucket", **get, le="+Inf") == 4
    assert found.value("grpc_server_msg_received_total", **get) == 4
    assert found.value("grpc_server_msg_sent_total", **get) == 2  # errors send no message

    up = rpc("UploadContainerFile", "client_stream")
    assert found.value("grpc_server_handled_total", **up, grpc_code="OK") == 1
    assert found.value("grpc_server_msg_received_total", **up) == 5
    assert found.value("grpc_server_msg_sent_total", **up) == 1
    down = rpc("DownloadContainerFile", "server_stream")
    assert found.value("grpc_server_handled_total", **down, grpc_code="OK") == 1
    assert found.value("grpc_server_msg_received_total", **down) == 1
    assert found.value("grpc_server_msg_sent_total", **down) == 2  # the description, 1 chunk

    # Every method and code exists from the start, at zero, as go-grpc-prometheus has them.
    tools = rpc("ListTools", service=TOOLS)
    assert (
        found.samples[
            ("grpc_server_handled_total", frozenset({**tools, "grpc_code": "Unavailable"}.items()))
        ]
        == 0
    )
    codes = {labels["grpc_code"] for labels in found.labels_of("grpc_server_handled_total")}
    assert {"OK", "Canceled", "DeadlineExceeded", "ResourceExhausted", "Unauthenticated"} <= codes


async def test_a_call_without_identity_is_counted_too(service: RunningService) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.containers.ListContainers(container_service_pb2.ListContainersRequest())
    found = await scraped(service)
    code = "Unauthenticated" if refused.value.code() == grpc.StatusCode.UNAUTHENTICATED else None
    assert code is not None, refused.value.code()
    assert found.value("grpc_server_handled_total", **rpc("ListContainers"), grpc_code=code) == 1


# --- upstream ---------------------------------------------------------------------------------


async def test_upstream_operations_retries_and_rate_limits(start_service: StartService) -> None:
    service = await start_service(openai_max_retries=2)
    state = service.emulator.state
    created = await service.create("first")
    list_files = container_service_pb2.ListContainerFilesRequest(container_id=created.id)

    state.fail_next(429, retry_after=0.01, operations="containers.files.list")
    await service.containers.ListContainerFiles(list_files, metadata=identity())
    state.fail_next(500, count=3, retry_after=0.01, operations="containers.files.list")
    with pytest.raises(grpc.aio.AioRpcError):
        await service.containers.ListContainerFiles(list_files, metadata=identity())
    with pytest.raises(grpc.aio.AioRpcError):
        await service.containers.GetContainerFile(
            container_service_pb2.GetContainerFileRequest(
                container_id=created.id, file_id="cfile_0123456789abcdef"
            ),
            metadata=identity(),
        )

    found = await scraped(service)
    requests = "agent_containers_upstream_requests_total"
    assert found.value(requests, operation="create", outcome="ok") == 1
    assert found.value(requests, operation="list_files", outcome="ok") == 1
    assert found.value(requests, operation="list_files", outcome="server_error") == 1
    assert found.value(requests, operation="retrieve_file", outcome="not_found") == 1
    duration = "agent_containers_upstream_request_duration_seconds_count"
    assert found.value(duration, operation="list_files") == 2
    assert found.value(duration, operation="create") == 1
    # One 429 retried (1), then a 500 retried twice (2): each attempt seen on the wire.
    assert found.value("agent_containers_upstream_retries_total", operation="list_files") == 3
    assert found.value("agent_containers_upstream_rate_limited_total", operation="list_files") == 1
    assert found.value("agent_containers_upstream_retries_total", operation="create") == 0


async def test_file_bytes_up_and_down(service: RunningService) -> None:
    created = await service.create("files")
    data = b"x" * 200_000
    uploaded = await upload(service, created.id, "data.bin", data)
    await download(service, created.id, uploaded.id)
    await download(service, created.id, uploaded.id)
    found = await scraped(service)
    assert found.value("agent_containers_file_bytes_total", direction="upload") == len(data)
    assert found.value("agent_containers_file_bytes_total", direction="download") == 2 * len(data)
    assert (
        found.value(
            "agent_containers_upstream_requests_total", operation="download_file", outcome="ok"
        )
        == 2
    )


async def test_quota_refusals(start_service: StartService) -> None:
    service = await start_service(max_containers_per_tenant=1)
    await service.create("one")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.create("two")
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    found = await scraped(service)
    assert found.value("agent_containers_quota_refusals_total") == 1
    assert (
        found.value(
            "grpc_server_handled_total",
            **rpc("CreateContainer"),
            grpc_code="ResourceExhausted",
        )
        == 1
    )


# --- the reconciler ---------------------------------------------------------------------------


async def test_reconciler_counts_and_container_gauges(start_service: StartService) -> None:
    service = await start_service(max_containers_per_tenant=2)
    state = service.emulator.state
    small = await service.create("small")
    large = await service.create("large", memory_tier=container_pb2.MEMORY_TIER_4G)
    await service.create("a", tenant="globex")
    await service.create("b", tenant="globex")
    state.create_container(upstream_name(uuid.uuid4()))  # an orphan

    state.fail_next(500, operations="containers.list")
    await service.reconcile()  # cannot list upstream: an error, no success
    found = await scraped(service)
    assert found.value("agent_containers_reconciler_errors_total") == 1
    assert found.value("agent_containers_reconciler_last_success_timestamp_seconds") == 0

    state.expire(large.openai_container_id)
    service.clock.advance(minutes=1)
    await service.reconcile()
    found = await scraped(service)
    assert found.value("agent_containers_reconciler_expired_total") == 1
    assert found.value("agent_containers_reconciler_orphans_deleted_total") == 1
    assert found.value("agent_containers_reconciler_errors_total") == 1
    assert (
        found.value("agent_containers_reconciler_last_success_timestamp_seconds")
        == service.clock.now().timestamp()
    )
    assert found.value("agent_containers_reconciler_pass_duration_seconds_count") == 2
    containers = "agent_containers_containers"
    assert found.value(containers, state="RUNNING", memory_tier="1g") == 3
    assert found.value(containers, state="RUNNING", memory_tier="4g") == 0  # expired now
    assert found.value(containers, state="CREATING", memory_tier="1g") == 0
    assert found.value("agent_containers_tenants_at_quota") == 1  # globex, not acme any more
    assert small.id not in found.text


async def test_an_adopted_orphan_is_counted_settled_and_adopted(
    start_service: StartService,
) -> None:
    # A 1 s timeout, not less: on a loaded machine the request must reach upstream in full
    # before the client gives up, or upstream never does the work.
    service = await start_service(openai_timeout_seconds=1.0)
    service.emulator.state.delays["containers.create"] = 2.0
    with pytest.raises(grpc.aio.AioRpcError):
        await service.create("adoptee")
    found = await scraped(service)
    assert (
        found.value(
            "agent_containers_upstream_requests_total", operation="create", outcome="timeout"
        )
        == 1
    )

    async def upstream_has_it() -> bool:
        return any(c.name.startswith("ac-") for c in service.emulator.state.containers.values())

    await until(upstream_has_it, "the late container appears upstream")
    await service.reconcile()
    found = await scraped(service)
    assert found.value("agent_containers_reconciler_adopted_total") == 1
    assert found.value("agent_containers_reconciler_settled_total") == 1
    assert found.value("agent_containers_containers", state="RUNNING", memory_tier="1g") == 1


async def test_the_leader_says_so_and_reports_its_passes(start_service: StartService) -> None:
    service = await start_service(reconciler_period_seconds=0.05)

    async def led_and_succeeded() -> bool:
        found = await scraped(service)
        return (
            found.value("agent_containers_reconciler_leader") == 1
            and found.value("agent_containers_reconciler_last_success_timestamp_seconds") > 0
        )

    await until(led_and_succeeded, "the reconciler leads and passes")


# --- tool resolution --------------------------------------------------------------------------


async def cache_serving(service: RunningService) -> bool:
    return (await scraped(service)).value("agent_containers_resolution_cache_serving") == 1


async def test_resolutions_by_source_and_fallback_and_the_cache(service: RunningService) -> None:
    await until(lambda: cache_serving(service), "the cache serves")
    container = await service.create("bound")
    await bind(service, "agent-one", container.id)
    bound_runs = 0

    async def served_from_memory() -> bool:
        # On PostgreSQL this process's own notifications may still evict what a run loaded.
        nonlocal bound_runs
        await resolve(service, "agent-one")
        bound_runs += 1
        found = await scraped(service)
        hits = "agent_containers_resolution_cache_hits_total"
        return found.value(hits, cache="binding") >= 1 and found.value(hits, cache="container") >= 1

    await until(served_from_memory, "a run is served from the cache")
    await resolve(service, "agent-none")
    await resolve(service, "agent-none", mode=Mode.TOOL_MODE_EXPLICIT)
    await service.tools.ValidateAgentSpec(  # a validation is not a resolution
        tool_service_pb2.ValidateAgentSpecRequest(
            agent_key="agent-one",
            spec=tool_service_pb2.AgentSpec(
                tools=[tool_service_pb2.AgentToolSpec(tool="code_interpreter")]
            ),
        ),
        metadata=identity(),
    )
    other = await service.create("other")
    await bind(service, "agent-one", other.id)  # evicts the agent's cached binding

    found = await scraped(service)
    resolutions = "agent_containers_resolutions_total"
    assert found.value(resolutions, source="BINDING", fallback_reason="NONE") == bound_runs
    assert found.value(resolutions, source="AUTO", fallback_reason="NONE") == 1
    assert found.value(resolutions, source="AUTO", fallback_reason="NO_BINDING") == 1
    assert found.value(resolutions, source="AUTO", fallback_reason="CONTAINER_EXPIRED") == 0
    assert found.total(resolutions) == bound_runs + 2
    misses = "agent_containers_resolution_cache_misses_total"
    assert found.value(misses, cache="binding") >= 2  # agent-one's and agent-none's first runs
    assert found.value(misses, cache="container") >= 1
    evictions = "agent_containers_resolution_cache_evictions_total"
    assert found.value(evictions, cache="binding", reason="invalidated") >= 1


@pytest.mark.parametrize("database_backend", ["postgresql"], indirect=True)
async def test_a_lost_notification_channel_shows_as_a_cache_not_serving(
    service: RunningService, migrated_database_url: str
) -> None:
    await until(lambda: cache_serving(service), "the cache serves")
    container = await service.create("bound")
    await bind(service, "agent", container.id)
    await resolve(service)
    engine = create_engine(migrated_database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE 'LISTEN%' AND datname = current_database()"
                )
            )
    finally:
        await engine.dispose()

    async def not_serving() -> bool:
        return not await cache_serving(service)

    await until(not_serving, "the cache stops serving")
    found = await scraped(service)
    evictions = "agent_containers_resolution_cache_evictions_total"
    assert found.value(evictions, cache="binding", reason="reset") == 1
    assert found.value(evictions, cache="container", reason="reset") == 1
    await until(lambda: cache_serving(service), "the cache serves again")


# --- labels -----------------------------------------------------------------------------------


async def test_no_label_names_a_tenant_container_agent_or_file(service: RunningService) -> None:
    tenant, agent = "tenant-7f3a91", "agent-9c1d42"
    created = await service.create("labelled", tenant=tenant)
    await bind(service, agent, created.id, tenant=tenant)
    await resolve(service, agent, tenant=tenant)
    uploaded = await upload(service, created.id, "secret-name.txt", b"data", tenant=tenant)
    await download(service, created.id, uploaded.id, tenant=tenant)
    await service.reconcile()
    text_format = (await scraped(service)).text
    for value in (
        tenant,
        agent,
        created.id,
        created.openai_container_id,
        uploaded.id,
        "secret-name",
    ):
        assert value not in text_format
