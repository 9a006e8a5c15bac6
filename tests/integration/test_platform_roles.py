"""The platform ClusterRoles the operator binds (issue 11, finding 2).

`tenantry-reseller`, `tenantry-reseller-support` and `tenantry-tenant-owner` come with the chart, not
from the operator. Every way the project sets up a cluster installs them with the CRDs
(hack/controlplane.py `install_platform`: `make dev-up`, `make demo`, this test session, hack/bench),
and an operator that binds one that is missing says so - condition RolesBound=False with reason
ClusterRoleMissing, a Warning Event, the gauge tenantry_missing_clusterrole - until it is back.

Both tests delete platform roles of this session's cluster for a moment; the `platform_roles_restored`
fixture puts them back with the project's own function, whatever happens.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from support.cluster import REPO_ROOT, load_controlplane_module, wait_for
from support.kubectl import Kubectl, kubectl_binary
from support.operator import OperatorProcess
from support.platform import Platform, condition

PLATFORM_ROLES = ("tenantry-reseller", "tenantry-reseller-support", "tenantry-tenant-owner")
ROLES_FILE = "charts/tenantry/files/platform-clusterroles.yaml"


@pytest.fixture
def platform_roles_restored(kubeconfig: str) -> Iterator[None]:
    yield
    load_controlplane_module().install_platform(kubectl_binary(), kubeconfig)


def _delete_roles(api: client.ApiClient, *names: str) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    for name in names:
        try:
            rbac.delete_cluster_role(name)
        except client.ApiException as error:
            if error.status != 404:
                raise


def _existing_roles(api: client.ApiClient) -> set[str]:
    return {r.metadata.name for r in client.RbacAuthorizationV1Api(api).list_cluster_role().items} & set(PLATFORM_ROLES)


def _missing_gauge(operator: OperatorProcess, role: str) -> float | None:
    prefix = f'tenantry_missing_clusterrole{{clusterrole="{role}"}} '
    line = next((line for line in operator.metrics().splitlines() if line.startswith(prefix)), None)
    return float(line[len(prefix):]) if line else None


def test_dev_up_installs_the_platform_roles_so_a_reseller_admin_can_sign_up_tenants(
        platform: Platform, local_control_plane: Any, kubeconfig: str, api_client: client.ApiClient,
        platform_roles_restored: None) -> None:
    # A cluster set up without them (as `make dev-up` did before), then `make dev-up` again: it is
    # `hack/controlplane.py up --dir DIR`, idempotent on a running control plane.
    _delete_roles(api_client, *PLATFORM_ROLES)
    assert _existing_roles(api_client) == set()
    result = subprocess.run([sys.executable, str(REPO_ROOT / "hack" / "controlplane.py"), "up",
                             "--dir", str(local_control_plane.directory)],
                            capture_output=True, text=True, timeout=180, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _existing_roles(api_client) == set(PLATFORM_ROLES), result.stdout
    assert "tenantry-tenant-owner" in result.stdout  # it says what it installed

    # The reseller's admin can do what the README promises, as `kubectl auth can-i --as` answers.
    region, reseller = platform.setup()
    control = f"reseller-{reseller}"
    platform.wait_condition("Reseller", reseller, None, "RolesBound", "True", "RolesBound", timeout=60)
    admin = Kubectl(kubeconfig).as_user(f"admin@{reseller}.example")
    assert admin.can_i("create", "tenants", "-n", control)
    assert admin.can_i("update", "plans", "-n", control)
    tenant = platform.tenant(reseller, region)
    platform.wait_tenant(reseller, tenant, timeout=60)
    workspace = f"{reseller}--{tenant}"
    assert Kubectl(kubeconfig).as_user(f"owner@{tenant}.example").can_i("create", "deployments", "-n", workspace)
    assert admin.can_i("get", "pods", "-n", workspace)  # support, through tenantry-reseller-support
    obj = platform.tenant_obj(reseller, tenant)
    assert condition(obj, "RolesBound")["status"] == "True"  # type: ignore[index]


def test_a_missing_platform_role_is_reported_and_the_report_clears_when_it_is_back(
        platform: Platform, operator: OperatorProcess, kubeconfig: str, api_client: client.ApiClient,
        platform_roles_restored: None) -> None:
    region, reseller = platform.setup()
    control = f"reseller-{reseller}"
    tenant = platform.tenant(reseller, region)
    platform.wait_tenant(reseller, tenant, timeout=60)
    platform.wait_condition("Tenant", tenant, control, "RolesBound", "True", timeout=30)
    owner = Kubectl(kubeconfig).as_user(f"owner@{tenant}.example")
    workspace = f"{reseller}--{tenant}"
    assert owner.can_i("create", "deployments", "-n", workspace)

    _delete_roles(api_client, "tenantry-tenant-owner", "tenantry-reseller")
    # The tenant's owners lost their access, and the tenant says why and what to do.
    obj = platform.wait_condition("Tenant", tenant, control, "RolesBound", "False", "ClusterRoleMissing", timeout=30)
    message = condition(obj, "RolesBound")["message"]  # type: ignore[index]
    assert "ClusterRole tenantry-tenant-owner does not exist" in message and ROLES_FILE in message, message
    assert "tenantry-reseller-support" not in message  # it still exists: only what is missing is named
    assert not owner.can_i("create", "deployments", "-n", workspace)
    event = platform.wait_event(control, tenant, "ClusterRoleMissing", "Warning")
    assert "tenantry-tenant-owner" in (event.message or "")
    # So does the Reseller, whose admins' binding refers to tenantry-reseller.
    obj = platform.wait_condition("Reseller", reseller, None, "RolesBound", "False", "ClusterRoleMissing", timeout=30)
    assert "ClusterRole tenantry-reseller does not exist" in condition(obj, "RolesBound")["message"]  # type: ignore[index]
    platform.wait_event("default", reseller, "ClusterRoleMissing", "Warning")
    wait_for(lambda: _missing_gauge(operator, "tenantry-tenant-owner") == 1.0, 15, message="the gauge at 1")
    assert _missing_gauge(operator, "tenantry-reseller") == 1.0
    assert _missing_gauge(operator, "tenantry-reseller-support") == 0.0

    # Back (the platform installs the chart's roles): everything clears by itself.
    load_controlplane_module().install_platform(kubectl_binary(), kubeconfig)
    platform.wait_condition("Tenant", tenant, control, "RolesBound", "True", "RolesBound", timeout=30)
    platform.wait_condition("Reseller", reseller, None, "RolesBound", "True", "RolesBound", timeout=30)
    wait_for(lambda: _missing_gauge(operator, "tenantry-tenant-owner") == 0.0, 15, message="the gauge at 0")
    assert owner.can_i("create", "deployments", "-n", workspace)
