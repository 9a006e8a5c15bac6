"""List-and-watch of the operator's children (namespaces, quotas, bindings, ...) by label.

Kopf watches the four Tenantry kinds; the children are watched here with a server-side label
selector (`app.kubernetes.io/managed-by=tenantry`), so the operator never streams every Secret or
ConfigMap of the cluster and needs no cluster-wide read of objects that are not its own. Each
change lands in the Store and wakes the owning Tenant or Reseller: that is how a deleted or edited
child comes back within seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

from tenantry.controller.store import Store
from tenantry.kube import ApiError, KubeClient
from tenantry.naming import LABEL_MANAGED_BY, MANAGED_BY

log = logging.getLogger(__name__)

MANAGED_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY}"


class Informer:
    def __init__(self, client: KubeClient, store: Store, kind: str,
                 on_change: Callable[[str, dict[str, Any]], None], *, label_selector: str = MANAGED_SELECTOR):
        self.client, self.store, self.kind = client, store, kind
        self.on_change = on_change
        self.label_selector = label_selector
        self.synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"informer-{self.kind}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _relist(self) -> str:
        items, version = await self.client.list_with_version(self.kind, self.label_selector)
        seen = set()
        for item in items:
            meta = item["metadata"]
            seen.add((meta.get("namespace"), meta["name"]))
            if self.store.put(self.kind, item):
                self.on_change("MODIFIED", item)
        # Whatever vanished while we were not watching is gone now.
        for old in list(self.store.list(self.kind)):
            meta = old["metadata"]
            if (meta.get("namespace"), meta["name"]) not in seen:
                self.store.delete(self.kind, meta["name"], meta.get("namespace"))
                self.on_change("DELETED", old)
        return version

    async def _run(self) -> None:
        delay = 0.5
        while True:
            try:
                version = await self._relist()
                self.synced.set()
                delay = 0.5
                while True:
                    async for event_type, obj in self.client.watch(self.kind, resource_version=version,
                                                                   label_selector=self.label_selector):
                        version = obj.get("metadata", {}).get("resourceVersion", version)
                        if event_type == "BOOKMARK":
                            continue
                        meta = obj["metadata"]
                        if event_type == "DELETED":
                            self.store.delete(self.kind, meta["name"], meta.get("namespace"))
                            self.on_change(event_type, obj)
                        elif self.store.put(self.kind, obj):
                            self.on_change(event_type, obj)
            except asyncio.CancelledError:
                raise
            except ApiError as error:
                if error.status != 410:
                    log.warning("Watch of %s failed, listing again in %.1fs: %s", self.kind, delay, error)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30)
            except (TimeoutError, aiohttp.ClientError, ConnectionError) as error:
                log.warning("Watch of %s lost its connection, listing again in %.1fs: %s", self.kind, delay, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)
