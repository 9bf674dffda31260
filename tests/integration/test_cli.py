"""The `agent-containers` command as a user runs it: serve on defaults, migrate, emulator."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import grpc
import openai
from agentcontainers.v1 import container_pb2, container_service_pb2, container_service_pb2_grpc
from sqlalchemy import inspect

from agent_containers.store.database import create_engine
from tests.support.processes import CLI, clean_env, free_port, wait_serving
from tests.support.service import identity


async def test_serve_on_embedded_defaults(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    process = await asyncio.create_subprocess_exec(
        *CLI,
        "serve",
        cwd=tmp_path,
        env=clean_env(AGENT_CONTAINERS_LISTEN_ADDRESS=address),
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await wait_serving(address, process)
        async with grpc.aio.insecure_channel(address) as channel:
            stub = container_service_pb2_grpc.ContainerServiceStub(channel)
            created = await stub.CreateContainer(
                container_service_pb2.CreateContainerRequest(
                    container=container_pb2.Container(name="first")
                ),
                metadata=identity(),
            )
        assert created.state == container_pb2.CONTAINER_STATE_RUNNING
        assert created.openai_container_id.startswith("cntr_")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, stderr.decode()
    log = stderr.decode()
    assert "in-process emulator" in log  # said loudly
    assert '"level": "WARNING"' in log
    assert (tmp_path / "var" / "agent-containers.db").exists()  # the SQLite default


async def test_migrate_creates_the_schema(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}"
    process = await asyncio.create_subprocess_exec(
        *CLI, "migrate", env=clean_env(AGENT_CONTAINERS_DATABASE_URL=url)
    )
    assert await asyncio.wait_for(process.wait(), timeout=60) == 0
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()
    assert {"containers", "agent_containers", "alembic_version"} <= set(tables)


async def test_emulator_command_serves_the_containers_api() -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *CLI, "emulator", "--port", str(port), env=clean_env(), stderr=asyncio.subprocess.PIPE
    )
    client = openai.AsyncOpenAI(
        api_key="any", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0
    )
    try:
        for _ in range(100):
            try:
                created = await client.containers.create(name="standalone")
                break
            except openai.APIConnectionError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("the emulator did not start")
        assert (await client.containers.retrieve(created.id)).name == "standalone"
    finally:
        await client.close()
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.communicate(), timeout=30)


async def test_bad_settings_exit_with_a_message(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        *CLI,
        "serve",
        cwd=tmp_path,
        env=clean_env(AGENT_CONTAINERS_ALLOWED_MEMORY_TIERS="1g,3g"),
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode != 0
    assert "allowed_memory_tiers" in stderr.decode()
