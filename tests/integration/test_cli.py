"""The `agent-containers` command as a user runs it: serve on defaults, migrate, emulator."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import grpc
import openai
from agentcontainers.v1 import container_pb2, container_service_pb2, container_service_pb2_grpc
from sqlalchemy import inspect

from agent_containers.store.database import create_engine
from tests.support.processes import CLI, clean_env, free_port, spawned, wait_serving
from tests.support.service import identity


async def test_serve_on_embedded_defaults(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    async with spawned(
        *CLI,
        "serve",
        cwd=tmp_path,
        env=clean_env(AGENT_CONTAINERS_LISTEN_ADDRESS=address),
        stderr=asyncio.subprocess.PIPE,
    ) as child:
        await wait_serving(address, child)
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
    log = child.stderr.decode()
    assert child.returncode == 0, log  # it exited by itself on SIGTERM
    assert not child.killed
    assert "in-process emulator" in log  # said loudly
    assert '"level": "WARNING"' in log
    assert (tmp_path / "var" / "agent-containers.db").exists()  # the SQLite default


async def test_migrate_creates_the_schema(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}"
    async with spawned(*CLI, "migrate", env=clean_env(AGENT_CONTAINERS_DATABASE_URL=url)) as child:
        assert await child.exited(within=60) == 0
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()
    assert {"containers", "agent_containers", "alembic_version"} <= set(tables)


async def test_emulator_command_serves_the_containers_api() -> None:
    port = free_port()
    client = openai.AsyncOpenAI(
        api_key="any", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0
    )
    async with spawned(
        *CLI, "emulator", "--port", str(port), env=clean_env(), stderr=asyncio.subprocess.PIPE
    ) as child:
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
    assert child.returncode == 0, child.stderr.decode()  # it exits cleanly on SIGTERM
    assert not child.killed


async def test_bad_settings_exit_with_a_message(tmp_path: Path) -> None:
    async with spawned(
        *CLI,
        "serve",
        cwd=tmp_path,
        env=clean_env(AGENT_CONTAINERS_ALLOWED_MEMORY_TIERS="1g,3g"),
        stderr=asyncio.subprocess.PIPE,
    ) as child:
        assert await child.exited(within=30) != 0
    assert "allowed_memory_tiers" in child.stderr.decode()


# What `nohup make test &` does to the tests' children: the shell starts a background job with
# SIGINT ignored, and every process it starts inherits that, across exec too.
IGNORING_SIGINT = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.argv[1], sys.argv[1:])",
]


async def test_emulator_started_with_sigint_ignored_still_stops_and_nothing_is_left() -> None:
    port = free_port()
    command = [*IGNORING_SIGINT, *CLI, "emulator", "--port", str(port)]
    async with spawned(*command, env=clean_env(), stderr=asyncio.subprocess.PIPE) as child:
        for _ in range(100):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("the emulator did not start")
        child.process.send_signal(signal.SIGINT)  # what the tests used to stop it with
        await asyncio.sleep(1)
        assert child.returncode is None, "SIGINT was not ignored: this proves nothing"
    # spawned() sent SIGTERM: the emulator exited by itself, cleanly, and was reaped.
    assert child.returncode == 0, child.stderr.decode()
    assert not child.killed
    try:
        os.kill(child.pid, 0)
        raise AssertionError(f"process {child.pid} is still there")
    except ProcessLookupError:
        pass
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # nothing listens there any more
