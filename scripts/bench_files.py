"""Prints container-file throughput through the service next to the SDK talking to the same
emulator directly, and the service's peak memory while it moves a small and a large file.

Three processes on this machine: the Containers API emulator (`agent-containers emulator`), the
service (`agent-containers serve`, SQLite in a temporary directory, upstream the emulator), and
this client. Each transfer is timed whole (upload: first byte sent to the answer; download: the
call to the last byte); the figure is the median over `--runs`, after one transfer that warms
the connections. Two placements, each a separate run:
- `pinned` (as `make bench` places its processes): the service alone on one CPU, the emulator
  and the client on the other, in both the direct and the through-service runs. It stands for
  a deployment, where the service does not share its cores with its callers or upstream.
- `shared`: the OS places all three on the two CPUs. With two cores for three busy processes the
  through-service figure measures the CPU all three spend, not the service's throughput.
The baseline is the SDK as a runtime uses it by default; the SDK with its aiohttp transport (what
the service uses) is printed beside it. Memory is the service's VmHWM (its peak resident set since
start) read after the small files and again after the large ones: the difference is what a large
transfer costs beyond a small one. It asserts nothing.
Run: `make bench-files` (or `.venv/bin/python scripts/bench_files.py --help`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import openai
from agentcontainers.v1 import container_pb2, container_service_pb2, container_service_pb2_grpc
from bench import pinned
from google.api import httpbody_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

MIB = 1024 * 1024
CHUNK = 960 * 1024  # near the 1 MiB request limit: fewer messages per file
IDENTITY = (("x-tenant-id", "bench"), ("x-user-id", "bench"))
CLI = [sys.executable, "-m", "agent_containers.cli"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field}")


async def wait_serving(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(300):
            try:
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=0.5)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.1)
    raise RuntimeError("the service did not start")


async def pieces(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), CHUNK):
        yield data[start : start + CHUNK]


class Direct:
    """The SDK against the emulator, as a runtime without this service would do it."""

    def __init__(self, client: openai.AsyncOpenAI, container_id: str) -> None:
        self.client = client
        self.container_id = container_id

    async def upload(self, name: str, data: bytes) -> str:
        created = await self.client.containers.files.create(self.container_id, file=(name, data))
        return created.id

    async def download(self, file_id: str) -> int:
        received = 0
        async with self.client.containers.files.content.with_streaming_response.retrieve(
            file_id, container_id=self.container_id
        ) as response:
            async for piece in response.iter_bytes(CHUNK):
                received += len(piece)
        return received


class ThroughService:
    """The same transfers through the service's gRPC file RPCs."""

    def __init__(self, stub: container_service_pb2_grpc.ContainerServiceStub, container_id: str):
        self.stub = stub
        self.container_id = container_id

    async def upload(self, name: str, data: bytes) -> str:
        async def requests() -> AsyncIterator[container_service_pb2.UploadContainerFileRequest]:
            yield container_service_pb2.UploadContainerFileRequest(
                container_id=self.container_id, filename=name
            )
            async for piece in pieces(data):
                yield container_service_pb2.UploadContainerFileRequest(
                    content=httpbody_pb2.HttpBody(data=piece)
                )

        uploaded = await self.stub.UploadContainerFile(requests(), metadata=IDENTITY)
        return str(uploaded.id)

    async def download(self, file_id: str) -> int:
        received = 0
        call = self.stub.DownloadContainerFile(
            container_service_pb2.DownloadContainerFileRequest(
                container_id=self.container_id, file_id=file_id
            ),
            metadata=IDENTITY,
        )
        async for message in call:
            received += len(message.data)
        return received


async def timed_transfers(
    side: Direct | ThroughService, size: int, runs: int
) -> tuple[float, float]:
    """Median upload and download throughput (MiB/s) of a file of `size` bytes."""
    data = os.urandom(size)
    await side.download(await side.upload(f"warm-{size}.bin", data))
    ups, downs = [], []
    for run in range(runs):
        started = time.perf_counter()
        file_id = await side.upload(f"bench-{size}-{run}.bin", data)
        ups.append(size / MIB / (time.perf_counter() - started))
        started = time.perf_counter()
        assert await side.download(file_id) == size
        downs.append(size / MIB / (time.perf_counter() - started))
    return statistics.median(ups), statistics.median(downs)


