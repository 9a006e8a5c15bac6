"""A tenant namespace that already exists and was not made for this Tenant is never provisioned into.

`<reseller>--<tenant>` is reused whenever a reseller signs up a customer under a former customer's name:
the namespace retained from the first Tenant (`deletionPolicy: Retain`) holds the former customer's data,
and anybody allowed to create namespaces may have made one of that name outside Tenantry. The operator
provisions only into a namespace it made for this very Tenant object (it stamps the Tenant's UID on it,
annotation `tenantry.dev/tenant-uid`); any other stays untouched, the tenant reports `NamespaceTaken`, and
provisions by itself once that namespace is gone. Namespaces an earlier version made for a live Tenant
(labelled, without the UID) are adopted and stamped.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client

from support.cluster import wait_for
from support.events import told
from support.platform import Platform, condition

TENANT_UID = "tenantry.dev/tenant-uid"


def _made_by_tenantry(api: client.ApiClient, namespace: str) -> list[str]:
    """What Tenantry (or anyone) put in the namespace that provisioning would put there."""
    core, rbac, net = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api), client.NetworkingV1Api(api)
    found = [f"ResourceQuota {q.metadata.name}" for q in core.list_namespaced_resource_quota(namespace).items]
    found += [f"LimitRange {x.metadata.name}" for x in core.list_namespaced_limit_range(namespace).items]
    found += [f"RoleBinding {b.metadata.name}" for b in rbac.list_namespaced_role_binding(namespace).items]
    found += [f"NetworkPolicy {p.metadata.name}" for p in net.list_namespaced_network_policy(namespace).items]
    found += [f"Ingress {i.metadata.name}" for i in net.list_namespaced_ingress(namespace).items]
    found += [f"ConfigMap {c.metadata.name}" for c in core.list_namespaced_config_map(namespace).items
              if c.metadata.name != "kube-root-ca.crt"]
    return found


def _assert_taken(platform: Platform, reseller: str, name: str) -> dict[str, Any]:
    """The tenant says NamespaceTaken (Provisioned and Ready), keeps its admission, and gets a Warning."""
    namespace = f"{reseller}--{name}"
    obj = platform.wait_tenant(reseller, name, ready=False, reason="NamespaceTaken", timeout=60)
    admitted, provisioned, ready = (condition(obj, t) for t in ("Admitted", "Provisioned", "Ready"))
    assert admitted is not None and admitted["status"] == "True"  # the licence decision stands
    assert provisioned is not None and (provisioned["status"], provisioned["reason"]) == ("False", "NamespaceTaken")
    assert ready is not None
    message = ready["message"]
    assert f"Namespace {namespace} already exists and was not made for this tenant" in message
    assert "Delete that namespace" in message and "another name" in message
    assert obj["status"]["phase"] == "Pending"
    assert not obj["status"].get("hosts")
    platform.wait_event(f"reseller-{reseller}", name, "NamespaceTaken", "Warning")
    # Admitted all the same, and told so beside the Warning: the status write's one Normal Event (DESIGN §2).
    platform.wait_event(f"reseller-{reseller}", name, "Admitted", "Normal")
    return obj


def _wait_strictly_younger(platform: Platform, namespace: str) -> None:
    """creationTimestamp has a resolution of one second: the Tenant made next must be strictly younger."""
    ns = platform.namespace(namespace)
    assert ns is not None
    created: datetime.datetime = ns.metadata.creation_timestamp
    wait = (created + datetime.timedelta(seconds=1.05) - datetime.datetime.now(datetime.UTC)).total_seconds()
    if wait > 0:
        time.sleep(wait)  # a clock's resolution, not synchronisation


def test_a_namespace_made_outside_tenantry_is_left_alone_until_it_is_deleted(
        platform: Platform, api_client: client.ApiClient, can_i: Callable[..., bool]) -> None:
    region, reseller = platform.setup()
    name = platform.unique_name("tn", max_length=40)
    namespace, owner = f"{reseller}--{name}", f"owner@{name}.example"
    platform.core.create_namespace({"metadata": {"name": namespace, "labels": {"team": "someone-else"}}})
    platform.core.create_namespaced_secret(namespace, {"metadata": {"name": "private"},
                                                       "stringData": {"password": "not-yours"}})
    before = platform.namespace(namespace)
    assert before is not None

    platform.tenant(reseller, region, name)
    _assert_taken(platform, reseller, name)
    # Its licence is taken all the same: the decision is the reseller's, the namespace only waits.
    platform.wait_status("Reseller", reseller, None, lambda o: o["status"]["licenses"]["used"] == 1,
                         "the tenant's licence counted")
    after = platform.namespace(namespace)
    assert after is not None
    assert after.metadata.labels == before.metadata.labels
    assert after.metadata.annotations == before.metadata.annotations
    assert _made_by_tenantry(api_client, namespace) == []
    assert not can_i(owner, [], "get", "secrets", namespace)
    assert not can_i(f"admin@{reseller}.example", [], "get", "pods", namespace)

    # Once the namespace is gone, the tenant is provisioned by itself, into a namespace of its own.
    platform.core.delete_namespace(namespace)
    obj = platform.wait_tenant(reseller, name, timeout=120)
    assert condition(obj, "Provisioned")["reason"] == "Provisioned"  # type: ignore[index]
    made = platform.namespace(namespace)
    assert made is not None and made.metadata.annotations[TENANT_UID] == obj["metadata"]["uid"]
    assert "team" not in (made.metadata.labels or {})
    # Its readiness is told in one more Normal Event; its admission, told already, is not told again.
    ready = platform.wait_event(f"reseller-{reseller}", name, "Ready", "Normal")
    assert "Admitted" not in told(ready.message), ready.message
    normal = [e for e in platform.events_for(f"reseller-{reseller}", name) if e.type == "Normal"]
    assert sorted(e.reason for e in normal) == ["Admitted", "Ready"], [(e.reason, e.message) for e in normal]
    wait_for(lambda: can_i(owner, [], "get", "secrets", namespace), 30, message="the owner's access")
    assert platform.core.list_namespaced_secret(namespace, field_selector="metadata.name=private").items == []


def test_a_retained_namespace_goes_to_no_new_tenant_and_survives_its_deletion(
        platform: Platform, api_client: client.ApiClient, can_i: Callable[..., bool]) -> None:
    region, reseller = platform.setup()
    control = f"reseller-{reseller}"
    name = platform.tenant(reseller, region, deletionPolicy="Retain")
    namespace = f"{reseller}--{name}"
    former = platform.wait_tenant(reseller, name)
    platform.core.create_namespaced_secret(namespace, {"metadata": {"name": "customer-db"},
                                                       "stringData": {"password": "former-customer"}})
    platform.delete("Tenant", name, control)
    wait_for(lambda: platform.tenant_obj(reseller, name) is None, 60, message="the former tenant gone")

    newcomer = f"new-owner@{name}.example"
    platform.tenant(reseller, region, name, owners=[{"kind": "User", "name": newcomer}], deletionPolicy="Delete")
    obj = _assert_taken(platform, reseller, name)
    assert obj["metadata"]["uid"] != former["metadata"]["uid"]
    assert "retained from an earlier tenant" in condition(obj, "Ready")["message"]  # type: ignore[index]
    assert not can_i(newcomer, [], "get", "secrets", namespace)
    assert not [x for x in _made_by_tenantry(api_client, namespace)
                if x.startswith(("RoleBinding", "Ingress", "ConfigMap"))]

    # The newcomer's `deletionPolicy: Delete` is about a namespace of its own: the retained one stays.
    platform.delete("Tenant", name, control)
    wait_for(lambda: platform.tenant_obj(reseller, name) is None, 60, message="the new tenant gone")
    kept = platform.namespace(namespace)
    assert kept is not None and kept.status.phase == "Active" and kept.metadata.deletion_timestamp is None
    assert platform.core.read_namespaced_secret("customer-db", namespace).data
    platform.core.delete_namespace(namespace)


def test_a_labelled_namespace_older_than_the_tenant_is_not_adopted(platform: Platform,
                                                                   api_client: client.ApiClient) -> None:
    """Labels anyone allowed to create namespaces can write (or a namespace a Tenant left behind when its
    finalizer was removed by hand) do not make a namespace the new Tenant's."""
    region, reseller = platform.setup()
    name = platform.unique_name("tn", max_length=40)
    namespace = f"{reseller}--{name}"
    labels = {"app.kubernetes.io/managed-by": "tenantry", "tenantry.dev/reseller": reseller,
              "tenantry.dev/tenant": name}
    platform.core.create_namespace({"metadata": {"name": namespace, "labels": labels}})
    before = platform.namespace(namespace)
    assert before is not None
    _wait_strictly_younger(platform, namespace)
    platform.tenant(reseller, region, name)
    _assert_taken(platform, reseller, name)
    live = platform.namespace(namespace)
    assert live is not None and live.metadata.labels == before.metadata.labels
    assert TENANT_UID not in (live.metadata.annotations or {})
    assert _made_by_tenantry(api_client, namespace) == []
    platform.core.delete_namespace(namespace)
    platform.wait_tenant(reseller, name, timeout=120)


