"""SIGTERM under load drops nothing: the real `agent-containers serve`, ~150 calls in flight.

After SIGTERM the server keeps serving for the drain, then refuses new calls with UNAVAILABLE
(retryable, ErrorInfo SHUTTING_DOWN, RetryInfo) while the calls in flight finish, and only then
stops the gRPC server. No call is ever CANCELLED (clients do not retry that), and it exits 0.

Before the shutdown gate, grpc.aio's stop() cancelled the calls it had accepted but not yet
dispatched: 40 to 74 CANCELLED per run of this test, and calls started before SIGTERM failed.
"""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from tests.support.load import SHUTTING_DOWN, sigterm_under_load
from tests.support.processes import CLI, clean_env, free_port, spawned, wait_serving

MOVERS = 150
STUBBORN = 4


@pytest.mark.parametrize(
    "pause",
    [True, False],
    ids=["stubborn-clients-wait-retry-info", "stubborn-clients-never-pause"],
)
async def test_sigterm_under_load_cancels_nothing(tmp_path: Path, pause: bool) -> None:
    """Movers leave at their first UNAVAILABLE, as behind a balancer; a few stubborn clients keep
    sending until their channel fails. When they never pause, the server never sees a quiet
    moment and stops when the grace runs out, holding their last calls across its stop."""
    address = f"127.0.0.1:{free_port()}"
    env = clean_env(
        AGENT_CONTAINERS_LISTEN_ADDRESS=address,
        AGENT_CONTAINERS_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'shutdown.db'}",
        AGENT_CONTAINERS_SHUTDOWN_DRAIN_SECONDS="0.5",
        # The grace defaults to the longest operation's budget: 2 x 0.5 s + 5 s here. The load
        # (ResolveTool, GetContainer on a fresh row) does not call upstream.
        AGENT_CONTAINERS_OPENAI_TIMEOUT_SECONDS="0.5",
    )
    async with spawned(*CLI, "serve", cwd=tmp_path, env=env, stderr=-1) as child:
        await wait_serving(address, child)
        tally = await sigterm_under_load(
            child, address, movers=MOVERS, stubborn=STUBBORN, pause=pause
        )
        returncode = await child.exited(within=60)
    counts = tally.counts()
    log = child.stderr.decode()
    print("sigterm under load:", json.dumps(counts))
    print("\n".join(line for line in log.splitlines() if '"agent_containers.server"' in line))

    assert counts["cancelled"] == 0, counts
    assert not tally.others(), tally.others()  # every call that failed is UNAVAILABLE
    assert counts["ok_of_those"] == counts["started_before_signal"], counts
    assert returncode == 0, log
    assert not child.killed
    refused = [o for o in tally.outcomes if o.code is grpc.StatusCode.UNAVAILABLE and o.reason]
    assert len(refused) >= MOVERS, "the movers left before the server refused them"
    assert {o.reason for o in refused} == {SHUTTING_DOWN}
    assert all(o.retry_delay for o in refused)
    assert '"message": "stopped"' in log
