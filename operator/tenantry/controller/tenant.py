"""Reconciling one Tenant: admit it (or say why not), provision its namespace, report status.

Phases, in order, each skipped when there is nothing to do:
1. read the spec; 2. admission (pure decision from the AdmissionBook, recorded at once);
3. suspend or resume workloads; 4. apply the desired children and prune the rest;
5. status, written once at the end whatever happened before (a failed phase is reported in it).
Deletion: a Tenant marked for deletion is finalised by its own reconcile (`finalize_tenant`, behind
the `tenantry.dev/finalizer` that step 4 adds before the first child; controller/finalizers.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from tenantry.admission import ADMITTED, Verdict
from tenantry.builders.reseller import reseller_branding
from tenantry.builders.tenant import PRIORITY_QUOTA, TenantInputs, build_tenant_children
from tenantry.conditions import Condition, failure_text, now_rfc3339
from tenantry.controller import metrics, tenant_routes
from tenantry.controller.apply import NamespaceExists, sync_children
from tenantry.controller.clusters import Cluster
from tenantry.controller.context import Operator, publish_status
from tenantry.controller.finalizers import add_finalizer, being_deleted, has_finalizer, remove_finalizer
from tenantry.controller.platform_roles import bound_platform_roles, roles_bound_condition
from tenantry.controller.specs import INVALID_SPEC, read_spec, record_from_status, record_to_status, tenant_claim
from tenantry.controller.tls import CERTIFICATE_READY, tenant_tls
from tenantry.guardrails import denied_storage_classes
from tenantry.kube import ApiError
from tenantry.models import RegionSpec, ResellerSpec, TenantSpec
from tenantry.namespace_claim import NAMESPACE_TAKEN, namespace_claim, namespace_taken_message
from tenantry.naming import (
    LABEL_MANAGED_BY,
    MANAGED_BY,
    PLAN,
    REGION,
    RESELLER,
    TENANT,
    managed_labels,
    reseller_from_namespace,
    reseller_namespace,
    tenant_namespace,
)
from tenantry.subjects import allowed_subjects

log = logging.getLogger("tenantry.tenant")

SUSPENDED_REPLICAS = "tenantry.dev/suspended-replicas"
SUSPENDED = "tenantry.dev/suspended"
# A namespace that is not this tenant's is not watched (it lacks Tenantry's labels): while one holds the
# tenant's namespace name, the tenant looks again this often, and is provisioned soon after it is deleted.
NAMESPACE_RECHECK_SECONDS = 10.0
CLUSTER_UNREACHABLE = "ClusterUnreachable"


def _spec_of(op: Operator, kind: str, name: str, namespace: str | None = None) -> Any:
    body = op.store.get(kind, name, namespace)
    if body is None:
        return None
    spec, _ = read_spec(kind, body)
    return spec


async def reconcile_tenant(op: Operator, namespace: str, name: str) -> None:
    body = op.store.get(TENANT, name, namespace)
    if body is None:
        return  # gone
    if being_deleted(body):
        if has_finalizer(body):
            await _finalize(op, body)
        return
    reseller = reseller_from_namespace(namespace)
    spec, problem = read_spec(TENANT, body)
    if spec is None or reseller is None:
        message = problem or f"Tenants belong in a reseller's control namespace (reseller-<name>), not {namespace}."
        await publish_status(op, body, _kept_fields(body, phase="Pending"), [
            Condition("Admitted", False, INVALID_SPEC, message),
            Condition("Ready", False, INVALID_SPEC, message),
        ])
        return

    key = (reseller, name)
    op.book.upsert_tenant(tenant_claim(body, spec))
    verdict = op.book.decide(key, now=time.time())
    if verdict.record is not None:
        claim = op.book.tenant(key)
        previous = op.book.record_of(claim) if claim is not None else None
        op.book.record(key, verdict.record)
        shrunk = previous is not None and any(verdict.record.quota.get(r, 0) < amount
                                              for r, amount in previous.quota.items())
        if shrunk:
            # A smaller plan frees capacity: the tenants refused for lack of it are looked at again
            # now, not at the next resync.
            op.enqueue([(TENANT, namespace, c.name) for c in op.book.waiting(reseller)])
    if verdict.retry_after:
        op.enqueue_one(TENANT, namespace, name, delay=verdict.retry_after)
        return

    if not verdict.admitted:
        # A refused tenant gets no namespace, and keeps trying: any change that may unblock it
        # (licences, plans, other tenants leaving) enqueues it again.
        await publish_status(op, body, {"phase": "Pending", "hosts": []}, [
            Condition("Admitted", False, verdict.reason, verdict.message),
            Condition("Provisioned", False, "NotAdmitted", "Nothing is provisioned until the tenant is admitted."),
            Condition("Ready", False, verdict.reason, verdict.message),
        ])
        return

    assert verdict.record is not None
    if not has_finalizer(body):
        # The finalizer comes before the first child: a Tenant deleted without it would vanish at
        # once, before its namespace is deleted (or retained), and leave that namespace behind. A new
        # Tenant mostly has it already (the admission webhook, webhook/finalizer.py): this is the fallback.
        body = await add_finalizer(op, TENANT, body)
    if record_from_status(body.get("status")) != verdict.record:
        # Write-ahead: the decision is in status before anything is made from it. A crash in between
        # then finds the tenant admitted (and provisions it), never a namespace of a tenant that a
        # fresh decision would refuse.
        body = await _write_admission(op, body, verdict)
    await _provision(op, body, spec, reseller, verdict)


async def _write_admission(op: Operator, body: Mapping[str, Any], verdict: Verdict) -> dict[str, Any]:
    """Record the decision (status.admission only). It posts no Event and writes no condition: the
    reconcile's final status write turns Admitted True, and that transition is told in its one Normal
    summary (context.py), beside any Warning. A crash before that write leaves Admitted untold, so the
    next reconcile's final write tells it."""
    record = verdict.record
    assert record is not None
    meta = body["metadata"]
    admitted_at = ((body.get("status") or {}).get("admission") or {}).get("admittedAt") or now_rfc3339()
    based_on = op.store.version(TENANT, meta["name"], meta["namespace"])
    result = await op.client.merge_patch(TENANT, meta["name"], {"status": {
        "admission": record_to_status(record, admitted_at)}}, namespace=meta["namespace"], subresource="status")
    op.store.written(TENANT, result, based_on=based_on)
    return result


