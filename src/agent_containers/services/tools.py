"""Tool resolution: the hot path every agent run asks for, served from memory when it can."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from agent_containers.domain.bindings import AgentBinding
from agent_containers.domain.clock import Clock
from agent_containers.domain.containers import Container, ContainerStatus
from agent_containers.domain.errors import (
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PreconditionViolation,
)
from agent_containers.domain.identity import Identity
from agent_containers.domain.tools import (
    AGENT_KEY_PATTERN,
    CODE_INTERPRETER,
    KNOWN_TOOLS,
    ContainerSnapshot,
    FallbackPolicy,
    FallbackReason,
    Resolution,
    ResolutionPolicy,
    ToolConfig,
    ToolMode,
    ToolRequest,
    ToolSource,
    decide,
    facts_age_exceeds,
    first_candidate,
    parse_optional_container_id,
    unfit_reason,
    validate_agent_key,
    validate_config,
)
from agent_containers.observability.metrics import ResolutionMetrics
from agent_containers.services.bindings import BindingService
from agent_containers.services.container_refresh import ContainerRefresh
from agent_containers.services.containers import ContainerService
from agent_containers.services.resolution_cache import Miss, ResolutionCache
from agent_containers.store import bindings as binding_rows
from agent_containers.store import containers as container_rows
from agent_containers.store.notifications import container_changed
from agent_containers.store.unit_of_work import UnitOfWork

# A local expiry verdict is a prediction (activity through OpenAI moves the real one): these
# reasons are checked with upstream before they are believed.
_ASK_UPSTREAM = (FallbackReason.CONTAINER_EXPIRED, FallbackReason.CONTAINER_EXPIRING)
PLAIN_CONFIG = ToolConfig()
MAX_EXPLICIT_ANSWERS = 10_000
MAX_SPEC_TOOLS = 64
MAX_SHOWN_NAME = 64
# Asking upstream about a container that looks expired happens on an agent's run: bounded, so a
# slow upstream delays the run by seconds and the container is judged on what is known.
CONFIRM_DEADLINE_SECONDS = 3.0
# After upstream failed to revalidate a container, the old facts are served for this long before
# it is asked again: an outage must not turn every run into a wait.
REVALIDATE_BACKOFF_SECONDS = 5.0


def _shown(name: str) -> str:
    """A caller's string as echoed in an error: bounded, whatever the caller sent."""
    return name if len(name) <= MAX_SHOWN_NAME else f"{name[:MAX_SHOWN_NAME]}..."


def snapshot_of(container: Container) -> ContainerSnapshot:
    return ContainerSnapshot(
        container_id=container.id,
        openai_id=container.openai_id,
        status=container.status,
        expire_time=container.expire_time,
        verified_at=container.refreshed_at,
    )


@dataclass(frozen=True)
class ToolEntry:
    """One tool of the catalog, with the asking agent's binding."""

    name: str
    available: bool
    modes: tuple[ToolMode, ...]
    binding: AgentBinding | None
    binding_live: bool


