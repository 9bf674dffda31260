"""Containers: the states a container goes through, and the rules about them.

A container's life is ``CREATING -> RUNNING -> EXPIRED | DELETED``, plus ``FAILED`` when its
creation failed upstream. Pure types and rules only: no I/O here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from agent_containers.domain.create_options import (
    DISABLED,
    NetworkPolicy,
    Skill,
    network_policy_violations,
    skill_violations,
)
from agent_containers.domain.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    MemoryTierNotAllowed,
    PreconditionViolation,
)


class ContainerStatus(StrEnum):
    """Where a container is in its life; stored as its value in ``containers.status``."""

    CREATING = "CREATING"
    RUNNING = "RUNNING"
    EXPIRED = "EXPIRED"
    DELETED = "DELETED"
    FAILED = "FAILED"


MEMORY_TIERS = ("1g", "4g", "16g", "64g")
# OpenAI takes names of letters, digits, spaces, dots, dashes and underscores; a name that
# starts with a letter or digit stays readable in listings and logs.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,127}")
FILE_ID_PATTERN = re.compile(r"file-[A-Za-z0-9_-]{1,128}")
MAX_FILE_IDS = 50
MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY_LENGTH = 64
MAX_METADATA_VALUE_LENGTH = 512
# NUL cannot be stored in PostgreSQL's JSONB; no control character belongs in a label.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
LIVE_STATUSES = frozenset({ContainerStatus.CREATING, ContainerStatus.RUNNING})


UPSTREAM_NAME_PREFIX = "ac-"
ACTIVITY_RESOLUTION = timedelta(seconds=1)
"""Activity this close to the last recorded is not written again: a burst of file operations
costs one write, and the recorded expiry is early by less than this (never late, so resolution
errs on the safe side)."""


def upstream_name(container_id: uuid.UUID) -> str:
    """The name a container gets upstream: unique across tenants (who share one API key), and
    findable again when a create's outcome is unknown (a timeout, a crash)."""
    return f"{UPSTREAM_NAME_PREFIX}{container_id}"


def container_id_of_upstream_name(name: str) -> uuid.UUID | None:
    """The container id an upstream name was made from, or None for a name not of ours."""
    if not name.startswith(UPSTREAM_NAME_PREFIX):
        return None
    try:
        container_id = uuid.UUID(name[len(UPSTREAM_NAME_PREFIX) :])
    except ValueError:
        return None
    return container_id if upstream_name(container_id) == name else None


@dataclass(frozen=True)
class Container:
    """A container as the service knows it: what services return and the API shows."""

    id: uuid.UUID
    tenant_id: str
    owner_user_id: str
    name: str
    memory_tier: str
    status: ContainerStatus
    expiry_minutes: int
    metadata: Mapping[str, str]
    openai_id: str | None
    last_active_at: datetime | None
    refreshed_at: datetime | None
    """When upstream last confirmed what this copy says."""
    failure_reason: str | None
    request_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    initial_file_ids: tuple[str, ...] = ()
    network_policy: NetworkPolicy = DISABLED
    """As recorded: secret names, never their values."""
    skills: tuple[Skill, ...] = ()
    """As recorded: inline skills without their bundles."""

    @property
    def expire_time(self) -> datetime | None:
        """When the container expires unless used again (as last seen)."""
        return expire_time(self.last_active_at, self.expiry_minutes)

    def log_fields(self) -> dict[str, str | None]:
        """What every lifecycle log line says of the container it concerns."""
        return {
            "tenant_id": self.tenant_id,
            "container_id": str(self.id),
            "openai_id": self.openai_id,
        }

    def activity_worth_recording(self, now: datetime) -> bool:
        """Whether activity at `now` moves the recorded expiry enough to be written."""
        return self.last_active_at is None or now - self.last_active_at >= ACTIVITY_RESOLUTION


@dataclass(frozen=True)
class UpstreamFacts:
    """What upstream said about a container at one moment."""

    openai_id: str
    last_active_at: datetime | None
    expiry_minutes: int | None
    expired: bool


@dataclass(frozen=True)
class ContainerPolicy:
    """The limits a tenant's containers are held to."""

    default_memory_tier: str
    allowed_memory_tiers: tuple[str, ...]
    default_expiry_minutes: int
    max_expiry_minutes: int
    max_containers: int
    allowed_network_domains: tuple[str, ...] = ()
    """Patterns the domains of a network allowlist must match (empty: no network access)."""


@dataclass(frozen=True)
class ContainerDraft:
    """A create request as the caller sent it (zero values mean "not given").

    `read_violations` are what reading the request already found wrong (an enum number this
    server does not know, read as "not given"): validation reports them with the rest.
    """

    name: str
    memory_tier: str = ""
    expiry_minutes: int = 0
    metadata: dict[str, str] = field(default_factory=dict)
    file_ids: tuple[str, ...] = ()
    request_id: str = ""
    network_policy: NetworkPolicy = DISABLED
    skills: tuple[Skill, ...] = ()
    read_violations: tuple[FieldViolation, ...] = ()


@dataclass(frozen=True)
class ContainerSpec:
    """A validated create request with every default applied."""

    name: str
    memory_tier: str
    expiry_minutes: int
    metadata: dict[str, str]
    file_ids: tuple[str, ...]
    request_id: uuid.UUID | None
    network_policy: NetworkPolicy = DISABLED
    """With its secret values: for upstream only."""
    skills: tuple[Skill, ...] = ()
    """With inline bundles: for upstream only."""


