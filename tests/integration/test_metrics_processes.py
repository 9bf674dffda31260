"""Metrics with several `serve` processes on one host.

Processes started with one PROMETHEUS_MULTIPROC_DIR share one metrics address, and whichever
answers a scrape gives the whole host's numbers; without one, a second process cannot take an
address in use and says why.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from agentcontainers.v1 import container_pb2, container_service_pb2, container_service_pb2_grpc

from tests.support.metrics import scrape
from tests.support.processes import CLI, Child, clean_env, free_port, spawned, wait_serving
from tests.support.service import identity

CREATE = {
    "grpc_type": "unary",
    "grpc_service": "agentcontainers.v1.ContainerService",
    "grpc_method": "CreateContainer",
    "grpc_code": "OK",
}


@contextlib.asynccontextmanager
async def serving(workdir: Path, address: str, **env: str) -> AsyncIterator[Child]:
    """`agent-containers serve` on its own SQLite file and emulator, until the block ends."""
    await asyncio.to_thread(workdir.mkdir)
    async with spawned(
        *CLI,
        "serve",
        cwd=workdir,
        env=clean_env(AGENT_CONTAINERS_LISTEN_ADDRESS=address, **env),
        stderr=asyncio.subprocess.PIPE,
    ) as child:
        await wait_serving(address, child)
        yield child


async def create(address: str, count: int) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = container_service_pb2_grpc.ContainerServiceStub(channel)
        for index in range(count):
            await stub.CreateContainer(
                container_service_pb2.CreateContainerRequest(
                    container=container_pb2.Container(name=f"c{index}")
                ),
                metadata=identity(),
            )


async def test_processes_sharing_a_directory_serve_one_scrape_for_the_host(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    metrics_port = free_port()
    shared = {
        "AGENT_CONTAINERS_METRICS_LISTEN_ADDRESS": f"127.0.0.1:{metrics_port}",
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        "AGENT_CONTAINERS_RECONCILER_PERIOD_SECONDS": "0.1",
    }
    first, second = (f"127.0.0.1:{free_port()}" for _ in range(2))
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(serving(tmp_path / "first", first, **shared))
        later = await stack.enter_async_context(serving(tmp_path / "second", second, **shared))
        await create(first, 2)
        await create(second, 3)
        # Each process leads its own SQLite file's reconciler: both say so.
        for _ in range(500):
            found = await scrape(metrics_port)
            if found.value("agent_containers_reconciler_leader") == 2:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("both processes never showed as leading")
        # Whichever process answers, the answer is the host's: 2 + 3 creates.
        for _ in range(10):
            found = await scrape(metrics_port)
            assert found.value("grpc_server_handled_total", **CREATE) == 5
            assert (
                found.value(
                    "agent_containers_upstream_requests_total", operation="create", outcome="ok"
                )
                == 5
            )

        assert await later.stop() == 0
        found = await scrape(metrics_port)
        # A stopped process's counts stay (totals never go back); its live gauges leave.
        assert found.value("grpc_server_handled_total", **CREATE) == 5
        assert found.value("agent_containers_reconciler_leader") == 1


async def test_without_a_directory_an_address_in_use_stops_the_second_process(
    tmp_path: Path,
) -> None:
    metrics = {"AGENT_CONTAINERS_METRICS_LISTEN_ADDRESS": f"127.0.0.1:{free_port()}"}
    async with serving(tmp_path / "first", f"127.0.0.1:{free_port()}", **metrics):
        (tmp_path / "second").mkdir()
        async with spawned(
            *CLI,
            "serve",
            cwd=tmp_path / "second",
            env=clean_env(AGENT_CONTAINERS_LISTEN_ADDRESS=f"127.0.0.1:{free_port()}", **metrics),
            stderr=asyncio.subprocess.PIPE,
        ) as second:
            assert await second.exited(within=60) != 0
    assert "AGENT_CONTAINERS_METRICS_LISTEN_ADDRESS" in second.stderr.decode()
