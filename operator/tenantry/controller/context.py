"""The running operator's shared parts, and the one way every reconcile finishes: its status.

`Operator` bundles the API client, the watch-fed Store, the AdmissionBook, the work queue, the
index of supplied TLS Secrets, and everything else the running operator keeps between reconciles:
no module keeps state of its own, so two Operators in one process share nothing (Prometheus's
metric objects aside, which are the process's by design).
`publish_status` is the deferred status write of every kind: it merges conditions (keeping
transition times), sets observedGeneration, writes only on change, and posts Events where a person
needs one (DESIGN §2; `transition_events` decides): a Warning for every bad reason, and at most one
Normal Event that summarises the good transitions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tenantry.admission import AdmissionBook
from tenantry.conditions import Condition, merge_conditions
from tenantry.controller.apply import write_status
from tenantry.controller.clusters import Cluster, Clusters
from tenantry.controller.metrics import TenantSeries
from tenantry.controller.platform_roles import PLATFORM_ROLES
from tenantry.controller.queue import WorkQueue
from tenantry.controller.secret_refs import SecretReferences
from tenantry.controller.store import Store
from tenantry.controller.tls_state import TlsState
from tenantry.kube import KubeClient
from tenantry.licensing import OrderBook
from tenantry.settings import Settings

log = logging.getLogger("tenantry")

# Condition types whose True is bad news (the rest: True is good news).
_NEGATIVE_TYPES = {"Overcommitted", "LicensesOverused"}

Key = tuple[str, str | None, str]  # (kind, namespace, name)


class Outbox(Protocol):
    """What the Operator needs of the sender of billing records (license_order.LicenseOutbox), named
    here so that this module does not import the one that imports it."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...

    def wake(self) -> None: ...


@dataclass
class Operator:
    client: KubeClient
    settings: Settings
    store: Store = field(default_factory=Store)
    book: AdmissionBook = field(default_factory=AdmissionBook)
    queue: WorkQueue | None = None
    # Which Tenants and Resellers name which supplied TLS Secret (controller/supplied_secrets.py).
    secret_refs: SecretReferences = field(default_factory=SecretReferences)
    # Optional features found (cert-manager's Certificate, Prometheus Operator's ServiceMonitor), and
    # when each was last looked up (time.monotonic()): installing one later is noticed without a restart.
    features: set[str] = field(default_factory=set)
    feature_checked: dict[str, float] = field(default_factory=dict)
    # What the TLS phase keeps between reconciles (controller/tls.py).
    tls: TlsState = field(default_factory=TlsState)
    # The refusal reason of each refused tenant, behind the tenants-refused metrics (controller/metrics.py).
    tenant_series: TenantSeries = field(default_factory=TenantSeries)
    # Which platform ClusterRoles exist (controller/platform_roles.py); all until the watch says otherwise.
    platform_roles: set[str] = field(default_factory=lambda: set(PLATFORM_ROLES))
    # Decided LicenseOrders (purchased licences, the month's purchases) and the sender of their
    # billing records (controller/license_order.py).
    orders: OrderBook = field(default_factory=OrderBook)
    outbox: Outbox | None = None
    # Where each region's tenant namespaces live: this cluster, or a member cluster (controller/clusters.py).
    clusters: Clusters = field(init=False)

    def __post_init__(self) -> None:
        self.clusters = Clusters(Cluster(None, self.client, self.store))

    def enqueue(self, keys: Iterable[Key], delay: float = 0.0) -> None:
        if self.queue is None:
            return
        for key in keys:
            if delay:
                self.queue.add_after(key, delay)
            else:
                self.queue.add(key)

    def enqueue_one(self, kind: str, namespace: str | None, name: str, delay: float = 0.0) -> None:
        self.enqueue([(kind, namespace, name)], delay)


def _event_type(condition: Condition) -> str:
    # For ordinary types False is bad news; for negative types (Overcommitted) True is.
    bad = condition.status is True if condition.type in _NEGATIVE_TYPES else condition.status is False
    return "Warning" if bad else "Normal"


def transition_events(changed: Iterable[Condition]) -> list[tuple[str, str, str]]:
    """The Events (type, reason, message) for one status write's condition transitions.

    Every bad transition is a Warning with its own reason (Admitted=False and Ready=False for the same
    reason make one). The good ones make at most one Normal Event, named after the most telling of them:
    Ready when it is among them (a new tenant: admitted, provisioned, certified, roles bound - and Ready),
    else the first in the reconcile's order; its message names the rest. Every reconcile writes its
    conditions once, at its end (the tenant's write-ahead admission writes none), so this is at most one
    Normal Event per reconcile (DESIGN §2): a new tenant's admission is told in its Ready summary."""
    warnings: dict[str, Condition] = {}
    good: list[Condition] = []
    for condition in changed:
        if _event_type(condition) == "Warning":
            warnings.setdefault(condition.reason, condition)
        else:
            good.append(condition)
    events = [("Warning", reason, f"{c.type}: {c.message}") for reason, c in warnings.items()]
    if good:
        summary = next((c for c in good if c.type == "Ready"), good[0])
        others = [c.type for c in good if c is not summary]
        also = f" (also now: {', '.join(others)})" if others else ""
        events.append(("Normal", summary.reason, f"{summary.type}: {summary.message}{also}"))
    return events


async def publish_status(op: Operator, obj: Mapping[str, Any], fields: Mapping[str, Any],
                         conditions: Iterable[Condition]) -> bool:
    """Write `fields` + merged `conditions` as the object's status (if changed) and post its Events."""
    current = obj.get("status") or {}
    generation = int(obj["metadata"].get("generation", 0))
    merged, changed = merge_conditions(current.get("conditions"), conditions, generation)
    wanted: dict[str, Any] = {"observedGeneration": generation, **fields, "conditions": merged}
    written = await write_status(op.client, op.store, obj, wanted)
    meta = obj["metadata"]
    where = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
    for condition in changed:
        log.info("%s %s: %s is %s (%s): %s", obj["kind"], where, condition.type, condition.status_text,
                 condition.reason, condition.message)
    # Posted together, not one after another: a reconcile with a warning and a summary would otherwise
    # hold a worker for two round trips (post_event never raises).
    await asyncio.gather(*(op.client.post_event(obj, reason=reason, message=message, type_=type_)
                           for type_, reason, message in transition_events(changed)))
    return written
