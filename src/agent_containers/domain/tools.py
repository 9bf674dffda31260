"""Tool resolution: which `code_interpreter` tool an agent must run with now, and why.

Pure policy: the service finds the candidate container and its state; this module decides.
Order of candidates: the request's override, then the container the agent spec names, then the
agent's binding. The first one present decides: live, it is used; not live, resolution falls
back to auto (or fails, for a forced explicit mode under the ERROR policy). Nothing present: auto.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from agent_containers.domain.containers import (
    FILE_ID_PATTERN,
    MAX_FILE_IDS,
    MEMORY_TIERS,
    ContainerStatus,
)
from agent_containers.domain.errors import (
    FailedPrecondition,
    FieldViolation,
    PreconditionViolation,
)

CODE_INTERPRETER = "code_interpreter"
KNOWN_TOOLS = (CODE_INTERPRETER,)
AGENT_KEY_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class ToolMode(StrEnum):
    """How the agent's config asks for a container."""

    UNSPECIFIED = "UNSPECIFIED"  # explicit when a live container is named or bound, else auto
    AUTO = "AUTO"
    EXPLICIT = "EXPLICIT"  # forced: nothing live is a fallback (AUTO policy) or an error


class ToolSource(StrEnum):
    """Where the resolved container came from."""

    OVERRIDE = "OVERRIDE"
    SPEC = "SPEC"
    BINDING = "BINDING"
    AUTO = "AUTO"


class FallbackReason(StrEnum):
    """Why an explicit candidate was not used."""

    NO_BINDING = "NO_BINDING"
    CONTAINER_NOT_FOUND = "CONTAINER_NOT_FOUND"
    CONTAINER_EXPIRED = "CONTAINER_EXPIRED"
    CONTAINER_EXPIRING = "CONTAINER_EXPIRING"
    CONTAINER_NOT_RUNNING = "CONTAINER_NOT_RUNNING"


class FallbackPolicy(StrEnum):
    """What a forced explicit mode does when nothing live is there."""

    AUTO = "auto"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class ToolConfig:
    """The agent's configuration of the code interpreter (empty values mean "not given").

    `read_violations` are what reading the request already found wrong (an enum number this
    server does not know, read as "not given"): validation reports them with the rest.
    """

    mode: ToolMode = ToolMode.UNSPECIFIED
    memory_tier: str = ""
    file_ids: tuple[str, ...] = ()
    container_id: str = ""
    read_violations: tuple[FieldViolation, ...] = ()


@dataclass(frozen=True, slots=True)
class ToolRequest:
    """One tool to resolve for one agent."""

    agent_key: str
    tool: str
    config: ToolConfig
    container_override: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class ContainerSnapshot:
    """What resolution needs to know about a container: enough to judge it without I/O.

    Compared by identity: a snapshot is one reading of a row, and a new reading is a new one.
    """

    container_id: uuid.UUID
    openai_id: str | None
    status: ContainerStatus
    expire_time: datetime | None
    verified_at: datetime | None = None
    """When upstream last confirmed these facts (None: never)."""


def facts_age_exceeds(
    snapshot: ContainerSnapshot,
    verified_through: datetime | None,
    now: datetime,
    max_age: timedelta,
) -> bool:
    """Whether what is known of a RUNNING container is too old to hand it out on.

    `verified_through`: when the newest complete reconciliation pass started; every RUNNING row
    it did not change was confirmed as of then.
    """
    if snapshot.status is not ContainerStatus.RUNNING:
        return False  # only a live verdict can be wrong in a harmful way
    confirmed = max(
        (moment for moment in (snapshot.verified_at, verified_through) if moment is not None),
        default=None,
    )
    return confirmed is None or now - confirmed > max_age


@dataclass(frozen=True, slots=True)
class ResolutionPolicy:
    """The settings resolution follows."""

    auto_memory_tier: str
    allowed_memory_tiers: tuple[str, ...]
    fallback_policy: FallbackPolicy
    expiry_margin: timedelta


