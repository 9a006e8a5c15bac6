"""Desired children of an admitted Tenant, in its namespace `<reseller>--<tenant>` (DESIGN.md §3).

`build_tenant_children(inputs)` returns every object the tenant should have right now; anything
the operator made earlier and that is not in this list is pruned by the apply module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tenantry.builders.common import cluster_role_binding, quota_hard, rbac_subjects
from tenantry.naming import (
    ANNOTATION_DEFAULT_TOLERATIONS,
    ANNOTATION_NODE_SELECTOR,
    ANNOTATION_TENANT_UID,
    BRANDING_CONFIGMAP,
    CHILD_NAME,
    CLUSTERROLE_RESELLER_SUPPORT,
    CLUSTERROLE_TENANT_OWNER,
    LABEL_NAMESPACE_ROLE,
    NETWORK_POLICY_NAME,
    managed_labels,
)

OWNERS_BINDING = "tenantry-owners"
PRIORITY_QUOTA = "tenantry-priority"
STORAGE_CLASS_QUOTA_SUFFIX = ".storageclass.storage.k8s.io/"
SUPPORT_BINDING = "tenantry-reseller-support"


@dataclass(frozen=True)
class HostRoute:
    """A host the tenant's Ingress serves, and the TLS Secret (in the tenant namespace) for it."""

    host: str
    tls_secret: str | None = None


@dataclass(frozen=True)
class TenantInputs:
    reseller: str
    tenant: str
    region: str
    plan: str
    namespace: str
    quota: Mapping[str, Decimal]  # the admitted quota (not necessarily the plan's current one)
    active: bool = True
    default_requests: Mapping[str, str] = field(default_factory=dict)  # LimitRange defaults (cpu, memory)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: Sequence[Mapping[str, Any]] = ()
    ingress_class: str | None = None
    ingress_controller_namespace: str | None = None
    owners: Sequence[Mapping[str, Any]] = ()
    reseller_admins: Sequence[Mapping[str, Any]] = ()
    routes: Sequence[HostRoute] = ()
    service: str = "web"
    port: int = 80
    branding: Mapping[str, str] = field(default_factory=dict)
    pod_security_level: str = "baseline"
    allowed_priority_classes: Sequence[str] = ()  # the Region's guardrails; none by default
    denied_storage_classes: Sequence[str] = ()  # classes the Region offers that the plan does not sell
    tenant_uid: str = ""  # the Tenant object's UID, stamped on its namespace (tenantry/namespace_claim.py)

    @property
    def labels(self) -> dict[str, str]:
        return managed_labels(reseller=self.reseller, tenant=self.tenant, region=self.region, plan=self.plan)


def build_namespace(inputs: TenantInputs) -> dict[str, Any]:
    labels = inputs.labels
    labels[LABEL_NAMESPACE_ROLE] = "tenant"
    for mode in ("enforce", "audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}"] = inputs.pod_security_level
    annotations = {}
    if inputs.tenant_uid:
        # Marks the namespace as made for this very Tenant object: a later Tenant of the same name (whose
        # UID differs) never provisions into it, and so never reads what an earlier customer left there.
        annotations[ANNOTATION_TENANT_UID] = inputs.tenant_uid
    # PodNodeSelector and PodTolerationRestriction read these: every pod lands in the Region's pool.
    if inputs.node_selector:
        annotations[ANNOTATION_NODE_SELECTOR] = ",".join(f"{k}={v}" for k, v in sorted(inputs.node_selector.items()))
    if inputs.tolerations:
        annotations[ANNOTATION_DEFAULT_TOLERATIONS] = json.dumps(list(inputs.tolerations), separators=(",", ":"))
    metadata: dict[str, Any] = {"name": inputs.namespace, "labels": labels}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


def build_resource_quota(inputs: TenantInputs) -> dict[str, Any]:
    hard = quota_hard(inputs.quota)
    # Tenants share the node pool; nothing may claim a node port or a cloud load balancer.
    hard["services.loadbalancers"] = "0"
    hard["services.nodeports"] = "0"
    if not inputs.active:
        hard["pods"] = "0"  # a suspended tenant starts nothing new
    for storage_class in sorted(inputs.denied_storage_classes):
        # Storage of a class the plan does not sell: the API server refuses the claim by itself.
        hard[f"{storage_class}{STORAGE_CLASS_QUOTA_SUFFIX}requests.storage"] = "0"
        hard[f"{storage_class}{STORAGE_CLASS_QUOTA_SUFFIX}persistentvolumeclaims"] = "0"
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": CHILD_NAME, "namespace": inputs.namespace, "labels": inputs.labels},
        "spec": {"hard": hard},
    }


