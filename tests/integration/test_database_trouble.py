"""Database trouble is UNAVAILABLE, short, and never a lock-up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
import pytest
from agentcontainers.v1 import container_service_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.engine import make_url

from agent_containers.api.health import LIVENESS
from agent_containers.server import READINESS_PERIOD_SECONDS, SERVICE_NAMES
from tests.integration.conftest import StartService
from tests.support.databases import PostgresServer
from tests.support.service import RunningService, error_info, identity, unpack
from tests.support.tcp_proxy import TcpProxy

STORM = 64
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
async def database_behind_proxy(
    migrated_database_url: str, require_postgres: PostgresServer
) -> AsyncIterator[tuple[TcpProxy, str]]:
    """A proxy to the test's PostgreSQL database that the test can cut and restore, and the
    database URL through it."""
    url = make_url(migrated_database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    try:
        yield (
            proxy,
            url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
        )
    finally:
        await proxy.cut()


async def test_a_cancellation_storm_releases_every_connection(service: RunningService) -> None:
    """Calls cancelled mid-transaction (20 ms deadlines, clients hanging up) must release their
    connection and transaction at once: the next call answers promptly, on both databases."""
    created = await service.create("busy")
    request = container_service_pb2.GetContainerRequest(id=created.id)

    async def impatient(index: int) -> None:
        call = service.containers.GetContainer(request, metadata=identity(), timeout=0.02)
        if index % 2:
            await asyncio.sleep(0.001 * (index % 7))
            call.cancel()  # the client hangs up
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            await call

    for _ in range(3):
        await asyncio.gather(*(impatient(index) for index in range(STORM)))
    # A deadline, not a measurement: today's failure mode is a 30 s wait and then INTERNAL.
    fetched = await service.containers.GetContainer(request, metadata=identity(), timeout=5)
    assert fetched.id == created.id
    listed = await service.containers.ListContainers(
        container_service_pb2.ListContainersRequest(), metadata=identity(), timeout=5
    )
    assert [container.id for container in listed.containers] == [created.id]


@pytest.mark.parametrize("database_backend", ["postgresql"])
async def test_a_lost_database_is_unavailable_and_the_service_recovers(
    start_service: StartService, database_behind_proxy: tuple[TcpProxy, str]
) -> None:
    proxy, database_url = database_behind_proxy
    service = await start_service(database_url=database_url)
    created = await service.create("steady")
    request = container_service_pb2.GetContainerRequest(id=created.id)
    await proxy.cut()  # PostgreSQL restarts: connections drop, new ones are refused
    for call in (
        service.containers.GetContainer(request, metadata=identity(), timeout=10),
        service.containers.ListContainers(
            container_service_pb2.ListContainersRequest(), metadata=identity(), timeout=10
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_info(refused.value).reason == "DATABASE_UNAVAILABLE"
        unpack(refused.value, error_details_pb2.RetryInfo)
    await proxy.restore()  # back: the same process serves again, no restart
    fetched = await service.containers.GetContainer(request, metadata=identity(), timeout=10)
    assert fetched.id == created.id
    assert (await service.create("after")).name == "after"


@pytest.mark.parametrize("database_backend", ["postgresql"])
async def test_readiness_follows_the_database_and_liveness_does_not(
    start_service: StartService, database_behind_proxy: tuple[TcpProxy, str]
) -> None:
    proxy, database_url = database_behind_proxy
    service = await start_service(database_url=database_url)
    health = health_pb2_grpc.HealthStub(service.channel)

    async def status(name: str) -> int:
        reply = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        return int(reply.status)

    async def becomes(name: str, wanted: int) -> None:
        for _ in range(150):  # a deadline for the next probe, not a measurement
            if await status(name) == wanted:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{name!r} never became {wanted}")

    names = ("", *SERVICE_NAMES)
    for name in (*names, LIVENESS):
        assert await status(name) == SERVING, name
    await proxy.cut()  # the database and the cache channel are lost together
    for name in names:
        await becomes(name, NOT_SERVING)
    assert await status(LIVENESS) == SERVING  # a restart would not bring the database back
    await proxy.restore()
    for name in names:
        await becomes(name, SERVING)
    assert await status(LIVENESS) == SERVING


async def test_upstream_trouble_keeps_the_service_ready(service: RunningService) -> None:
    service.emulator.state.fail_next(503, 3, operations="containers.create")
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await service.create("unlucky")
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    health = health_pb2_grpc.HealthStub(service.channel)
    await asyncio.sleep(READINESS_PERIOD_SECONDS * 1.5)  # a probe ran after the failures
    reply = await health.Check(health_pb2.HealthCheckRequest())
    assert reply.status == SERVING