@dataclass(frozen=True, slots=True)
class Candidate:
    """An explicit container to consider, and where it came from."""

    source: ToolSource
    container_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class AutoContainer:
    """What an auto container is made with."""

    memory_tier: str
    file_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Resolution:
    """The answer: the tool as the Responses API takes it, and how it was chosen.

    Immutable and hashable: equal answers compare equal, so the API layer can reuse the reply it
    built for one (the hot path answers the same thing to the same agent run after run).
    """

    tool: str
    mode: ToolMode
    source: ToolSource
    container: ContainerSnapshot | None = None
    auto: AutoContainer | None = None
    fallback_reason: FallbackReason | None = None
    fallback_detail: str = ""
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Hashed once: the API layer looks its finished replies up by resolution on every call.
        key = (self.tool, self.mode, self.source, self.container, self.auto)
        object.__setattr__(self, "_hash", hash((*key, self.fallback_reason, self.fallback_detail)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def tool_definition(self) -> dict[str, Any]:
        """The tool dict for `tools=[...]` of the Responses API."""
        if self.container is not None and self.container.openai_id is not None:
            return explicit_tool(self.container.openai_id)
        assert self.auto is not None, "an answer without a live container is an auto one"
        return auto_tool(self.auto.memory_tier, self.auto.file_ids)


def validate_agent_key(agent_key: str, field: str = "agent_key") -> list[FieldViolation]:
    if AGENT_KEY_PATTERN.fullmatch(agent_key):
        return []
    return [FieldViolation(field, "must be 1-64 characters of letters, digits, '_', '.' and '-'")]


def parse_optional_container_id(
    value: str, field: str
) -> tuple[uuid.UUID | None, list[FieldViolation]]:
    if not value:
        return None, []
    try:
        return uuid.UUID(value), []
    except ValueError:
        return None, [FieldViolation(field, "must be a container id (a UUID)")]


def validate_config(
    config: ToolConfig, policy: ResolutionPolicy, prefix: str
) -> list[FieldViolation]:
    """Checks a code interpreter config; `prefix` is the config's path in the request."""
    violations = list(config.read_violations)
    if config.memory_tier:
        if config.memory_tier not in MEMORY_TIERS:
            violations.append(
                FieldViolation(f"{prefix}.memory_tier", f"unknown tier {config.memory_tier!r}")
            )
        elif config.memory_tier not in policy.allowed_memory_tiers:
            allowed = ", ".join(policy.allowed_memory_tiers)
            violations.append(
                FieldViolation(
                    f"{prefix}.memory_tier",
                    f"tier {config.memory_tier} is not allowed; use {allowed}",
                )
            )
    if len(config.file_ids) > MAX_FILE_IDS:
        violations.append(FieldViolation(f"{prefix}.file_ids", f"at most {MAX_FILE_IDS} files"))
    for index, file_id in enumerate(config.file_ids):
        if not FILE_ID_PATTERN.fullmatch(file_id):
            violations.append(
                FieldViolation(
                    f"{prefix}.file_ids[{index}]", "must be an OpenAI file id like file-abc123"
                )
            )
    violations.extend(parse_optional_container_id(config.container_id, f"{prefix}.container_id")[1])
    return violations


def first_candidate(
    override: uuid.UUID | None, spec: uuid.UUID | None, binding: uuid.UUID | None
) -> Candidate | None:
    """The candidate that decides: override, then spec, then binding."""
    for source, container_id in (
        (ToolSource.OVERRIDE, override),
        (ToolSource.SPEC, spec),
        (ToolSource.BINDING, binding),
    ):
        if container_id is not None:
            return Candidate(source, container_id)
    return None


def unfit_reason(
    snapshot: ContainerSnapshot | None, now: datetime, margin: timedelta
) -> FallbackReason | None:
    """Why the container cannot be handed out now; None when it can.

    A container that expires within the margin counts as expired: the run that receives it
    would otherwise find it gone halfway.
    """
    if snapshot is None:
        return FallbackReason.CONTAINER_NOT_FOUND
    if snapshot.status is ContainerStatus.EXPIRED:
        return FallbackReason.CONTAINER_EXPIRED
    if snapshot.status is not ContainerStatus.RUNNING or snapshot.openai_id is None:
        return FallbackReason.CONTAINER_NOT_RUNNING
    if snapshot.expire_time is None or snapshot.expire_time <= now:
        return FallbackReason.CONTAINER_EXPIRED
    if snapshot.expire_time - now <= margin:
        return FallbackReason.CONTAINER_EXPIRING
    return None


def auto_tool(memory_tier: str, file_ids: tuple[str, ...]) -> dict[str, Any]:
    container: dict[str, Any] = {"type": "auto", "memory_limit": memory_tier}
    if file_ids:
        container["file_ids"] = list(file_ids)
    return {"type": CODE_INTERPRETER, "container": container}


def explicit_tool(openai_id: str) -> dict[str, Any]:
    return {"type": CODE_INTERPRETER, "container": openai_id}


_DETAILS = {
    FallbackReason.NO_BINDING: "no container was named and the agent has no binding",
    FallbackReason.CONTAINER_NOT_FOUND: "container {id} does not exist",
    FallbackReason.CONTAINER_EXPIRED: "container {id} has expired",
    FallbackReason.CONTAINER_EXPIRING: "container {id} expires within the safety margin",
    FallbackReason.CONTAINER_NOT_RUNNING: "container {id} is {status}",
}


def decide(
    request: ToolRequest,
    candidate: Candidate | None,
    snapshot: ContainerSnapshot | None,
    now: datetime,
    policy: ResolutionPolicy,
) -> Resolution:
    """The resolution for a request whose candidate (if any) was looked up as `snapshot`."""
    config = request.config
    reason = None if candidate is None else unfit_reason(snapshot, now, policy.expiry_margin)
    if candidate is not None and reason is None:
        return Resolution(request.tool, ToolMode.EXPLICIT, candidate.source, container=snapshot)
    auto = AutoContainer(config.memory_tier or policy.auto_memory_tier, config.file_ids)
    if reason is not None:
        return _fallback(request, candidate, snapshot, reason, auto, policy)
    if config.mode is ToolMode.EXPLICIT:
        return _fallback(request, None, None, FallbackReason.NO_BINDING, auto, policy)
    return Resolution(request.tool, ToolMode.AUTO, ToolSource.AUTO, auto=auto)


def _fallback(
    request: ToolRequest,
    candidate: Candidate | None,
    snapshot: ContainerSnapshot | None,
    reason: FallbackReason,
    auto: AutoContainer,
    policy: ResolutionPolicy,
) -> Resolution:
    detail = _DETAILS[reason].format(
        id=candidate.container_id if candidate else "",
        status=snapshot.status.value if snapshot else "",
    )
    if candidate is not None:
        detail = f"{detail} ({candidate.source.value.lower()})"
    forced = request.config.mode is ToolMode.EXPLICIT
    if forced and policy.fallback_policy is FallbackPolicy.ERROR:
        raise explicit_required(request.agent_key, reason, detail)
    return Resolution(
        request.tool,
        ToolMode.AUTO,
        ToolSource.AUTO,
        auto=auto,
        fallback_reason=reason,
        fallback_detail=detail,
    )


def explicit_required(agent_key: str, reason: FallbackReason, detail: str) -> FailedPrecondition:
    """The error for a forced explicit mode with nothing live to give."""
    expired = reason in (FallbackReason.CONTAINER_EXPIRED, FallbackReason.CONTAINER_EXPIRING)
    code = "CONTAINER_EXPIRED" if expired else "BINDING_REQUIRED"
    return FailedPrecondition(
        f"agent {agent_key!r} requires an explicit container: {detail}",
        [PreconditionViolation(code, f"agents/{agent_key}", detail)],
        reason=code,
    )