def test_a_namespace_provisioned_before_tenant_uids_is_adopted_and_stamped(platform: Platform) -> None:
    """Upgrade path: a previous version stamped no UID; its namespaces of live Tenants keep their labels."""
    region, reseller = platform.setup()
    name = platform.tenant(reseller, region)
    obj = platform.wait_tenant(reseller, name)
    namespace = f"{reseller}--{name}"
    uid = obj["metadata"]["uid"]
    wait_for(lambda: (platform.namespace(namespace).metadata.annotations or {}).get(TENANT_UID) == uid,  # type: ignore[union-attr]
             30, message="the Tenant's UID on its namespace")
    # What the previous version left: everything but the UID.
    platform.core.patch_namespace(namespace, {"metadata": {"annotations": {TENANT_UID: None}}})
    wait_for(lambda: (platform.namespace(namespace).metadata.annotations or {}).get(TENANT_UID) == uid,  # type: ignore[union-attr]
             30, message="the namespace adopted and stamped with the Tenant's UID")
    obj = platform.wait_tenant(reseller, name)
    assert condition(obj, "Provisioned")["reason"] == "Provisioned"  # type: ignore[index]


def test_a_suspended_tenant_leaves_the_ingresses_of_a_namespace_made_outside_tenantry_alone(
        platform: Platform, api_client: client.ApiClient) -> None:
    """A Tenant made suspended parks its own Ingresses; in a namespace of its name that is not its own, the
    operator must not even look for them (the namespace is found taken first, whatever the tenant's state)."""
    region, reseller = platform.setup()
    name = platform.unique_name("tn", max_length=40)
    namespace = f"{reseller}--{name}"
    platform.core.create_namespace({"metadata": {"name": namespace, "labels": {"team": "someone-else"}}})
    networking = client.NetworkingV1Api(api_client)
    networking.create_namespaced_ingress(namespace, {
        "metadata": {"name": "shop"},
        "spec": {"ingressClassName": "their-class", "rules": [{"host": f"{name}.someone-else.example"}]}})
    before = networking.read_namespaced_ingress("shop", namespace)

    platform.tenant(reseller, region, name, active=False)
    _assert_taken(platform, reseller, name)
    after = networking.read_namespaced_ingress("shop", namespace)
    assert after.metadata.resource_version == before.metadata.resource_version
    assert after.spec.ingress_class_name == "their-class"
    assert _made_by_tenantry(api_client, namespace) == ["Ingress shop"]
