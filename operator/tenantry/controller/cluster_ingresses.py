"""Every Ingress of the cluster that the operator did not make for a tenant, as hosts only.

Feeds `AdmissionBook.ingresses` (tenantry.hostindex), against which tenants' custom domains are
checked (`HostConflict`, cluster-wide). Two sources, so that no label lets an Ingress hide:
- `ClusterIngresses` lists and watches Ingresses *without* the label
  app.kubernetes.io/managed-by=tenantry (the selector `managed-by!=tenantry` also matches objects
  without the label): every Ingress of the platform and its users, in any namespace. Each object
  is reduced to its hosts at once; nothing else is kept.
- `observe_labelled` is called for the labelled Ingresses the child informer (informer.py) holds
  anyway: those that are not a tenant's own Ingress (a label copied by someone else) count too.
A change of hosts wakes the tenants that claim them: one refused for an Ingress that is gone is
admitted by itself, and one whose new domain another Ingress took first is told.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterable
from typing import Any

from tenantry.controller.store import owner_of
from tenantry.hostindex import IngressHostIndex, IngressKey, ingress_hosts
from tenantry.kube import KubeClient, list_then_watch
from tenantry.naming import LABEL_MANAGED_BY, MANAGED_BY
from tenantry.watch_health import WatchHealth

UNLABELLED_SELECTOR = f"{LABEL_MANAGED_BY}!={MANAGED_BY}"
UNLABELLED, LABELLED = "unlabelled", "labelled"  # the index's sources


def _key(obj: dict[str, Any]) -> IngressKey:
    meta = obj["metadata"]
    return sys.intern(meta.get("namespace") or ""), meta["name"]  # many Ingresses share a namespace


def observe_labelled(index: IngressHostIndex, event_type: str, obj: dict[str, Any]) -> set[str]:
    """A labelled Ingress from the child informer: indexed unless it is a tenant's own (owner_of
    checks its labels against its namespace; those hosts are the AdmissionBook's). Returns the
    hosts that changed."""
    if event_type == "DELETED" or owner_of(obj) is not None:
        return index.remove(LABELLED, _key(obj))
    return index.put(LABELLED, _key(obj), ingress_hosts(obj))


class ClusterIngresses:
    """The watch of unlabelled Ingresses; `on_hosts_changed(hosts)` after each change of hosts."""

    def __init__(self, client: KubeClient, index: IngressHostIndex,
                 on_hosts_changed: Callable[[Iterable[str]], None]):
        self.client, self.index = client, index
        self.on_hosts_changed = on_hosts_changed
        self.synced = asyncio.Event()
        self.health = WatchHealth("Ingress")  # /healthz and the watch metrics (tenantry.watch_health)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="watch-cluster-ingresses")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _relisted(self, items: list[dict[str, Any]]) -> None:
        changed = self.index.replace_source(UNLABELLED, {_key(item): ingress_hosts(item) for item in items})
        if changed and self.synced.is_set():  # before the first sync, every tenant is reconciled anyway
            self.on_hosts_changed(changed)

    def _event(self, event_type: str, obj: dict[str, Any]) -> None:
        if event_type == "DELETED":
            changed = self.index.remove(UNLABELLED, _key(obj))
        else:
            changed = self.index.put(UNLABELLED, _key(obj), ingress_hosts(obj))
        if changed:
            self.on_hosts_changed(changed)

    async def _run(self) -> None:
        await list_then_watch(self.client, "Ingress", on_list=self._relisted, on_event=self._event,
                              label_selector=UNLABELLED_SELECTOR, on_synced=self.synced.set, health=self.health)
