"""Reconciling one Region: capacity sold (the sum of reseller allotments) against its capacity, its
meter, and for a region on a cluster of its own the connection to that member cluster (DESIGN.md §7)."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import aiohttp

from tenantry.builders.common import quota_strings
from tenantry.builders.meter import COMPONENT, COMPONENT_LABEL, build_meter_children, meter_name, spool_claim_name
from tenantry.conditions import Condition, failure_text
from tenantry.controller.apply import contains, delete_child, sync_children
from tenantry.controller.clusters import CONNECTED, INVALID_KUBECONFIG, MemberCluster
from tenantry.controller.context import Operator, publish_status
from tenantry.controller.specs import INVALID_SPEC, read_spec
from tenantry.kube import ApiError
from tenantry.models import RegionSpec
from tenantry.naming import QUOTA_RESOURCES, REGION
from tenantry.quantity import QuantityError, parse_quantity


def region_allocation(op: Operator, region: str) -> tuple[dict[str, Decimal], int]:
    """Sum of the allotments resellers hold in the region, and how many resellers sell there."""
    total = {r: Decimal(0) for r in QUOTA_RESOURCES}
    resellers = 0
    for terms in op.book.resellers.values():
        allotment = terms.allotments.get(region)
        if allotment is None:
            continue
        resellers += 1
        for resource in QUOTA_RESOURCES:
            total[resource] += allotment.get(resource, Decimal(0))
    return total, resellers


async def reconcile_region(op: Operator, name: str) -> None:
    body = op.store.get(REGION, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        await op.clusters.disconnect(name)  # a member cluster's tenants go with their Region's deletion
        return
    spec, problem = read_spec(REGION, body)
    if spec is None:
        await publish_status(op, body, {}, [Condition("Ready", False, INVALID_SPEC, problem or "")])
        return
    allocated, resellers = region_allocation(op, name)
    capacity = spec.capacity.as_decimals()
    tenants = sum(1 for claim in op.book.all_tenants()
                  if (record := op.book.record_of(claim)) is not None and record.region == name)
    over = [f"{r} {quota_strings(allocated)[r]} > {quota_strings(capacity)[r]}"
            for r in QUOTA_RESOURCES if allocated[r] > capacity[r]]
    overcommitted = (
        Condition("Overcommitted", True, "AllotmentsExceedCapacity",
                  f"Reseller allotments exceed the region's capacity ({'; '.join(over)}); raise spec.capacity "
                  "or lower allotments if tenants must be guaranteed their quota.")
        if over else
        Condition("Overcommitted", False, "WithinCapacity", "Reseller allotments fit in the region's capacity.")
    )
    fields: dict[str, Any] = {"allocated": quota_strings(allocated), "resellers": resellers, "tenants": tenants}
    member_fields, reachable = await connect_member(op, name, spec)
    fields.update(member_fields)
    metering, failure = await _sync_meter(op, body)
    await publish_status(op, body, fields, [
        Condition("Ready", True, "Ready", f"Region {name} is sold by {resellers} reseller(s)."), overcommitted,
        *([metering] if metering else []), *([reachable] if reachable else []),
    ])
    if failure is not None:
        raise failure  # the queue retries with back-off; the condition says what failed meanwhile


# -- the member cluster (DESIGN.md §7) ---------------------------------------------------------


async def connect_member(op: Operator, name: str, spec: RegionSpec) -> tuple[dict[str, Any], Condition | None]:
    """Connect to (or reconnect, or let go of) the region's member cluster; its status fields and its
    ClusterReachable condition (none for a region of the operator's own cluster)."""
    if spec.cluster is None:
        await op.clusters.disconnect(name)
        return {}, None
    ref = spec.cluster.kubeconfig_secret_ref
    where = f"Secret {ref.namespace}/{ref.name}"
    secret = await op.client.get("Secret", ref.name, ref.namespace)
    encoded = ((secret or {}).get("data") or {}).get(ref.key)
    if secret is None or encoded is None:
        await op.clusters.connect(name, ref, None)
        problem = f"{where} does not exist" if secret is None else f"{where} has no key {ref.key}"
        return {}, Condition(
            "ClusterReachable", False, INVALID_KUBECONFIG,
            f"{problem}: create it with the member cluster's kubeconfig under key {ref.key} (docs/multi-cluster.md).")
    member = await op.clusters.connect(name, ref, base64.b64decode(encoded))
    assert member is not None
    state = member.state
    message = state.message if state.reason != INVALID_KUBECONFIG else f"{where}, key {ref.key}: {state.message}"
    fields: dict[str, Any] = {}  # fields left out are removed from the status (apply.status_patch)
    if state.server:
        fields["cluster"] = {"server": state.server, **({"version": state.version} if state.version else {})}
    pool = await _node_pool(member, spec) if state.reason == CONNECTED else None
    if pool is not None:
        fields["nodePool"] = pool
    return fields, Condition("ClusterReachable", state.reachable, state.reason, message)


async def _node_pool(member: MemberCluster, spec: RegionSpec) -> dict[str, Any] | None:
    """The member's nodes in the region's pool (its nodeSelector) and their allocatable capacity, when the
    operator may list nodes there (an optional grant, docs/multi-cluster.md); None otherwise."""
    assert member.client is not None
    selector = ",".join(f"{k}={v}" for k, v in (spec.node_pool.node_selector if spec.node_pool else {}).items())
    try:
        nodes = await member.client.list("Node", label_selector=selector or None)
    except ApiError as error:
        if error.status != 403:
            log.warning("Could not list the nodes of region %s's member cluster: %s", member.region, error)
        return None
    except (aiohttp.ClientError, TimeoutError, OSError) as error:  # gone since the probe: it will say so
        log.warning("Could not list the nodes of region %s's member cluster: %s", member.region, error)
        return None
    return node_pool_capacity(nodes)


def node_pool_capacity(nodes: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """How many nodes, and the sum of their allocatable cpu, memory and pods (None without nodes)."""
    if not nodes:
        return None
    totals = {"cpu": Decimal(0), "memory": Decimal(0), "pods": Decimal(0)}
    for node in nodes:
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        for resource in totals:
            try:
                totals[resource] += parse_quantity(allocatable.get(resource, "0"))
            except QuantityError:
                continue
    return {"nodes": len(nodes), "allocatable": {r: q for r, q in quota_strings(totals).items() if r in totals}}


# -- the region's meter (DESIGN.md §4) -----------------------------------------------------------

log = logging.getLogger("tenantry")
SERVICE_MONITOR_RECHECK_SECONDS = 300.0


async def _service_monitors_available(op: Operator) -> bool:
    """Whether the Prometheus Operator's ServiceMonitor is served; looked up again every few minutes
    so that installing it later is noticed, without a discovery call per reconcile."""
    now, every = time.monotonic(), SERVICE_MONITOR_RECHECK_SECONDS
    if now - op.feature_checked.get("ServiceMonitor", -every) >= every:
        op.feature_checked["ServiceMonitor"] = now
        if await op.client.kind_exists("ServiceMonitor"):
            op.features.add("ServiceMonitor")
        else:
            op.features.discard("ServiceMonitor")
    return "ServiceMonitor" in op.features


# Fields of a StatefulSet the apiserver refuses to change (Kubernetes 1.20 lets only replicas, template
# and updateStrategy change) among those the meter sets.
_FIXED_STATEFULSET_FIELDS = ("selector", "serviceName", "volumeClaimTemplates")


def statefulset_must_be_replaced(live: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Whether the live StatefulSet differs from the desired one where it cannot be changed in place
    (a new `metering.spool` size or class, `metering.spoolClaim` set or unset): applying would be
    refused, so it is deleted (its pod orphaned, the claims kept) and made again."""
    live_spec, desired_spec = live.get("spec") or {}, desired["spec"]
    return any(not contains(live_spec.get(field), desired_spec[field]) if field in desired_spec
               else bool(live_spec.get(field)) for field in _FIXED_STATEFULSET_FIELDS)


def _previous_meter(op: Operator, region: str) -> dict[str, Any] | None:
    """The meter Deployment an earlier version of the operator ran for the region, if it is still there."""
    found = op.store.get("Deployment", meter_name(region), op.settings.metering.namespace)
    labels = (found or {}).get("metadata", {}).get("labels") or {}
    return found if labels.get(COMPONENT_LABEL) == COMPONENT else None


async def _sync_meter(op: Operator, body: Mapping[str, Any]) -> tuple[Condition | None, Exception | None]:
    """Run the region's meter (StatefulSet, Service, ConfigMap, ServiceMonitor), or remove it when
    metering is disabled. Returns the `Metering` condition and the error to retry on, if any.

    A meter never starts beside another on the same spool: the Deployment of the previous version
    is deleted in the foreground (it goes only once its pod has stopped) and the StatefulSet is
    made once it is gone; its deletion, seen by the watch, wakes the Region again."""
    name = body["metadata"]["name"]
    metering = op.settings.metering
    namespace, object_name = metering.namespace, meter_name(name)
    where = f"{namespace}/{object_name}"
    previous = _previous_meter(op, name)
    if not metering.enabled:
        for kind in ("ServiceMonitor", "Service", "StatefulSet", "Deployment", "ConfigMap"):
            if op.store.get(kind, object_name, namespace) is not None:
                await delete_child(op.client, op.store, kind, object_name, namespace)
        return None, None
    member = ((body.get("spec") or {}).get("cluster") or {}).get("kubeconfigSecretRef")
    if member and member.get("namespace") != namespace:
        # The meter reads the member's usage with the region's kubeconfig, mounted from its Secret: a
        # pod mounts Secrets of its own namespace only.
        return Condition("Metering", False, "KubeconfigOutsideMeterNamespace",
                         f"The meter runs in {namespace} and mounts the region's kubeconfig Secret, which is in "
                         f"{member.get('namespace')}: move Secret {member.get('name')} to {namespace} (and "
                         "spec.cluster.kubeconfigSecretRef with it) so that this region's usage is metered."), None
    waiting: Condition | None = None
    try:
        monitor = await _service_monitors_available(op)
        children = build_meter_children(body, op.settings, service_monitor=monitor)
        statefulset = next(c for c in children if c["kind"] == "StatefulSet")
        live = op.store.get("StatefulSet", object_name, namespace)
        if previous is not None:
            if not previous["metadata"].get("deletionTimestamp"):
                log.info("Region %s: removing the meter Deployment %s of the previous version; its StatefulSet "
                         "starts once the Deployment's pod has stopped.", name, where)
                await delete_child(op.client, op.store, "Deployment", object_name, namespace, propagation="Foreground")
            waiting = Condition("Metering", None, "PreviousMeterStopping",
                                f"The meter Deployment {where} of the previous version is being removed; the "
                                "StatefulSet that replaces it starts once its pod has stopped, so that two meters "
                                "never share a spool.")
        elif live is not None and (live["metadata"].get("deletionTimestamp")
                                   or statefulset_must_be_replaced(live, statefulset)):
            if not live["metadata"].get("deletionTimestamp"):
                log.info("Region %s: the meter StatefulSet %s has a volume that cannot change in place; replacing "
                         "it (its pod keeps running until the new StatefulSet takes it over).", name, where)
                await delete_child(op.client, op.store, "StatefulSet", object_name, namespace, propagation="Orphan")
            waiting = Condition("Metering", None, "MeterReplacing",
                                f"The meter StatefulSet {where} is being replaced: its volume (metering.spool or "
                                "metering.spoolClaim) changed, which a StatefulSet cannot change in place.")
        if waiting is not None:
            children = [c for c in children if c["kind"] != "StatefulSet"]
        await sync_children(op.client, op.store, (REGION, None, name), children)
    except Exception as error:  # reported in status, retried by the queue
        log.warning("Region %s: running its meter failed and will be retried: %s", name, failure_text(error))
        return Condition("Metering", False, "MeterFailed",
                         f"The meter StatefulSet {where} could not be applied and will be retried: "
                         f"{failure_text(error)}"), error
    if waiting is not None:
        return waiting, None
    return Condition("Metering", True, "MeterDeployed",
                     f"The meter runs as StatefulSet {where}, its spool and window checkpoint on "
                     f"PersistentVolumeClaim {spool_claim_name(name, op.settings)}."), None
