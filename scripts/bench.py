"""Throughput and latency of ToolResolutionService.ResolveTool against grpc.health.v1.Health/Check,
and what observability (metrics and tracing) costs ResolveTool.

One run starts TWO servers (`agent-containers serve`, the real command, on the embedded defaults
but for free loopback ports and a temporary directory each for its SQLite file, so the in-process
emulator stands in for OpenAI): `plain`, with metrics and tracing off, and `observed`, with the
Prometheus endpoint on and OpenTelemetry tracing exporting every span over OTLP/gRPC to a receiver
this process runs. It prepares state through the public API (a container, an agent bound to it),
then drives ResolveTool and Check on `plain` and ResolveTool on `observed` from separate client
processes (grpc.aio, one channel per server, a fixed number of calls in flight) and prints calls/s,
p50/p99 latency, the CPU each side used, the ratio of ResolveTool to Check throughput, and the
ratio of ResolveTool on `observed` to ResolveTool on `plain`, at each concurrency.

Every RPC is measured the same way, in alternating time slices (ABC CBA order), so that machine
noise hits all alike; only one server is driven at a time. Used by `make bench`; `--help` lists
the knobs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from concurrent import futures
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
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

IDENTITY = (("x-tenant-id", "bench"), ("x-user-id", "bench"))
AGENT_KEY = "bench-agent"
TOOL = "code_interpreter"
RPCS = ("ResolveTool", "Check", "ResolveTool+obs")
SERVER_OF = {"ResolveTool": "plain", "Check": "plain", "ResolveTool+obs": "observed"}
"""Which server each measured RPC goes to."""
CALL_TIMEOUT_SECONDS = 10.0
SLICE_GAP_SECONDS = 0.05  # lets the previous slice's in-flight calls drain


# --- the machine --------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def nproc() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a whole process (every thread), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- the server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_command() -> list[str]:
    """The installed `agent-containers` command of this interpreter's environment."""
    command = Path(sys.executable).parent / "agent-containers"
    if not command.exists():
        sys.exit(f"{command} not found: run `make bench` (it installs the project first)")
    return [str(command), "serve"]


def pinned(command: list[str], cpu: int | None) -> list[str]:
    """`command`, run on one CPU only: the affinity is set before exec, so every thread has it."""
    if cpu is None:
        return command
    pin = "import os, sys; os.sched_setaffinity(0, {%d}); os.execv(sys.argv[1], sys.argv[1:])"
    return [sys.executable, "-c", pin % cpu, *command]


def wait_serving(address: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                sys.exit(f"the server exited with {process.returncode}:\n{tail(log)}")
            try:
                reply = health.Check(health_pb2.HealthCheckRequest(), timeout=0.5)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.05)
    sys.exit(f"the server did not become SERVING within 60 s:\n{tail(log)}")


def tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


@dataclass(frozen=True)
class Prepared:
    container_id: str
    openai_container_id: str


def prepare(address: str) -> Prepared:
    """A container and an agent bound to it, through the public API."""
    with grpc.insecure_channel(address) as channel:
        containers = container_service_pb2_grpc.ContainerServiceStub(channel)
        bindings = binding_service_pb2_grpc.AgentBindingServiceStub(channel)
        created = containers.CreateContainer(
            container_service_pb2.CreateContainerRequest(
                container=container_pb2.Container(name="bench"), request_id=str(uuid.uuid4())
            ),
            metadata=IDENTITY,
            timeout=CALL_TIMEOUT_SECONDS,
        )
        if created.state != container_pb2.CONTAINER_STATE_RUNNING:
            sys.exit(f"the bench container is {container_pb2.ContainerState.Name(created.state)}")
        bindings.BindContainer(
            binding_service_pb2.BindContainerRequest(agent_key=AGENT_KEY, container_id=created.id),
            metadata=IDENTITY,
            timeout=CALL_TIMEOUT_SECONDS,
        )
    return Prepared(created.id, created.openai_container_id)