def validate_draft(draft: ContainerDraft, policy: ContainerPolicy) -> ContainerSpec:
    """Checks every field of a create request; reports all violations at once."""
    violations = list(draft.read_violations)
    tier_not_allowed = False

    if not draft.name:
        violations.append(FieldViolation("container.name", "is required"))
    elif not NAME_PATTERN.fullmatch(draft.name):
        violations.append(
            FieldViolation(
                "container.name",
                "must be 1-128 characters of letters, digits, space, '.', '_' and '-', "
                "starting with a letter or digit",
            )
        )

    tier = draft.memory_tier or policy.default_memory_tier
    if tier not in MEMORY_TIERS:
        violations.append(FieldViolation("container.memory_tier", f"unknown tier {tier!r}"))
    elif tier not in policy.allowed_memory_tiers:
        tier_not_allowed = True
        allowed = ", ".join(policy.allowed_memory_tiers)
        violations.append(
            FieldViolation("container.memory_tier", f"tier {tier} is not allowed; use {allowed}")
        )

    minutes = draft.expiry_minutes or policy.default_expiry_minutes
    if draft.expiry_minutes < 0 or minutes > policy.max_expiry_minutes:
        violations.append(
            FieldViolation(
                "container.expires_after_minutes",
                f"must be between 1 and {policy.max_expiry_minutes} (0 means the default)",
            )
        )

    violations.extend(_metadata_violations(draft.metadata))

    if len(draft.file_ids) > MAX_FILE_IDS:
        violations.append(FieldViolation("file_ids", f"at most {MAX_FILE_IDS} files"))
    for index, file_id in enumerate(draft.file_ids):
        if not FILE_ID_PATTERN.fullmatch(file_id):
            violations.append(
                FieldViolation(f"file_ids[{index}]", "must be an OpenAI file id like file-abc123")
            )

    violations += network_policy_violations(
        draft.network_policy, policy.allowed_network_domains, "container.network_policy"
    )
    violations += skill_violations(draft.skills, "container.skills")

    request_id: uuid.UUID | None = None
    if draft.request_id:
        try:
            request_id = uuid.UUID(draft.request_id)
        except ValueError:
            violations.append(FieldViolation("request_id", "must be a UUID"))

    if violations:
        if tier_not_allowed and len(violations) == 1:
            raise MemoryTierNotAllowed(violations)
        raise InvalidArgument(violations)
    return ContainerSpec(
        name=draft.name,
        memory_tier=tier,
        expiry_minutes=minutes,
        metadata=dict(draft.metadata),
        file_ids=draft.file_ids,
        request_id=request_id,
        network_policy=draft.network_policy,
        skills=draft.skills,
    )


def _metadata_violations(metadata: dict[str, str]) -> list[FieldViolation]:
    violations: list[FieldViolation] = []
    if len(metadata) > MAX_METADATA_PAIRS:
        violations.append(
            FieldViolation("container.metadata", f"at most {MAX_METADATA_PAIRS} pairs")
        )
    for key, value in metadata.items():
        if _CONTROL_CHARACTERS.search(key) or _CONTROL_CHARACTERS.search(value):
            violations.append(
                FieldViolation(
                    f"container.metadata[{key[:MAX_METADATA_KEY_LENGTH]!r}]",
                    "keys and values must not contain control characters",
                )
            )
        if not 1 <= len(key) <= MAX_METADATA_KEY_LENGTH:
            violations.append(
                FieldViolation(
                    f"container.metadata[{key[:MAX_METADATA_KEY_LENGTH]!r}]",
                    f"keys must be 1-{MAX_METADATA_KEY_LENGTH} characters",
                )
            )
        if len(value) > MAX_METADATA_VALUE_LENGTH:
            violations.append(
                FieldViolation(
                    f"container.metadata[{key[:MAX_METADATA_KEY_LENGTH]!r}]",
                    f"values must be at most {MAX_METADATA_VALUE_LENGTH} characters",
                )
            )
    return violations


def parse_container_id(value: str, field_name: str = "id") -> uuid.UUID:
    """Parses a container id from a request, or reports the field as malformed."""
    try:
        return uuid.UUID(value)
    except ValueError:
        message = "is required" if not value else "must be a container id (a UUID)"
        raise InvalidArgument([FieldViolation(field_name, message)]) from None


def not_running(
    container_id: uuid.UUID, status: ContainerStatus, needed_for: str
) -> FailedPrecondition:
    """The error for a call that needs a RUNNING container and found it in another state."""
    reason = "CONTAINER_EXPIRED" if status is ContainerStatus.EXPIRED else "CONTAINER_NOT_RUNNING"
    return FailedPrecondition(
        f"container {container_id} is {status.value}; {needed_for} need a RUNNING container",
        [PreconditionViolation("STATE", f"containers/{container_id}", f"state is {status.value}")],
        reason=reason,
    )


def expire_time(last_active_at: datetime | None, minutes: int) -> datetime | None:
    """When a container expires: `minutes` after it was last active."""
    return None if last_active_at is None else last_active_at + timedelta(minutes=minutes)


def is_overdue(status: ContainerStatus, expires_at: datetime | None, now: datetime) -> bool:
    """A RUNNING container whose expiry time has passed, whatever upstream last said."""
    return status is ContainerStatus.RUNNING and expires_at is not None and expires_at <= now
