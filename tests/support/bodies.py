"""Editing object bodies in tests: one helper for the unit and the integration tiers."""

from __future__ import annotations

import copy
from typing import Any


def set_in(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of body with `value` at a dotted path ("spec.regions.0.tls.mode"); value ... deletes."""
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    node: Any = body
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is ...:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return body
