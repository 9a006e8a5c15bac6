"""Keep kopf's watch streams alive through API errors, as client-go's reflector does.

kopf 1.45 lists-and-watches again after a 410 or a lost connection, and retries a 429, but any
other API error on a watch (a 404, a 403, a 5xx that outlived its request retries, an ERROR event
in the stream) escapes the watcher task, and kopf's orchestrator then stops the *whole operator*.
That window is real: an apiserver that has just restarted answers 404 for a CRD's resources for a
second or two while it registers them again, and an etcd restart puts ERROR events into open
watches. Nothing reconciled after one of those until the process was restarted by hand.

`install()` wraps kopf's `infinite_watch` so that such an error is logged and the stream lists and
watches again with back-off (1 s doubling to 30 s, reset once events flow). Cancellation still
goes through untouched: when a CRD is really deleted, kopf's own CRD observation cancels the
watcher, as before.

This reaches into a private kopf module, so it is tied to the pinned kopf version (pyproject.toml)
and refuses to run against another one rather than silently doing nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import kopf
from kopf._cogs.clients import errors, watching

log = logging.getLogger("tenantry")

SUPPORTED_KOPF = "1.45."
FIRST_DELAY, MAX_DELAY = 1.0, 30.0

# What ends a kopf watch stream but should only restart it: every API error (after kopf's own
# request retries) and an ERROR event inside the stream.
RETRYABLE = (errors.APIError, watching.WatchingError)


def resilient(infinite_watch: Callable[..., AsyncIterator[Any]],
              sleep: Callable[[float], Any] = asyncio.sleep) -> Callable[..., AsyncIterator[Any]]:
    """`infinite_watch`, restarted (list, then watch) after a retryable error instead of failing."""

    async def watch_forever(**kwargs: Any) -> AsyncIterator[Any]:
        delay = FIRST_DELAY
        while True:
            try:
                async for event in infinite_watch(**kwargs):
                    delay = FIRST_DELAY
                    yield event
                return  # only in kopf's own tests (`_iterations`); a real stream never ends
            except RETRYABLE as error:
                log.warning("The watch of %s failed (%s: %s); listing and watching again in %.0f s.",
                            kwargs.get("resource"), type(error).__name__, error, delay)
            await sleep(delay)
            delay = min(delay * 2, MAX_DELAY)

    watch_forever.__wrapped__ = infinite_watch  # type: ignore[attr-defined]
    return watch_forever


def install() -> None:
    """Replace kopf's watch loop with the resilient one (idempotent)."""
    if not kopf.__version__.startswith(SUPPORTED_KOPF):
        raise RuntimeError(f"tenantry.controller.kopf_watch supports kopf {SUPPORTED_KOPF}x, found "
                           f"{kopf.__version__}: check that kopf's watching.infinite_watch is unchanged first")
    if not hasattr(watching.infinite_watch, "__wrapped__"):
        watching.infinite_watch = resilient(watching.infinite_watch)
