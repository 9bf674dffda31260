"""Fixtures for integration tests: the real server, on both databases, with the emulator."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from agent_containers.server import AgentContainersServer
from agent_containers.upstream.emulator import EmulatorServer
from tests.support.clock import FakeClock
from tests.support.service import RunningService, service_settings

StartService = Callable[..., Awaitable[RunningService]]
NODE_MODULES = Path(__file__).resolve().parents[2] / "tools" / "node" / "node_modules"
NODE_PACKAGES = ("@grpc/grpc-js", "@grpc/proto-loader")


@pytest.fixture
async def start_service(migrated_database_url: str) -> AsyncIterator[StartService]:
    """Starts a server with setting overrides (and `tracing=`, a Tracing, to trace it);
    everything it started stops after the test."""
    started: list[tuple[AgentContainersServer, EmulatorServer, grpc.aio.Channel]] = []

    async def start(**overrides: Any) -> RunningService:
        clock = FakeClock()
        emulator = EmulatorServer(clock=clock)
        await emulator.start()
        database_url = overrides.pop("database_url", migrated_database_url)
        tracing = overrides.pop("tracing", None)
        server = AgentContainersServer(
            service_settings(database_url, emulator, **overrides), clock=clock, tracing=tracing
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


@pytest.fixture
def node() -> str:
    """The `node` executable; skip when it or the Node gRPC libraries are missing (fail in CI)."""
    executable = shutil.which("node")
    if executable is None:
        reason = "node is not on PATH; install Node.js (v18+) to run the Node tests"
    elif missing := [name for name in NODE_PACKAGES if not (NODE_MODULES / name).is_dir()]:
        reason = (
            f"{', '.join(missing)} not installed in tools/node; "
            "run `make pytest` or `cd tools/node && npm ci`"
        )
    else:
        return executable
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is an error)", pytrace=False)
    pytest.skip(reason)