def resolve_request() -> tool_service_pb2.ResolveToolRequest:
    # No config: the mode is unspecified, so the agent's binding decides.
    return tool_service_pb2.ResolveToolRequest(agent_key=AGENT_KEY, tool=TOOL)


def resolved_problem(reply: tool_service_pb2.ResolvedTool, expected: Prepared) -> str | None:
    """Why a ResolveTool answer is not EXPLICIT from the binding; None when it is."""
    if (
        reply.mode == tool_service_pb2.TOOL_MODE_EXPLICIT
        and reply.source == tool_service_pb2.TOOL_SOURCE_BINDING
        and reply.container_id == expected.container_id
        and reply.openai_container_id == expected.openai_container_id
    ):
        return None
    return (
        f"ResolveTool did not resolve through the binding: mode "
        f"{tool_service_pb2.ToolMode.Name(reply.mode)}, source "
        f"{tool_service_pb2.ToolSource.Name(reply.source)}, container {reply.container_id!r} "
        f"(expected {expected.container_id!r}), fallback {reply.fallback_detail!r}"
    )


# --- the schedule -------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """One time slice of one RPC at one total concurrency; offsets from the common start."""

    rpc: str
    concurrency: int
    offset: float
    seconds: float
    measured: bool


def schedule(args: argparse.Namespace) -> list[Slot]:
    """Per concurrency: a warm-up of each RPC, then measured slices in ABC CBA order."""
    slots: list[Slot] = []
    offset = 0.0

    def add(rpc: str, concurrency: int, seconds: float, measured: bool) -> None:
        nonlocal offset
        slots.append(Slot(rpc, concurrency, offset, seconds, measured))
        offset += seconds + SLICE_GAP_SECONDS

    slice_seconds = args.seconds / args.slices
    for concurrency in args.concurrency:
        for rpc in RPCS:
            add(rpc, concurrency, args.warmup, False)
        for index in range(args.slices):
            for rpc in RPCS if index % 2 == 0 else reversed(RPCS):
                add(rpc, concurrency, slice_seconds, True)
    return slots


def share(total: int, clients: int, index: int) -> int:
    """The calls in flight client `index` keeps, of `total` spread over `clients`."""
    return total // clients + (1 if index < total % clients else 0)


# --- the client process -------------------------------------------------------------------


