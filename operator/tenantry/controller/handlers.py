"""The operator's wiring: what kopf runs, and how watch events reach the reconciles.

kopf runs the process: start-up and shut-down (`start`, `stop` below), login, the liveness probe
with its checks. Everything the operator sees comes through one Informer per kind (informer.py),
the Tenantry kinds and the children alike, into one Store; a watch event only updates that
picture (and the AdmissionBook) and says which objects to look at again (`_observe`,
`_child_changed`). The reconcile functions (one module per kind) do the work from one WorkQueue, so
events for one object collapse into one reconcile and a change to a Reseller, Plan or Region flows
to every tenant it affects. Deletion is a reconcile too: behind the `tenantry.dev/finalizer`, which
only the operator writes (finalizers.py). docs/architecture.md draws it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
from collections.abc import Hashable, Iterable
from typing import Any

import kopf

from tenantry import watch_health
from tenantry.controller import license_order, metrics, tls, webhook
from tenantry.controller.cluster_ingresses import ClusterIngresses, observe_labelled
from tenantry.controller.context import Key, Operator
from tenantry.controller.informer import Informer
from tenantry.controller.plan import reconcile_plan
from tenantry.controller.platform_roles import PlatformRoles
from tenantry.controller.queue import WorkQueue
from tenantry.controller.region import connect_member, reconcile_region
from tenantry.controller.reseller import reconcile_reseller
from tenantry.controller.specs import plan_terms, read_spec, reseller_terms, tenant_claim
from tenantry.controller.store import owner_of
from tenantry.controller.supplied_secrets import (
    SecretVersions,
    keys_to_wake,
    reseller_secret_refs,
    tenant_secret_refs,
)
from tenantry.controller.tenant import reconcile_tenant
from tenantry.credentials import ClusterLogin
from tenantry.kube import KubeClient
from tenantry.naming import (
    FIELD_MANAGER,
    LICENSE_ORDER,
    PLAN,
    REGION,
    RESELLER,
    TENANT,
    reseller_from_namespace,
    reseller_namespace,
)
from tenantry.settings import load_settings

log = logging.getLogger("tenantry")

# One source of credentials for kopf's watches and the operator's own client (tenantry.credentials).
LOGIN = ClusterLogin()

# The Tenantry kinds, watched whole (no selector), in the order the picture is filled at start-up.
OWN_KINDS = (LICENSE_ORDER, REGION, RESELLER, PLAN, TENANT)

# Children watched by label (see informer.py). Secrets: the operator's own CA and TLS Secrets only
# (the label selector keeps every other Secret of the cluster out of its memory; the Secrets users
# supply for TLS are watched metadata-only, see supplied_secrets.py). cert-manager's Certificates are
# watched from the moment that kind is found (controller/tls.py).
CHILD_KINDS = ("Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy", "RoleBinding", "Ingress", "ConfigMap",
               "ClusterRole", "ClusterRoleBinding", "Secret", "StatefulSet", "Service",
               "Deployment")  # Deployment: a meter of the previous version, removed (controller/region.py)

# Status counts (licences used, tenants per plan) are refreshed shortly after a change, so that a
# burst of tenant changes costs one status write per reseller rather than one per tenant.
STATUS_DELAY = 1.0

_RECONCILERS = {
    TENANT: lambda op, ns, name: reconcile_tenant(op, ns, name),
    PLAN: lambda op, ns, name: reconcile_plan(op, ns, name),
    RESELLER: lambda op, ns, name: reconcile_reseller(op, name),
    REGION: lambda op, ns, name: reconcile_region(op, name),
    LICENSE_ORDER: lambda op, ns, name: license_order.reconcile_license_order(op, ns, name),
}


# -- start-up and shut-down ----------------------------------------------------------------------


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # kopf serves no resource of its own here (every kind is watched by an Informer): nothing for it
    # to discover, so it neither lists nor watches CustomResourceDefinitions (and needs no access).
    settings.scanning.disabled = True
    config = load_settings()
    # Every informer's watch holds a connection for good, and a reconcile
    # applies a tenant's children at once (8 or 9 requests): with too few connections the workers
    # queue for one, not for the apiserver.
    client = KubeClient(LOGIN, max_connections=config.workers * 8 + len(OWN_KINDS) + len(CHILD_KINDS) + 4)
    client.on_request = metrics.count_request
    op = Operator(client=client, settings=config)
    memo["operator"] = op
    # A member cluster's children wake their owners as this cluster's do; a member that stops (or
    # starts again) answering wakes its region and the region's tenants.
    op.clusters.on_child = functools.partial(_child_changed, op)
    # The operator's own writes of the Tenantry kinds are taken in as their watch events would be (the
    # AdmissionBook, the tenant series, the recounts they trigger); their echoes are then no news.
    op.store.on_written = functools.partial(_own_write, op)
    op.clusters.on_reachability = functools.partial(_member_reachability_changed, op)
    op.clusters.on_refresh = lambda region: op.enqueue_one(REGION, None, region)

    # Fill the picture before the first reconcile: admission needs every tenant's record, and every
    # reseller's licences bought with LicenseOrders (so orders first: its terms include them). Until
    # the queue starts below, what the watches say to look at again is dropped: everything is looked at.
    informers = []
    for kind in OWN_KINDS:
        observe = functools.partial(license_order.observe_order, op) if kind == LICENSE_ORDER \
            else functools.partial(_observe, op, kind)
        informer = Informer(client, op.store, kind, observe, label_selector=None)
        informer.start()
        informers.append(informer)
        await informer.synced.wait()  # a failing list is retried with back-off and shows on /healthz
    informers += [Informer(client, op.store, kind, functools.partial(_child_changed, op)) for kind in CHILD_KINDS]
    for informer in informers:
        informer.start()
    # In sync before the first reconcile: a supplied Secret replaced after that reconcile read it and
    # before the watch's first list would otherwise go unnoticed until the resync.
    secrets = SecretVersions(client, functools.partial(_secret_changed, op))
    secrets.start()
    memo["secret_watch"] = secrets
    # Which platform ClusterRoles exist: a binding to a missing one is reported (platform_roles.py).
    roles = PlatformRoles(client, functools.partial(_platform_role_changed, op))
    roles.start()
    memo["roles_watch"] = roles
    metrics.WATCHES.source = lambda: _watch_health(memo)
    await asyncio.wait_for(roles.synced.wait(), timeout=120)
    # Every other Ingress of the cluster, as hosts: in sync before the first admission decision.
    ingresses = ClusterIngresses(client, op.book.ingresses, functools.partial(_ingress_hosts_changed, op))
    ingresses.start()
    memo["ingress_watch"] = ingresses
    await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in informers), secrets.synced.wait(),
                                          ingresses.synced.wait()), timeout=120)
    memo["informers"] = informers
    await tls.cert_manager_available(op)  # watch Certificates before the first reconcile prunes any
    # Member clusters connected, their children in sync, before the first reconcile: after a restart a
    # tenant of a member region finds its cluster's picture, not "not connected yet" (a status write).
    members = [(r["metadata"]["name"], spec) for r in op.store.list(REGION)
               if (spec := read_spec(REGION, r)[0]) is not None and spec.cluster is not None]
    for (region, _), outcome in zip(members, await asyncio.gather(
            *(connect_member(op, region, spec) for region, spec in members), return_exceptions=True), strict=True):
        if isinstance(outcome, Exception):  # its Region's reconcile tries again and reports it
            log.warning("Could not connect region %s's member cluster at start-up: %s", region, outcome)

    queue = WorkQueue(lambda key: _reconcile(op, key), workers=config.workers)
    queue.on_result = _record_result
    op.queue = queue
    metrics.QUEUE_DEPTH.set_function(lambda: queue.depth)  # read at scrape time, never stale
    queue.start()
    op.outbox = license_order.LicenseOutbox.from_settings(op)
    op.outbox.start()  # sends what a previous run left unsent in the orders' statuses
    memo["license_collector"] = license_order.register_collector(op)
    op.enqueue([(kind, obj["metadata"].get("namespace"), obj["metadata"]["name"])
                for kind in (REGION, RESELLER, PLAN, TENANT) for obj in op.store.list(kind)])
    op.enqueue(license_order.undecided_orders(op))
    memo["resync"] = asyncio.create_task(_resync_forever(op))
    memo["webhook"] = await webhook.start_webhook(op)  # answers from the picture loaded above
    log.info("Tenantry started: %d regions, %d resellers, %d plans, %d tenants in the picture.",
             op.store.count(REGION), op.store.count(RESELLER), op.store.count(PLAN), op.store.count(TENANT))


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    _exit_if_shutdown_hangs()
    op: Operator | None = memo.get("operator")
    if op is None:
        return
    if "resync" in memo:
        memo["resync"].cancel()
    await webhook.stop_webhook(memo.get("webhook"))
    if op.queue is not None:
        await op.queue.stop()
    if op.outbox is not None:
        await op.outbox.stop()
    if "license_collector" in memo:
        license_order.unregister_collector(memo["license_collector"])
    for informer in memo.get("informers", []):
        await informer.stop()
    if "secret_watch" in memo:
        await memo["secret_watch"].stop()
    if "roles_watch" in memo:
        await memo["roles_watch"].stop()
    if "ingress_watch" in memo:
        await memo["ingress_watch"].stop()
    await tls.stop_watches(op)
    await op.clusters.stop()
    await op.client.close()


# A process that stops reconciling but keeps running is the worst way for an operator to fail: a
# Deployment restarts a process that exits, never one stuck in its shutdown.
SHUTDOWN_GRACE = 20.0


def _exit_if_shutdown_hangs() -> None:
    def give_up() -> None:
        log.error("The operator did not finish stopping within %.0f s; exiting now.", SHUTDOWN_GRACE)
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(SHUTDOWN_GRACE, give_up)
    timer.daemon = True
    timer.start()


@kopf.on.login()
def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo | None:
    """Kopf asks at start-up and after any 401 of its own: a fresh login from the source KubeClient
    uses too (tenantry.credentials), so both always hold the latest credentials."""
    return LOGIN.connection_info(settings)


@kopf.on.probe(id="watches")
def watches_probe(memo: kopf.Memo, **_: Any) -> str:
    """/healthz fails (HTTP 500) while a watch of the operator's keeps failing: a process that runs
    but no longer sees the cluster is restarted by its liveness probe (tenantry.watch_health)."""
    problems = watch_health.problems(_watch_health(memo))
    if problems:
        raise kopf.PermanentError("; ".join(problems))  # permanent: kopf must not retry a probe for a minute
    return "ok"


def _watch_health(memo: Any) -> list[watch_health.WatchHealth]:
    loops = [*memo.get("informers", []), *(memo[k] for k in ("secret_watch", "roles_watch", "ingress_watch")
                                          if k in memo)]
    return [loop.health for loop in loops if isinstance(getattr(loop, "health", None), watch_health.WatchHealth)]


def _platform_role_changed(op: Operator, role: str, exists: bool) -> None:
    """A platform ClusterRole appeared or went: its gauge, and every Reseller and Tenant looked at again
    (their RolesBound condition follows)."""
    op.platform_roles = op.platform_roles | {role} if exists else op.platform_roles - {role}
    metrics.MISSING_CLUSTERROLE.labels(clusterrole=role).set(0 if exists else 1)
    if not exists:
        log.warning("ClusterRole %s does not exist: bindings to it grant nothing. Install the chart's platform "
                    "roles (charts/tenantry/files/platform-clusterroles.yaml).", role)
    op.enqueue([(kind, obj["metadata"].get("namespace"), obj["metadata"]["name"])
                for kind in (RESELLER, TENANT) for obj in op.store.list(kind)])


@kopf.on.probe(id="queueDepth")
def queue_depth(memo: kopf.Memo, **_: Any) -> int:
    op: Operator | None = memo.get("operator")
    return op.queue.depth if op and op.queue else 0


# The resync looks for objects due this many times per period.
RESYNC_SLICES = 10


async def _resync_forever(op: Operator) -> None:
    """Level-based safety net: every object is looked at again when its last reconcile is `resyncSeconds`
    old. Comparing with the Store costs no API calls, so an idle operator still writes nothing. Checked
    every tenth of the period rather than all at once every period: the looks are spread as the reconciles
    were, and objects the queue has just worked through (10,000 new tenants take longer than a period on
    a small machine) are not put back behind the ones still waiting for their first."""
    assert op.queue is not None
    while True:
        await asyncio.sleep(op.settings.resync_seconds / RESYNC_SLICES)
        keys: list[Key] = [(kind, obj["metadata"].get("namespace"), obj["metadata"]["name"])
                           for kind in (REGION, RESELLER, PLAN, TENANT) for obj in op.store.list(kind)]
        keys += license_order.undecided_orders(op)
        op.enqueue(op.queue.due(keys, op.settings.resync_seconds))


async def _reconcile(op: Operator, key: Hashable) -> None:
    kind: str
    namespace: str | None
    name: str
    kind, namespace, name = key  # type: ignore[misc]
    await _RECONCILERS[kind](op, namespace, name)


def _record_result(key: Hashable, result: str, seconds: float) -> None:
    kind = key[0]  # type: ignore[index]
    metrics.RECONCILES.labels(kind=kind, result=result).inc()
    metrics.RECONCILE_SECONDS.labels(kind=kind).observe(seconds)


# -- watch events --------------------------------------------------------------------------------


def _observe(op: Operator, kind: str, event_type: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Take one event of a Tenantry kind (in the Store already: its Informer) into the AdmissionBook;
    enqueue who cares. Until the queue runs (start-up), nothing is enqueued: everything is looked at."""
    meta = obj["metadata"]
    namespace, name = meta.get("namespace"), meta["name"]
    deleted = event_type == "DELETED"
    if kind == TENANT:
        op.tenant_series.observe(obj, deleted=deleted)
    # The echoes of our own writes are no news to the Store (store.py); of other status writes,
    # only a new spec (or a deletion) is news to the objects that depend on this one.
    changed = (deleted or old is None or old["metadata"].get("generation") != meta.get("generation")
               or bool(old["metadata"].get("deletionTimestamp")) != bool(meta.get("deletionTimestamp")))
    if not changed and kind != TENANT:
        return
    affected: list[Key] = [] if deleted or not changed else [(kind, namespace, name)]
    later: list[Key] = []

    if kind == TENANT:
        reseller = reseller_from_namespace(namespace or "") or ""
        if deleted:
            op.book.remove_tenant((reseller, name))
            tls.forget_tenant(op, namespace or "", name)
            op.secret_refs.replace((TENANT, namespace, name), ())
            affected += _pending_tenants(op)  # a licence, capacity, an e-mail or a host may be free now
        else:
            spec, _ = read_spec(TENANT, obj)
            if spec is not None and reseller:
                op.book.upsert_tenant(tenant_claim(obj, spec))
            op.secret_refs.replace((TENANT, namespace, name),
                               tenant_secret_refs(namespace or "", name, spec) if spec is not None else ())
        spec_region = ((obj.get("spec") or {}).get("region"))
        later += [(RESELLER, None, reseller)]
        if spec_region:
            later.append((REGION, None, spec_region))
        plan = (obj.get("spec") or {}).get("plan")
        if plan:
            later.append((PLAN, namespace, plan))
        admission = (obj.get("status") or {}).get("admission") or {}
        if admission.get("plan") and admission.get("plan") != plan:
            later.append((PLAN, namespace, admission["plan"]))
    elif kind == RESELLER:
        if deleted:
            op.book.remove_reseller(name)
            op.secret_refs.replace((RESELLER, None, name), ())
        else:
            spec, _ = read_spec(RESELLER, obj)
            if spec is not None:
                op.book.set_reseller(reseller_terms(obj, spec, purchased=op.orders.purchased(name)))
            op.secret_refs.replace((RESELLER, None, name), reseller_secret_refs(name, spec) if spec is not None else ())
        # Its tenants follow its spec; other resellers' tenants may gain or lose a domain it held.
        affected += [(TENANT, reseller_namespace(c.reseller), c.name) for c in op.book.all_tenants()]
        later += [(REGION, None, r["metadata"]["name"]) for r in op.store.list(REGION)]
        later += [(RESELLER, None, r["metadata"]["name"]) for r in op.store.list(RESELLER)
                  if r["metadata"]["name"] != name]
    elif kind == REGION:
        op.book.set_regions(r["metadata"]["name"] for r in op.store.list(REGION))
        spec, _ = read_spec(REGION, obj) if not deleted else (None, None)
        ref = spec.cluster.kubeconfig_secret_ref if spec is not None and spec.cluster is not None else None
        # A new kubeconfig in its Secret (a rotated credential) wakes the region (supplied_secrets.py).
        op.secret_refs.replace((REGION, None, name), [(ref.namespace, ref.name)] if ref else ())
        op.clusters.declare(name, ref)  # its tenants wait for the member's connection, never provision here
        affected += [(TENANT, *k) for k in _tenants_in_region(op, name)]
        affected += _pending_tenants(op)
        later += [(RESELLER, None, r["metadata"]["name"]) for r in op.store.list(RESELLER)]
    elif kind == PLAN:
        reseller = reseller_from_namespace(namespace or "") or ""
        spec, _ = read_spec(PLAN, obj) if not deleted else (None, None)
        op.book.set_plan(reseller, name, plan_terms(spec) if spec is not None else None)
        affected += [(TENANT, namespace, c.name) for c in op.book.tenants_of(reseller)
                     if c.plan == name or ((r := op.book.record_of(c)) is not None and r.plan == name)]
        affected += _pending_tenants(op, reseller)

    op.enqueue(affected)
    op.enqueue(later, delay=STATUS_DELAY)


