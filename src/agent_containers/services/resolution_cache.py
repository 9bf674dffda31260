"""What tool resolution reads, held in memory so a hit costs no SQL and no upstream call.

Two maps: an agent's bound container id (or "no binding"), and a container's snapshot (or "no
such container"). Writers evict after they commit, here and, through PostgreSQL notifications,
in every other process. A load that started before an eviction never stores its (older) result:
each key carries a version that eviction bumps. While the notification channel is down the
cache serves nothing, since it could miss evictions.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from agent_containers.domain.tools import ContainerSnapshot
from agent_containers.store import notifications
from agent_containers.store.notifications import Invalidation

T = TypeVar("T")


class Miss:
    """What a peek finds for an absent or stale entry (None is a cached "nothing")."""


MISS = Miss()
MAX_ENTRIES = 100_000


Key = tuple[str, Any]


class _Map(Generic[T]):
    """Key -> (value, loaded at) with per-key versions for safe concurrent loads."""

    def __init__(self) -> None:
        self.entries: dict[Key, tuple[T, float]] = {}
        self.versions: dict[Key, int] = {}

    def evict(self, key: Key) -> None:
        self.entries.pop(key, None)
        self.versions[key] = self.versions.get(key, 0) + 1

    def clear(self) -> None:
        self.entries.clear()
        self.versions.clear()


class ResolutionCache:
    """Bindings and container snapshots for tool resolution, coherent across processes."""

    def __init__(self, *, max_age_seconds: float, shared: bool) -> None:
        """`shared`: other processes write the same database (PostgreSQL); until the listener
        confirms it is connected the cache serves nothing."""
        self._max_age = max_age_seconds
        self._bindings: _Map[uuid.UUID | None] = _Map()
        self._containers: _Map[ContainerSnapshot | None] = _Map()
        self._epoch = 0
        self.serving = not shared
        self.hits = 0
        self.misses = 0

    # --- reads --------------------------------------------------------------------------

    async def binding(
        self,
        tenant_id: str,
        agent_key: str,
        load: Callable[..., Awaitable[uuid.UUID | None]],
        *args: Any,
    ) -> uuid.UUID | None:
        """The agent's bound container id (None: no binding); `load(*args)` on a miss."""
        return await self._get(self._bindings, (tenant_id, agent_key), load, args)

    async def container(
        self,
        tenant_id: str,
        container_id: uuid.UUID,
        load: Callable[..., Awaitable[ContainerSnapshot | None]],
        *args: Any,
    ) -> ContainerSnapshot | None:
        """The container's snapshot (None: no such container); `load(*args)` on a miss."""
        return await self._get(self._containers, (tenant_id, container_id), load, args)

    def peek_binding(self, tenant_id: str, agent_key: str) -> uuid.UUID | Miss | None:
        """The cached binding, or MISS; no await, for the hot path."""
        return self._peek(self._bindings, (tenant_id, agent_key))

    def peek_container(
        self, tenant_id: str, container_id: uuid.UUID
    ) -> ContainerSnapshot | Miss | None:
        """The cached snapshot, or MISS; no await, for the hot path."""
        return self._peek(self._containers, (tenant_id, container_id))

    def _peek(self, cache: _Map[T], key: Key) -> T | Miss:
        entry = cache.entries.get(key)
        if entry is not None and self.serving and time.monotonic() - entry[1] < self._max_age:
            self.hits += 1
            return entry[0]
        return MISS

    async def _get(
        self,
        cache: _Map[T],
        key: Key,
        load: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
    ) -> T:
        found = self._peek(cache, key)
        if not isinstance(found, Miss):
            return found
        self.misses += 1
        version, epoch = cache.versions.get(key, 0), self._epoch
        value = await load(*args)
        if self.serving and epoch == self._epoch and cache.versions.get(key, 0) == version:
            if len(cache.entries) >= MAX_ENTRIES:
                cache.entries.clear()  # crude bound; a full cache refills from hits
            cache.entries[key] = (value, time.monotonic())
        return value

    # --- writes -------------------------------------------------------------------------

    async def announce(self, session: AsyncSession, invalidations: Iterable[Invalidation]) -> None:
        """Inside a writing transaction: tells the other processes, once it commits."""
        await notifications.publish(session, invalidations)

    def evict(self, invalidations: Iterable[Invalidation]) -> None:
        """After a commit (or on a notification): forgets what changed."""
        for invalidation in invalidations:
            if invalidation.kind == "binding":
                self._bindings.evict((invalidation.tenant_id, invalidation.key))
                continue
            try:
                container_id = uuid.UUID(invalidation.key)
            except ValueError:
                continue  # not one of ours
            self._containers.evict((invalidation.tenant_id, container_id))

    def on_notification(self, invalidation: Invalidation) -> None:
        self.evict([invalidation])

    def on_listener(self, connected: bool) -> None:
        """Forget everything on any change of the channel: evictions may have been missed."""
        self._epoch += 1
        self._bindings.clear()
        self._containers.clear()
        self.serving = connected