async def drive(config: dict[str, Any]) -> dict[str, Any]:
    """Runs the schedule's slots for this client; returns its raw measurements."""
    index, clients = config["index"], config["clients"]
    servers: dict[str, dict[str, Any]] = config["servers"]
    slots = [Slot(**slot) for slot in config["slots"]]
    max_calls: int = config["max_calls_per_slice"]
    async with contextlib.AsyncExitStack() as stack:
        channels = {
            name: await stack.enter_async_context(grpc.aio.insecure_channel(server["address"]))
            for name, server in servers.items()
        }
        resolve_message = resolve_request()
        check_message = health_pb2.HealthCheckRequest()

        def resolve(name: str) -> Callable[[], Awaitable[Any]]:
            stub = tool_service_pb2_grpc.ToolResolutionServiceStub(channels[name])

            def call() -> Awaitable[Any]:
                return stub.ResolveTool(
                    resolve_message, metadata=IDENTITY, timeout=CALL_TIMEOUT_SECONDS
                )

            return call

        def resolve_problem(name: str) -> Callable[[Any], str | None]:
            expected = Prepared(servers[name]["container_id"], servers[name]["openai_container_id"])
            return lambda reply: resolved_problem(reply, expected)

        health_stub = health_pb2_grpc.HealthStub(channels["plain"])

        def check() -> Awaitable[Any]:
            return health_stub.Check(check_message, timeout=CALL_TIMEOUT_SECONDS)

        def check_problem(reply: Any) -> str | None:
            serving = reply.status == health_pb2.HealthCheckResponse.SERVING
            return None if serving else f"Health/Check answered {reply.status}"

        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "ResolveTool": resolve("plain"),
            "Check": check,
            "ResolveTool+obs": resolve("observed"),
        }
        problems: dict[str, Callable[[Any], str | None]] = {
            "ResolveTool": resolve_problem("plain"),
            "Check": check_problem,
            "ResolveTool+obs": resolve_problem("observed"),
        }
        # The first answers must be the real path, before anything is timed.
        for rpc in RPCS:
            problem = problems[rpc](await calls[rpc]())
            if problem:
                raise SystemExit(problem)

        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        start = float(await loop.run_in_executor(None, sys.stdin.readline))

        results = []
        for slot in slots:
            in_flight = share(slot.concurrency, clients, index)
            slot_start = start + slot.offset
            await asyncio.sleep(max(0.0, slot_start - time.monotonic()))
            if in_flight == 0 and index != 0:
                continue
            deadline_ns = int((slot_start + slot.seconds) * 1e9)
            budget = [max_calls]
            latencies: list[int] = []
            last: list[Any] = []
            call = calls[slot.rpc]
            server_pid: int = servers[SERVER_OF[slot.rpc]]["pid"]

            async def worker(
                call: Callable[[], Awaitable[Any]] = call,
                budget: list[int] = budget,
                latencies: list[int] = latencies,
                last: list[Any] = last,
                deadline_ns: int = deadline_ns,
            ) -> None:
                reply = None
                while budget[0] > 0:
                    began = time.monotonic_ns()
                    if began >= deadline_ns:
                        break
                    budget[0] -= 1
                    reply = await call()
                    latencies.append(time.monotonic_ns() - began)
                if reply is not None:
                    last.append(reply)

            server_before = process_cpu_seconds(server_pid) if index == 0 else 0.0
            own_before = own_cpu_seconds()
            began = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(in_flight)))
            ended = time.monotonic()
            own_used = own_cpu_seconds() - own_before
            server_used = process_cpu_seconds(server_pid) - server_before if index == 0 else 0.0
            for reply in last:
                problem = problems[slot.rpc](reply)
                if problem:
                    raise SystemExit(problem)
            if slot.measured:
                results.append(
                    {
                        "rpc": slot.rpc,
                        "concurrency": slot.concurrency,
                        "began": began,
                        "ended": ended,
                        "latencies_ns": latencies,
                        "client_cpu": own_used,
                        "server_cpu": server_used,
                    }
                )
    return {"index": index, "results": results}


def client_main(config_json: str) -> None:
    config = json.loads(config_json)
    print(json.dumps(asyncio.run(drive(config))), flush=True)


# --- the run ------------------------------------------------------------------------------


def percentile(ordered: list[int], fraction: float) -> float:
    """Nearest-rank percentile of sorted nanoseconds, in milliseconds."""
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1] / 1e6


@dataclass(frozen=True)
class Server:
    """One `serve` process of the run."""

    name: str
    address: str
    pid: int
    prepared: Prepared