def build_priority_quota(inputs: TenantInputs) -> dict[str, Any]:
    """No pod may name a priority class the Region does not allow: a quota of zero pods scoped to
    them, so the API server refuses such a pod by itself (webhook or not). `Exists` keeps pods
    without a priority class out of the scope (NotIn alone would match their empty class name)."""
    expressions: list[dict[str, Any]] = [{"scopeName": "PriorityClass", "operator": "Exists"}]
    if inputs.allowed_priority_classes:
        expressions.append({"scopeName": "PriorityClass", "operator": "NotIn",
                            "values": sorted(set(inputs.allowed_priority_classes))})
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": PRIORITY_QUOTA, "namespace": inputs.namespace, "labels": inputs.labels},
        "spec": {"hard": {"pods": "0"}, "scopeSelector": {"matchExpressions": expressions}},
    }


def build_limit_range(inputs: TenantInputs) -> dict[str, Any]:
    defaults = {k: v for k, v in sorted(inputs.default_requests.items()) if k in ("cpu", "memory")}
    limit: dict[str, Any] = {"type": "Container"}
    if defaults:
        # A quota on requests.* refuses pods without requests; default requests make plain pods work.
        limit["defaultRequest"] = dict(defaults)
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": CHILD_NAME, "namespace": inputs.namespace, "labels": inputs.labels},
        "spec": {"limits": [limit]},
    }


def build_network_policy(inputs: TenantInputs) -> dict[str, Any]:
    sources: list[dict[str, Any]] = [{"podSelector": {}}]
    if inputs.ingress_controller_namespace:
        sources.append({"namespaceSelector": {
            "matchLabels": {"kubernetes.io/metadata.name": inputs.ingress_controller_namespace}}})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": NETWORK_POLICY_NAME, "namespace": inputs.namespace, "labels": inputs.labels},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": sources}]},
    }


def _role_binding(inputs: TenantInputs, name: str, role: str, subjects: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return cluster_role_binding("RoleBinding", {"name": name, "namespace": inputs.namespace, "labels": inputs.labels},
                                role, rbac_subjects(subjects))


def build_ingress(inputs: TenantInputs) -> dict[str, Any]:
    backend = {"service": {"name": inputs.service, "port": {"number": inputs.port}}}
    spec: dict[str, Any] = {
        "rules": [
            {"host": route.host,
             "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}
            for route in inputs.routes
        ],
    }
    if inputs.ingress_class:
        spec["ingressClassName"] = inputs.ingress_class
    tls = [{"hosts": [route.host], "secretName": route.tls_secret} for route in inputs.routes if route.tls_secret]
    if tls:
        spec["tls"] = tls
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": CHILD_NAME, "namespace": inputs.namespace, "labels": inputs.labels},
        "spec": spec,
    }


def build_branding_config_map(namespace: str, labels: Mapping[str, str], branding: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": BRANDING_CONFIGMAP, "namespace": namespace, "labels": dict(labels)},
        "data": {k: str(v) for k, v in sorted(branding.items())},
    }


def build_tenant_children(inputs: TenantInputs) -> list[dict[str, Any]]:
    """Everything an admitted tenant should have, the namespace first."""
    children = [
        build_namespace(inputs),
        build_resource_quota(inputs),
        build_priority_quota(inputs),
        build_limit_range(inputs),
        build_network_policy(inputs),
        build_branding_config_map(inputs.namespace, inputs.labels, inputs.branding),
    ]
    if inputs.reseller_admins:
        children.append(_role_binding(inputs, SUPPORT_BINDING, CLUSTERROLE_RESELLER_SUPPORT, inputs.reseller_admins))
    if inputs.owners:
        children.append(_role_binding(inputs, OWNERS_BINDING, CLUSTERROLE_TENANT_OWNER, inputs.owners))
    # A suspended tenant is not routed; its Ingress is pruned and comes back on reactivation.
    if inputs.active and inputs.routes:
        children.append(build_ingress(inputs))
    return children
