"""spawned() leaves nothing behind, even a child that ignores SIGTERM and SIGINT."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from tests.support.processes import spawned

STUBBORN_CHILD = (
    "import signal, time; "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(60)"
)


async def test_a_child_that_ignores_sigterm_is_killed_after_the_bound_and_reaped() -> None:
    loop = asyncio.get_running_loop()
    async with spawned(
        sys.executable, "-c", STUBBORN_CHILD, stop_within=0.5, stdout=asyncio.subprocess.PIPE
    ) as child:
        assert child.process.stdout is not None
        assert await child.process.stdout.readline() == b"ready\n"
        left_at = loop.time()
    assert loop.time() - left_at < 10
    assert child.killed
    assert child.returncode == -signal.SIGKILL
    try:
        os.kill(child.pid, 0)
        raise AssertionError(f"process {child.pid} is still there")
    except ProcessLookupError:
        pass


async def test_a_failing_block_still_stops_its_child() -> None:
    try:
        async with spawned(sys.executable, "-c", "import time; time.sleep(60)") as child:
            raise RuntimeError("the test failed")
    except RuntimeError:
        pass
    assert child.returncode == -signal.SIGTERM
    assert not child.killed
