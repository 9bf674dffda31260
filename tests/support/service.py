"""A real server on a free loopback port, with the emulator behind it and a fake clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
from agentcontainers.v1 import (
    binding_service_pb2_grpc,
    container_pb2,
    container_service_pb2,
    container_service_pb2_grpc,
    tool_service_pb2_grpc,
)
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from agent_containers.config import Settings, UpstreamKind
from agent_containers.server import AgentContainersServer
from agent_containers.upstream.emulator import EmulatorServer
from tests.support.clock import FakeClock


def identity(tenant: str = "acme", user: str = "alice") -> tuple[tuple[str, str], ...]:
    """Call metadata for the interim identity headers."""
    return (("x-tenant-id", tenant), ("x-user-id", user))


@dataclass
class RunningService:
    """Everything a test needs to talk to (and look behind) a running server."""

    server: AgentContainersServer
    emulator: EmulatorServer
    clock: FakeClock
    channel: grpc.aio.Channel
    containers: container_service_pb2_grpc.ContainerServiceStub = field(init=False)
    bindings: binding_service_pb2_grpc.AgentBindingServiceStub = field(init=False)
    tools: tool_service_pb2_grpc.ToolResolutionServiceStub = field(init=False)

    def __post_init__(self) -> None:
        self.containers = container_service_pb2_grpc.ContainerServiceStub(self.channel)
        self.bindings = binding_service_pb2_grpc.AgentBindingServiceStub(self.channel)
        self.tools = tool_service_pb2_grpc.ToolResolutionServiceStub(self.channel)

    async def reconcile(self) -> None:
        """One reconciliation pass, as the background loop would run it."""
        assert self.server.reconciler is not None
        await self.server.reconciler.run_once()

    async def create(
        self, name: str, *, tenant: str = "acme", **container: Any
    ) -> container_pb2.Container:
        request_id = container.pop("request_id", "")
        file_ids = container.pop("file_ids", ())
        response: container_pb2.Container = await self.containers.CreateContainer(
            container_service_pb2.CreateContainerRequest(
                container=container_pb2.Container(name=name, **container),
                request_id=request_id,
                file_ids=file_ids,
            ),
            metadata=identity(tenant),
        )
        return response


def service_settings(database_url: str, emulator: EmulatorServer, **overrides: Any) -> Settings:
    """Settings for a server on a free port, talking to the given emulator through the SDK."""
    values: dict[str, Any] = {
        "listen_address": "127.0.0.1:0",
        # Every server serves its metrics, each on a port of its own.
        "metrics_listen_address": "127.0.0.1:0",
        "database_url": database_url,
        "upstream": UpstreamKind.OPENAI,
        "openai_api_key": "test-key",
        "openai_base_url": emulator.base_url,
        "openai_max_retries": 0,
        "openai_timeout_seconds": 10,
        # Tests run reconciliation passes themselves (server.reconciler.run_once()), so that
        # upstream call counts and states do not move under them.
        "reconciler_period_seconds": 3600,
    }
    values.update(overrides)
    return Settings(**values)


def status_details(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The google.rpc.Status a failed call carried in its trailers."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, f"no rich status on {error.code()}: {error.details()}"
    return status


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    return unpack(error, error_details_pb2.ErrorInfo)


def unpack(error: grpc.aio.AioRpcError, kind: type[Any]) -> Any:
    """The first detail of the given message type on a failed call."""
    for detail in status_details(error).details:
        if detail.Is(kind.DESCRIPTOR):
            message = kind()
            detail.Unpack(message)
            return message
    raise AssertionError(f"no {kind.__name__} in the status details")
