"""Whether a tenant namespace that already exists was made for this very Tenant: a pure decision.

A tenant's namespace is always `<reseller>--<tenant>`, so the name comes back whenever a reseller signs
up a customer under a former customer's name. The namespace retained from the former Tenant
(`deletionPolicy: Retain`) still holds that customer's data, and anybody allowed to create namespaces
may have made one of that name outside Tenantry. Provisioning into such a namespace would bind the new
owners in it and hand them the former customer's Secrets, so the operator provisions (and, on deletion,
deletes or retains) only a namespace it made for this Tenant object: one carrying the Tenant's UID
(annotation `tenantry.dev/tenant-uid`, set when the namespace is made). A Tenant's UID is never reused,
so neither a retained namespace nor a hand-made one can carry it.

Upgrade path: a previous version stamped no UID. Its namespace of a live Tenant still carries Tenantry's
labels for that reseller and tenant (Retain removes them) and is not older than the Tenant object (a
namespace made for an earlier Tenant of the same name was made before that one was deleted, so before this
one was created); such a namespace is adopted, and the UID stamped on it by the next apply.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Mapping
from typing import Any

from tenantry.naming import ANNOTATION_TENANT_UID, LABEL_MANAGED_BY, LABEL_RESELLER, LABEL_TENANT, MANAGED_BY

NAMESPACE_TAKEN = "NamespaceTaken"


class NamespaceClaim(enum.Enum):
    FREE = "free"  # no such namespace: the operator makes it
    OURS = "ours"  # made for this Tenant (it carries the Tenant's UID)
    ADOPT = "adopt"  # made for this Tenant by a version that stamped no UID: stamped now
    TAKEN = "taken"  # anything else: never touched

    @property
    def provisionable(self) -> bool:
        return self is not NamespaceClaim.TAKEN


def _timestamp(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def namespace_claim(namespace: Mapping[str, Any] | None, tenant: Mapping[str, Any], reseller: str) -> NamespaceClaim:
    """Whose the live `namespace` (None: it does not exist) is, for the Tenant object `tenant`."""
    if namespace is None:
        return NamespaceClaim.FREE
    meta, tenant_meta = namespace.get("metadata") or {}, tenant.get("metadata") or {}
    uid = tenant_meta.get("uid")
    stamped = (meta.get("annotations") or {}).get(ANNOTATION_TENANT_UID)
    if stamped:
        return NamespaceClaim.OURS if uid and stamped == uid else NamespaceClaim.TAKEN
    labels = meta.get("labels") or {}
    labelled = (labels.get(LABEL_MANAGED_BY) == MANAGED_BY and labels.get(LABEL_RESELLER) == reseller
                and labels.get(LABEL_TENANT) == tenant_meta.get("name"))
    made, created = _timestamp(meta.get("creationTimestamp")), _timestamp(tenant_meta.get("creationTimestamp"))
    # Both stamps come from the API server's clock, in whole seconds: equal means "the same second", which
    # is when the operator usually makes a new tenant's namespace.
    if labelled and made is not None and created is not None and made >= created:
        return NamespaceClaim.ADOPT
    return NamespaceClaim.TAKEN


def namespace_taken_message(namespace: Mapping[str, Any]) -> str:
    """What a reseller reads on a tenant whose namespace name is taken, and what to do about it."""
    meta = namespace.get("metadata") or {}
    name = meta.get("name", "")
    message = (f"Namespace {name} already exists and was not made for this tenant (it was retained from an earlier "
               "tenant of the same name or made outside Tenantry); Tenantry will not hand its contents to a new "
               "customer. Delete that namespace (after saving what you need) or give the tenant another name.")
    if meta.get("deletionTimestamp"):
        message += " It is being deleted now: the tenant is provisioned once it is gone."
    return message
