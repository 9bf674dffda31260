"""Running the real `agent-containers` command in child processes, as an operator would."""

from __future__ import annotations

import asyncio
import os
import socket
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

CLI = [sys.executable, "-m", "agent_containers.cli"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any setting or key that would change the defaults."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AGENT_CONTAINERS_") and key != "OPENAI_API_KEY"
    }
    env.update(extra)
    return env


async def wait_serving(address: str, process: asyncio.subprocess.Process) -> None:
    """Waits until the server at `address` reports SERVING (at most 20 s)."""
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(200):
            if process.returncode is not None:
                raise AssertionError("the server exited before serving")
            try:
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=0.5)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the server did not become SERVING")
