"""The resolution policy, without I/O: candidates, fitness, margin, fallbacks, errors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from agent_containers.domain.containers import ContainerStatus
from agent_containers.domain.errors import FailedPrecondition
from agent_containers.domain.tools import (
    Candidate,
    ContainerSnapshot,
    FallbackPolicy,
    FallbackReason,
    ResolutionPolicy,
    ToolConfig,
    ToolMode,
    ToolRequest,
    ToolSource,
    decide,
    facts_age_exceeds,
    first_candidate,
    unfit_reason,
    validate_agent_key,
    validate_config,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
MARGIN = timedelta(seconds=60)
ID = uuid.uuid4()


def policy(fallback: FallbackPolicy = FallbackPolicy.AUTO) -> ResolutionPolicy:
    return ResolutionPolicy(
        auto_memory_tier="1g",
        allowed_memory_tiers=("1g", "4g"),
        fallback_policy=fallback,
        expiry_margin=MARGIN,
    )


def snapshot(
    status: ContainerStatus = ContainerStatus.RUNNING, left: timedelta = timedelta(minutes=10)
) -> ContainerSnapshot:
    return ContainerSnapshot(ID, "cntr_1", status, NOW + left)


def request(mode: ToolMode = ToolMode.UNSPECIFIED, **config: object) -> ToolRequest:
    return ToolRequest("agent", "code_interpreter", ToolConfig(mode=mode, **config))  # type: ignore[arg-type]


def test_the_first_present_candidate_decides() -> None:
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert first_candidate(a, b, c) == Candidate(ToolSource.OVERRIDE, a)
    assert first_candidate(None, b, c) == Candidate(ToolSource.SPEC, b)
    assert first_candidate(None, None, c) == Candidate(ToolSource.BINDING, c)
    assert first_candidate(None, None, None) is None


@pytest.mark.parametrize(
    ("found", "reason"),
    [
        (None, FallbackReason.CONTAINER_NOT_FOUND),
        (snapshot(ContainerStatus.EXPIRED), FallbackReason.CONTAINER_EXPIRED),
        (snapshot(ContainerStatus.DELETED), FallbackReason.CONTAINER_NOT_RUNNING),
        (snapshot(ContainerStatus.CREATING), FallbackReason.CONTAINER_NOT_RUNNING),
        (snapshot(left=timedelta(0)), FallbackReason.CONTAINER_EXPIRED),
        (snapshot(left=MARGIN), FallbackReason.CONTAINER_EXPIRING),
        (snapshot(left=MARGIN + timedelta(seconds=1)), None),
    ],
)
def test_fitness(found: ContainerSnapshot | None, reason: FallbackReason | None) -> None:
    assert unfit_reason(found, NOW, MARGIN) == reason


def test_live_candidate_is_explicit() -> None:
    resolved = decide(request(), Candidate(ToolSource.BINDING, ID), snapshot(), NOW, policy())
    assert (resolved.mode, resolved.source) == (ToolMode.EXPLICIT, ToolSource.BINDING)
    assert resolved.tool_definition == {"type": "code_interpreter", "container": "cntr_1"}
    assert resolved.fallback_reason is None


def test_nothing_named_is_auto_without_a_reason() -> None:
    resolved = decide(request(file_ids=("file-1",)), None, None, NOW, policy())
    assert resolved.source is ToolSource.AUTO
    assert resolved.fallback_reason is None
    assert resolved.tool_definition["container"] == {
        "type": "auto",
        "memory_limit": "1g",
        "file_ids": ["file-1"],
    }


def test_dead_candidate_falls_back_with_its_reason() -> None:
    candidate = Candidate(ToolSource.SPEC, ID)
    resolved = decide(request(), candidate, snapshot(left=timedelta(seconds=5)), NOW, policy())
    assert resolved.fallback_reason is FallbackReason.CONTAINER_EXPIRING
    assert str(ID) in resolved.fallback_detail
    assert "(spec)" in resolved.fallback_detail


@pytest.mark.parametrize(
    ("candidate", "found", "reason"),
    [
        (None, None, "BINDING_REQUIRED"),
        (Candidate(ToolSource.BINDING, ID), snapshot(ContainerStatus.EXPIRED), "CONTAINER_EXPIRED"),
        (Candidate(ToolSource.BINDING, ID), snapshot(left=timedelta(1)), None),
        (Candidate(ToolSource.OVERRIDE, ID), None, "BINDING_REQUIRED"),
    ],
)
def test_forced_explicit_under_the_error_policy(
    candidate: Candidate | None, found: ContainerSnapshot | None, reason: str | None
) -> None:
    forced = request(ToolMode.EXPLICIT)
    if reason is None:
        assert decide(forced, candidate, found, NOW, policy(FallbackPolicy.ERROR)).container
        return
    with pytest.raises(FailedPrecondition) as refused:
        decide(forced, candidate, found, NOW, policy(FallbackPolicy.ERROR))
    assert refused.value.reason == reason
    assert refused.value.violations[0].subject == "agents/agent"


def test_forced_explicit_under_the_auto_policy_falls_back() -> None:
    resolved = decide(request(ToolMode.EXPLICIT), None, None, NOW, policy())
    assert resolved.fallback_reason is FallbackReason.NO_BINDING


def test_agent_keys() -> None:
    assert validate_agent_key("a.b-c_D9") == []
    assert validate_agent_key("a" * 64) == []
    for bad in ("", "a" * 65, "a b", "a/b", "é"):
        assert validate_agent_key(bad)


def test_config_rules() -> None:
    assert validate_config(ToolConfig(memory_tier="4g"), policy(), "config") == []
    fields = [
        v.field
        for v in validate_config(
            ToolConfig(memory_tier="64g", file_ids=("x",) * 51, container_id="nope"),
            policy(),
            "config",
        )
    ]
    assert fields[0] == "config.memory_tier"
    assert "config.file_ids" in fields
    assert "config.file_ids[0]" in fields
    assert fields[-1] == "config.container_id"


def test_liveness_facts_have_an_age() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    bound = timedelta(seconds=30)

    def running(verified_at: datetime | None) -> ContainerSnapshot:
        return ContainerSnapshot(
            uuid.uuid4(), "cntr_1", ContainerStatus.RUNNING, now + timedelta(hours=1), verified_at
        )

    assert not facts_age_exceeds(running(now - timedelta(seconds=30)), None, now, bound)
    assert facts_age_exceeds(running(now - timedelta(seconds=31)), None, now, bound)
    assert facts_age_exceeds(running(None), None, now, bound)
    # A complete reconciler pass confirms what it did not change.
    assert not facts_age_exceeds(running(None), now - timedelta(seconds=5), now, bound)
    # Only a live verdict needs fresh facts: a dead one is never handed out anyway.
    expired = ContainerSnapshot(uuid.uuid4(), "cntr_2", ContainerStatus.EXPIRED, None, None)
    assert not facts_age_exceeds(expired, None, now, bound)
