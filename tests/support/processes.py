"""Running the real `agent-containers` command in child processes, as an operator would.

Every test that starts a child does it with `spawned(...)`: however the test ends, the child is
sent SIGTERM, given a bounded time, then killed, and reaped. Nothing is left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

CLI = [sys.executable, "-m", "agent_containers.cli"]

STOP_TIMEOUT_SECONDS = 30.0
"""How long a child gets to exit on SIGTERM before it is killed."""


@dataclass
class Child:
    """A child process, and what it wrote once it has stopped (when its output was piped)."""

    process: asyncio.subprocess.Process
    stdout: bytes = b""
    stderr: bytes = b""
    killed: bool = False
    """True when it did not exit on SIGTERM in time and had to be killed."""
    _stderr_reader: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        # A piped stderr is read as it comes: a child that logs a line per call (the access log)
        # would otherwise fill the pipe and block in the middle of serving. stdout is left to
        # the test, which may read it itself.
        if self.process.stderr is not None:
            self._stderr_reader = asyncio.create_task(self._read_stderr(self.process.stderr))

    async def _read_stderr(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            self.stderr += chunk

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    async def stop(self, within: float = STOP_TIMEOUT_SECONDS) -> int:
        """SIGTERM, at most `within` seconds for it to exit, then SIGKILL; reaps it either way.

        SIGTERM, not SIGINT: a shell that starts a job in the background (`make test &`, nohup)
        sets SIGINT to ignored, and children inherit that. Safe to call more than once.
        """
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
        try:
            await asyncio.wait_for(self._collect(), within)
        except TimeoutError:
            self.killed = True
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await asyncio.wait_for(self._collect(), STOP_TIMEOUT_SECONDS)
        assert self.process.returncode is not None
        return self.process.returncode

    async def exited(self, within: float) -> int:
        """Waits (at most `within` seconds) for the child to exit by itself; its exit code."""
        try:
            await asyncio.wait_for(self._collect(), within)
        except TimeoutError:
            raise AssertionError(f"process {self.pid} still running after {within} s") from None
        assert self.process.returncode is not None
        return self.process.returncode

    async def _collect(self) -> None:
        # Piped output is drained while waiting, so a chatty child cannot block on a full pipe;
        # what it wrote before is kept. stderr has its own reader (see __post_init__), which a
        # cancelled collection leaves running (shielded); it ends at the child's exit.
        if self.process.stdout is not None:
            self.stdout += await self.process.stdout.read()
        await self.process.wait()
        if self._stderr_reader is not None:
            await asyncio.shield(self._stderr_reader)


@contextlib.asynccontextmanager
async def spawned(
    *command: str, stop_within: float = STOP_TIMEOUT_SECONDS, **options: Any
) -> AsyncIterator[Child]:
    """Runs `command` (asyncio.create_subprocess_exec options) for the block; on leaving it
    however the block ends, the child is stopped with `Child.stop` and reaped: none is left."""
    child = Child(await asyncio.create_subprocess_exec(*command, **options))
    try:
        yield child
    finally:
        await child.stop(stop_within)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any setting or key that would change the defaults (tracing's
    OTEL_* variables included), but one: the metrics endpoint takes a free port (children
    running side by side would all want the default one), unless `extra` says otherwise."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AGENT_CONTAINERS_", "OTEL_"))
        and key not in ("OPENAI_API_KEY", "PROMETHEUS_MULTIPROC_DIR")
    }
    env["AGENT_CONTAINERS_METRICS_LISTEN_ADDRESS"] = "127.0.0.1:0"
    env.update(extra)
    return env


async def wait_serving(address: str, process: asyncio.subprocess.Process | Child) -> None:
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
