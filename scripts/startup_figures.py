"""Prints how long `agent-containers serve` takes to become SERVING, and its resident memory.

Runs the service on its embedded defaults (fresh SQLite file, in-process emulator) in a
temporary directory, as `make run` would, `--runs` times. Used by `make startup`.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def one_run() -> tuple[float, float]:
    address = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_CONTAINERS_")}
    env.pop("OPENAI_API_KEY", None)
    env["AGENT_CONTAINERS_LISTEN_ADDRESS"] = address
    with tempfile.TemporaryDirectory() as workdir:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "agent_containers.cli", "serve"],
            cwd=workdir,
            env=env,
            stderr=subprocess.DEVNULL,
        )
        try:
            with grpc.insecure_channel(address) as channel:
                health = health_pb2_grpc.HealthStub(channel)
                while True:
                    try:
                        reply = health.Check(health_pb2.HealthCheckRequest(), timeout=0.2)
                        if reply.status == health_pb2.HealthCheckResponse.SERVING:
                            break
                    except grpc.RpcError:
                        time.sleep(0.01)
                    if process.poll() is not None:
                        raise RuntimeError("the server exited")
            ready = time.perf_counter() - started
            time.sleep(1)  # let start-up allocations settle
            memory = rss_mib(process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    return ready, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    runs = [one_run() for _ in range(parser.parse_args().runs)]
    times = [r[0] for r in runs]
    memory = [r[1] for r in runs]
    print(f"runs: {len(runs)}  cores: {os.cpu_count()}  python: {sys.version.split()[0]}")
    print(
        f"start to SERVING: median {statistics.median(times):.2f} s "
        f"(min {min(times):.2f}, max {max(times):.2f})"
    )
    print(f"resident memory when serving: median {statistics.median(memory):.1f} MiB")


if __name__ == "__main__":
    main()
