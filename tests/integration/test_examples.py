"""The README's Python example runs against a real server."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.support.service import RunningService

ROOT = Path(__file__).resolve().parents[2]


async def test_python_quickstart(service: RunningService) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "examples" / "containers_quickstart.py"),
        "--address",
        f"127.0.0.1:{service.server.port}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()
    lines = stdout.decode().splitlines()
    assert lines[0].startswith("created ")
    assert lines[0].endswith("CONTAINER_STATE_RUNNING")
    assert lines[-1] == "deleted: CONTAINER_STATE_DELETED"
    assert service.emulator.state.calls["containers.create"] == 1
    assert service.emulator.state.containers == {}
