"""Two server processes share one PostgreSQL: a write on one is seen by resolution on the other.

Resolution is served from each process's memory; PostgreSQL notifications keep those caches
coherent. Each step below must be visible on the other process within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from agentcontainers.v1 import (
    binding_service_pb2,
    binding_service_pb2_grpc,
    container_pb2,
    container_service_pb2,
    container_service_pb2_grpc,
    tool_service_pb2,
    tool_service_pb2_grpc,
)

from tests.support.databases import PostgresServer
from tests.support.processes import CLI, clean_env, free_port, spawned, wait_serving
from tests.support.service import identity

VISIBLE_WITHIN_SECONDS = 1.0


class Node:
    """One server process and stubs to call it."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.containers = container_service_pb2_grpc.ContainerServiceStub(channel)
        self.bindings = binding_service_pb2_grpc.AgentBindingServiceStub(channel)
        self.tools = tool_service_pb2_grpc.ToolResolutionServiceStub(channel)

    async def create(self, name: str) -> container_pb2.Container:
        created: container_pb2.Container = await self.containers.CreateContainer(
            container_service_pb2.CreateContainerRequest(
                container=container_pb2.Container(name=name)
            ),
            metadata=identity(),
        )
        return created

    async def bind(self, agent: str, container_id: str) -> None:
        await self.bindings.BindContainer(
            binding_service_pb2.BindContainerRequest(agent_key=agent, container_id=container_id),
            metadata=identity(),
        )

    async def resolve(self, agent: str) -> tool_service_pb2.ResolvedTool:
        resolved: tool_service_pb2.ResolvedTool = await self.tools.ResolveTool(
            tool_service_pb2.ResolveToolRequest(agent_key=agent, tool="code_interpreter"),
            metadata=identity(),
        )
        return resolved


@pytest.fixture
async def two_nodes(
    require_postgres: PostgresServer, tmp_path: Path
) -> AsyncIterator[tuple[Node, Node]]:
    url = await require_postgres.create_database()
    emulator_port = free_port()
    try:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(
                spawned(*CLI, "emulator", "--port", str(emulator_port), env=clean_env())
            )
            addresses = [f"127.0.0.1:{free_port()}" for _ in range(2)]
            for address in addresses:
                server = await stack.enter_async_context(
                    spawned(
                        *CLI,
                        "serve",
                        cwd=tmp_path,
                        env=clean_env(
                            AGENT_CONTAINERS_LISTEN_ADDRESS=address,
                            AGENT_CONTAINERS_DATABASE_URL=url,
                            AGENT_CONTAINERS_UPSTREAM="openai",
                            AGENT_CONTAINERS_OPENAI_API_KEY="emulator",
                            AGENT_CONTAINERS_OPENAI_BASE_URL=f"http://127.0.0.1:{emulator_port}/v1",
                            AGENT_CONTAINERS_LOG_LEVEL="WARNING",
                            # Nothing balances over these two: no need to keep serving at SIGTERM.
                            AGENT_CONTAINERS_SHUTDOWN_DRAIN_SECONDS="0",
                        ),
                    )
                )
                await wait_serving(address, server)
            channels = [grpc.aio.insecure_channel(address) for address in addresses]
            for channel in channels:
                stack.push_async_callback(channel.close)
            yield Node(channels[0]), Node(channels[1])
    finally:
        await require_postgres.drop_database(url)


async def seen_within(
    check: Callable[[], Awaitable[bool]], seconds: float = VISIBLE_WITHIN_SECONDS
) -> float:
    """Polls until `check` holds; returns how long it took, failing past the limit."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"not seen within {seconds} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def test_writes_on_one_process_reach_resolution_on_the_other(
    two_nodes: tuple[Node, Node],
) -> None:
    writer, reader = two_nodes
    first = await writer.create("first")
    second = await writer.create("second")

    # The reader caches "no binding" (and serves it from memory from now on).
    for _ in range(3):
        assert (await reader.resolve("agent")).source == tool_service_pb2.TOOL_SOURCE_AUTO

    async def resolves_to(container_id: str) -> bool:
        return (await reader.resolve("agent")).container_id == container_id

    await writer.bind("agent", first.id)
    await seen_within(lambda: resolves_to(first.id))

    await writer.bind("agent", second.id)  # rebind
    await seen_within(lambda: resolves_to(second.id))

    await writer.containers.DeleteContainer(
        container_service_pb2.DeleteContainerRequest(id=second.id), metadata=identity()
    )
    await seen_within(lambda: resolves_to(""))

    await reader.bind("agent", first.id)
    assert await resolves_to(first.id)
    await writer.bindings.UnbindContainer(
        binding_service_pb2.UnbindContainerRequest(agent_key="agent"), metadata=identity()
    )
    await seen_within(lambda: resolves_to(""))
