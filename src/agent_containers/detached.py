"""Work that must run to its end even when the caller that started it stops waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class Detached:
    """Tasks that outlive their callers (a create or delete whose client hung up), kept so they
    are neither garbage collected nor forgotten at shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._forget)
        return task

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: its caller may have hung up and never will

    async def wait(self) -> None:
        """Waits for every task still running (at shutdown; each is bounded by its budget)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