async def run(args: argparse.Namespace, layout: str, measure_memory: bool) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    service_cpu = world_cpu = None
    if layout == "pinned":
        service_cpu, world_cpu = cpus[0], cpus[1]
        os.sched_setaffinity(0, {world_cpu})  # this client, with the emulator
    emulator_port, service_port = free_port(), free_port()
    base_url = f"http://127.0.0.1:{emulator_port}/v1"
    address = f"127.0.0.1:{service_port}"
    with tempfile.TemporaryDirectory() as directory:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("AGENT_CONTAINERS_") and key != "OPENAI_API_KEY"
        }
        emulator = await asyncio.create_subprocess_exec(
            *pinned([*CLI, "emulator", "--port", str(emulator_port)], world_cpu),
            env=env,
            stderr=asyncio.subprocess.DEVNULL,
        )
        service = await asyncio.create_subprocess_exec(
            *pinned([*CLI, "serve"], service_cpu),
            cwd=directory,
            env={
                **env,
                "AGENT_CONTAINERS_LISTEN_ADDRESS": address,
                "AGENT_CONTAINERS_UPSTREAM": "openai",
                "AGENT_CONTAINERS_OPENAI_API_KEY": "bench",
                "AGENT_CONTAINERS_OPENAI_BASE_URL": base_url,
                "AGENT_CONTAINERS_SHUTDOWN_DRAIN_SECONDS": "0",
                "AGENT_CONTAINERS_LOG_LEVEL": "WARNING",
            },
            stderr=asyncio.subprocess.DEVNULL,
        )
        default = openai.AsyncOpenAI(api_key="bench", base_url=base_url, max_retries=0, timeout=120)
        aiohttp = openai.AsyncOpenAI(
            api_key="bench",
            base_url=base_url,
            max_retries=0,
            http_client=openai.DefaultAioHttpClient(timeout=120),
        )
        try:
            await wait_serving(address)
            async with grpc.aio.insecure_channel(
                address, options=[("grpc.max_receive_message_length", 64 * MIB)]
            ) as channel:
                stub = container_service_pb2_grpc.ContainerServiceStub(channel)
                container = await stub.CreateContainer(
                    container_service_pb2.CreateContainerRequest(
                        container=container_pb2.Container(name="bench")
                    ),
                    metadata=IDENTITY,
                )
                sides: dict[str, Direct | ThroughService] = {
                    "SDK direct": Direct(default, container.openai_container_id),
                    "SDK + aiohttp": Direct(aiohttp, container.openai_container_id),
                    "service": ThroughService(stub, container.id),
                }
                placement = (
                    f"service alone on CPU {service_cpu}, emulator and client on CPU {world_cpu}"
                    if layout == "pinned"
                    else "the OS places all three processes"
                )
                print(f"\nplacement {layout}: {placement}")
                print(f"{'file':>8}  {'path':<14} {'upload MiB/s':>13} {'download MiB/s':>15}")
                ratios = []
                for size_mib in args.sizes:
                    size = int(size_mib * MIB)
                    figures = {}
                    for label, side in sides.items():
                        figures[label] = await timed_transfers(side, size, args.runs)
                        up, down = figures[label]
                        print(f"{size_mib:>6g} MiB  {label:<14} {up:>13.1f} {down:>15.1f}")
                    ratios.append(
                        (
                            size_mib,
                            figures["service"][0] / figures["SDK direct"][0],
                            figures["service"][1] / figures["SDK direct"][1],
                        )
                    )
                for size_mib, up, down in ratios:
                    print(
                        f"{layout}: service / SDK direct at {size_mib:g} MiB: "
                        f"upload {up:.2f}, download {down:.2f}"
                    )
                if measure_memory:
                    through = sides["service"]
                    assert isinstance(through, ThroughService)
                    small = await memory_after(through, service.pid, args.small_mib)
                    large = await memory_after(through, service.pid, args.large_mib)
                    print(
                        f"service peak RSS (VmHWM) after {args.small_mib} MiB files: "
                        f"{small / 1024:.1f} MiB; after {args.large_mib} MiB files: "
                        f"{large / 1024:.1f} MiB; difference {(large - small) / 1024:.1f} MiB"
                    )
        finally:
            os.sched_setaffinity(0, cpus)
            await default.close()
            await aiohttp.close()
            for process in (service, emulator):
                process.send_signal(signal.SIGTERM)
            for process in (service, emulator):
                try:
                    await asyncio.wait_for(process.wait(), 30)
                except TimeoutError:
                    process.kill()
                    await process.wait()


async def memory_after(through: ThroughService, pid: int, size_mib: int) -> int:
    """The service's VmHWM (KiB) after uploading and downloading a file of that size twice."""
    await timed_transfers(through, size_mib * MIB, 2)
    return status_kib(pid, "VmHWM")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 10, 50])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--small-mib", type=int, default=10)
    parser.add_argument("--large-mib", type=int, default=200)
    parser.add_argument(
        "--layouts", nargs="+", choices=["pinned", "shared"], default=["pinned", "shared"]
    )
    args = parser.parse_args()
    if len(os.sched_getaffinity(0)) < 2 and "pinned" in args.layouts:
        parser.error("the pinned placement needs two CPUs; use --layouts shared")
    versions = f"grpcio {grpc.__version__}, openai {openai.__version__}"
    print(
        f"agent-containers bench-files: {os.cpu_count()} cpus, Python "
        f"{sys.version.split()[0]}, {versions}; median of {args.runs} runs"
    )
    for index, layout in enumerate(args.layouts):
        asyncio.run(run(args, layout, measure_memory=index == 0))


if __name__ == "__main__":
    main()
