"""The worst event-loop stall and ResolveTool latency while hostile requests arrive.

Each case starts a fresh server process (the service on its embedded defaults but for a free
loopback port and a temporary directory for its SQLite file, so the in-process emulator stands in
for OpenAI) with a monitor in its event loop: a timer due every 5 ms, and how late it fires is the
stall (how long the loop could serve nothing). A probe process calls ResolveTool back to back for
an agent bound to a live container (the hot path). Meanwhile this process sends the case's
hostile request again and again (built beforehand, sent as raw bytes); the table shows the
answers, the probe's latency, the worst stall, and the server's resident memory before the case
and at its peak. The first row is the probe alone.

"At the limit" cases are as large as the server's request limit lets through (`--limit`, by
default the installed settings' AGENT_CONTAINERS_MAX_REQUEST_BYTES). Nothing asserts a figure:
this prints them. Run it with `.venv/bin/python scripts/event_loop_stall.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from agentcontainers.v1 import (
    binding_service_pb2,
    binding_service_pb2_grpc,
    container_pb2,
    container_service_pb2,
    container_service_pb2_grpc,
    tool_service_pb2,
    tool_service_pb2_grpc,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc

IDENTITY = (("x-tenant-id", "stall"), ("x-user-id", "stall"))
AGENT_KEY = "stall-agent"
TICK_SECONDS = 0.005
CALL_TIMEOUT_SECONDS = 60.0
CREATE = "/agentcontainers.v1.ContainerService/CreateContainer"
VALIDATE = "/agentcontainers.v1.ToolResolutionService/ValidateAgentSpec"


# --- protobuf wire format, written by hand: millions of tiny entries build in milliseconds ---


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes, message)."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def validate_request(spec: bytes) -> bytes:
    """ValidateAgentSpecRequest{agent_key, spec} around an encoded AgentSpec body."""
    return field(1, AGENT_KEY.encode()) + field(2, spec)


def create_request(container: bytes, *, file_ids: bytes = b"") -> bytes:
    """CreateContainerRequest{container, file_ids} around an encoded Container body."""
    return field(1, container) + file_ids


def entries_within(limit: int, entry: bytes, overhead: int) -> int:
    """How many copies of `entry` fit in a message of `limit` bytes with `overhead` around."""
    return (limit - overhead) // len(entry)


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    body: bytes


def cases(limit: int) -> list[Case]:
    """The hostile requests, largest first within each kind."""
    named_tool = field(1, field(1, b"code_interpreter"))  # AgentSpec.tools[] = {tool}
    empty_tool = field(1, b"")  # AgentSpec.tools[] = {}
    # Every metadata pair wrong three ways: a control character, a key too long, a value too long.
    bad_pairs = b"".join(
        field(7, field(1, f"{index:03d}\x01{'k' * 70}".encode()) + field(2, b"v" * 600))
        for index in range(100)
    )
    at_limit_pairs = bytearray()  # distinct short keys, empty values
    index = 0
    while len(at_limit_pairs) < limit - 64 - 16:
        at_limit_pairs += field(7, field(1, f"{index:x}".encode()))
        index += 1
    empty_file_id = field(3, b"")
    tools_with_file_ids = b"".join(
        field(1, field(2, empty_file_id * entries_within(limit // 64, empty_file_id, 32)))
        for _ in range(64)
    )
    bad_tool = field(1, field(1, b"x" * 100) + field(2, field(3, b"nope") * 50))
    over_limit_tools = 500_000
    return [
        Case(
            f"ValidateAgentSpec, {over_limit_tools} named tools (issue's 9.5 MB)",
            VALIDATE,
            validate_request(named_tool * over_limit_tools),
        ),
        Case(
            "ValidateAgentSpec at the limit, named tools",
            VALIDATE,
            validate_request(named_tool * entries_within(limit, named_tool, 64)),
        ),
        Case(
            "ValidateAgentSpec at the limit, empty tools",
            VALIDATE,
            validate_request(empty_tool * entries_within(limit, empty_tool, 64)),
        ),
        Case(
            "ValidateAgentSpec at the limit, 64 tools of empty file ids",
            VALIDATE,
            validate_request(tools_with_file_ids),
        ),
        Case("ValidateAgentSpec, 64 invalid tools", VALIDATE, validate_request(bad_tool * 64)),
        Case(
            "CreateContainer, 100 metadata pairs, 3 violations each",
            CREATE,
            create_request(field(3, b"a") + bad_pairs),
        ),
        Case(
            "CreateContainer at the limit, distinct metadata keys",
            CREATE,
            create_request(field(3, b"a") + bytes(at_limit_pairs)),
        ),
        Case(
            "CreateContainer at the limit, empty file ids",
            CREATE,
            create_request(
                field(3, b"a"),
                file_ids=empty_file_id * entries_within(limit, empty_file_id, 64),
            ),
        ),
        Case("CreateContainer, unreadable 3 bytes", CREATE, b"\xff\xff\xff"),
        Case(
            "ValidateAgentSpec at the limit, unreadable at its end",
            VALIDATE,
            validate_request(empty_tool * entries_within(limit, empty_tool, 64))[:-1] + b"\xff",
        ),
    ]


# --- the server process ---------------------------------------------------------------------


class StallMonitor:
    """How late a timer due every TICK_SECONDS fires: the longest the loop served nothing."""

    def __init__(self) -> None:
        self.worst = 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + TICK_SECONDS
            await asyncio.sleep(TICK_SECONDS)
            self.worst = max(self.worst, loop.time() - due)

    def take(self) -> float:
        worst, self.worst = self.worst, 0.0
        return worst


async def serve_with_monitor() -> None:
    """The service as `serve` runs it, plus the monitor; answers `report` lines on stdin."""
    from agent_containers.config import Settings
    from agent_containers.observability.logging import configure_logging
    from agent_containers.server import AgentContainersServer, freeze_startup_objects

    settings = Settings()
    configure_logging("ERROR")
    server = AgentContainersServer(settings)
    await server.start()
    freeze_startup_objects()
    monitor = StallMonitor()
    watching = asyncio.create_task(monitor.run())
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    print("serving", flush=True)
    try:
        while line := await commands.readline():
            if line.strip() == b"report":
                print(json.dumps({"worst_stall_s": monitor.take()}), flush=True)
    finally:
        watching.cancel()
        await server.stop()


# --- the probe process ----------------------------------------------------------------------


async def probe(address: str) -> None:
    """ResolveTool back to back for `run SECONDS` lines on stdin; prints the latencies."""
    loop = asyncio.get_running_loop()
    async with grpc.aio.insecure_channel(address) as channel:
        tools = tool_service_pb2_grpc.ToolResolutionServiceStub(channel)
        request = tool_service_pb2.ResolveToolRequest(agent_key=AGENT_KEY, tool="code_interpreter")
        for _ in range(200):  # warm up the path and the cache
            await tools.ResolveTool(request, metadata=IDENTITY, timeout=CALL_TIMEOUT_SECONDS)
        print("ready", flush=True)
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            seconds = float(line.split()[1])
            latencies: list[float] = []
            problems: Counter[str] = Counter()
            end = time.monotonic() + seconds
            while (began := time.monotonic()) < end:
                try:
                    reply = await tools.ResolveTool(
                        request, metadata=IDENTITY, timeout=CALL_TIMEOUT_SECONDS
                    )
                    if reply.mode != tool_service_pb2.TOOL_MODE_EXPLICIT:
                        problems["not explicit"] += 1
                except grpc.aio.AioRpcError as error:
                    problems[error.code().name] += 1
                latencies.append(time.monotonic() - began)
            print(json.dumps({"latencies": latencies, "problems": problems}), flush=True)


# --- the run --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_serving(address: str) -> None:
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                reply = health.Check(health_pb2.HealthCheckRequest(), timeout=0.5)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                time.sleep(0.05)
    sys.exit("the server did not become SERVING within 60 s")


def prepare(address: str) -> None:
    """A running container and the probe's agent bound to it, through the public API."""
    with grpc.insecure_channel(address) as channel:
        containers = container_service_pb2_grpc.ContainerServiceStub(channel)
        created = containers.CreateContainer(
            container_service_pb2.CreateContainerRequest(
                container=container_pb2.Container(name="stall"), request_id=str(uuid.uuid4())
            ),
            metadata=IDENTITY,
            timeout=CALL_TIMEOUT_SECONDS,
        )
        binding_service_pb2_grpc.AgentBindingServiceStub(channel).BindContainer(
            binding_service_pb2.BindContainerRequest(agent_key=AGENT_KEY, container_id=created.id),
            metadata=IDENTITY,
            timeout=CALL_TIMEOUT_SECONDS,
        )


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return math.nan


