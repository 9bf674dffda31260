"""Pure rules of containers: validation, defaults, expiry."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from agent_containers.domain.containers import (
    ACTIVITY_RESOLUTION,
    Container,
    ContainerDraft,
    ContainerPolicy,
    ContainerStatus,
    expire_time,
    is_overdue,
    parse_container_id,
    validate_draft,
)
from agent_containers.domain.errors import InvalidArgument, MemoryTierNotAllowed

POLICY = ContainerPolicy(
    default_memory_tier="1g",
    allowed_memory_tiers=("1g", "4g"),
    default_expiry_minutes=20,
    max_expiry_minutes=60,
    max_containers=5,
)


def test_defaults_apply() -> None:
    spec = validate_draft(ContainerDraft(name="a"), POLICY)
    assert (spec.memory_tier, spec.expiry_minutes, spec.request_id) == ("1g", 20, None)


def test_explicit_values_are_kept() -> None:
    request_id = str(uuid.uuid4())
    spec = validate_draft(
        ContainerDraft(
            name="Data 1.x_y-z",
            memory_tier="4g",
            expiry_minutes=60,
            metadata={"k": "v"},
            file_ids=("file-abc", "file-X_1"),
            request_id=request_id,
        ),
        POLICY,
    )
    assert spec.memory_tier == "4g"
    assert spec.expiry_minutes == 60
    assert spec.file_ids == ("file-abc", "file-X_1")
    assert spec.request_id == uuid.UUID(request_id)


@pytest.mark.parametrize("name", ["n" * 128, "a", "0 b"])
def test_names_within_rules(name: str) -> None:
    assert validate_draft(ContainerDraft(name=name), POLICY).name == name


@pytest.mark.parametrize("name", ["", "n" * 129, "-a", "a\nb", "a/b", "é"])
def test_names_outside_rules(name: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        validate_draft(ContainerDraft(name=name), POLICY)
    assert [v.field for v in refused.value.violations] == ["container.name"]


def test_a_known_tier_outside_the_allowed_list_has_its_own_reason() -> None:
    with pytest.raises(MemoryTierNotAllowed) as refused:
        validate_draft(ContainerDraft(name="a", memory_tier="16g"), POLICY)
    assert refused.value.reason == "MEMORY_TIER_NOT_ALLOWED"


def test_an_unknown_tier_is_a_malformed_field() -> None:
    with pytest.raises(InvalidArgument) as refused:
        validate_draft(ContainerDraft(name="a", memory_tier="2g"), POLICY)
    assert refused.value.reason == "INVALID_FIELD"


def test_every_violation_is_reported() -> None:
    with pytest.raises(InvalidArgument) as refused:
        validate_draft(
            ContainerDraft(
                name="",
                expiry_minutes=61,
                metadata={"x" * 65: "v" * 513},
                file_ids=("nope",),
                request_id="r",
            ),
            POLICY,
        )
    fields = [v.field for v in refused.value.violations]
    assert fields[:2] == ["container.name", "container.expires_after_minutes"]
    assert len([f for f in fields if f.startswith("container.metadata")]) == 2
    assert fields[-2:] == ["file_ids[0]", "request_id"]


def test_expiry_arithmetic() -> None:
    last = datetime(2026, 1, 1, tzinfo=UTC)
    expires = expire_time(last, 20)
    assert expires == last + timedelta(minutes=20)
    assert expire_time(None, 20) is None
    assert not is_overdue(ContainerStatus.RUNNING, expires, expires - timedelta(seconds=1))
    assert is_overdue(ContainerStatus.RUNNING, expires, expires)
    assert not is_overdue(ContainerStatus.DELETED, expires, expires + timedelta(days=1))


def test_activity_is_written_once_per_resolution() -> None:
    last = datetime(2026, 1, 1, tzinfo=UTC)
    container = Container(
        id=uuid.uuid4(),
        tenant_id="t",
        owner_user_id="u",
        name="n",
        memory_tier="1g",
        status=ContainerStatus.RUNNING,
        expiry_minutes=20,
        metadata={},
        openai_id="cntr_1",
        last_active_at=last,
        refreshed_at=last,
        failure_reason=None,
        request_id=None,
        created_at=last,
        updated_at=last,
        deleted_at=None,
    )
    assert not container.activity_worth_recording(last)
    assert not container.activity_worth_recording(last + ACTIVITY_RESOLUTION / 2)
    assert container.activity_worth_recording(last + ACTIVITY_RESOLUTION)
    never_active = dataclasses.replace(container, last_active_at=None)
    assert never_active.activity_worth_recording(last)


@pytest.mark.parametrize("value", ["", "nope", "123"])
def test_container_ids_are_uuids(value: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_container_id(value)
