"""Fixtures for integration tests: the real server, on both databases, with the emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest

from agent_containers.server import AgentContainersServer
from agent_containers.upstream.emulator import EmulatorServer
from tests.support.clock import FakeClock
from tests.support.service import RunningService, service_settings

StartService = Callable[..., Awaitable[RunningService]]


@pytest.fixture
async def start_service(migrated_database_url: str) -> AsyncIterator[StartService]:
    """Starts a server with setting overrides; everything it started stops after the test."""
    started: list[tuple[AgentContainersServer, EmulatorServer, grpc.aio.Channel]] = []

    async def start(**overrides: Any) -> RunningService:
        clock = FakeClock()
        emulator = EmulatorServer(clock=clock)
        await emulator.start()
        server = AgentContainersServer(
            service_settings(migrated_database_url, emulator, **overrides), clock=clock
        )
        port = await server.start(migrate=False)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        started.append((server, emulator, channel))
        return RunningService(server=server, emulator=emulator, clock=clock, channel=channel)

    yield start
    for server, emulator, channel in reversed(started):
        await channel.close()
        await server.stop()
        await emulator.stop()


@pytest.fixture
async def service(start_service: StartService) -> RunningService:
    """A server with the default test settings."""
    return await start_service()