def reset_peak_rss(pid: int) -> None:
    # Writing 5 to clear_refs resets the peak resident set size (Linux 4.0+).
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1] * 1000


def ask(process: subprocess.Popen[str], line: str) -> dict[str, Any]:
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(line + "\n")
    process.stdin.flush()
    answer: dict[str, Any] = json.loads(process.stdout.readline())
    return answer


async def send_until(address: str, case: Case, stop: asyncio.Event) -> tuple[Counter[str], float]:
    """Sends the case's request one after another until told to stop; answers and median ms."""
    answers: Counter[str] = Counter()
    durations: list[float] = []
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(
            case.method,
            request_serializer=lambda body: body,
            response_deserializer=lambda data: data,
        )
        while not stop.is_set():
            began = time.monotonic()
            try:
                await call(case.body, metadata=IDENTITY, timeout=CALL_TIMEOUT_SECONDS)
                answers["OK"] += 1
            except grpc.aio.AioRpcError as error:
                answers[error.code().name] += 1
            durations.append(time.monotonic() - began)
    durations.sort()
    return answers, percentile(durations, 0.5) if durations else math.nan


async def run_case(
    address: str, case: Case | None, probe_process: subprocess.Popen[str], seconds: float
) -> tuple[dict[str, Any], Counter[str], float]:
    loop = asyncio.get_running_loop()
    measured = loop.run_in_executor(None, ask, probe_process, f"run {seconds}")
    if case is None:
        return await measured, Counter(), math.nan
    stop = asyncio.Event()
    sending = asyncio.create_task(send_until(address, case, stop))
    probed = await measured
    stop.set()
    answers, median_ms = await sending
    return probed, answers, median_ms


