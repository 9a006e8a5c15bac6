"""Small helpers shared by the builders: RBAC subjects, owner references, quantity strings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from tenantry.naming import QUOTA_KEYS, QUOTA_RESOURCES
from tenantry.quantity import format_quantity

RBAC_GROUP = "rbac.authorization.k8s.io"


def rbac_subjects(subjects: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """CR subjects ({kind, name[, namespace]}) as RBAC subjects, in a stable order."""
    result = []
    for subject in subjects:
        kind, name = subject["kind"], subject["name"]
        if kind == "ServiceAccount":
            result.append({"kind": kind, "name": name, "namespace": subject["namespace"]})
        else:
            result.append({"kind": kind, "apiGroup": RBAC_GROUP, "name": name})
    return sorted(result, key=lambda s: (s["kind"], s.get("namespace", ""), s["name"]))


def cluster_role_binding(kind: str, metadata: Mapping[str, Any], cluster_role: str,
                         subjects: list[dict[str, str]]) -> dict[str, Any]:
    """A RoleBinding or ClusterRoleBinding (`kind`) granting the ClusterRole `cluster_role` to
    `subjects` (already RBAC subjects, see `rbac_subjects`)."""
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": kind,
        "metadata": dict(metadata),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": cluster_role},
        "subjects": subjects,
    }


def owner_reference(owner: Mapping[str, Any], *, controller: bool = True) -> dict[str, Any]:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def quota_hard(quota: Mapping[str, Decimal]) -> dict[str, str]:
    """The four quota resources as ResourceQuota `hard` keys; a missing resource is zero."""
    return {QUOTA_KEYS[r]: format_quantity(r, Decimal(quota.get(r, 0))) for r in QUOTA_RESOURCES}


def quota_strings(quota: Mapping[str, Decimal]) -> dict[str, str]:
    """The four quota resources as quantity strings keyed by resource name (for status)."""
    return {r: format_quantity(r, Decimal(quota.get(r, 0))) for r in QUOTA_RESOURCES}