async def _provision(op: Operator, body: Mapping[str, Any], spec: TenantSpec, reseller: str,
                     verdict: Verdict) -> None:
    record = verdict.record
    assert record is not None
    name = body["metadata"]["name"]
    namespace = tenant_namespace(reseller, name)
    # The cluster the namespace lives in: this one, or the region's member cluster (controller/clusters.py).
    cluster = op.clusters.for_region(record.region)
    if cluster is None:
        await _report_cluster_unreachable(op, body, verdict)
        return
    # Before anything is read from or made in the namespace (certificates included): only one made for
    # this very Tenant object is provisioned (tenantry/namespace_claim.py). The cache holds the namespaces
    # with Tenantry's labels; one it lacks is new to us, and is created first, before anything goes in it,
    # by `_make_children` (which reads it when the name is held after all, instead of a read per tenant).
    live_namespace = cluster.store.get("Namespace", namespace)
    if live_namespace is not None and not namespace_claim(live_namespace, body, reseller).provisionable:
        assert live_namespace is not None
        await _report_namespace_taken(op, body, verdict, live_namespace)
        return
    reseller_spec: ResellerSpec | None = _spec_of(op, RESELLER, reseller)
    region_spec: RegionSpec | None = _spec_of(op, REGION, record.region)
    plan_spec = _spec_of(op, PLAN, record.plan, body["metadata"]["namespace"])
    # Hosts and certificates (controller/tls.py): the default host, verified custom domains within
    # the plan's allowance, each with its TLS Secret. Decided before anything is applied, so that a
    # reseller key is withdrawn before new owners could read it.
    current_plan = _spec_of(op, PLAN, spec.plan, body["metadata"]["namespace"]) or plan_spec
    labels = managed_labels(reseller=reseller, tenant=name, region=record.region, plan=record.plan)
    tls_failure: Exception | None = None
    try:
        tls = await tenant_tls(op, cluster, body, spec, reseller, reseller_spec, region_spec,
                               current_plan.custom_domains if current_plan else 0, namespace, labels)
    except Exception as error:  # nothing is applied (or pruned) this round; reported, then retried
        tls_failure, tls = error, None
    routes = tls.routes if tls else []
    inputs = TenantInputs(
        reseller=reseller,
        tenant=name,
        region=record.region,
        plan=record.plan,
        namespace=namespace,
        quota=record.quota,
        active=spec.active,
        default_requests={k: v for k, v in (plan_spec.defaults.model_dump() if plan_spec and plan_spec.defaults
                                            else {}).items() if v is not None},
        node_selector=dict(region_spec.node_pool.node_selector) if region_spec and region_spec.node_pool else {},
        tolerations=[t.model_dump(by_alias=True, exclude_none=True) for t in region_spec.node_pool.tolerations]
        if region_spec and region_spec.node_pool else [],
        ingress_class=region_spec.ingress.class_name if region_spec else None,
        ingress_controller_namespace=region_spec.ingress.controller_namespace if region_spec else None,
        # Only subjects Tenantry may bind (tenantry.subjects): a bad one is reported (InvalidOwner,
        # InvalidAdmin on the Reseller) and left out, never bound; the others keep their access.
        owners=[s.model_dump(exclude_none=True) for s in allowed_subjects(spec.owners, namespace)],
        reseller_admins=[s.model_dump(exclude_none=True) for s in
                         allowed_subjects(reseller_spec.admins, reseller_namespace(reseller))] if reseller_spec else [],
        routes=routes,
        service=spec.ingress.service,
        port=spec.ingress.port,
        branding=_tenant_branding(reseller_spec, spec),
        pod_security_level=op.settings.pod_security_level,
        allowed_priority_classes=region_spec.guardrails.allowed_priority_classes if region_spec else (),
        denied_storage_classes=denied_storage_classes(region_spec, plan_spec),
        tenant_uid=body["metadata"].get("uid", ""),
    )
    children = build_tenant_children(inputs) + (tls.children if tls else [])
    if not spec.active:
        children[0]["metadata"].setdefault("annotations", {})[SUSPENDED] = "true"

    provisioned = Condition("Provisioned", True, "Provisioned",
                            f"Namespace {namespace} has its quota, limits, network isolation, access and routes.")
    # Without its Region (node pool) or Plan (container defaults) the tenant's namespace cannot be
    # rebuilt faithfully; rather than strip it, it is kept exactly as it was until they come back.
    missing = [what for what, found in ((f"Region {record.region}", region_spec), (f"Plan {record.plan}", plan_spec))
               if found is None]
    failure: Exception | None = None
    try:
        if tls_failure is not None:
            raise tls_failure
        if missing:
            provisioned = Condition("Provisioned", True, "KeptAsProvisioned",
                                    f"{' and '.join(missing)} no longer exist(s) or is invalid; namespace {namespace} "
                                    "is kept as it was provisioned until it is back.")
        else:
            if live_namespace is not None:  # a new namespace has no workloads or Ingresses to suspend yet
                resuming = bool((live_namespace["metadata"].get("annotations") or {}).get(SUSPENDED))
                await _suspend_or_resume(cluster, namespace, spec.active)
                # The tenant's own Ingresses follow its hosts too (controller/tenant_routes.py).
                await tenant_routes.park_or_restore(op, cluster, body, namespace, spec.active, resuming)
            taken = await _make_children(cluster, body, reseller, namespace, children)
            if taken is not None:
                await _report_namespace_taken(op, body, verdict, taken)
                return
            if spec.active:
                routed = {r.host for r in routes}
                await tenant_routes.withdraw_unrouted_hosts(
                    op, cluster, body, namespace, set((body.get("status") or {}).get("hosts") or ()) - routed, routed)
    except Exception as error:  # reported in status, then retried by the queue
        failure = error
        provisioned = Condition("Provisioned", False, "ProvisioningFailed",
                                f"Provisioning namespace {namespace} failed and will be retried: {failure_text(error)}")

    old_admission = (body.get("status") or {}).get("admission") or {}
    admitted_at = old_admission.get("admittedAt") or now_rfc3339()
    fields: dict[str, Any] = {
        "phase": "Active" if spec.active else "Suspended",
        "namespace": namespace,
        "hosts": [r.host for r in routes] if spec.active else [],
        "admission": record_to_status(record, admitted_at),
    }
    old_status = body.get("status") or {}
    if tls is not None:
        if tls.domains:
            fields["domains"] = tls.domains
        if tls.certificates:
            fields["certificates"] = tls.certificates
        certificate_ready = tls.condition
        if tls.recheck:  # a DNS proof or a cert-manager Certificate is awaited: look again later
            op.enqueue_one(TENANT, body["metadata"]["namespace"], name, delay=op.settings.domain_recheck_seconds)
    else:
        fields["hosts"] = old_status.get("hosts", [])
        for key in ("domains", "certificates"):
            if key in old_status:
                fields[key] = old_status[key]
        certificate_ready = Condition(CERTIFICATE_READY, False, "CertificateFailed",
                                      "Certificates could not be prepared and will be retried: "
                                      + (failure_text(tls_failure) if tls_failure else "unknown"))
    ready = _ready(verdict, provisioned, spec.active)
    await publish_status(op, body, fields, [
        Condition("Admitted", True, ADMITTED, verdict.message),
        provisioned,
        certificate_ready,
        *([tls.domains_condition] if tls is not None and tls.domains_condition is not None else []),
        # Owners and support staff have access only if the ClusterRoles they are bound to exist.
        roles_bound_condition(bound_platform_roles(children), op.platform_roles),
        ready,
    ])
    if failure is not None:
        raise failure


