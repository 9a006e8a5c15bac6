"""The one grant the region meters need in a reseller's control namespace: writing its usage and bill
ConfigMaps (tenantry.metering.billing), and nothing anywhere else.

The meters' ClusterRole `tenantry-meter` only reads. Each control namespace gets a RoleBinding of the
ClusterRole `tenantry-meter-billing` (ConfigMaps: get, create, patch, delete; shipped with the
platform roles) to the meters' ServiceAccount, as a child of the Reseller: it goes with the namespace.
"""

from __future__ import annotations

from typing import Any

from tenantry.builders.common import cluster_role_binding
from tenantry.naming import managed_labels, reseller_namespace

METER_BILLING_ROLE = "tenantry-meter-billing"
METER_BILLING_BINDING = "tenantry-meter-billing"


def build_meter_billing_binding(reseller: str, service_account: str, namespace: str) -> dict[str, Any]:
    """RoleBinding in reseller-<name>: the meters' ServiceAccount may write ConfigMaps there."""
    return cluster_role_binding(
        "RoleBinding",
        {"name": METER_BILLING_BINDING, "namespace": reseller_namespace(reseller),
         "labels": managed_labels(reseller=reseller)},
        METER_BILLING_ROLE,
        [{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}])
