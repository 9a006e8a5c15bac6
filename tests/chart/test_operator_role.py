"""The operator works end to end under the chart's own ClusterRole, and exports what the alerts need.

The session's `operator` fixture runs `tenantry run` as ServiceAccount tenantry-system/tenantry bound
to charts/tenantry/files/operator-clusterrole.yaml (the file the chart ships). This test walks the
operator through each kind of write it makes - a reseller's namespace, access, branding, seeded plan
and certificates, a region's meter, a tenant's children, a refusal, suspension and resumption of its
workloads, both deletion policies - and then requires that the API server refused it nothing.
The whole integration suite runs under the same role too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from kubernetes import client

from support.cluster import wait_for
from support.operator import OPERATOR_USER, OperatorProcess
from support.platform import Platform


def _forbidden(log: str) -> list[str]:
    """Log lines of requests the API server refused the operator for lack of permission."""
    # Not "403" alone: a log line's timestamp ends in milliseconds, and ",403" is one in a thousand of them
    # (the CI run of 2026-12-02 04:41 failed on "04:41:43,403 ... LicenseLimitReached"). The API server's
    # refusals say Forbidden, with its status.
    return [line for line in log.splitlines()
            if re.search(r"\b403 Forbidden\b|[Ff]orbidden", line)
            and "because it is being terminated" not in line]  # a namespace in deletion, not RBAC


def _metric(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return None


def _deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": "web", "image": "registry.invalid/web:never-pulled",
                          "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}}


def test_operator_needs_nothing_beyond_its_chart_role(operator: OperatorProcess, platform: Platform,
                                                      api_client: client.ApiClient,
                                                      can_i: Callable[..., bool]) -> None:
    start = len(operator.log_text())
    apps = client.AppsV1Api(api_client)

    # The role is what the operator has: it may bind the tenant-owner role but not cluster-admin.
    assert can_i(OPERATOR_USER, [], "bind", "clusterroles", None, group="rbac.authorization.k8s.io",
                 name="tenantry-tenant-owner")
    assert not can_i(OPERATOR_USER, [], "bind", "clusterroles", None, group="rbac.authorization.k8s.io",
                     name="cluster-admin")
    assert not can_i(OPERATOR_USER, [], "create", "pods", "default")

    region = platform.region(domainVerification="None")
    reseller = platform.reseller(region, licenses=2)
    control = f"reseller-{reseller}"
    platform.wait_namespace(control)
    platform.wait_condition("Reseller", reseller, None, "Ready", "True")
    platform.plan(reseller)
    wait_for(lambda: platform.get("Plan", "trial", control), message="the seeded default plan")

    keep = platform.tenant(reseller, region, deletionPolicy="Retain")
    gone = platform.tenant(reseller, region)
    platform.wait_tenant(reseller, keep)
    platform.wait_tenant(reseller, gone)
    refused = platform.tenant(reseller, region)  # the third of two licences
    platform.wait_refused(reseller, refused, "LicenseLimitReached")

    # The region's meter (StatefulSet, Service, ConfigMap) and the certificates (SelfSigned) are the
    # operator's too.
    core = client.CoreV1Api(api_client)
    wait_for(lambda: apps.list_namespaced_stateful_set("tenantry-system",
                                                       label_selector=f"tenantry.dev/region={region}").items,
             message=f"the meter StatefulSet of region {region}")
    wait_for(lambda: core.list_namespaced_secret(f"{reseller}--{keep}",
                                                 label_selector="app.kubernetes.io/managed-by=tenantry").items,
             message="the tenant's TLS Secret")

    # Suspension scales the tenant's workloads to zero and back.
    namespace = f"{reseller}--{keep}"
    apps.create_namespaced_deployment(namespace, _deployment("web", 2))
    platform.patch("Tenant", keep, {"spec": {"active": False}}, control)
    wait_for(lambda: apps.read_namespaced_deployment("web", namespace).spec.replicas == 0,
             message="the suspended tenant's Deployment scaled to zero")
    platform.patch("Tenant", keep, {"spec": {"active": True}}, control)
    wait_for(lambda: apps.read_namespaced_deployment("web", namespace).spec.replicas == 2,
             message="the resumed tenant's Deployment back at 2 replicas")
    platform.wait_tenant(reseller, keep)

    # What the alerts and the dashboard read.
    def metrics_show_tenants() -> bool:
        text = operator.metrics()
        return (_metric(text, "tenantry_tenant_ready", namespace=control, tenant=keep) == 1.0
                and _metric(text, "tenantry_tenant_ready", namespace=control, tenant=refused) == 0.0
                and (_metric(text, "tenantry_operator_tenants_refused", reason="LicenseLimitReached") or 0) >= 1
                and (_metric(text, "tenantry_operator_admission_refusals_total", reason="LicenseLimitReached")
                     or 0) >= 1)

    wait_for(metrics_show_tenants, message="tenant readiness and refusals in the operator's metrics")

    # Both deletion policies.
    platform.delete("Tenant", gone, control)
    platform.delete("Tenant", keep, control)
    platform.wait_tenant(reseller, refused)  # a licence came free
    wait_for(lambda: platform.namespace(f"{reseller}--{gone}") is None
             or platform.namespace(f"{reseller}--{gone}").status.phase == "Terminating",
             message="the deleted tenant's namespace going away")
    wait_for(lambda: "app.kubernetes.io/managed-by" not in (platform.namespace(namespace).metadata.labels or {}),
             message="the retained namespace handed over without Tenantry's labels")
    wait_for(lambda: _metric(operator.metrics(), "tenantry_tenant_ready", namespace=control, tenant=gone) is None,
             message="a deleted tenant's readiness series removed")
    client.CoreV1Api(api_client).delete_namespace(namespace)

    assert _forbidden(operator.log_text()[start:]) == []


def test_a_timestamp_is_not_a_refusal() -> None:
    assert _forbidden("[2026-12-02 04:41:43,403] tenantry [INFO] Tenant x: Ready is False (LicenseLimitReached)") == []
    assert _forbidden("POST /api/v1/namespaces/x/rolebindings: 403 Forbidden: cannot create") != []
