"""A deduplicating work queue with per-key back-off, in the manner of client-go's workqueue.

Watch events only say "look at this key again"; many events for one key collapse into one
reconcile. A key is never reconciled by two workers at once: if it is added while being
processed, it is processed once more afterwards. A failed reconcile is retried with exponential
back-off (capped), and the back-off resets after a success. It remembers when each key last
succeeded, so that the periodic resync looks only at what has not been looked at for a period (`due`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import TypeVar

from tenantry.conditions import failure_text

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class WorkQueue:
    def __init__(
        self,
        handler: Callable[[Hashable], Awaitable[None]],
        *,
        workers: int = 16,
        base_delay: float = 0.5,
        max_delay: float = 120.0,
        name: str = "reconcile",
        clock: Callable[[], float] = time.monotonic,
    ):
        self._handler = handler
        self._workers = workers
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._name = name
        self._queue: asyncio.Queue[Hashable] = asyncio.Queue()
        self._dirty: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._failures: dict[Hashable, int] = {}
        self._delayed: dict[Hashable, asyncio.TimerHandle] = {}
        self._clock = clock
        self._succeeded_at: dict[Hashable, float] = {}  # when each key's reconcile last succeeded
        self._tasks: list[asyncio.Task[None]] = []
        self.on_result: Callable[[Hashable, str, float], None] | None = None  # metrics hook

    def __len__(self) -> int:
        return len(self._dirty)

    @property
    def depth(self) -> int:
        return len(self._dirty) + len(self._delayed)

    def add(self, key: Hashable) -> None:
        if key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.put_nowait(key)

    def add_after(self, key: Hashable, delay: float) -> None:
        """Add later, unless an add for this key is already pending sooner."""
        if delay <= 0:
            self.add(key)
            return
        if key in self._dirty or key in self._delayed:
            return
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._delayed.pop(key, None)
            self.add(key)

        self._delayed[key] = loop.call_later(delay, fire)

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)

    def due(self, keys: Iterable[K], period: float) -> list[K]:
        """Of `keys` (every object there is), those whose reconcile has not succeeded for `period` seconds
        (or never). Keys not among them are forgotten: their objects are gone."""
        now, keys = self._clock(), list(keys)
        self._succeeded_at = {k: t for k in keys if (t := self._succeeded_at.get(k)) is not None}
        return [k for k in keys if now - self._succeeded_at.get(k, -math.inf) >= period]

    def start(self) -> None:
        for index in range(self._workers):
            self._tasks.append(asyncio.create_task(self._work(), name=f"{self._name}-worker-{index}"))

    async def stop(self) -> None:
        for handle in self._delayed.values():
            handle.cancel()
        self._delayed.clear()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def wait_not_processing(self, key: Hashable, timeout: float) -> bool:
        """Wait until no worker is processing `key` (True), or `timeout` seconds passed (False)."""
        deadline = time.monotonic() + timeout
        while key in self._processing:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def _work(self) -> None:
        while True:
            # A reconcile that finds nothing to do makes no API call and so never gives the event loop
            # away, and `get` on a full queue returns at once: without this, a worker would run a start-up's
            # 10,000 such reconciles in one go while watches, the webhook, /healthz and every request's
            # timeout waited (a Region's request timed out after 39 s in the 10,000-tenant restart).
            await asyncio.sleep(0)
            key = await self._queue.get()
            self._dirty.discard(key)
            self._processing.add(key)
            started = time.monotonic()
            result = "success"
            try:
                await self._handler(key)
                self._failures.pop(key, None)
                self._succeeded_at[key] = self._clock()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # every failure is retried; the handler already logged details
                result = "error"
                failures = self._failures.get(key, 0) + 1
                self._failures[key] = failures
                delay = min(self._base_delay * 2 ** (failures - 1), self._max_delay)
                log.warning("Reconcile of %s failed (attempt %d), retrying in %.1fs: %s", key, failures, delay,
                            failure_text(error))
                self.add_after(key, delay)
            finally:
                self._processing.discard(key)
                if key in self._dirty:
                    self._queue.put_nowait(key)  # added again while we were busy with it
                if self.on_result is not None:
                    self.on_result(key, result, time.monotonic() - started)
