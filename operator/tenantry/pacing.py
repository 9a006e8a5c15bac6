"""How a loop that retries waits: `Backoff`, the delays that double with each failure in a row (the
watches, the webhook's set-up, the leader's pod label), and `RetryPacer`, a background loop's rounds:
for a wake-up, and after a failure at most such a back-off (the meter's record delivery and bill
publishing, the operator's licence order outbox).

One small helper rather than a retry library: these are loops that run for the process's life and
start over after progress, which a retry decorator (tenacity, backoff) does not model; see
docs/architecture.md, "Libraries and what we kept"."""

from __future__ import annotations

import asyncio
import contextlib
import random


class Backoff:
    """Delays from `initial` doubling up to `maximum` with each failure in a row; `reset()` once the
    work succeeds. `jitter` spreads each delay by up to that fraction either way, so that loops that
    failed together retry out of step."""

    def __init__(self, initial: float, maximum: float, jitter: float = 0.0):
        self.initial, self.maximum, self.jitter = initial, maximum, jitter
        self.current = 0.0  # the last delay without jitter; 0 after a success

    def next(self) -> float:
        """The delay before the next try, after one more failure."""
        self.current = min(max(self.current * 2, self.initial), self.maximum)
        return self.current * random.uniform(1 - self.jitter, 1 + self.jitter) if self.jitter else self.current

    def reset(self) -> None:
        self.current = 0.0


class RetryPacer:
    """Paces the rounds of one retrying loop: `wake()` starts the next round at once; after a failed round
    the next comes after `initial`..`maximum` seconds, doubling, ±20 % jitter so that loops retry out of step."""

    def __init__(self, initial: float = 1.0, maximum: float = 60.0):
        self.backoff = Backoff(initial, maximum, jitter=0.2)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def pause(self, ok: bool) -> None:
        """Waits after a round that succeeded (`ok`: until woken) or failed (until woken or backed off)."""
        timeout = None
        if ok:
            self.backoff.reset()
        else:
            timeout = self.backoff.next()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()
