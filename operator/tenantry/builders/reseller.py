"""Desired children of a Reseller (DESIGN.md §3): its control namespace and what lets its admins in.

All of them carry an owner reference to the Reseller, so that deleting it lets the garbage
collector remove them; deleting the control namespace deletes the reseller's Tenants, whose own
deletion policies then decide what happens to their namespaces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tenantry.builders.common import cluster_role_binding, owner_reference, rbac_subjects
from tenantry.builders.tenant import build_branding_config_map
from tenantry.naming import (
    API_VERSION,
    CLUSTERROLE_RESELLER,
    GROUP,
    LABEL_NAMESPACE_ROLE,
    LABEL_RESELLER,
    managed_labels,
    reseller_namespace,
)

ADMINS_BINDING = "tenantry-reseller-admins"


def reseller_cluster_role_name(reseller: str) -> str:
    return f"tenantry-reseller-{reseller}"


def build_reseller_children(reseller: Mapping[str, Any], admins: Sequence[Mapping[str, Any]],
                            branding: Mapping[str, str]) -> list[dict[str, Any]]:
    """Control namespace, admins' RoleBinding, their cluster-wide read grant, and the branding ConfigMap."""
    name = reseller["metadata"]["name"]
    namespace = reseller_namespace(name)
    labels = managed_labels(reseller=name)
    owner = [owner_reference(reseller)]
    namespace_labels = {**labels, LABEL_NAMESPACE_ROLE: "control"}
    children: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": namespace, "labels": namespace_labels, "ownerReferences": owner}},
    ]
    # The cluster-wide part of the admins' access: their own Reseller (status, licences) and the Regions.
    role_name = reseller_cluster_role_name(name)
    children.append({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": role_name, "labels": labels, "ownerReferences": owner},
        "rules": [
            {"apiGroups": [GROUP], "resources": ["resellers"], "resourceNames": [name], "verbs": ["get", "watch"]},
            {"apiGroups": [GROUP], "resources": ["regions"], "verbs": ["get", "list", "watch"]},
        ],
    })
    if admins:
        subjects = rbac_subjects(admins)
        children.append(cluster_role_binding(
            "ClusterRoleBinding", {"name": role_name, "labels": labels, "ownerReferences": owner}, role_name, subjects))
        children.append(cluster_role_binding(
            "RoleBinding", {"name": ADMINS_BINDING, "namespace": namespace, "labels": labels},
            CLUSTERROLE_RESELLER, subjects))
    children.append(build_branding_config_map(namespace, labels, branding))
    return children


def build_default_plan(reseller: str, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """A platform default Plan, created (never applied) once in a new control namespace."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Plan",
        # Not labelled managed-by: once seeded, the plan is the reseller's to change or delete.
        "metadata": {"name": name, "namespace": reseller_namespace(reseller),
                     "labels": {LABEL_RESELLER: reseller, "tenantry.dev/default-plan": "true"}},
        "spec": dict(spec),
    }


def reseller_branding(spec: Any) -> dict[str, str]:
    """The white label as ConfigMap data: the reseller's brand, its company name as the fallback name."""
    data = {"companyName": spec.company_name, "displayName": spec.company_name}
    if spec.branding is not None:
        for key, value in spec.branding.model_dump(by_alias=True, exclude_none=True).items():
            data[key] = str(value)
    return data