class ToolResolutionService:
    """Resolve one tool, a whole agent spec, validate a spec, and list the tool catalog."""

    def __init__(
        self,
        uow: UnitOfWork,
        containers: ContainerService,
        bindings: BindingService,
        refresh: ContainerRefresh,
        cache: ResolutionCache,
        policy: ResolutionPolicy,
        clock: Clock,
        *,
        liveness_max_age: timedelta,
        upstream_available: bool,
        metrics: ResolutionMetrics,
    ) -> None:
        self._uow = uow
        self._metrics = metrics
        self._containers = containers
        self._refresh = refresh
        self._liveness_max_age = liveness_max_age
        # Revalidations in flight (one per container) and when each last failed.
        self._revalidating: dict[uuid.UUID, tuple[asyncio.Task[ContainerSnapshot], float]] = {}
        self._revalidation_failed: dict[uuid.UUID, float] = {}
        self._bindings = bindings
        self._cache = cache
        self._policy = policy
        self._clock = clock
        self._upstream_available = upstream_available
        self._explicit_answers: dict[tuple[str, ToolSource, ContainerSnapshot], Resolution] = {}

    def resolve(self, identity: Identity, request: ToolRequest) -> Awaitable[Resolution]:
        """Checks the request now and returns the resolution to await.

        Not a coroutine itself: on the hot path every frame counts, and checking needs no I/O.
        """
        if request.tool not in KNOWN_TOOLS:
            raise NotFound("tool", _shown(request.tool), reason="TOOL_NOT_FOUND")
        # Most runs send an empty config: only the agent key then needs checking.
        plain = request.config == PLAIN_CONFIG and not request.container_override
        if not (plain and AGENT_KEY_PATTERN.fullmatch(request.agent_key)):
            violations = validate_agent_key(request.agent_key) + self._request_violations(
                request, "config", "container_override"
            )
            if violations:
                raise InvalidArgument(violations)
        return self._resolve(identity, request, self._policy, counted=True)

    async def resolve_spec(
        self, identity: Identity, agent_key: str, requests: Sequence[ToolRequest]
    ) -> list[Resolution]:
        return await self._resolve_all(identity, agent_key, requests, self._policy, counted=True)

    async def validate_spec(
        self, identity: Identity, agent_key: str, requests: Sequence[ToolRequest]
    ) -> list[Resolution]:
        # A runtime validates to refuse building an agent whose forced explicit container is
        # missing: that is a violation here whatever the fallback policy.
        strict = ResolutionPolicy(
            auto_memory_tier=self._policy.auto_memory_tier,
            allowed_memory_tiers=self._policy.allowed_memory_tiers,
            fallback_policy=FallbackPolicy.ERROR,
            expiry_margin=self._policy.expiry_margin,
        )
        return await self._resolve_all(identity, agent_key, requests, strict, counted=False)

    async def catalog(self, identity: Identity, agent_key: str) -> list[ToolEntry]:
        violations = validate_agent_key(agent_key)
        if violations:
            raise InvalidArgument(violations)
        binding = await self._bindings.find(identity, agent_key)
        live = binding is not None and (
            unfit_reason(
                snapshot_of(binding.container), self._clock.now(), self._policy.expiry_margin
            )
            is None
        )
        return [
            ToolEntry(
                name=CODE_INTERPRETER,
                available=self._upstream_available,
                modes=(ToolMode.AUTO, ToolMode.EXPLICIT),
                binding=binding,
                binding_live=live,
            )
        ]

    # --- the resolution itself -----------------------------------------------------------

    def _request_violations(
        self, request: ToolRequest, config_field: str, override_field: str
    ) -> list[FieldViolation]:
        return (
            validate_config(request.config, self._policy, config_field)
            + (parse_optional_container_id(request.container_override, override_field)[1])
        )

    async def _resolve_all(
        self,
        identity: Identity,
        agent_key: str,
        requests: Sequence[ToolRequest],
        policy: ResolutionPolicy,
        *,
        counted: bool,
    ) -> list[Resolution]:
        """Every tool of a spec; all violations of all tools are reported at once. `counted`:
        the resolutions are what agents run with (not a validation's)."""
        if len(requests) > MAX_SPEC_TOOLS:
            raise InvalidArgument([FieldViolation("spec.tools", f"at most {MAX_SPEC_TOOLS} tools")])
        field_violations = validate_agent_key(agent_key)
        for index, request in enumerate(requests):
            prefix = f"spec.tools[{index}]"
            if request.tool not in KNOWN_TOOLS:
                field_violations.append(
                    FieldViolation(f"{prefix}.tool", f"unknown tool {_shown(request.tool)!r}")
                )
            field_violations += self._request_violations(
                request, f"{prefix}.code_interpreter", "container_override"
            )
        if field_violations:
            raise InvalidArgument(field_violations)
        resolutions: list[Resolution] = []
        unmet: list[PreconditionViolation] = []
        for request in requests:
            try:
                resolutions.append(await self._resolve(identity, request, policy, counted))
            except FailedPrecondition as error:
                unmet += error.violations
        if unmet:
            raise FailedPrecondition(
                f"agent {agent_key!r}: {len(unmet)} tool(s) cannot be resolved",
                unmet,
                reason=unmet[0].type,
            )
        return resolutions

    def _counted(self, resolution: Resolution, counted: bool) -> Resolution:
        if counted:
            self._metrics.resolved(resolution.source, resolution.fallback_reason)
        return resolution

    async def _resolve(
        self, identity: Identity, request: ToolRequest, policy: ResolutionPolicy, counted: bool
    ) -> Resolution:
        tenant = identity.tenant_id
        config = request.config
        override, _ = parse_optional_container_id(request.container_override, "")
        named, _ = parse_optional_container_id(config.container_id, "")
        bound: uuid.UUID | None = None
        now = self._clock.now()
        if config.mode is ToolMode.AUTO and override is None:
            return self._counted(decide(request, None, None, now, policy), counted)
        if override is None and named is None:
            peeked = self._cache.peek_binding(tenant, request.agent_key)
            bound = (
                await self._cache.binding(
                    tenant, request.agent_key, self._load_binding, tenant, request.agent_key
                )
                if isinstance(peeked, Miss)
                else peeked
            )
        candidate = first_candidate(override, named, bound)
        snapshot = None
        if candidate is not None:
            found = self._cache.peek_container(tenant, candidate.container_id)
            snapshot = (
                await self._cache.container(
                    tenant,
                    candidate.container_id,
                    self._load_container,
                    tenant,
                    candidate.container_id,
                )
                if isinstance(found, Miss)
                else found
            )
            reason = unfit_reason(snapshot, now, policy.expiry_margin)
            if reason is None:
                assert snapshot is not None
                if not facts_age_exceeds(
                    snapshot, self._cache.verified_through, now, self._liveness_max_age
                ):
                    return self._counted(
                        self._explicit(request.tool, candidate.source, snapshot), counted
                    )
                snapshot = await self._revalidate(tenant, snapshot)
                reason = unfit_reason(snapshot, now, policy.expiry_margin)
                if reason is None and snapshot is not None:
                    return self._counted(
                        self._explicit(request.tool, candidate.source, snapshot), counted
                    )
            if (
                snapshot is not None
                and snapshot.status is ContainerStatus.RUNNING
                and reason in _ASK_UPSTREAM
            ):
                snapshot = await self._confirm(identity, candidate.container_id, snapshot)
                now = self._clock.now()
        return self._counted(decide(request, candidate, snapshot, now, policy), counted)

    def _explicit(self, tool: str, source: ToolSource, snapshot: ContainerSnapshot) -> Resolution:
        """The explicit answer for a live snapshot, one object per (tool, source, snapshot).

        The hot path gives the same answer run after run; handing out the same object lets the
        API layer find its finished reply by identity instead of building or comparing one.
        """
        key = (tool, source, snapshot)
        resolution = self._explicit_answers.get(key)
        if resolution is None:
            if len(self._explicit_answers) >= MAX_EXPLICIT_ANSWERS:
                self._explicit_answers.clear()
            resolution = Resolution(tool, ToolMode.EXPLICIT, source, container=snapshot)
            self._explicit_answers[key] = resolution
        return resolution

    async def _confirm(
        self, identity: Identity, container_id: uuid.UUID, snapshot: ContainerSnapshot
    ) -> ContainerSnapshot:
        """Reads the container through the container service (refreshed when stale)."""
        try:
            row = await asyncio.wait_for(
                self._containers.get(identity, container_id), CONFIRM_DEADLINE_SECONDS
            )
        except (DomainError, TimeoutError):
            return snapshot  # judged on what we know: never handed out while it looks expired
        return snapshot_of(row)

    async def _revalidate(
        self, tenant_id: str, snapshot: ContainerSnapshot
    ) -> ContainerSnapshot | None:
        """Newer facts about a container whose facts are too old to hand it out on.

        The database first (the reconciler has usually confirmed it meanwhile), then upstream
        by a lookup that does not keep the container alive. One revalidation per container at a
        time; when upstream cannot answer in time, the old facts are served (the local expiry
        and its margin still apply) and upstream is asked again after a backoff.
        """
        loop = asyncio.get_running_loop()
        failed_at = self._revalidation_failed.get(snapshot.container_id)
        if failed_at is not None and loop.time() - failed_at < REVALIDATE_BACKOFF_SECONDS:
            return snapshot
        started = self._revalidating.get(snapshot.container_id)
        if started is None:
            task = asyncio.create_task(self._revalidated(tenant_id, snapshot))
            started = self._revalidating[snapshot.container_id] = (task, loop.time())
            task.add_done_callback(lambda _: self._revalidating.pop(snapshot.container_id, None))
        task, began = started
        # A caller waits only within the attempt's first seconds: a slow upstream delays a few
        # runs once, not every run for as long as its lookup hangs.
        remaining = began + CONFIRM_DEADLINE_SECONDS - loop.time()
        try:
            if remaining <= 0:
                raise TimeoutError
            return await asyncio.wait_for(asyncio.shield(task), remaining)
        except (DomainError, TimeoutError):
            self._revalidation_failed[snapshot.container_id] = loop.time()
            if len(self._revalidation_failed) > MAX_EXPLICIT_ANSWERS:
                self._revalidation_failed.clear()
            return snapshot

    async def _revalidated(self, tenant_id: str, snapshot: ContainerSnapshot) -> ContainerSnapshot:
        stored = await self._uow.read(
            lambda session: container_rows.get(session, tenant_id, snapshot.container_id)
        )
        if stored is None:
            raise DomainError("the container vanished")  # the eviction will tell resolution
        fresh = snapshot_of(stored)
        if facts_age_exceeds(
            fresh, self._cache.verified_through, self._clock.now(), self._liveness_max_age
        ):
            fresh = snapshot_of(await self._refresh.look_up(stored))
        # The cached snapshot is older than this one: the next run loads the new facts.
        self._cache.evict([container_changed(tenant_id, snapshot.container_id)])
        return fresh

    async def _load_binding(self, tenant_id: str, agent_key: str) -> uuid.UUID | None:
        async def load(session: AsyncSession) -> uuid.UUID | None:
            return await binding_rows.bound_container_id(session, tenant_id, agent_key)

        return await self._uow.read(load)

    async def _load_container(
        self, tenant_id: str, container_id: uuid.UUID
    ) -> ContainerSnapshot | None:
        async def load(session: AsyncSession) -> Container | None:
            return await container_rows.get(session, tenant_id, container_id)

        container = await self._uow.read(load)
        return None if container is None else snapshot_of(container)
