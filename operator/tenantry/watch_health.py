"""How each list-and-watch loop (kube.list_then_watch) is doing, for metrics and the health endpoint.

Two kinds of trouble, kept apart on purpose:

- an object a callback cannot handle (a malformed status, a bug meeting an odd object): it is
  isolated - logged once per version with its name, counted, skipped - and the loop keeps its
  watch. Relisting would not help (the same object fails again) and, for Secrets, would list every
  Secret of the cluster every 30 s forever;
- the list or watch itself failing (apiserver down, a permission missing): the loop backs off and
  tries again; after UNHEALTHY_AFTER failures in a row without a working watch in between, the
  process says so on its health endpoint, so that the Deployment's probes notice a process that
  runs but no longer sees the cluster.

Metrics (the operator's default registry and the meter's /metrics):
`tenantry_watch_callback_errors_total{kind}` and `tenantry_watch_consecutive_failures{kind}`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("tenantry.watch")

# Failed lists/watches in a row (back-off 0.5, 1, 2, 4, 8 s: about 15 s, plus each list's own
# retries of 429/5xx) after which a loop counts as failing.
UNHEALTHY_AFTER = 5

CALLBACK_ERRORS_METRIC = "tenantry_watch_callback_errors_total"
CONSECUTIVE_FAILURES_METRIC = "tenantry_watch_consecutive_failures"


def _where(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or "?"), str(meta.get("resourceVersion") or ""))


@dataclass
class WatchHealth:
    """The state of one loop. `kind` labels its metrics; several loops may share a kind."""

    kind: str
    callback_errors: int = 0
    consecutive_failures: int = 0
    last_error: str = ""
    # (namespace, name) -> the resourceVersion last logged as failing: one log line per version.
    _failing: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.consecutive_failures < UNHEALTHY_AFTER

    def isolate(self, callback: Callable[..., Any], obj: Mapping[str, Any], *args: Any) -> bool:
        """Call `callback(*args)` for `obj` (args default to (obj,)); an exception is this object's
        alone: logged once per version, counted, and swallowed. True when the callback succeeded."""
        try:
            callback(*(args or (obj,)))
        except Exception as error:
            self.skipped(obj, error)
            return False
        if self._failing:
            namespace, name, _ = _where(obj)
            if self._failing.pop((namespace, name), None) is not None:
                log.info("The %s %s%s is handled again.", self.kind, f"{namespace}/" if namespace else "", name)
        return True

    def skipped(self, obj: Mapping[str, Any], error: BaseException) -> None:
        """`obj` could not be handled: count it; log it (with the traceback) once per version."""
        namespace, name, version = _where(obj)
        self.callback_errors += 1
        if self._failing.get((namespace, name)) != version:
            self._failing[(namespace, name)] = version
            log.error("The %s %s%s (version %s) could not be handled and was skipped; the watch goes on: %r",
                      self.kind, f"{namespace}/" if namespace else "", name, version or "?", error,
                      exc_info=error)

    def each(self, items: Iterable[Mapping[str, Any]], callback: Callable[[Any], Any]) -> None:
        """`callback(item)` for every item, each isolated (a list's items)."""
        for item in items:
            self.isolate(callback, item)

    def failed(self, error: BaseException | str) -> None:
        self.consecutive_failures += 1
        self.last_error = str(error)[:300]
        if self.consecutive_failures == UNHEALTHY_AFTER:
            log.error("The watch of %s failed %d times in a row; reporting unhealthy until it works again: %s",
                      self.kind, self.consecutive_failures, self.last_error)

    def working(self) -> None:
        """The watch works (it delivered an event, or ran until the server ended it)."""
        if self.consecutive_failures >= UNHEALTHY_AFTER:
            log.info("The watch of %s works again.", self.kind)
        self.consecutive_failures = 0
        self.last_error = ""


def problems(watches: Iterable[WatchHealth]) -> list[str]:
    """A sentence per failing loop, for the health endpoint (empty: all well)."""
    return [f"the watch of {w.kind} failed {w.consecutive_failures} times in a row: {w.last_error}"
            for w in watches if not w.healthy]


def metric_rows(watches: Iterable[WatchHealth]) -> tuple[dict[str, int], dict[str, int]]:
    """Callback errors (summed) and consecutive failures (the worst loop) by kind."""
    errors: dict[str, int] = {}
    failures: dict[str, int] = {}
    for watch in watches:
        errors[watch.kind] = errors.get(watch.kind, 0) + watch.callback_errors
        failures[watch.kind] = max(failures.get(watch.kind, 0), watch.consecutive_failures)
    return errors, failures
