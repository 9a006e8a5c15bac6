"""List-and-watch of one kind into the Store: the operator's only way of seeing the cluster.

One Informer per kind: the Tenantry kinds (Region, Reseller, Plan, Tenant, LicenseOrder; no label
selector) and the operator's children (namespaces, quotas, bindings, ...), watched with a server-side
label selector (`app.kubernetes.io/managed-by=tenantry`) so that the operator never streams the
contents of every Secret or ConfigMap of the cluster. (Other Secrets are watched as metadata only,
names and versions, to notice supplied TLS certificates: supplied_secrets.py.)

Each change lands in the Store, then `on_change(event_type, new, old)` runs (`old`: what the Store
held before, None for nothing): for a child it wakes the owning Tenant or Reseller, which is how a
deleted or edited child comes back within seconds. An object its callbacks fail on is skipped and
counted, never a reason to list the kind again (tenantry.watch_health).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from tenantry.controller.store import Store
from tenantry.kube import KubeClient, list_then_watch
from tenantry.naming import LABEL_MANAGED_BY, MANAGED_BY
from tenantry.watch_health import WatchHealth

log = logging.getLogger(__name__)

MANAGED_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY}"


class Informer:
    def __init__(self, client: KubeClient, store: Store, kind: str,
                 on_change: Callable[[str, dict[str, Any], dict[str, Any] | None], None], *,
                 label_selector: str | None = MANAGED_SELECTOR):
        self.client, self.store, self.kind = client, store, kind
        self.on_change = on_change
        self.label_selector = label_selector
        self.synced = asyncio.Event()
        self.health = WatchHealth(kind)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"informer-{self.kind}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _relisted(self, items: list[dict[str, Any]]) -> None:
        seen = set()

        def put(item: dict[str, Any]) -> None:
            meta = item["metadata"]
            seen.add((meta.get("namespace"), meta["name"]))  # first: a failure below keeps it, not deletes it
            old = self.store.get(self.kind, meta["name"], meta.get("namespace"))
            if self.store.put(self.kind, item, listed=True):
                self.on_change("MODIFIED", item, old)

        self.health.each(items, put)
        # Whatever vanished while we were not watching is gone now.
        for old in list(self.store.list(self.kind)):
            meta = old["metadata"]
            if (meta.get("namespace"), meta["name"]) not in seen:
                self.store.delete(self.kind, meta["name"], meta.get("namespace"))
                self.health.isolate(self.on_change, old, "DELETED", old, old)

    def _event(self, event_type: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if event_type == "DELETED":
            old = self.store.delete(self.kind, meta["name"], meta.get("namespace"))
            self.on_change(event_type, obj, old)
            return
        old = self.store.get(self.kind, meta["name"], meta.get("namespace"))
        if self.store.put(self.kind, obj):
            self.on_change(event_type, obj, old)

    async def _run(self) -> None:
        await list_then_watch(self.client, self.kind, on_list=self._relisted, on_event=self._event,
                              label_selector=self.label_selector, on_synced=self.synced.set, health=self.health)
