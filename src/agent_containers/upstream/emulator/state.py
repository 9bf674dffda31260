"""In-memory state of the emulated OpenAI Containers API.

Everything the emulator knows lives in one `EmulatorState`: the containers and their files, the
per-operation request counters and the failure switches. Tests read and steer it directly; the
HTTP layer (`app.py`) is a thin translation of requests into calls on it.

Time comes only from the injected `Clock`, so a test moves expiry with a `FakeClock`. Expiry is
evaluated lazily: `sweep()` runs before every request (and may be called by a test) and turns
containers whose deadline has passed into expired ones, dropping their files for good.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from agent_containers.domain.clock import Clock, SystemClock

DEFAULT_EXPIRY_MINUTES: Final = 20
"""Upstream default when `expires_after` is not given on create."""

MEMORY_LIMITS: Final = ("1g", "4g", "16g", "64g")
DEFAULT_MEMORY_LIMIT: Final = "1g"

FILE_ROOT: Final = "/mnt/data"
"""Where upstream puts files in a container."""

#: Operation names used as keys of `EmulatorState.calls` and for `fail_next(operations=...)`.
OPERATIONS: Final = (
    "containers.create",
    "containers.list",
    "containers.retrieve",
    "containers.delete",
    "containers.files.create",
    "containers.files.list",
    "containers.files.retrieve",
    "containers.files.delete",
    "containers.files.content",
)

SortKey = tuple[int, int]
"""(created_at in unix seconds, insertion sequence): the list order, stable on ties."""


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


def new_container_id() -> str:
    return f"cntr_{secrets.token_hex(24)}"


def new_file_id() -> str:
    return f"cfile_{secrets.token_hex(16)}"


@dataclass
class ContainerFile:
    """A file inside a container; `source` is "user" for uploads, "assistant" for model output."""

    id: str
    container_id: str
    path: str
    content: bytes
    source: str
    created_at: datetime
    seq: int

    @property
    def sort_key(self) -> SortKey:
        return (_unix(self.created_at), self.seq)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "container.file",
            "created_at": _unix(self.created_at),
            "bytes": len(self.content),
            "container_id": self.container_id,
            "path": self.path,
            "source": self.source,
        }


@dataclass
class Container:
    """One emulated container. `expired_at` is set once, when it expires; it never clears."""

    id: str
    name: str
    created_at: datetime
    last_active_at: datetime
    expires_after_minutes: int
    memory_limit: str
    network_policy: dict[str, Any]
    skills: list[dict[str, Any]]
    seq: int
    expired_at: datetime | None = None
    files: dict[str, ContainerFile] = field(default_factory=dict)

    @property
    def expired(self) -> bool:
        return self.expired_at is not None

    @property
    def status(self) -> str:
        return "expired" if self.expired else "running"

    @property
    def expires_at(self) -> datetime:
        """When the container expires unless something touches it first."""
        return self.last_active_at + timedelta(minutes=self.expires_after_minutes)

    @property
    def sort_key(self) -> SortKey:
        return (_unix(self.created_at), self.seq)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "container",
            "name": self.name,
            "created_at": _unix(self.created_at),
            "status": self.status,
            "last_active_at": _unix(self.last_active_at),
            "expires_after": {"anchor": "last_active_at", "minutes": self.expires_after_minutes},
            "memory_limit": self.memory_limit,
            # Secrets of an allowlist policy are write-only upstream: never echo them.
            "network_policy": {
                k: v for k, v in self.network_policy.items() if k in ("type", "allowed_domains")
            },
        }


@dataclass
class FailureRule:
    """The next `remaining` matching requests answer `status` with an OpenAI error body."""

    status: int
    remaining: int
    retry_after: float | None = None
    message: str | None = None
    error_type: str | None = None
    code: str | None = None
    operations: frozenset[str] | None = None
    """None matches every operation."""

    def matches(self, operation: str) -> bool:
        return self.remaining > 0 and (self.operations is None or operation in self.operations)


class EmulatorState:
    """Containers, files, counters and failure switches of one emulator instance.

    Attributes tests use:
      containers: id -> Container, in creation order; deleted containers are removed.
      calls: Counter of requests per operation name (see OPERATIONS), counting every request
        routed to that operation, including those answered with an injected failure or an error.
      latency: seconds every request waits before it is handled (0 by default).
      downloads: file contents streamed to the end ("completed") or left by their client
        mid-file ("aborted").
      delays: operation name -> extra seconds a request of it waits before it is handled, even
        if its client has given up meanwhile: the request still takes effect, late (an upstream
        that hangs past the client's timeout and then creates the container anyway).
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        expired_retention: timedelta | None = None,
    ) -> None:
        """`expired_retention`: how long an expired container's metadata stays listable
        (None: forever). Upstream keeps it "for a while"; tests of cleanup can shorten it."""
        self.clock: Clock = clock or SystemClock()
        self.expired_retention = expired_retention
        self.containers: dict[str, Container] = {}
        self.calls: Counter[str] = Counter()
        self.latency: float = 0.0
        self.delays: dict[str, float] = {}
        self.downloads: Counter[str] = Counter()
        self._failures: list[FailureRule] = []
        self._seq = 0
        # Sort keys of every id ever handed out, so an `after` cursor naming a since-deleted
        # object still marks a position in the list (as a keyset cursor upstream would).
        self._container_keys: dict[str, SortKey] = {}
        self._file_keys: dict[str, SortKey] = {}

    # ----------------------------------------------------------------- time and expiry

    def now(self) -> datetime:
        return self.clock.now()

    def sweep(self) -> None:
        """Expire containers whose deadline has passed; forget expired ones past retention."""
        now = self.now()
        for container in list(self.containers.values()):
            if container.expired_at is None and now >= container.expires_at:
                self._mark_expired(container, container.expires_at)
            if (
                container.expired_at is not None
                and self.expired_retention is not None
                and now >= container.expired_at + self.expired_retention
            ):
                del self.containers[container.id]

    def expire(self, container_id: str) -> Container:
        """Force a container to expire now (as if upstream reclaimed it early)."""
        container = self.containers[container_id]
        if container.expired_at is None:
            self._mark_expired(container, self.now())
        return container

    @staticmethod
    def _mark_expired(container: Container, at: datetime) -> None:
        container.expired_at = at
        # Upstream discards an expired container's filesystem; only metadata survives.
        container.files.clear()

    def touch(self, container: Container) -> None:
        """Refresh `last_active_at` of a live container (any container operation does this)."""
        if container.expired_at is None:
            container.last_active_at = self.now()

    # ----------------------------------------------------------------- containers

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def create_container(
        self,
        name: str,
        *,
        expires_after_minutes: int = DEFAULT_EXPIRY_MINUTES,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
        network_policy: Mapping[str, Any] | None = None,
        skills: Sequence[Mapping[str, Any]] = (),
        file_ids: Iterable[str] = (),
    ) -> Container:
        """Create a running container, as the create endpoint does.

        Tests may also call it directly to seed containers the service did not create (like
        upstream "auto" containers). `file_ids` become empty files, see `copy_openai_file`.
        """
        now = self.now()
        container = Container(
            id=new_container_id(),
            name=name,
            created_at=now,
            last_active_at=now,
            expires_after_minutes=expires_after_minutes,
            memory_limit=memory_limit,
            network_policy=dict(network_policy or {"type": "disabled"}),
            skills=[dict(s) for s in skills],
            seq=self._next_seq(),
        )
        self.containers[container.id] = container
        self._container_keys[container.id] = container.sort_key
        for file_id in dict.fromkeys(file_ids):  # dedupe, keep order
            self.copy_openai_file(container.id, file_id)
        return container

    def get_container(self, container_id: str) -> Container | None:
        return self.containers.get(container_id)

    def delete_container(self, container_id: str) -> bool:
        return self.containers.pop(container_id, None) is not None

    def container_key(self, container_id: str) -> SortKey | None:
        return self._container_keys.get(container_id)

    # ----------------------------------------------------------------- files

    def add_file(
        self,
        container_id: str,
        path: str,
        content: bytes = b"",
        *,
        source: str = "user",
    ) -> ContainerFile:
        """Put a file in a live container. Tests use source="assistant" for model output."""
        container = self.containers[container_id]
        if container.expired:
            raise ValueError(f"container {container_id} is expired")
        file = ContainerFile(
            id=new_file_id(),
            container_id=container_id,
            path=path,
            content=content,
            source=source,
            created_at=self.now(),
            seq=self._next_seq(),
        )
        container.files[file.id] = file
        self._file_keys[file.id] = file.sort_key
        return file

    def copy_openai_file(self, container_id: str, openai_file_id: str) -> ContainerFile:
        """Emulate copying an uploaded OpenAI file (`file_id`) into a container.

        The emulator has no Files API, so it cannot know the file's name or bytes: it creates a
        container file at `/mnt/data/<file_id>` with empty content and source "user".
        """
        return self.add_file(container_id, f"{FILE_ROOT}/{openai_file_id}", b"", source="user")

    def file_key(self, file_id: str) -> SortKey | None:
        return self._file_keys.get(file_id)

    # ----------------------------------------------------------------- failure switches

    def fail_next(
        self,
        status: int,
        count: int = 1,
        *,
        retry_after: float | None = None,
        message: str | None = None,
        error_type: str | None = None,
        code: str | None = None,
        operations: str | Collection[str] | None = None,
    ) -> FailureRule:
        """Make the next `count` requests (of `operations`, default any) answer `status`.

        The body is OpenAI's error shape; `retry_after` (seconds) adds a `retry-after` header.
        Rules queue up in order: a request consumes one from the first rule that matches it.
        """
        if count < 1:
            raise ValueError("count must be >= 1")
        if not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status")
        ops: frozenset[str] | None
        if operations is None:
            ops = None
        elif isinstance(operations, str):
            ops = frozenset((operations,))
        else:
            ops = frozenset(operations)
        if ops is not None and not ops <= set(OPERATIONS):
            raise ValueError(f"unknown operations: {sorted(ops - set(OPERATIONS))}")
        rule = FailureRule(status, count, retry_after, message, error_type, code, ops)
        self._failures.append(rule)
        return rule

    def clear_failures(self) -> None:
        self._failures.clear()

    @property
    def pending_failures(self) -> list[FailureRule]:
        return [rule for rule in self._failures if rule.remaining > 0]

    def take_failure(self, operation: str) -> FailureRule | None:
        """Consume one injected failure for this request, if any rule matches it."""
        for rule in self._failures:
            if rule.matches(operation):
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._failures.remove(rule)
                return rule
        return None

    # ----------------------------------------------------------------- misc

    def reset(self) -> None:
        """Forget all containers, counters, failures and latency (the clock is kept)."""
        self.containers.clear()
        self.calls.clear()
        self.latency = 0.0
        self.delays.clear()
        self.downloads.clear()
        self._failures.clear()
        self._container_keys.clear()
        self._file_keys.clear()
