"""RBAC proof on the real apiserver: what a reseller admin and a tenant owner can and cannot do.

Each row is a SubjectAccessReview the apiserver answers from the bindings the operator made, plus a
few real requests made as the user (impersonation), the way `kubectl --as` would.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kubernetes import client

from support.cluster import wait_for
from support.platform import Platform

# Objects Tenantry owns inside a tenant namespace: visible to the people working there, never editable.
# (Ingresses are the tenant's to write, under the admission webhook's host and class rules, which keep
# Tenantry's own Ingress out of reach: tests/integration/test_webhook.py.)
OWNED = [("", "resourcequotas"), ("", "limitranges"), ("networking.k8s.io", "networkpolicies"),
         ("rbac.authorization.k8s.io", "rolebindings")]
ROUTES = [("networking.k8s.io", "ingresses"), ("gateway.networking.k8s.io", "httproutes")]


@pytest.fixture
def two_resellers(platform: Platform) -> dict[str, str]:
    region = platform.region()
    names: dict[str, str] = {"region": region}
    for key in ("a", "b"):
        reseller = platform.reseller(region)
        platform.wait_namespace(f"reseller-{reseller}")
        platform.plan(reseller)
        tenant = platform.tenant(reseller, region)
        names[key], names[f"{key}_tenant"] = reseller, tenant
    for key in ("a", "b"):
        platform.wait_tenant(names[key], names[f"{key}_tenant"])
    return names


def test_reseller_admin_manages_its_own_and_nothing_else(two_resellers: dict[str, str],
                                                         can_i: Callable[..., bool]) -> None:
    a, b = two_resellers["a"], two_resellers["b"]
    admin = f"admin@{a}.example"
    own_ctl, other_ctl = f"reseller-{a}", f"reseller-{b}"
    own_ns, other_ns = f"{a}--{two_resellers['a_tenant']}", f"{b}--{two_resellers['b_tenant']}"

    def allowed(verb: str, resource: str, ns: str | None, group: str = "", name: str | None = None) -> bool:
        return can_i(admin, [], verb, resource, ns, group=group, name=name)

    # Tenants and Plans in its own control namespace: full control.
    for verb in ("create", "update", "delete", "list"):
        assert allowed(verb, "tenants", own_ctl, "tenantry.dev"), verb
        assert allowed(verb, "plans", own_ctl, "tenantry.dev"), verb
    assert allowed("create", "secrets", own_ctl)
    # Work inside its tenants' namespaces.
    assert allowed("create", "deployments", own_ns, "apps")
    assert allowed("get", "pods", own_ns, name="x")
    assert allowed("create", "pods", own_ns, name="x", ) and allowed("get", "resourcequotas", own_ns)
    # Its own Reseller (read) and the Regions (read); nothing more cluster-wide.
    assert allowed("get", "resellers", None, "tenantry.dev", name=a)
    assert allowed("list", "regions", None, "tenantry.dev")
    assert not allowed("update", "resellers", None, "tenantry.dev", name=a)  # licences are the platform's
    assert not allowed("update", "tenants/status", own_ctl, "tenantry.dev")
    assert not allowed("create", "resellers", None, "tenantry.dev")  # no sub-resellers
    assert not allowed("list", "namespaces", None)
    # The other reseller: nothing at all.
    assert not allowed("get", "resellers", None, "tenantry.dev", name=b)
    for ns in (other_ctl, other_ns):
        for verb, resource, group in (("list", "tenants", "tenantry.dev"), ("get", "secrets", ""),
                                      ("list", "pods", ""), ("create", "deployments", "apps")):
            assert not allowed(verb, resource, ns, group), (verb, resource, ns)
    # What Tenantry owns in the tenant namespace is read-only.
    for group, resource in OWNED:
        assert allowed("get", resource, own_ns, group)
        for verb in ("create", "update", "patch", "delete"):
            assert not allowed(verb, resource, own_ns, group), (verb, resource)


def test_tenant_owner_works_only_in_its_namespace(two_resellers: dict[str, str], can_i: Callable[..., bool]) -> None:
    a, tenant = two_resellers["a"], two_resellers["a_tenant"]
    owner = f"owner@{tenant}.example"
    own_ns = f"{a}--{tenant}"
    other_ns = f"{two_resellers['b']}--{two_resellers['b_tenant']}"

    def allowed(verb: str, resource: str, ns: str | None, group: str = "") -> bool:
        return can_i(owner, [], verb, resource, ns, group=group)

    assert allowed("create", "deployments", own_ns, "apps")
    assert allowed("create", "secrets", own_ns)
    assert allowed("create", "pods/exec", own_ns) or allowed("get", "pods/log", own_ns)
    for group, resource in OWNED:
        assert allowed("list", resource, own_ns, group)
        for verb in ("create", "update", "patch", "delete"):
            assert not allowed(verb, resource, own_ns, group), (verb, resource)
    for group, resource in ROUTES:
        for verb in ("list", "create", "update", "patch", "delete"):
            assert allowed(verb, resource, own_ns, group), (verb, resource)
            assert not allowed(verb, resource, other_ns, group), (verb, resource)
    # Not the reseller's control namespace (other tenants, plans, the reseller's secrets)...
    for resource, group in (("tenants", "tenantry.dev"), ("plans", "tenantry.dev"), ("secrets", "")):
        assert not allowed("list", resource, f"reseller-{a}", group)
    # ...and nothing of anyone else.
    assert not allowed("list", "pods", other_ns)
    assert not allowed("list", "namespaces", None)
    assert not allowed("list", "regions", None, "tenantry.dev")


def test_real_requests_as_the_reseller_admin(two_resellers: dict[str, str], platform: Platform,
                                             impersonated_client: Callable[..., client.ApiClient]) -> None:
    a, b, region = two_resellers["a"], two_resellers["b"], two_resellers["region"]
    as_admin = impersonated_client(f"admin@{a}.example")
    objects = client.CustomObjectsApi(as_admin)
    body = {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": "via-kubectl"},
            "spec": {"email": f"via@{a}.example", "region": region, "plan": "small"}}
    objects.create_namespaced_custom_object("tenantry.dev", "v1alpha1", f"reseller-{a}", "tenants", body)
    platform.wait_tenant(a, "via-kubectl")
    listed = objects.list_namespaced_custom_object("tenantry.dev", "v1alpha1", f"reseller-{a}", "tenants")
    assert {t["metadata"]["name"] for t in listed["items"]} >= {"via-kubectl", two_resellers["a_tenant"]}
    with pytest.raises(client.ApiException) as denied:
        objects.list_namespaced_custom_object("tenantry.dev", "v1alpha1", f"reseller-{b}", "tenants")
    assert denied.value.status == 403
    quota_ns = f"{a}--{two_resellers['a_tenant']}"
    core = client.CoreV1Api(as_admin)
    with pytest.raises(client.ApiException) as denied:
        core.patch_namespaced_resource_quota("tenantry", quota_ns, {"spec": {"hard": {"requests.cpu": "100"}}})
    assert denied.value.status == 403
    wait_for(lambda: core.read_namespaced_resource_quota("tenantry", quota_ns), message="quota readable")
