"""Time budgets: how long each operation may take, derived in this one place.

Every upstream operation is bounded by one total (the SDK's retries included), and every other
duration that depends on it follows from here: how long a create can be in flight (after which the
reconciler may settle its row), how long shutdown must wait for the calls in flight, and what the
deploy files give the process at SIGTERM. A test holds the deploy files to these numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

DATABASE_SLACK_SECONDS = 5.0
"""What an operation's transactions around its upstream calls may add (lock waits, commits)."""

TERMINATION_MARGIN_SECONDS = 5.0
"""Between the end of the shutdown grace and the orchestrator's SIGKILL: logs, pool, exit."""


@dataclass(frozen=True)
class TimeBudgets:
    """Every operation's total time, from the total one upstream call may take."""

    upstream_call: float
    """One upstream operation, retries included: the gateway cuts it off at this."""

    @property
    def create(self) -> float:
        """A whole create: reserve the row, one POST (never retried), one lookup by name when
        the POST's answer is unclear, settle the row."""
        return 2 * self.upstream_call + DATABASE_SLACK_SECONDS

    @property
    def delete(self) -> float:
        """A whole delete: the DELETE, a confirming read on an unclear answer, the row."""
        return 2 * self.upstream_call + DATABASE_SLACK_SECONDS

    @property
    def refresh(self) -> float:
        """A read that asks upstream, then writes what it learnt."""
        return self.upstream_call + DATABASE_SLACK_SECONDS

    @property
    def request(self) -> float:
        """The longest any one call's own work runs; what shutdown must wait for."""
        return max(self.create, self.delete, self.refresh)

    @property
    def create_in_flight(self) -> float:
        """A CREATING row younger than this may still have its create running somewhere."""
        return self.create

    def termination(self, *, pre_stop: float, drain: float, grace: float) -> float:
        """The least time an orchestrator must allow between SIGTERM and SIGKILL."""
        return pre_stop + drain + grace + TERMINATION_MARGIN_SECONDS
