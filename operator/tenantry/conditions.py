"""Status conditions in the shape of metav1.Condition, merged without needless churn.

A reconcile states what each condition should be now (`Condition`); `merge_conditions` keeps the
old `lastTransitionTime` when the status did not flip, so that writing the same state twice is
byte-for-byte identical and the status write can be skipped. Transitions are returned too: each
one becomes an Event with the condition's reason.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool | None  # None = "Unknown"
    reason: str
    message: str

    @property
    def status_text(self) -> str:
        return "Unknown" if self.status is None else ("True" if self.status else "False")


def failure_text(error: BaseException) -> str:
    """An error in words for a condition's message or a log line. Some say nothing by themselves: a timeout
    is `TimeoutError()`, whose text is empty, and a message ending in "will be retried: " helps nobody."""
    text = str(error).strip()
    return text if text else f"{type(error).__name__} (no details; a request that timed out says this)"


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(
    current: Sequence[Mapping[str, Any]] | None,
    wanted: Iterable[Condition],
    generation: int,
    now: str | None = None,
) -> tuple[list[dict[str, Any]], list[Condition]]:
    """The new conditions list and the conditions whose status or reason changed.

    Conditions not in `wanted` are dropped: status is rebuilt from scratch on every reconcile.
    """
    by_type = {c.get("type"): c for c in current or ()}
    merged: list[dict[str, Any]] = []
    changed: list[Condition] = []
    stamp = now or now_rfc3339()
    for condition in wanted:
        old = by_type.get(condition.type)
        flipped = old is None or old.get("status") != condition.status_text
        if old is None or flipped or old.get("reason") != condition.reason:
            changed.append(condition)
        merged.append({
            "type": condition.type,
            "status": condition.status_text,
            "reason": condition.reason,
            "message": condition.message,
            "lastTransitionTime": stamp if old is None or flipped else old.get("lastTransitionTime", stamp),
            "observedGeneration": generation,
        })
    return merged, changed


def find(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions or () if c.get("type") == type_), None)


def is_true(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> bool:
    found = find(conditions, type_)
    return bool(found and found.get("status") == "True")
