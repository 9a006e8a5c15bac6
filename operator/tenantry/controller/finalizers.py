"""The `tenantry.dev/finalizer` on Tenants and LicenseOrders: only the operator puts it on and takes it off.

A Tenant gets it before its first child (its namespace must not outlive it), a fulfilled
LicenseOrder before its licences count (its deletion must leave a refund record). A new Tenant
normally has it from the start: the operator's mutating admission webhook adds it to the create
(tenantry/webhook/finalizer.py); `add_finalizer` is the fallback for a Tenant stored without it (the
webhook off or failed open, a Tenant older than the webhook), so nothing depends on the webhook. Deletion then
waits for the object's own reconcile, which sees `deletionTimestamp`, cleans up, and takes the
finalizer off. Both writes carry the resourceVersion they were decided on: a 409 means the object
changed meanwhile, and the reconcile is retried on the newer version (the work queue's back-off).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenantry.controller.context import Operator
from tenantry.kube import ApiError
from tenantry.naming import FINALIZER


def has_finalizer(body: Mapping[str, Any]) -> bool:
    return FINALIZER in (body["metadata"].get("finalizers") or [])


def being_deleted(body: Mapping[str, Any]) -> bool:
    return bool(body["metadata"].get("deletionTimestamp"))


async def add_finalizer(op: Operator, kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The object with the finalizer added, on this very version of it."""
    return await _set_finalizers(op, kind, body, [*(body["metadata"].get("finalizers") or []), FINALIZER])


async def remove_finalizer(op: Operator, kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The object with the finalizer taken off (the apiserver removes it at once when it was the last)."""
    kept = [f for f in body["metadata"].get("finalizers") or [] if f != FINALIZER]
    try:
        return await _set_finalizers(op, kind, body, kept)
    except ApiError as error:
        if error.not_found:  # gone already: an earlier removal of ours was the last
            return dict(body)
        raise


async def _set_finalizers(op: Operator, kind: str, body: Mapping[str, Any], finalizers: list[str]) -> dict[str, Any]:
    meta = body["metadata"]
    based_on = op.store.version(kind, meta["name"], meta.get("namespace"))
    # A merge patch replaces the whole list: the resourceVersion makes sure it is the list we read.
    result = await op.client.merge_patch(kind, meta["name"], {"metadata": {
        "finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}}, namespace=meta.get("namespace"))
    op.store.written(kind, result, based_on=based_on)
    return result
