"""Secrets that users supply for TLS: who names them, and a metadata-only watch that wakes those.

A tenant's own certificate (`spec.domains[].tls` of mode Secret, in the tenant namespace) and a
reseller's per region (`spec.regions[].tls` of mode Secret, in `reseller-<r>`) are not the operator's,
so the label-selected Secret informer (informer.py) never sees them; the TLS phase reads them with a
GET (controller/tls.py). What this module adds is noticing, within a second, that one of them was
created, replaced or deleted - instead of at the next resync.

- `SecretVersions` lists and watches every Secret of the cluster as PartialObjectMetadata: no data
  crosses the wire, and all that is kept is (namespace, name) -> resourceVersion, about 200 bytes
  per Secret (test_supplied_secrets measures it). Secrets labelled
  app.kubernetes.io/managed-by=tenantry are skipped: the Secret informer holds those in full and
  wakes whoever they concern (handlers._child_changed).
- `SecretReferences` (secret_refs.py, re-exported here) maps (namespace, name) to the Tenants and
  Resellers whose spec names that Secret; it is kept from the specs the watches of those kinds bring
  (handlers._observe).
- `keys_to_wake` is what one Secret's change means: its referrers, and for a reseller's Secret the
  reseller's tenants in the regions that use it (they copy it or are signed by it). A Secret nobody
  names costs a dict update and nothing else.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Mapping
from typing import Any

from tenantry.controller.context import Operator
from tenantry.controller.secret_refs import SecretKey, SecretReferences, reseller_secret_refs, tenant_secret_refs
from tenantry.controller.specs import read_spec
from tenantry.controller.store import ObjectKey as Key
from tenantry.kube import KubeClient, list_then_watch
from tenantry.naming import (
    LABEL_MANAGED_BY,
    MANAGED_BY,
    RESELLER,
    TENANT,
    reseller_namespace,
)
from tenantry.watch_health import WatchHealth

# The index itself lives below the Operator (secret_refs.py); its names are re-exported for callers.
__all__ = ["SecretKey", "SecretReferences", "SecretVersions", "keys_to_wake", "reseller_secret_refs",
           "tenant_secret_refs"]


# -- whom a Secret's change wakes -------------------------------------------------------------


def keys_to_wake(op: Operator, namespace: str, name: str) -> list[Key]:
    """Whom a created, replaced or deleted Secret concerns (empty for a Secret nobody names)."""
    keys: list[Key] = []
    for owner in sorted(op.secret_refs.owners(namespace, name), key=lambda k: (k[0], k[1] or "", k[2])):
        keys.append(owner)
        if owner[0] == RESELLER:
            keys += _tenants_served_by(op, owner[2], name)
    return list(dict.fromkeys(keys))


def _tenants_served_by(op: Operator, reseller: str, secret_name: str) -> list[Key]:
    """The reseller's tenants whose default host takes its certificate from this Secret (a copy of
    it, or a leaf it signed): those in the regions of mode Secret that name it. The reseller's own
    reconcile would also wake them when its status changes, but only after it ran, and not for a
    change that leaves the status as it was (a broken replacement of a broken Secret)."""
    body = op.store.get(RESELLER, reseller)
    spec, _ = read_spec(RESELLER, body) if body is not None else (None, None)
    if spec is None:
        return []
    regions = {r.name for r in spec.regions if r.tls.mode == "Secret" and r.tls.secret_name == secret_name}
    return [(TENANT, reseller_namespace(reseller), c.name) for c in op.book.tenants_of(reseller) if c.region in regions]


# -- the watch ------------------------------------------------------------------------------------


def _is_ours(meta: Mapping[str, Any]) -> bool:
    return (meta.get("labels") or {}).get(LABEL_MANAGED_BY) == MANAGED_BY


class SecretVersions:
    """Every Secret of the cluster but the operator's own, as (namespace, name) -> resourceVersion,
    kept by a metadata-only list-and-watch. `on_change(event, namespace, name)` is called for each
    Secret created (ADDED), replaced (MODIFIED) or deleted (DELETED) - also for what changed while
    the watch was down, found by comparing a new list with the versions held."""

    def __init__(self, client: KubeClient, on_change: Callable[[str, str, str], None]):
        self.client = client
        self.on_change = on_change
        self.versions: dict[SecretKey, str] = {}
        self.synced = asyncio.Event()
        self.health = WatchHealth("Secret")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="watch-supplied-secrets")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    @staticmethod
    def _key(meta: Mapping[str, Any]) -> SecretKey:
        # Many Secrets share a namespace: one copy of its name for all of them.
        return sys.intern(meta.get("namespace") or ""), meta["name"]

    def _relisted(self, items: list[dict[str, Any]]) -> None:
        fresh: dict[SecretKey, str] = {}

        def keep(item: dict[str, Any]) -> None:
            meta = item["metadata"]
            if not _is_ours(meta):
                fresh[self._key(meta)] = meta.get("resourceVersion", "")

        self.health.each(items, keep)
        old, self.versions = self.versions, fresh
        if not self.synced.is_set():
            return  # the first list: every Tenant and Reseller is reconciled at start-up anyway
        for key, version in fresh.items():
            if old.get(key) != version:
                self._changed("ADDED" if key not in old else "MODIFIED", key)
        for key in old.keys() - fresh.keys():
            self._changed("DELETED", key)

    def _changed(self, event_type: str, key: SecretKey) -> None:
        self.health.isolate(self.on_change, {"metadata": {"namespace": key[0], "name": key[1]}}, event_type, *key)

    def _event(self, event_type: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        key = self._key(meta)
        if _is_ours(meta):
            # The operator's own (or labelled so just now): the Secret informer has it in full.
            self.versions.pop(key, None)
            return
        if event_type == "DELETED":
            self.versions.pop(key, None)
        else:
            version = meta.get("resourceVersion", "")
            if self.versions.get(key) == version:
                return  # seen already (a relist raced the watch)
            self.versions[key] = version
        self.on_change(event_type, *key)

    async def _run(self) -> None:
        await list_then_watch(self.client, "Secret", on_list=self._relisted, on_event=self._event,
                              on_synced=self.synced.set, metadata_only=True, health=self.health)