async def _make_children(cluster: Cluster, body: Mapping[str, Any], reseller: str, namespace: str,
                         children: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Create or apply the tenant's children, its namespace first; the namespace as it is when its name
    turns out to be held by one not made for this Tenant (retained from an earlier tenant, or made outside
    Tenantry: the watch does not see those), in which case nothing else was written."""
    owner = (TENANT, body["metadata"]["namespace"], body["metadata"]["name"])
    try:
        await sync_children(cluster.client, cluster.store, owner, children, new_namespaces=True)
        return None
    except NamespaceExists:
        held = await cluster.client.get("Namespace", namespace)
    if held is not None:
        if not namespace_claim(held, body, reseller).provisionable:
            return held
        # This tenant's own, not seen by the watch yet: taken as read, and the children synced against it.
        cluster.store.written("Namespace", held, based_on=cluster.store.version("Namespace", namespace))
    await sync_children(cluster.client, cluster.store, owner, children, new_namespaces=True)
    return None


async def _report_cluster_unreachable(op: Operator, body: Mapping[str, Any], verdict: Verdict) -> None:
    """The region's member cluster does not answer (or cannot be reached with its kubeconfig): nothing is
    read or written there. The tenant stays admitted (licences are counted here) and keeps what it has;
    it is provisioned, or looked at again, when the member is back (its Region wakes its tenants)."""
    assert verdict.record is not None
    region = verdict.record.region
    state = op.clusters.reachability(region)
    status = body.get("status") or {}
    current = {c.get("type"): c for c in status.get("conditions") or []}
    message = (f"Region {region}'s cluster cannot be reached ({state.reason}: {state.message}) The tenant keeps "
               "running as provisioned, and is reconciled when the cluster is back.")
    kept = [Condition(t, {"True": True, "False": False}.get(c.get("status", "")), c.get("reason", ""),
                      c.get("message", "")) for t, c in current.items()
            if t not in ("Admitted", "Provisioned", "Ready") and c.get("reason")]
    provisioned = current.get("Provisioned")
    admitted_at = (status.get("admission") or {}).get("admittedAt") or now_rfc3339()
    await publish_status(op, body, {**_kept_fields(body, phase="Pending"),
                                    "admission": record_to_status(verdict.record, admitted_at)}, [
        Condition("Admitted", True, ADMITTED, verdict.message),
        Condition("Provisioned", provisioned.get("status") == "True", provisioned.get("reason", ""),
                  provisioned.get("message", "")) if provisioned and provisioned.get("reason")
        else Condition("Provisioned", False, CLUSTER_UNREACHABLE, message),
        *kept,
        Condition("Ready", None, CLUSTER_UNREACHABLE, message),
    ])


async def _report_namespace_taken(op: Operator, body: Mapping[str, Any], verdict: Verdict,
                                  live_namespace: Mapping[str, Any]) -> None:
    """The tenant stays admitted (its licence decision is the reseller's), nothing is made or changed in
    the namespace, and the reseller is told what to do (a Warning Event with the same reason)."""
    assert verdict.record is not None
    meta = body["metadata"]
    message = namespace_taken_message(live_namespace)
    admitted_at = ((body.get("status") or {}).get("admission") or {}).get("admittedAt") or now_rfc3339()
    await publish_status(op, body, {"phase": "Pending", "hosts": [],
                                    "admission": record_to_status(verdict.record, admitted_at)}, [
        Condition("Admitted", True, ADMITTED, verdict.message),
        Condition("Provisioned", False, NAMESPACE_TAKEN, message),
        Condition("Ready", False, NAMESPACE_TAKEN, message),
    ])
    op.enqueue_one(TENANT, meta["namespace"], meta["name"], delay=NAMESPACE_RECHECK_SECONDS)


def _ready(verdict: Verdict, provisioned: Condition, active: bool) -> Condition:
    if not provisioned.status or provisioned.reason == "KeptAsProvisioned":
        return Condition("Ready", False, provisioned.reason, provisioned.message)
    if verdict.change_refused is not None:
        reason, message = verdict.change_refused
        return Condition("Ready", False, reason, message)
    if not active:
        return Condition("Ready", True, "Suspended",
                         "The tenant is suspended (spec.active: false): workloads are scaled to zero and it is "
                         "not routed; its licence is kept.")
    return Condition("Ready", True, "Ready", "The tenant is admitted and provisioned.")


def _tenant_branding(reseller_spec: ResellerSpec | None, spec: TenantSpec) -> dict[str, str]:
    """The reseller's white label, plus the tenant's own display name."""
    data = reseller_branding(reseller_spec) if reseller_spec else {}
    if spec.display_name:
        data["tenantDisplayName"] = spec.display_name
    return data


def _kept_fields(body: Mapping[str, Any], phase: str) -> dict[str, Any]:
    """Status fields to keep when the spec cannot be read: an admitted tenant stays admitted."""
    status = body.get("status") or {}
    fields: dict[str, Any] = {"phase": status.get("phase", phase)}
    for key in ("namespace", "hosts", "admission", "domains", "certificates"):
        if key in status:
            fields[key] = status[key]
    return fields


async def _suspend_or_resume(cluster: Cluster, namespace: str, active: bool) -> None:
    """Scale workloads to zero while suspended, remembering replicas in an annotation; restore them
    on reactivation. Only looks at workloads when suspended or when resuming from a suspension."""
    live_ns = cluster.store.get("Namespace", namespace)
    was_suspended = bool(live_ns and (live_ns["metadata"].get("annotations") or {}).get(SUSPENDED))
    if live_ns is None or (active and not was_suspended):
        return
    for kind in ("Deployment", "StatefulSet"):
        for workload in await cluster.client.list(kind, namespace):
            meta = workload["metadata"]
            annotations = meta.get("annotations") or {}
            replicas = workload.get("spec", {}).get("replicas", 1)
            if not active and replicas != 0:
                remembered = annotations.get(SUSPENDED_REPLICAS, str(replicas))
                await cluster.client.merge_patch(kind, meta["name"], {
                    "metadata": {"annotations": {SUSPENDED_REPLICAS: remembered}}, "spec": {"replicas": 0}},
                    namespace=namespace)
            elif active and SUSPENDED_REPLICAS in annotations:
                await cluster.client.merge_patch(kind, meta["name"], {
                    "metadata": {"annotations": {SUSPENDED_REPLICAS: None}},
                    "spec": {"replicas": int(annotations[SUSPENDED_REPLICAS])}}, namespace=namespace)


async def _finalize(op: Operator, body: Mapping[str, Any]) -> None:
    started = time.monotonic()
    await finalize_tenant(op, body)
    meta = body["metadata"]
    # The version finalize_tenant left (its phase Terminating), if the Store has it: else a 409 and a retry.
    await remove_finalizer(op, TENANT, op.store.get(TENANT, meta["name"], meta["namespace"]) or body)
    metrics.RECONCILE_SECONDS.labels(kind="TenantDeletion").observe(time.monotonic() - started)


async def finalize_tenant(op: Operator, body: Mapping[str, Any]) -> None:
    """Deletion: by spec.deletionPolicy, delete the namespace (Delete) or hand it over (Retain).

    The licence is freed when the Tenant object is gone (its record leaves the book with it)."""
    meta = body["metadata"]
    reseller = reseller_from_namespace(meta["namespace"])
    if reseller is None:
        return
    if (body.get("status") or {}).get("phase") != "Terminating":
        try:  # the deletion may outlive a glance at `kubectl get tenants`: say what is happening
            based_on = op.store.version(TENANT, meta["name"], meta["namespace"])
            result = await op.client.merge_patch(TENANT, meta["name"], {"status": {"phase": "Terminating"}},
                                                 namespace=meta["namespace"], subresource="status")
            op.store.written(TENANT, result, based_on=based_on)
        except ApiError as error:
            if not error.not_found:
                raise
    namespace = tenant_namespace(reseller, meta["name"])
    record = record_from_status(body.get("status"))
    region = record.region if record is not None else (body.get("spec") or {}).get("region")
    cluster = op.clusters.for_region(region)
    if cluster is None and record is None:
        # Never admitted (the admission is in status before anything is made: the write-ahead), so nothing
        # of it is in the member: its deletion does not wait for the member to answer. Every Tenant carries
        # the finalizer from its creation (the admission webhook), refused ones too.
        return
    if cluster is None:  # retried by the queue, and woken when the member answers again
        raise RuntimeError(f"namespace {namespace} is in region {region}'s cluster, which cannot be reached now "
                           f"({op.clusters.reachability(region or '').message}); the deletion waits for it")
    # This runs as the Tenant's own reconcile, which the work queue never runs twice at once: no
    # provisioning of this tenant is in flight, so a namespace it was making is there to be seen.
    live = await cluster.client.get("Namespace", namespace)
    # Only a namespace made for this very Tenant: one retained from an earlier tenant of the same name,
    # or made outside Tenantry, is not this tenant's to delete or retain (tenantry/namespace_claim.py).
    if live is None or not namespace_claim(live, body, reseller).provisionable:
        return  # never provisioned, already gone, or not ours to touch
    policy = (body.get("spec") or {}).get("deletionPolicy", "Delete")
    if policy == "Retain":
        await _retain_namespace(cluster, namespace, live)
        log.info("Tenant %s/%s was deleted; its namespace %s was retained without Tenantry's labels and bindings.",
                 meta["namespace"], meta["name"], namespace)
    else:
        await cluster.client.delete("Namespace", namespace)
        log.info("Tenant %s/%s was deleted with its namespace %s.", meta["namespace"], meta["name"], namespace)


async def _retain_namespace(cluster: Cluster, namespace: str, live: Mapping[str, Any]) -> None:
    """Keep the namespace and its data; revoke access granted through Tenantry and unroute it.
    Quota, limits and network isolation stay (unlabelled) so the retained workloads stay contained."""
    for kind, name in (("RoleBinding", "tenantry-owners"), ("RoleBinding", "tenantry-reseller-support"),
                       ("Ingress", "tenantry"), ("ConfigMap", "tenantry-branding")):
        await cluster.client.delete(kind, name, namespace)
    # Unrouted, its certificates serve nothing; and a copy of a reseller's key must not stay behind.
    for kind in ("Secret", "Certificate"):
        for child in list(cluster.store.list(kind, namespace)):
            if (child["metadata"].get("labels") or {}).get(LABEL_MANAGED_BY) == MANAGED_BY:
                await cluster.client.delete(kind, child["metadata"]["name"], namespace)
    for kind, name in (("ResourceQuota", "tenantry"), ("ResourceQuota", PRIORITY_QUOTA), ("LimitRange", "tenantry"),
                       ("NetworkPolicy", "tenantry-isolation")):
        try:
            unlabelled = {"metadata": {"labels": _unlabel(cluster, kind, name, namespace)}}
            await cluster.client.merge_patch(kind, name, unlabelled, namespace=namespace)
        except ApiError as error:
            if not error.not_found:
                raise
    unlabelled = {"metadata": {"labels": _unlabel(cluster, "Namespace", namespace, None, live)}}
    await cluster.client.merge_patch("Namespace", namespace, unlabelled)


def _unlabel(cluster: Cluster, kind: str, name: str, namespace: str | None,
             live: Mapping[str, Any] | None = None) -> dict[str, None]:
    """A merge patch removing every app.kubernetes.io/managed-by and tenantry.dev/* label."""
    obj = live or cluster.store.get(kind, name, namespace) or {}
    labels = (obj.get("metadata") or {}).get("labels") or {}
    drop = {k: None for k in labels if k == LABEL_MANAGED_BY or k.startswith("tenantry.dev/")}
    return drop or {LABEL_MANAGED_BY: None}