def run_clients(args: argparse.Namespace, servers: dict[str, Server]) -> list[dict[str, Any]]:
    slots = schedule(args)
    measured_slices = args.slices * args.clients
    base = {
        "servers": {
            name: {
                "address": server.address,
                "pid": server.pid,
                "container_id": server.prepared.container_id,
                "openai_container_id": server.prepared.openai_container_id,
            }
            for name, server in servers.items()
        },
        "clients": args.clients,
        "slots": [slot.__dict__ for slot in slots],
        "max_calls_per_slice": max(1, args.max_calls // measured_slices),
    }
    clients = [
        subprocess.Popen(
            pinned(
                [sys.executable, __file__, "--client", json.dumps({**base, "index": index})],
                args.client_cpu,
            ),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for index in range(args.clients)
    ]
    for client in clients:
        assert client.stdout is not None
        if client.stdout.readline().strip() != "ready":
            sys.exit(f"a client process failed before the start (exit {client.wait()})")
    start = time.monotonic() + 0.2
    for client in clients:
        assert client.stdin is not None
        client.stdin.write(f"{start}\n")
        client.stdin.flush()
    outputs = []
    for client in clients:
        out, _ = client.communicate(timeout=slots[-1].offset + slots[-1].seconds + 120)
        if client.returncode != 0:
            sys.exit(f"a client process failed (exit {client.returncode})")
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    return outputs


@dataclass
class Figures:
    calls: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    latencies: list[int] | None = None
    slice_rates: list[float] | None = None

    @property
    def throughput(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0


def aggregate(outputs: list[dict[str, Any]]) -> dict[tuple[str, int], Figures]:
    """Sums the slices of every client: a slice lasts from its first start to its last end."""
    slices: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    for output in outputs:
        counters: dict[tuple[str, int], int] = {}
        for result in output["results"]:
            key = (result["rpc"], result["concurrency"])
            number = counters.get(key, 0)
            counters[key] = number + 1
            slices.setdefault((*key, number), []).append(result)
    figures: dict[tuple[str, int], Figures] = {}
    for (rpc, concurrency, _), parts in slices.items():
        entry = figures.setdefault((rpc, concurrency), Figures(latencies=[], slice_rates=[]))
        assert entry.latencies is not None
        assert entry.slice_rates is not None
        for part in parts:
            entry.latencies.extend(part["latencies_ns"])
            entry.client_cpu += part["client_cpu"]
            entry.server_cpu += part["server_cpu"]
        seconds = max(p["ended"] for p in parts) - min(p["began"] for p in parts)
        entry.seconds += seconds
        entry.slice_rates.append(sum(len(p["latencies_ns"]) for p in parts) / seconds)
    for entry in figures.values():
        assert entry.latencies is not None
        entry.latencies.sort()
        entry.calls = len(entry.latencies)
    return figures


def report(
    args: argparse.Namespace,
    figures: dict[tuple[str, int], Figures],
    servers: dict[str, Server],
    observed: ObservedFigures,
) -> None:
    cores = args.cores
    print(
        "agent-containers bench: ToolResolutionService/ResolveTool vs grpc.health.v1.Health/Check,"
        " and ResolveTool with observability on"
    )
    print(
        f"machine: nproc {cores}, {cpu_model()}, Python {platform.python_version()}, "
        f"grpcio {grpc.__version__}, {platform.system()} {platform.release()}"
    )
    plain, watched = servers["plain"], servers["observed"]
    print(
        f"servers: 2 processes `agent-containers serve`, embedded defaults, SQLite in a temp dir, "
        f"in-process emulator: plain (pid {plain.pid}, {plain.address}) with metrics and tracing"
        f" off; observed (pid {watched.pid}, {watched.address}) with the metrics endpoint on and"
        f" tracing on, calls sampled at {args.sample_ratio:g} (parentbased_traceidratio), spans"
        " exported over OTLP/gRPC to a receiver in the bench process; both write the access log"
    )
    print(
        f"client: {args.clients} process(es), grpc.aio, one channel per server, fixed calls in "
        f"flight; the client runs on the same machine and shares its {cores} cores with the server"
    )
    if args.pin:
        print(
            f"placement: servers pinned to CPU {args.server_cpu} (all their threads), client(s) "
            f"and the OTLP receiver to CPU {args.client_cpu}; --no-pin lets the OS place them"
        )
    else:
        print("placement: not pinned; the OS schedules server and client threads on any core")
    print(
        f"phases: per concurrency, {args.warmup:g} s warm-up of each RPC, then {args.seconds:g} s "
        f"per RPC in {args.slices} slices alternating ResolveTool/Check/ResolveTool+obs (ABC CBA);"
        f" at most {args.max_calls} calls per RPC and concurrency"
    )
    print(
        f"ResolveTool: agent_key={AGENT_KEY} tool={TOOL} config empty -> "
        f"TOOL_MODE_EXPLICIT / TOOL_SOURCE_BINDING (checked on the first and the last answers of "
        "every slice)"
    )
    print()
    header = (
        f"{'in flight':>9}  {'rpc':<11}  {'calls':>7}  {'calls/s':>8}  {'slices min-max':>14}  "
        f"{'p50 ms':>7}  {'p99 ms':>7}  {'server CPU':>10}  {'client CPU':>10}  "
        f"{'server us/call':>14}"
    )
    print(header)
    print("-" * len(header))
    for concurrency in args.concurrency:
        for rpc in RPCS:
            entry = figures[(rpc, concurrency)]
            assert entry.latencies is not None
            assert entry.slice_rates is not None
            spread = f"{min(entry.slice_rates):.0f}-{max(entry.slice_rates):.0f}"
            server_share = entry.server_cpu / entry.seconds * 100
            client_share = entry.client_cpu / entry.seconds * 100
            per_call = entry.server_cpu / entry.calls * 1e6 if entry.calls else 0.0
            print(
                f"{concurrency:>9}  {rpc:<11}  {entry.calls:>7}  {entry.throughput:>8.0f}  "
                f"{spread:>14}  "
                f"{percentile(entry.latencies, 0.50):>7.3f}  "
                f"{percentile(entry.latencies, 0.99):>7.3f}  "
                f"{server_share:>9.0f}%  {client_share:>9.0f}%  {per_call:>14.0f}"
            )
    print("(CPU: % of one core over the measured time; 100% = one core busy)")
    print()
    for concurrency in args.concurrency:
        ratio = (
            figures[("ResolveTool", concurrency)].throughput
            / figures[("Check", concurrency)].throughput
        )
        verdict = "meets" if ratio >= args.target else "BELOW"
        print(
            f"ResolveTool / Check throughput at {concurrency:>2} in flight: {ratio:.2f} "
            f"({verdict} the {args.target:.2f} target)"
        )
    for concurrency in args.concurrency:
        ratio = (
            figures[("ResolveTool+obs", concurrency)].throughput
            / figures[("ResolveTool", concurrency)].throughput
        )
        verdict = "meets" if ratio >= args.observed_target else "BELOW"
        print(
            f"ResolveTool observability on / off at {concurrency:>2} in flight: {ratio:.2f} "
            f"({verdict} the {args.observed_target:.2f} target)"
        )
    print(
        f"observed server: {observed.spans} spans reached the OTLP receiver; its /metrics counted "
        f"{observed.resolve_calls:.0f} ResolveTool calls handled"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="measured time per RPC and concurrency"
    )
    parser.add_argument("--slices", type=int, default=10, help="alternating slices per phase")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up per RPC and concurrency")
    parser.add_argument(
        "--concurrency",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[1, 16],
        help="comma-separated calls in flight (default 1,16)",
    )
    parser.add_argument("--clients", type=int, default=1, help="client processes")
    parser.add_argument(
        "--max-calls", type=int, default=500_000, help="cap per RPC and concurrency"
    )
    parser.add_argument("--target", type=float, default=0.8, help="ResolveTool/Check ratio")
    parser.add_argument(
        "--observed-target",
        type=float,
        default=0.9,
        help="ResolveTool with observability on / off ratio",
    )
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="let the OS place the processes (default: server on CPU 0, clients on CPU 1)",
    )
    parser.add_argument(
        "--sample-ratio",
        type=float,
        default=0.01,
        help="the observed server's trace sampling ratio (parentbased_traceidratio)",
    )
    for server in ("plain", "observed"):
        parser.add_argument(
            f"--{server}-env",
            type=lambda text: tuple(text.split("=", 1)),
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help=f"an environment variable for the {server} server (repeatable)",
        )
    parser.add_argument("--client", help=argparse.SUPPRESS)  # internal: run as a client process
    args = parser.parse_args()
    args.plain_env, args.observed_env = dict(args.plain_env), dict(args.observed_env)
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    args.pin = args.pin and len(cpus) >= 2
    args.server_cpu = cpus[0] if args.pin else None
    args.client_cpu = cpus[1] if args.pin else None
    if args.client:
        client_main(args.client)
        return
    if args.clients < 1 or args.slices < 1 or min(args.concurrency) < 1:
        parser.error("--clients, --slices and every --concurrency must be at least 1")

    args.cores = nproc()
    if args.pin:  # the OTLP receiver in this process shares the clients' CPU
        os.sched_setaffinity(0, {args.client_cpu})
    receiver = SpanReceiver()
    metrics_address = f"127.0.0.1:{free_port()}"
    base_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AGENT_CONTAINERS_", "OTEL_")) and k != "OPENAI_API_KEY"
    }
    environments = {
        "plain": {**base_env, "AGENT_CONTAINERS_METRICS_LISTEN_ADDRESS": "", **args.plain_env},
        "observed": {
            **base_env,
            "AGENT_CONTAINERS_METRICS_LISTEN_ADDRESS": metrics_address,
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{receiver.port}",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": str(args.sample_ratio),
            **args.observed_env,
        },
    }
    with contextlib.ExitStack() as stack:
        stack.callback(receiver.stop)
        servers: dict[str, Server] = {}
        logs: dict[str, Path] = {}
        for name, env in environments.items():
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ac-bench-")))
            address = f"127.0.0.1:{free_port()}"
            logs[name] = workdir / "server.log"
            with logs[name].open("wb") as log_file:
                process = subprocess.Popen(
                    pinned(serve_command(), args.server_cpu),
                    cwd=workdir,
                    env={**env, "AGENT_CONTAINERS_LISTEN_ADDRESS": address},
                    stdout=log_file,
                    stderr=log_file,
                )
            stack.callback(stop_server, process)
            wait_serving(address, process, logs[name])
            servers[name] = Server(name, address, process.pid, prepare(address))
        outputs = run_clients(args, servers)
        for name, server in servers.items():
            if not Path(f"/proc/{server.pid}").exists():
                sys.exit(f"the {name} server exited during the run:\n{tail(logs[name])}")
        observed = ObservedFigures(
            spans=receiver.wait_for_spans(), resolve_calls=handled_calls(metrics_address)
        )
        report(args, aggregate(outputs), servers, observed)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- observability: where the observed server's spans and metrics go ----------------------


@dataclass(frozen=True)
class ObservedFigures:
    spans: int
    resolve_calls: float


class SpanReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace receiver that counts the spans it is sent and keeps nothing else."""

    def __init__(self) -> None:
        self.spans = 0
        self._lock = threading.Lock()
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=2),
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
        )
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        count = sum(
            len(scope.spans)
            for resource in request.resource_spans
            for scope in resource.scope_spans
        )
        with self._lock:
            self.spans += count
        return trace_service_pb2.ExportTraceServiceResponse()

    def wait_for_spans(self, seconds: float = 10.0) -> int:
        """The spans received once the exporter has flushed (its batches leave every 5 s)."""
        deadline = time.monotonic() + seconds
        last = -1
        while time.monotonic() < deadline and self.spans != last:
            last = self.spans
            time.sleep(6)
        return self.spans

    def stop(self) -> None:
        self._server.stop(None)


def handled_calls(metrics_address: str) -> float:
    """ResolveTool calls the observed server's /metrics says it handled."""
    with urllib.request.urlopen(f"http://{metrics_address}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "grpc_server_handled_total"
        and sample.labels.get("grpc_method") == "ResolveTool"
    )


if __name__ == "__main__":
    main()
