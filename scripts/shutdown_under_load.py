"""SIGTERM to a real `agent-containers serve` with ~200 calls in flight; how every call ended.

Starts the command on its defaults (SQLite in a temporary directory, the in-process emulator, the
grace derived from the default 30 s timeout) but for a free loopback port and a short drain, keeps
`--movers` + `--stubborn` calls in flight (ResolveTool and GetContainer, back to back), sends
SIGTERM after `--load-seconds`, and prints the counts: calls started, in flight at the signal,
started before it and how many of those succeeded, OK, UNAVAILABLE (refused by the server with
ErrorInfo SHUTTING_DOWN, or from a channel that found the server gone), CANCELLED, other.
Movers stop at their first UNAVAILABLE, as behind a balancer; stubborn clients keep sending until
their channel fails (after the refusal's RetryInfo delay, or at once with --never-pause, which
keeps the server refusing until the grace runs out: 65 s on the defaults).

Exits 1 when any call was CANCELLED or the server did not exit 0. Run from the repository root:

    .venv/bin/python scripts/shutdown_under_load.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the load generator is the one tests/integration uses

from tests.support.load import sigterm_under_load  # noqa: E402
from tests.support.processes import CLI, clean_env, free_port, spawned, wait_serving  # noqa: E402


async def main(args: argparse.Namespace) -> int:
    address = f"127.0.0.1:{free_port()}"
    with tempfile.TemporaryDirectory(prefix="shutdown-under-load-") as directory:
        env = clean_env(
            AGENT_CONTAINERS_LISTEN_ADDRESS=address,
            AGENT_CONTAINERS_SHUTDOWN_DRAIN_SECONDS=str(args.drain_seconds),
        )
        async with spawned(*CLI, "serve", cwd=directory, env=env, stderr=-1) as child:
            await wait_serving(address, child)
            tally = await sigterm_under_load(
                child,
                address,
                movers=args.movers,
                stubborn=args.stubborn,
                pause=not args.never_pause,
                load_seconds=args.load_seconds,
                limit_seconds=300,
            )
            returncode = await child.exited(within=300)
    counts = tally.counts()
    print(json.dumps({**counts, "exit_code": returncode}, indent=2))
    for line in child.stderr.decode().splitlines():
        if '"agent_containers.server"' in line:
            print(line)
    return 0 if counts["cancelled"] == 0 and returncode == 0 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--movers", type=int, default=196, help="clients that leave at UNAVAILABLE")
    parser.add_argument("--stubborn", type=int, default=4, help="clients that keep sending")
    parser.add_argument("--never-pause", action="store_true", help="stubborn ignore RetryInfo")
    parser.add_argument("--drain-seconds", type=float, default=0.5)
    parser.add_argument("--load-seconds", type=float, default=2.0, help="load before SIGTERM")
    sys.exit(asyncio.run(main(parser.parse_args())))
