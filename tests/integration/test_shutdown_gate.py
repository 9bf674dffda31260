"""The refusal phase of shutdown, in process: what a call sees once the shutdown gate is closed.

New calls are answered at once with UNAVAILABLE (ErrorInfo SHUTTING_DOWN, RetryInfo), before
identity is even looked at; health checks and reflection go on answering (NOT_SERVING); the call
in flight finishes normally; the gRPC server stops only after it.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from agentcontainers.v1 import container_pb2, tool_service_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from agent_containers.server import SERVICE_NAMES
from tests.support.service import RunningService, error_info, unpack

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def test_closed_gate_refuses_new_calls_and_lets_health_and_the_call_in_flight_through(
    service: RunningService,
) -> None:
    service.emulator.state.latency = 1.0
    in_flight = asyncio.create_task(service.create("slow"))
    await asyncio.sleep(0.2)  # the create is now waiting on upstream
    stopping = asyncio.create_task(service.server.stop(drain_seconds=0.1))
    await asyncio.sleep(0.3)  # past the drain
    assert service.server.gate.closed

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        # No identity headers: the gate answers before identity is checked.
        await service.tools.ResolveTool(
            tool_service_pb2.ResolveToolRequest(agent_key="agent", tool="code_interpreter")
        )
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(refused.value).reason == "SHUTTING_DOWN"
    assert unpack(refused.value, error_details_pb2.RetryInfo).retry_delay.seconds >= 1

    health = health_pb2_grpc.HealthStub(service.channel)
    for name in ("", *SERVICE_NAMES):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
        assert reply.status == NOT_SERVING, name
    reflection = reflection_pb2_grpc.ServerReflectionStub(service.channel)
    call = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    listed = [reply async for reply in call]
    assert set(SERVICE_NAMES) <= {s.name for s in listed[0].list_services_response.service}

    assert not stopping.done()  # the gRPC server waits for the call in flight
    assert (await in_flight).state == container_pb2.CONTAINER_STATE_RUNNING
    await stopping
    assert service.server.gate.refused == 1