@dataclass
class Row:
    answers: Counter[str]
    call_ms: float
    latencies: list[float]
    problems: dict[str, int]
    stall_ms: float
    peak_mib: float
    idle_mib: float


def measure(case: Case | None, limit: int, seconds: float) -> Row:
    """One case on a fresh server, so its stalls and its memory are its own."""
    address = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_CONTAINERS_")}
    env.pop("OPENAI_API_KEY", None)
    env["AGENT_CONTAINERS_LISTEN_ADDRESS"] = address
    env["AGENT_CONTAINERS_MAX_REQUEST_BYTES"] = str(limit)
    script = str(Path(__file__).resolve())
    with tempfile.TemporaryDirectory(prefix="agent-containers-stall-") as workdir:
        log = Path(workdir) / "server.log"
        with log.open("wb") as log_file:
            server = subprocess.Popen(
                [sys.executable, script, "--serve"],
                cwd=workdir,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
            )
        probe_process: subprocess.Popen[str] | None = None
        try:
            assert server.stdout is not None
            if server.stdout.readline().strip() != "serving":
                server.wait()
                sys.exit(f"the server failed to start:\n{log.read_text(errors='replace')[-2000:]}")
            wait_serving(address)
            prepare(address)
            probe_process = subprocess.Popen(
                [sys.executable, script, "--probe", address],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert probe_process.stdout is not None
            if probe_process.stdout.readline().strip() != "ready":
                sys.exit("the probe failed to start")
            ask(server, "report")  # forget the stalls of start-up and warm-up
            reset_peak_rss(server.pid)
            idle = peak_rss_mib(server.pid)
            probed, answers, call_ms = asyncio.run(run_case(address, case, probe_process, seconds))
            stall = ask(server, "report")["worst_stall_s"] * 1000
            return Row(
                answers,
                call_ms,
                sorted(probed["latencies"]),
                probed["problems"],
                stall,
                peak_rss_mib(server.pid),
                idle,
            )
        finally:
            if probe_process is not None:
                probe_process.kill()
                probe_process.wait()
            assert server.stdin is not None
            server.stdin.close()  # the server stops gracefully at the end of its commands
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="probe time per case")
    parser.add_argument("--limit", type=int, help="the server's request limit in bytes")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve_with_monitor())
        return
    if args.probe:
        asyncio.run(probe(args.probe))
        return
    if args.limit is None:
        from agent_containers.config import Settings

        args.limit = Settings().max_request_bytes

    built = time.monotonic()
    hostile = cases(args.limit)
    print(
        f"{len(hostile)} hostile requests built in {time.monotonic() - built:.1f} s; request "
        f"limit {args.limit} bytes; {args.seconds:g} s per case, each on a fresh server; "
        f"nproc {os.cpu_count()}; grpcio {grpc.__version__}"
    )
    header = (
        f"{'case':<60} {'size':>8} {'answers':<26} {'call ms':>8} {'probe p50':>9} "
        f"{'p99':>7} {'max ms':>7} {'stall ms':>8} {'MiB idle':>8} {'peak':>6}"
    )
    print(header)
    print("-" * len(header))
    worst_stall = worst_probe = 0.0
    for case in [None, *hostile]:
        row = measure(case, args.limit, args.seconds)
        shown = ", ".join(f"{code} x{count}" for code, count in row.answers.items())
        name = "probe alone" if case is None else case.name
        size = "" if case is None else f"{len(case.body) / 1e6:.2f} MB"
        print(
            f"{name:<60} {size:>8} {shown or '-':<26} {row.call_ms:>8.1f} "
            f"{percentile(row.latencies, 0.5):>9.2f} {percentile(row.latencies, 0.99):>7.1f} "
            f"{row.latencies[-1] * 1000:>7.1f} {row.stall_ms:>8.1f} {row.idle_mib:>8.0f} "
            f"{row.peak_mib:>6.0f}" + (f"  probe errors: {row.problems}" if row.problems else "")
        )
        if case is not None:
            worst_stall = max(worst_stall, row.stall_ms)
            worst_probe = max(worst_probe, row.latencies[-1] * 1000)
    print(
        f"worst event-loop stall under hostile load: {worst_stall:.1f} ms; "
        f"worst ResolveTool latency: {worst_probe:.1f} ms"
    )


if __name__ == "__main__":
    main()