def _own_write(op: Operator, kind: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    if kind == LICENSE_ORDER:
        license_order.observe_order(op, "MODIFIED", obj, old)
    elif kind in (REGION, RESELLER, PLAN, TENANT):
        _observe(op, kind, "MODIFIED", obj, old)


def _member_reachability_changed(op: Operator, region: str, _state: Any) -> None:
    op.enqueue([(REGION, None, region), *((TENANT, *k) for k in _tenants_in_region(op, region))])


def _pending_tenants(op: Operator, reseller: str | None = None) -> list[Key]:
    return [(TENANT, reseller_namespace(c.reseller), c.name) for c in op.book.waiting(reseller)]


def _tenants_in_region(op: Operator, region: str) -> list[tuple[str, str]]:
    return [(reseller_namespace(c.reseller), c.name) for c in op.book.all_tenants() if c.region == region]


def _child_changed(op: Operator, event_type: str, obj: dict[str, Any], _old: dict[str, Any] | None) -> None:
    keys: list[Key] = []
    owner = owner_of(obj) or _meter_region(obj)
    if owner is not None and not (event_type == "ADDED" and _made_by_us_alone(obj)):
        keys.append(owner)
    keys += tls.tenants_affected_by(op, obj)  # a new reseller CA: every tenant's leaf is issued again
    if obj.get("kind") == "Ingress":  # one that is not a tenant's own holds its hosts (cluster_ingresses.py)
        keys += _claimants(op, observe_labelled(op.book.ingresses, event_type, obj))
    if obj.get("kind") == "Secret":
        # A supplied Secret that carries our label (copied from one of ours, say) is skipped by the
        # metadata-only watch and seen here instead: its referrers are woken all the same.
        meta = obj["metadata"]
        keys += keys_to_wake(op, meta.get("namespace") or "", meta["name"])
    op.enqueue(dict.fromkeys(keys))  # once each


def _claimants(op: Operator, hosts: set[str]) -> list[Key]:
    return [(TENANT, reseller_namespace(r), t) for r, t in op.book.claimants(hosts)] if hosts else []


def _ingress_hosts_changed(op: Operator, hosts: Iterable[str]) -> None:
    """An Ingress that is not a tenant's own took or left hosts: wake the tenants claiming them."""
    op.enqueue(_claimants(op, set(hosts)))


_SECRET_EVENTS = {"ADDED": "created", "MODIFIED": "replaced", "DELETED": "deleted"}


def _secret_changed(op: Operator, event_type: str, namespace: str, name: str) -> None:
    """A Secret that is not the operator's was created, replaced or deleted (supplied_secrets.py):
    wake whoever names it for TLS. Most Secrets are named by nobody, and cost nothing here."""
    keys = keys_to_wake(op, namespace, name)
    if not keys:
        return
    shown = ", ".join(f"{kind} {f'{ns}/' if ns else ''}{n}" for kind, ns, n in keys[:5])
    more = f" and {len(keys) - 5} more" if len(keys) > 5 else ""
    log.info("Secret %s/%s was %s; reconciling what uses it for TLS: %s%s.", namespace, name,
             _SECRET_EVENTS.get(event_type, "changed"), shown, more)
    op.enqueue(keys)


def _made_by_us_alone(obj: dict[str, Any]) -> bool:
    """A child we created ourselves, which nobody else has touched: its creation is no news to its
    owner, whose reconcile made it (and may still be running, when the watch beats the response)."""
    managers = (obj.get("metadata") or {}).get("managedFields") or []
    return bool(managers) and all(m.get("manager") == FIELD_MANAGER for m in managers)


def _meter_region(obj: dict[str, Any]) -> Key | None:
    """A Region's meter objects (builders/meter.py) belong to the Region: an edit brings it back."""
    from tenantry.builders.meter import COMPONENT, COMPONENT_LABEL
    from tenantry.naming import LABEL_REGION

    labels = obj.get("metadata", {}).get("labels") or {}
    if labels.get(COMPONENT_LABEL) == COMPONENT and labels.get(LABEL_REGION):
        return (REGION, None, labels[LABEL_REGION])
    return None


__all__ = ["KubeClient"]
