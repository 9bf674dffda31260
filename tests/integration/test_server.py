"""The server around the services: health, reflection, UNIMPLEMENTED stubs, errors, shutdown."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from agentcontainers.v1 import container_pb2, container_service_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from sqlalchemy import text

from agent_containers.server import SERVICE_NAMES
from agent_containers.store.database import create_engine
from tests.support.service import RunningService, error_info, identity

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def test_every_service_reports_serving(service: RunningService) -> None:
    health = health_pb2_grpc.HealthStub(service.channel)
    for name in ("", *SERVICE_NAMES):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
        assert reply.status == SERVING, name


async def test_reflection_lists_the_services(service: RunningService) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(service.channel)
    call = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = set()
    async for reply in call:
        names = {s.name for s in reply.list_services_response.service}
    assert set(SERVICE_NAMES) <= names
    assert "grpc.health.v1.Health" in names


async def test_unexpected_error_is_internal_without_internals(
    service: RunningService, migrated_database_url: str
) -> None:
    engine = create_engine(migrated_database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("DROP TABLE agent_containers"))
            await connection.execute(text("DROP TABLE containers"))
    finally:
        await engine.dispose()
    with pytest.raises(grpc.aio.AioRpcError) as broken:
        await service.containers.ListContainers(
            container_service_pb2.ListContainersRequest(), metadata=identity()
        )
    assert broken.value.code() == grpc.StatusCode.INTERNAL
    details = broken.value.details() or ""
    assert details.startswith("internal error (trace id ")
    assert "containers" not in details.lower()
    assert error_info(broken.value).metadata["trace_id"] in details
    # The server is still up and answers the next call.
    health = health_pb2_grpc.HealthStub(service.channel)
    assert (await health.Check(health_pb2.HealthCheckRequest())).status == SERVING


async def test_graceful_shutdown_drains_in_flight_calls(service: RunningService) -> None:
    health = health_pb2_grpc.HealthStub(service.channel)
    watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
    assert (await watch.read()).status == SERVING

    service.emulator.state.latency = 0.5
    in_flight = asyncio.create_task(service.create("slow"))
    await asyncio.sleep(0.2)  # the create is now waiting on upstream
    stopping = asyncio.create_task(service.server.stop())
    assert (await watch.read()).status == NOT_SERVING
    watch.cancel()  # an open watch is itself an in-flight call the drain would wait for
    created = await in_flight
    assert created.state == container_pb2.CONTAINER_STATE_RUNNING
    await stopping
    with pytest.raises(grpc.aio.AioRpcError) as after:
        await service.create("late")
    assert after.value.code() == grpc.StatusCode.UNAVAILABLE
