"""How a background loop that retries until it succeeds waits between rounds: for a wake-up, and after a
failure at most a back-off that doubles with each failure in a row. Shared by the meter's record
delivery and bill publishing and the operator's licence order outbox."""

from __future__ import annotations

import asyncio
import contextlib
import random


class RetryPacer:
    """Paces the rounds of one retrying loop: `wake()` starts the next round at once; after a failed round
    the next comes after `initial`..`maximum` seconds, doubling, ±20 % jitter so that loops retry out of step."""

    def __init__(self, initial: float = 1.0, maximum: float = 60.0):
        self.initial, self.maximum = initial, maximum
        self.backoff = 0.0
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def pause(self, ok: bool) -> None:
        """Waits after a round that succeeded (`ok`: until woken) or failed (until woken or backed off)."""
        if ok:
            self.backoff, timeout = 0.0, None
        else:
            self.backoff = min(max(self.backoff * 2, self.initial), self.maximum)
            timeout = self.backoff * random.uniform(0.8, 1.2)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()
