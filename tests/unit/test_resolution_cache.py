"""The resolution cache: hits, evictions, and loads that race an eviction."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from agent_containers.observability.metrics import Metrics
from agent_containers.services.resolution_cache import ResolutionCache
from agent_containers.store.notifications import (
    Invalidation,
    binding_changed,
    container_changed,
    reconciled,
)


class Loader:
    def __init__(self, value: uuid.UUID | None) -> None:
        self.value = value
        self.calls = 0
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self) -> uuid.UUID | None:
        self.calls += 1
        await self.release.wait()
        return self.value


async def test_hits_are_served_and_evictions_reload() -> None:
    cache = ResolutionCache(max_age_seconds=60, shared=False, metrics=Metrics().cache)
    load = Loader(uuid.uuid4())
    assert await cache.binding("t", "a", load) == load.value
    assert await cache.binding("t", "a", load) == load.value
    assert load.calls == 1
    cache.evict([binding_changed("t", "a")])
    assert await cache.binding("t", "a", load) == load.value
    assert load.calls == 2
    cache.evict([binding_changed("other-tenant", "a")])  # someone else's: kept
    await cache.binding("t", "a", load)
    assert load.calls == 2


async def test_a_load_that_raced_an_eviction_is_not_stored() -> None:
    cache = ResolutionCache(max_age_seconds=60, shared=False, metrics=Metrics().cache)
    stale = Loader(uuid.uuid4())
    stale.release.clear()
    pending = asyncio.create_task(cache.binding("t", "a", stale))
    await asyncio.sleep(0)  # the load has read the old value and waits
    cache.evict([binding_changed("t", "a")])  # a write committed meanwhile
    stale.release.set()
    assert await pending == stale.value  # this caller gets what it read...
    fresh = Loader(None)
    assert await cache.binding("t", "a", fresh) is None  # ...but nobody after it
    assert fresh.calls == 1


async def test_a_shared_cache_serves_only_while_listening() -> None:
    cache = ResolutionCache(max_age_seconds=60, shared=True, metrics=Metrics().cache)
    container_id = uuid.uuid4()
    load = Loader(None)
    await cache.binding("t", "a", load)
    await cache.binding("t", "a", load)
    assert load.calls == 2  # not listening yet: nothing is kept
    cache.on_listener(True)
    await cache.binding("t", "a", load)
    await cache.binding("t", "a", load)
    assert load.calls == 3
    cache.on_listener(False)  # connection lost: evictions could be missed
    await cache.binding("t", "a", load)
    assert load.calls == 4
    cache.on_listener(True)
    await cache.binding("t", "a", load)
    assert load.calls == 5  # reconnected: started empty
    cache.on_notification(container_changed("t", container_id))
    cache.on_notification(Invalidation("container", "t", "not-a-uuid"))  # ignored, no error


async def test_a_load_spanning_a_reconnect_is_not_stored() -> None:
    cache = ResolutionCache(max_age_seconds=60, shared=True, metrics=Metrics().cache)
    cache.on_listener(True)
    stale = Loader(uuid.uuid4())
    stale.release.clear()
    pending = asyncio.create_task(cache.binding("t", "a", stale))
    await asyncio.sleep(0)
    cache.on_listener(False)  # evictions may be missed from here...
    cache.on_listener(True)  # ...until the channel is back
    stale.release.set()
    await pending
    fresh = Loader(None)
    assert await cache.binding("t", "a", fresh) is None
    assert fresh.calls == 1


async def test_versions_are_kept_only_for_loads_in_flight() -> None:
    cache = ResolutionCache(max_age_seconds=60, shared=False, metrics=Metrics().cache)
    cache.evict([binding_changed("t", f"agent-{i}") for i in range(1000)])
    load = Loader(None)
    load.release.clear()
    pending = asyncio.create_task(cache.binding("t", "a", load))
    await asyncio.sleep(0)
    cache.evict([binding_changed("t", "a")])
    load.release.set()
    await pending
    assert cache._bindings.versions == {}
    assert cache._bindings.loading == {}


def test_reconciliation_progress_only_moves_forward() -> None:
    cache = ResolutionCache(max_age_seconds=60, shared=True, metrics=Metrics().cache)
    assert cache.verified_through is None
    later = datetime(2026, 1, 1, 12, tzinfo=UTC)
    cache.on_notification(reconciled(later))
    cache.on_notification(reconciled(later - timedelta(minutes=1)))  # an older pass, delivered late
    assert cache.verified_through == later
    cache.on_notification(Invalidation("reconciled", "", "not a time"))
    cache.on_notification(Invalidation("reconciled", "", "2026-01-02T00:00:00"))  # no zone
    assert cache.verified_through == later
