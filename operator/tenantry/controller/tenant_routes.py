"""A tenant's own Ingresses follow its routed hosts: a host that leaves the tenant is no longer served.

The admission webhook lets a tenant's Ingresses name only the tenant's routed hosts (`status.hosts`) at the
moment they are written. When a host leaves the tenant afterwards, the operator changes the tenant's own
Ingresses (never its own Ingress `tenantry`, which it rebuilds anyway), the least it can to stop serving it:

- a custom domain removed from spec.domains (or no longer routed: refused, or beyond the plan's allowance):
  the Ingress rules and TLS entries for that host are removed from each of the tenant's Ingresses, which
  keep everything else; the removed hosts are listed in the annotation `tenantry.dev/unrouted-hosts`. An
  Ingress left with no rule at all (it served only that host) is deleted. Otherwise a host another tenant
  may take next would still be claimed by the old tenant's Ingress.
- the tenant suspended (spec.active: false): each of its Ingresses is parked, its class set to
  `tenantry-suspended` (a class no ingress controller serves) and the real one kept in the annotation
  `tenantry.dev/suspended-ingress-class`; reactivation puts the class back. Nothing else changes, so the
  tenant gets its routes back exactly as they were (the hosts stay the tenant's while it is suspended).

Each change is told in an Event on the Tenant (reason `HostsWithdrawn`, `IngressesParked`,
`IngressesRestored`). The decisions are pure functions; the writes are merge patches that carry the
Ingress's resourceVersion, so that an edit the tenant makes at the same moment is never overwritten (the
conflict is retried by the queue).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tenantry.controller.clusters import Cluster
from tenantry.controller.context import Operator
from tenantry.kube import ApiError
from tenantry.naming import LABEL_MANAGED_BY, MANAGED_BY

log = logging.getLogger("tenantry.tenant")

PARKED_CLASS = "tenantry-suspended"
ANNOTATION_PARKED_CLASS = "tenantry.dev/suspended-ingress-class"
ANNOTATION_UNROUTED_HOSTS = "tenantry.dev/unrouted-hosts"
NO_CLASS = "-"  # the annotation's value for an Ingress that named no class
CLASS_ANNOTATION = "kubernetes.io/ingress.class"

HOSTS_WITHDRAWN = "HostsWithdrawn"
INGRESSES_PARKED = "IngressesParked"
INGRESSES_RESTORED = "IngressesRestored"


def _tenants_own(ingresses: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [i for i in ingresses
            if ((i.get("metadata") or {}).get("labels") or {}).get(LABEL_MANAGED_BY) != MANAGED_BY]


def withdrawal(ingress: Mapping[str, Any], routed: set[str]) -> tuple[str, dict[str, Any] | None, list[str]] | None:
    """What to do with one Ingress whose hosts may have left the tenant: ("patch", merge patch, hosts),
    ("delete", None, hosts) when no rule would remain, or None when it serves only routed hosts."""
    spec = ingress.get("spec") or {}
    rules = spec.get("rules") or []
    tls = spec.get("tls") or []
    stale = sorted({r.get("host") for r in rules if r.get("host") and r["host"] not in routed}
                   | {h for t in tls for h in t.get("hosts") or () if h not in routed})
    if not stale:
        return None
    kept_rules = [r for r in rules if not r.get("host") or r["host"] in routed]
    if not kept_rules and not spec.get("defaultBackend"):
        return "delete", None, stale
    kept_tls = [{**t, "hosts": [h for h in t.get("hosts") or () if h in routed]} for t in tls]
    kept_tls = [t for t in kept_tls if t["hosts"]]
    meta = ingress.get("metadata") or {}
    earlier = [h for h in ((meta.get("annotations") or {}).get(ANNOTATION_UNROUTED_HOSTS) or "").split(",") if h]
    patch = {"metadata": {"resourceVersion": meta.get("resourceVersion"),
                          "annotations": {ANNOTATION_UNROUTED_HOSTS: ",".join(sorted({*earlier, *stale}))}},
             "spec": {"rules": kept_rules, "tls": kept_tls or None}}
    return "patch", patch, stale


def parking(ingress: Mapping[str, Any], active: bool) -> dict[str, Any] | None:
    """The merge patch that parks (suspended) or restores (active) one Ingress, or None."""
    meta = ingress.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    parked = ANNOTATION_PARKED_CLASS in annotations
    version = meta.get("resourceVersion")
    if not active and not parked:
        current = (ingress.get("spec") or {}).get("ingressClassName") or annotations.get(CLASS_ANNOTATION)
        patch: dict[str, Any] = {"metadata": {"resourceVersion": version, "annotations": {
            ANNOTATION_PARKED_CLASS: current or NO_CLASS}}, "spec": {"ingressClassName": PARKED_CLASS}}
        if CLASS_ANNOTATION in annotations:
            patch["metadata"]["annotations"][CLASS_ANNOTATION] = None
        return patch
    if active and parked:
        original = annotations[ANNOTATION_PARKED_CLASS]
        return {"metadata": {"resourceVersion": version, "annotations": {ANNOTATION_PARKED_CLASS: None}},
                "spec": {"ingressClassName": None if original == NO_CLASS else original}}
    return None


async def _post(op: Operator, tenant: Mapping[str, Any], reason: str, names: Sequence[str], message: str) -> None:
    meta = tenant["metadata"]
    log.info("Tenant %s/%s: %s", meta.get("namespace"), meta["name"], message)
    await op.client.post_event(tenant, reason=reason, message=message, type_="Normal")


async def withdraw_unrouted_hosts(op: Operator, cluster: Cluster, tenant: Mapping[str, Any], namespace: str,
                                  left: set[str], routed: set[str]) -> None:
    """Hosts that left an active tenant (`left`): off its own Ingresses. Lists the namespace's Ingresses only
    when some host left, which is rare."""
    if not left:
        return
    changed: list[str] = []
    withdrawn: set[str] = set()
    for ingress in _tenants_own(await cluster.client.list("Ingress", namespace)):
        decision = withdrawal(ingress, routed)
        if decision is None:
            continue
        action, patch, hosts = decision
        name = ingress["metadata"]["name"]
        if action == "delete":
            try:
                await cluster.client.delete("Ingress", name, namespace)
            except ApiError as error:
                if not error.not_found:
                    raise
            changed.append(f"{name} (deleted: it served no other host)")
        else:
            assert patch is not None
            await cluster.client.merge_patch("Ingress", name, patch, namespace=namespace)
            changed.append(name)
        withdrawn.update(hosts)
    if changed:
        await _post(op, tenant, HOSTS_WITHDRAWN, changed,
                    f"{', '.join(sorted(withdrawn))} no longer routed to this tenant: removed from its Ingress(es) "
                    f"{', '.join(changed)} in {namespace}.")


async def park_or_restore(op: Operator, cluster: Cluster, tenant: Mapping[str, Any], namespace: str, active: bool,
                          resuming: bool) -> None:
    """Park the tenant's own Ingresses while it is suspended; restore them when it is reactivated. Looks at
    the namespace's Ingresses only while suspended or resuming (as the workloads are)."""
    if active and not resuming:
        return
    names = []
    for ingress in _tenants_own(await cluster.client.list("Ingress", namespace)):
        patch = parking(ingress, active)
        if patch is not None:
            await cluster.client.merge_patch("Ingress", ingress["metadata"]["name"], patch, namespace=namespace)
            names.append(ingress["metadata"]["name"])
    if not names:
        return
    if active:
        await _post(op, tenant, INGRESSES_RESTORED, names,
                    f"Tenant reactivated: its Ingress(es) {', '.join(names)} in {namespace} have their class back.")
    else:
        await _post(op, tenant, INGRESSES_PARKED, names,
                    f"Tenant suspended: its Ingress(es) {', '.join(names)} in {namespace} are parked (class "
                    f"{PARKED_CLASS}, the real one kept in {ANNOTATION_PARKED_CLASS}) until it is reactivated.")
