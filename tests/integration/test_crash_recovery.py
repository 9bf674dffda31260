"""kill -9 during creates, restart, and nobody calls: the reconciler settles everything."""

from __future__ import annotations

import asyncio
import signal
import time

import grpc
import sqlalchemy as sa
from agentcontainers.v1 import container_pb2, container_service_pb2, container_service_pb2_grpc

from agent_containers.domain.containers import ContainerStatus
from agent_containers.store.database import create_engine
from agent_containers.store.models import ContainerRecord
from agent_containers.upstream.emulator import EmulatorServer
from tests.support.processes import CLI, clean_env, free_port, spawned, wait_serving
from tests.support.service import identity

PERIOD_SECONDS = 1.0
TIMEOUT_SECONDS = 2.0  # the create budget is twice this plus the database slack (5 s)
OUTCOME_WINDOW_SECONDS = 1.0


def serve_env(database_url: str, emulator: EmulatorServer, address: str) -> dict[str, str]:
    return clean_env(
        AGENT_CONTAINERS_LISTEN_ADDRESS=address,
        AGENT_CONTAINERS_DATABASE_URL=database_url,
        AGENT_CONTAINERS_UPSTREAM="openai",
        AGENT_CONTAINERS_OPENAI_API_KEY="test-key",
        AGENT_CONTAINERS_OPENAI_BASE_URL=emulator.base_url,
        AGENT_CONTAINERS_OPENAI_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS),
        AGENT_CONTAINERS_RECONCILER_PERIOD_SECONDS=str(PERIOD_SECONDS),
        AGENT_CONTAINERS_CREATE_OUTCOME_WINDOW_SECONDS=str(OUTCOME_WINDOW_SECONDS),
        AGENT_CONTAINERS_SHUTDOWN_DRAIN_SECONDS="0",
    )


async def row_states(database_url: str) -> dict[str, tuple[ContainerStatus, str | None]]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            found = await connection.execute(
                sa.select(ContainerRecord.name, ContainerRecord.status, ContainerRecord.openai_id)
            )
            return {name: (status, openai_id) for name, status, openai_id in found.all()}
    finally:
        await engine.dispose()


async def test_kill_9_during_creates_leaves_nothing_behind(migrated_database_url: str) -> None:
    emulator = EmulatorServer()
    await emulator.start()
    emulator.state.delays["containers.create"] = 1.0  # the POSTs are in flight at the kill
    address = f"127.0.0.1:{free_port()}"
    env = serve_env(migrated_database_url, emulator, address)
    quiet = {"stderr": asyncio.subprocess.DEVNULL}
    try:
        async with spawned(*CLI, "serve", env=env, **quiet) as crashed:
            await wait_serving(address, crashed)
            async with grpc.aio.insecure_channel(address) as channel:
                stub = container_service_pb2_grpc.ContainerServiceStub(channel)
                creates = [
                    asyncio.ensure_future(
                        stub.CreateContainer(
                            container_service_pb2.CreateContainerRequest(
                                container=container_pb2.Container(name=f"doomed-{index}")
                            ),
                            metadata=identity(),
                        )
                    )
                    for index in range(5)
                ]
                while emulator.state.calls["containers.create"] < 5:  # noqa: ASYNC110 - a counter
                    await asyncio.sleep(0.01)
                crashed.process.send_signal(signal.SIGKILL)
                await crashed.exited(within=10)
                await asyncio.gather(*creates, return_exceptions=True)
        rows = await row_states(migrated_database_url)
        assert {status for status, _ in rows.values()} == {ContainerStatus.CREATING}
        assert len(rows) == 5

        restarted_at = time.monotonic()  # from the restart, start-up included
        async with spawned(*CLI, "serve", env=env, **quiet) as restarted:
            await wait_serving(address, restarted)
            # Nobody calls. Within a period (plus the create budget and the outcome window, for
            # a create that never reached upstream) every row is settled and every container
            # upstream is accounted for.
            bound = PERIOD_SECONDS + 2 * TIMEOUT_SECONDS + 5 + OUTCOME_WINDOW_SECONDS + 10
            while True:
                rows = await row_states(migrated_database_url)
                upstream = {
                    container.id
                    for container in emulator.state.containers.values()
                    if container.name.startswith("ac-")
                }
                accounted = {
                    openai_id
                    for status, openai_id in rows.values()
                    if status is ContainerStatus.RUNNING
                }
                creating = [
                    name for name, (status, _) in rows.items() if status is ContainerStatus.CREATING
                ]
                if not creating and upstream <= accounted and len(upstream) == 5:
                    break
                assert time.monotonic() - restarted_at < bound, (rows, upstream)
                await asyncio.sleep(0.1)
            settled_in = time.monotonic() - restarted_at
        print(f"settled {len(rows)} rows {settled_in:.2f} s after the restart")
        assert accounted == upstream  # no orphan, no duplicate
    finally:
        await emulator.stop()
