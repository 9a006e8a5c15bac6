"""A new Tenant is stored with `tenantry.dev/finalizer` already on it: the one mutating rule.

The reconcile adds the finalizer before a Tenant's first child (controller/finalizers.py), which cost one
PATCH of the Tenant for every new tenant (issue 15). Added here, on CREATE, the object is stored with it
and the reconcile finds nothing to do. The reconcile keeps adding it where it is missing - a webhook off
(`webhook.enabled: false`, `disabledRules: [tenant-finalizer]`), failed open, or a Tenant created before
this rule existed - so nothing depends on this rule: it fails open (Ignore), and its timeout is short,
because all a slow answer could save is one write the operator makes anyway.

Only in resellers' control namespaces, where the operator admits Tenants (a Tenant elsewhere is never
provisioned and needs no finalizer).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenantry.naming import FINALIZER, GROUP
from tenantry.webhook.registry import (
    CONTROL_NAMESPACES,
    CREATE,
    IGNORE,
    ClusterView,
    Exempt,
    Request,
    Verdict,
    mutate,
    rule,
)


def finalizer_patch(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The JSON Patch adding the finalizer to the object, [] when it is there already."""
    finalizers = (obj.get("metadata") or {}).get("finalizers")
    if not finalizers:  # absent, or an empty list: set it whole
        return [{"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}]
    if FINALIZER in finalizers:
        return []
    return [{"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER}]


@rule("tenant-finalizer", group=GROUP, resources=("tenants",), operations=(CREATE,), failure_policy=IGNORE,
      namespaces=CONTROL_NAMESPACES, exempt=Exempt.OPERATOR, timeout_seconds=2, mutating=True,
      summary="new Tenants are stored with tenantry.dev/finalizer (saves the operator's finalizer write; "
              "the operator adds it itself when the webhook did not)")
def add_tenant_finalizer(request: Request, view: ClusterView) -> Verdict:
    return mutate(*finalizer_patch(request.body))
