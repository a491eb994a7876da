"""Background tasks the coordinator owns (log writes whose outcome must not depend on a client).

A parked request's handler may be cancelled when its client disconnects; work that must still
finish (applying a leader's assignment, caching a committed offset) runs here instead, and
`close()` cancels whatever is left at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("keystream.groups")


class Background:
    """A set of tasks that are tracked until done, with failures logged rather than lost."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("group coordinator task failed", exc_info=task.exception())

    def __len__(self) -> int:
        return len(self._tasks)

    async def close(self, grace_s: float = 5.0) -> None:
        """Lets running writes finish for up to `grace_s`, then cancels the rest."""
        tasks = list(self._tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
