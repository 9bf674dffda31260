"""Prints ListContainers and CreateContainer latency for a tenant with many RUNNING rows.

A request must not grow with the tenant's row count (the reconciler does the per-row work in the
background). Seeds N RUNNING rows straight into a fresh database, starts the service in-process
(emulator upstream), and times calls. Run: `.venv/bin/python scripts/list_cost.py [--rows N ...]
[--database-url URL]` (default: a temporary SQLite file).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import sqlalchemy as sa
from agentcontainers.v1 import container_pb2, container_service_pb2, container_service_pb2_grpc

from agent_containers.config import Settings, UpstreamKind
from agent_containers.domain.containers import ContainerStatus
from agent_containers.server import AgentContainersServer
from agent_containers.store.database import create_engine
from agent_containers.store.migrations import upgrade_to_head
from agent_containers.store.models import ContainerRecord
from agent_containers.upstream.emulator import EmulatorServer

IDENTITY = (("x-tenant-id", "big"), ("x-user-id", "bench"))
CALLS = 30


async def seed(url: str, rows: int) -> None:
    await upgrade_to_head(url)
    engine = create_engine(url)
    now = datetime.now(UTC) - timedelta(hours=2)  # overdue locally: the old code refreshed these
    try:
        async with engine.begin() as connection:
            for start in range(0, rows, 5000):
                await connection.execute(
                    sa.insert(ContainerRecord),
                    [
                        {
                            "id": uuid.uuid4(),
                            "openai_id": f"cntr_seed{index}",
                            "tenant_id": "big",
                            "owner_user_id": "bench",
                            "name": f"seed-{index}",
                            "memory_limit": "1g",
                            "status": ContainerStatus.RUNNING,
                            "expires_after": {"anchor": "last_active_at", "minutes": 20},
                            "metadata_": {},
                            "last_active_at": now,
                            "refreshed_at": now,
                            "created_at": now + timedelta(microseconds=index),
                            "updated_at": now,
                        }
                        for index in range(start, min(rows, start + 5000))
                    ],
                )
    finally:
        await engine.dispose()


async def measure(url: str, rows: int) -> None:
    await seed(url, rows)
    emulator = EmulatorServer()
    await emulator.start()
    settings = Settings(
        listen_address="127.0.0.1:0",
        database_url=url,
        upstream=UpstreamKind.OPENAI,
        openai_api_key="bench",
        openai_base_url=emulator.base_url,
        max_containers_per_tenant=rows + CALLS + 10,
        reconciler_period_seconds=3600,
    )
    server = AgentContainersServer(settings)
    port = await server.start(migrate=False)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = container_service_pb2_grpc.ContainerServiceStub(channel)
            lists, creates = [], []
            for index in range(CALLS):
                started = time.perf_counter()
                await stub.ListContainers(
                    container_service_pb2.ListContainersRequest(page_size=20), metadata=IDENTITY
                )
                lists.append(time.perf_counter() - started)
                started = time.perf_counter()
                await stub.CreateContainer(
                    container_service_pb2.CreateContainerRequest(
                        container=container_pb2.Container(name=f"new-{index}")
                    ),
                    metadata=IDENTITY,
                )
                creates.append(time.perf_counter() - started)
        print(
            f"{rows:>7} RUNNING rows: ListContainers p50 {statistics.median(lists) * 1000:6.1f} ms"
            f" max {max(lists) * 1000:6.1f} ms; CreateContainer p50"
            f" {statistics.median(creates) * 1000:6.1f} ms; upstream retrieves:"
            f" {emulator.state.calls['containers.retrieve']}"
        )
    finally:
        await server.stop()
        await emulator.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000, 100_000])
    parser.add_argument("--database-url", default=None, help="an empty database to fill")
    args = parser.parse_args()
    for rows in args.rows:
        if args.database_url:
            await measure(args.database_url, rows)
            continue
        with tempfile.TemporaryDirectory() as directory:
            await measure(f"sqlite+aiosqlite:///{Path(directory) / 'cost.db'}", rows)


if __name__ == "__main__":
    asyncio.run(main())
