"""Names, labels and API coordinates that the contract (DESIGN.md §2-3) fixes.

Everything the operator names goes through here so that a reader finds the scheme in one place
and builders stay deterministic: the same spec always yields the same object names.
"""

from __future__ import annotations

import re

GROUP = "tenantry.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

FIELD_MANAGER = "tenantry"
FINALIZER = "tenantry.dev/finalizer"

# Kinds and their plural resource names.
REGION, RESELLER, PLAN, TENANT = "Region", "Reseller", "Plan", "Tenant"
LICENSE_ORDER = "LicenseOrder"
PLURALS = {REGION: "regions", RESELLER: "resellers", PLAN: "plans", TENANT: "tenants", LICENSE_ORDER: "licenseorders"}
# Kinds that live in a reseller's control namespace.
NAMESPACED_KINDS = frozenset({PLAN, TENANT, LICENSE_ORDER})

# Labels on everything the operator makes.
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "tenantry"
LABEL_RESELLER = "tenantry.dev/reseller"
LABEL_TENANT = "tenantry.dev/tenant"
LABEL_REGION = "tenantry.dev/region"
LABEL_PLAN = "tenantry.dev/plan"
# Marks the namespace kind so that selectors can tell control from tenant namespaces.
LABEL_NAMESPACE_ROLE = "tenantry.dev/namespace-role"

# The UID of the Tenant a tenant namespace was made for: the operator provisions only into a namespace
# carrying its Tenant's UID (tenantry/namespace_claim.py).
ANNOTATION_TENANT_UID = "tenantry.dev/tenant-uid"

# Namespace annotations read by the PodNodeSelector / PodTolerationRestriction admission plugins.
ANNOTATION_NODE_SELECTOR = "scheduler.alpha.kubernetes.io/node-selector"
ANNOTATION_DEFAULT_TOLERATIONS = "scheduler.alpha.kubernetes.io/defaultTolerations"

# Child object names fixed by the contract.
CHILD_NAME = "tenantry"
NETWORK_POLICY_NAME = "tenantry-isolation"
BRANDING_CONFIGMAP = "tenantry-branding"

# Platform ClusterRoles shipped with the install manifests.
CLUSTERROLE_RESELLER = "tenantry-reseller"
CLUSTERROLE_RESELLER_SUPPORT = "tenantry-reseller-support"
CLUSTERROLE_TENANT_OWNER = "tenantry-tenant-owner"

NAME_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
NAME_RE = re.compile(NAME_PATTERN)
MAX_NAME_LENGTH = {REGION: 30, RESELLER: 20, TENANT: 40, PLAN: 63, LICENSE_ORDER: 63}

# The four resources a quota speaks of, and the ResourceQuota keys they map to.
QUOTA_RESOURCES = ("cpu", "memory", "storage", "pods")
QUOTA_KEYS = {"cpu": "requests.cpu", "memory": "requests.memory", "storage": "requests.storage", "pods": "pods"}


def reseller_namespace(reseller: str) -> str:
    """The reseller's control namespace, where its Plans and Tenants live."""
    return f"reseller-{reseller}"


def reseller_from_namespace(namespace: str) -> str | None:
    """Inverse of reseller_namespace; None for a namespace that is not a control namespace."""
    return namespace[len("reseller-"):] if namespace.startswith("reseller-") else None


def tenant_namespace(reseller: str, tenant: str) -> str:
    """A tenant's own namespace. Names forbid '--', so the split is unambiguous."""
    return f"{reseller}--{tenant}"


def is_valid_name(kind: str, name: str) -> bool:
    return bool(NAME_RE.match(name)) and len(name) <= MAX_NAME_LENGTH[kind]


def managed_labels(
    reseller: str | None = None, tenant: str | None = None, region: str | None = None, plan: str | None = None
) -> dict[str, str]:
    """The label set of DESIGN.md §3, with only the keys that apply."""
    labels = {LABEL_MANAGED_BY: MANAGED_BY}
    for key, value in ((LABEL_RESELLER, reseller), (LABEL_TENANT, tenant), (LABEL_REGION, region), (LABEL_PLAN, plan)):
        if value:
            labels[key] = value
    return labels
