"""What tool resolution reads, held in memory so a hit costs no SQL and no upstream call.

Two maps: an agent's bound container id (or "no binding"), and a container's snapshot (or "no
such container"). Writers evict after they commit, here and, through PostgreSQL notifications,
in every other process. A load that started before an eviction never stores its (older) result:
each key carries a version that eviction bumps. While the notification channel is down the
cache serves nothing, since it could miss evictions. Writes reach it through the unit of work
(store/unit_of_work.py), which tells it what every committed write changed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, Generic, TypeVar

from agent_containers.domain.tools import ContainerSnapshot
from agent_containers.observability.metrics import CacheMetrics, CacheSeries
from agent_containers.store.notifications import Invalidation

T = TypeVar("T")


class Miss:
    """What a peek finds for an absent or stale entry (None is a cached "nothing")."""


MISS = Miss()
MAX_ENTRIES = 100_000


Key = tuple[str, Any]


class _Map(Generic[T]):
    """Key -> (value, loaded at), and versions of the keys being loaded right now.

    An eviction bumps the version of a key only while a load of it is in flight, so a load that
    started before the eviction does not store its older value; versions of keys with no load in
    flight are dropped, so the map stays as small as the loads in flight.
    """

    def __init__(self, metrics: CacheSeries) -> None:
        self.entries: dict[Key, tuple[T, float]] = {}
        self.versions: dict[Key, int] = {}
        self.loading: dict[Key, int] = {}
        self.metrics = metrics

    def evict(self, key: Key) -> None:
        if self.entries.pop(key, None) is not None:
            self.metrics.evicted["invalidated"].inc()
        if key in self.loading:
            self.versions[key] = self.versions.get(key, 0) + 1

    def begin_load(self, key: Key) -> int:
        self.loading[key] = self.loading.get(key, 0) + 1
        return self.versions.get(key, 0)

    def end_load(self, key: Key) -> None:
        left = self.loading.pop(key) - 1
        if left:
            self.loading[key] = left
        else:
            self.versions.pop(key, None)

    def clear(self, reason: str) -> None:
        if self.entries:
            self.metrics.evicted[reason].inc(len(self.entries))
        self.entries.clear()


class ResolutionCache:
    """Bindings and container snapshots for tool resolution, coherent across processes."""

    def __init__(self, *, max_age_seconds: float, shared: bool, metrics: CacheMetrics) -> None:
        """`shared`: other processes write the same database (PostgreSQL); until the listener
        confirms it is connected the cache serves nothing."""
        self._max_age = max_age_seconds
        self._bindings: _Map[uuid.UUID | None] = _Map(metrics.series("binding"))
        self._containers: _Map[ContainerSnapshot | None] = _Map(metrics.series("container"))
        self._epoch = 0
        self._metrics = metrics
        self.serving = not shared
        metrics.serving(self.serving)
        # The start of the newest complete reconciliation pass: RUNNING facts it left alone
        # were confirmed upstream as of then (None: none seen by this process yet).
        self.verified_through: datetime | None = None
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
            cache.metrics.hit.inc()
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
        cache.metrics.missed.inc()
        epoch = self._epoch
        version = cache.begin_load(key)
        try:
            value = await load(*args)
            current = (
                self.serving and epoch == self._epoch and cache.versions.get(key, 0) == version
            )
            if current:
                if len(cache.entries) >= MAX_ENTRIES:
                    cache.clear("full")  # crude bound; a full cache refills from hits
                cache.entries[key] = (value, time.monotonic())
        finally:
            cache.end_load(key)
        return value

    # --- writes -------------------------------------------------------------------------

    def evict(self, invalidations: Iterable[Invalidation]) -> None:
        """After a commit (or on a notification): forgets what changed."""
        for invalidation in invalidations:
            if invalidation.kind == "reconciled":
                self._note_reconciled(invalidation.key)
                continue
            if invalidation.kind == "binding":
                self._bindings.evict((invalidation.tenant_id, invalidation.key))
                continue
            try:
                container_id = uuid.UUID(invalidation.key)
            except ValueError:
                continue  # not one of ours
            self._containers.evict((invalidation.tenant_id, container_id))

    def _note_reconciled(self, moment: str) -> None:
        try:
            verified_through = datetime.fromisoformat(moment)
        except ValueError:
            return  # not one of ours
        if verified_through.tzinfo is None:
            return
        if self.verified_through is None or verified_through > self.verified_through:
            self.verified_through = verified_through

    def on_notification(self, invalidation: Invalidation) -> None:
        self.evict([invalidation])

    def on_listener(self, connected: bool) -> None:
        """Forget everything on any change of the channel: evictions may have been missed."""
        self._epoch += 1
        self._bindings.clear("reset")
        self._containers.clear("reset")
        self.serving = connected
        self._metrics.serving(connected)
