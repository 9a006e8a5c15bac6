"""The isolation rules of the admission webhook (tenantry.webhook.isolation): registered fail-closed for
tenant namespaces, for every kind a tenant can make pods, Services or claims with; the tenant's policy
read from the operator's picture (its Region's guardrails, its admitted Plan); updates refused only
for what they add. The rules themselves are tested in test_guardrails.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from tenantry.admission import AdmissionBook
from tenantry.controller.store import Store
from tenantry.webhook import isolation
from tenantry.webhook.registry import (
    CREATE,
    FAIL,
    TENANT_NAMESPACES,
    UPDATE,
    Exempt,
    Identities,
    TenantScope,
    is_exempt,
    load_rules,
    request_for,
    rules_for,
    tenant_scope,
)

NAMESPACE = "acme--bakery"


@dataclass
class View:
    """The operator's picture as validators see it: a Store filled as the watches fill it."""

    store: Store = field(default_factory=Store)
    book: AdmissionBook = field(default_factory=AdmissionBook)

    def tenant_for_namespace(self, namespace: str) -> TenantScope | None:
        return tenant_scope(self.store, namespace)


def picture(*, guardrails: Mapping[str, Any] | None = None, plan_classes: tuple[str, ...] = (),
            tenant: bool = True) -> View:
    view = View()
    view.store.put("Region", {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Region", "metadata": {
        "name": "eu-west", "resourceVersion": "1", "generation": 1}, "spec": {
        "capacity": {"cpu": "8", "memory": "8Gi", "storage": "8Gi", "pods": "80"},
        "pricing": {"currency": "USD", "cpu": "0.02", "memory": "0.0025", "storage": "0.00015"},
        "guardrails": dict(guardrails or {})}})
    view.store.put("Plan", {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Plan", "metadata": {
        "name": "starter", "namespace": "reseller-acme", "resourceVersion": "2", "generation": 1}, "spec": {
        "quota": {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "pods": "10"},
        "pricing": {"currency": "EUR", "monthly": "1.00"}, "storageClasses": list(plan_classes)}})
    view.store.put("Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": NAMESPACE, "resourceVersion": "3", "labels": {"tenantry.dev/namespace-role": "tenant",
                                                               "tenantry.dev/region": "eu-west",
                                                               "tenantry.dev/plan": "starter"}}})
    if tenant:
        view.store.put("Tenant", {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Tenant", "metadata": {
            "name": "bakery", "namespace": "reseller-acme", "resourceVersion": "4", "generation": 1}, "spec": {
            "email": "joe@bakery.example", "region": "eu-west", "plan": "starter"}, "status": {
            "phase": "Active", "namespace": NAMESPACE, "admission": {"region": "eu-west", "plan": "starter"}}})
    return view


def obj(kind: str, spec: Mapping[str, Any], api_version: str = "v1") -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": "web", "namespace": NAMESPACE},
            "spec": dict(spec)}


POD_SPEC = {"containers": [{"name": "web", "image": "nginx:1.25"}]}


@pytest.mark.parametrize(("group", "resources"), [
    ("", {"pods", "services", "persistentvolumeclaims", "replicationcontrollers"}),
    ("apps", {"deployments", "replicasets", "statefulsets", "daemonsets"}),
    ("batch", {"jobs", "cronjobs"}),
])
def test_rules_are_fail_closed_for_tenant_namespaces(group: str, resources: set[str]) -> None:
    load_rules()
    for resource in resources:
        (found,) = [r for r in rules_for(group, resource) if r.validate is isolation.check_isolation]
        assert found.failure_policy == FAIL
        assert found.namespaces == TENANT_NAMESPACES
        assert set(found.operations) == {CREATE, UPDATE}
        assert found.exempt is Exempt.PLATFORM


def test_controllers_and_admins_are_exempt_but_tenant_owners_are_not() -> None:
    (core,) = [r for r in rules_for("", "pods") if r.validate is isolation.check_isolation]
    identities = Identities(operator_users=frozenset({"system:serviceaccount:tenantry-system:tenantry"}))
    made_by = {
        "system:serviceaccount:kube-system:replicaset-controller": True,
        "system:kube-controller-manager": True,
        "joe@bakery.example": False,
    }
    for user, exempt in made_by.items():
        assert is_exempt(request_for(obj("Pod", POD_SPEC), username=user), core.exempt, identities) is exempt


def test_a_tenant_owners_external_ips_and_external_name_are_denied_with_the_rule() -> None:
    view = picture()
    verdict = isolation.check_isolation(request_for(obj("Service", {"externalIPs": ["8.8.8.8"]})), view)
    assert not verdict.allowed and verdict.reason == "ExternalIPsNotAllowed"
    assert verdict.message.startswith("spec.externalIPs: a tenant's Service may not set external IPs (8.8.8.8)")
    web = obj("Service", {"selector": {"app": "web"}, "ports": [{"port": 80}]})
    hijack = obj("Service", {"type": "ExternalName", "externalName": "grafana.monitoring.svc.cluster.local"})
    verdict = isolation.check_isolation(request_for(hijack, operation=UPDATE, old=web), view)
    assert not verdict.allowed and verdict.reason == "ExternalNameNotAllowed"
    assert isolation.check_isolation(request_for(web), view).allowed


def test_the_regions_guardrails_and_the_admitted_plan_decide() -> None:
    view = picture(guardrails={"allowedPriorityClasses": ["tenant-batch"], "allowedRegistries": ["ghcr.io/acme"],
                               "storageClasses": ["standard", "premium"]}, plan_classes=("standard",))
    deployment = obj("Deployment", {"template": {"spec": {
        "priorityClassName": "tenant-batch", "containers": [{"name": "web", "image": "ghcr.io/acme/web:1"}]}}},
        "apps/v1")
    assert isolation.check_isolation(request_for(deployment, group="apps"), view).allowed
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx"
    verdict = isolation.check_isolation(request_for(deployment, group="apps"), view)
    assert verdict.reason == "RegistryNotAllowed" and "region eu-west" in verdict.message
    claim = obj("PersistentVolumeClaim", {"storageClassName": "premium", "accessModes": ["ReadWriteOnce"],
                                          "resources": {"requests": {"storage": "1Gi"}}})
    verdict = isolation.check_isolation(request_for(claim), view)
    assert verdict.reason == "StorageClassNotSold" and "plan 'starter'" in verdict.message


def test_without_its_tenant_in_the_picture_the_safe_defaults_apply() -> None:
    view = picture(tenant=False, guardrails={"allowedPriorityClasses": ["tenant-batch"]})
    verdict = isolation.check_isolation(request_for(obj("Pod", {**POD_SPEC, "priorityClassName": "tenant-batch"})),
                                        view)
    assert verdict.reason == "PriorityClassNotAllowed" and "region eu-west" in verdict.message
    assert not isolation.check_isolation(request_for(obj("Pod", {**POD_SPEC, "hostNetwork": True})), view).allowed


def test_an_update_that_adds_nothing_is_allowed() -> None:
    view = picture()
    old = obj("Deployment", {"replicas": 2, "template": {"spec": {**POD_SPEC, "hostNetwork": True}}}, "apps/v1")
    scaled = obj("Deployment", {"replicas": 0, "template": {"spec": {**POD_SPEC, "hostNetwork": True}}}, "apps/v1")
    assert isolation.check_isolation(request_for(scaled, operation=UPDATE, old=old, group="apps"), view).allowed
    assert not isolation.check_isolation(request_for(scaled, group="apps"), view).allowed
