"""Tenancy core on the real control plane with the operator running (issue: tenancy core).

Resellers get a control namespace with access for their admins and seeded plans; tenants are
admitted (or refused with a reason and no namespace) and provisioned into an isolated, quota-bound
namespace; lifecycle changes (plan, region, suspension, deletion) behave as DESIGN.md promises.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from kubernetes import client

from support.cluster import wait_for
from support.events import told
from support.platform import Platform, condition


def test_reseller_gets_control_namespace_access_branding_and_seeded_plans(platform: Platform,
                                                                           api_client: client.ApiClient) -> None:
    region = platform.region()
    reseller = platform.reseller(region, admins=[{"kind": "User", "name": "alice@r.example"},
                                                 {"kind": "Group", "name": "r-admins"}])
    ns = platform.wait_namespace(f"reseller-{reseller}")
    assert ns.metadata.labels["app.kubernetes.io/managed-by"] == "tenantry"
    assert ns.metadata.labels["tenantry.dev/reseller"] == reseller
    assert ns.metadata.owner_references[0].kind == "Reseller"

    rbac = client.RbacAuthorizationV1Api(api_client)
    binding = wait_for(lambda: rbac.read_namespaced_role_binding("tenantry-reseller-admins", f"reseller-{reseller}"),
                       message="admins' RoleBinding")
    assert binding.role_ref.name == "tenantry-reseller"
    assert {(s.kind, s.name) for s in binding.subjects} == {("User", "alice@r.example"), ("Group", "r-admins")}
    role = rbac.read_cluster_role(f"tenantry-reseller-{reseller}")
    assert any(r.resource_names == [reseller] for r in role.rules)

    branding = platform.core.read_namespaced_config_map("tenantry-branding", f"reseller-{reseller}")
    assert branding.data["displayName"] == f"{reseller} Cloud"
    assert branding.data["primaryColor"] == "#0a7cff"

    # The platform default plan `trial` (operator configuration) is seeded once...
    wait_for(lambda: platform.get("Plan", "trial", f"reseller-{reseller}"), message="seeded plan trial")
    obj = platform.wait_status("Reseller", reseller, None, lambda o: "trial" in o["status"].get("seededPlans", []),
                               "seededPlans in status")
    assert obj["status"]["licenses"] == {"total": 10, "purchased": 0, "used": 0, "available": 10,
                                         "selfServiceLimit": 100, "purchasedThisMonth": 0}
    assert obj["status"]["namespace"] == f"reseller-{reseller}"
    # ...and never recreated once the reseller deleted it.
    platform.delete("Plan", "trial", f"reseller-{reseller}")
    platform.patch("Reseller", reseller, {"spec": {"licenses": 11}})
    platform.wait_status("Reseller", reseller, None, lambda o: o["status"]["licenses"]["total"] == 11, "licences 11")
    assert platform.get("Plan", "trial", f"reseller-{reseller}") is None


def test_admitted_tenant_is_provisioned_as_the_contract_says(platform: Platform, api_client: client.ApiClient) -> None:
    region, reseller = platform.setup()
    tenant = platform.tenant(reseller, region)
    obj = platform.wait_tenant(reseller, tenant)
    ns_name = f"{reseller}--{tenant}"
    status = obj["status"]
    assert status["phase"] == "Active"
    assert status["namespace"] == ns_name
    assert status["hosts"] == [f"{tenant}.{reseller}-cloud.example"]
    for type_ in ("Admitted", "Provisioned", "Ready"):
        assert condition(obj, type_)["status"] == "True"  # type: ignore[index]
        assert condition(obj, type_)["observedGeneration"] == obj["metadata"]["generation"]  # type: ignore[index]

    ns = platform.namespace(ns_name)
    assert ns is not None
    labels, annotations = ns.metadata.labels, ns.metadata.annotations
    assert labels["tenantry.dev/tenant"] == tenant and labels["tenantry.dev/region"] == region
    assert labels["tenantry.dev/plan"] == "small"
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert annotations["scheduler.alpha.kubernetes.io/node-selector"] == f"pool={region}"
    assert json.loads(annotations["scheduler.alpha.kubernetes.io/defaultTolerations"])[0]["value"] == region

    quota = platform.core.read_namespaced_resource_quota("tenantry", ns_name)
    assert quota.spec.hard == {"requests.cpu": "1", "requests.memory": "1Gi", "requests.storage": "1Gi",
                               "pods": "10", "services.loadbalancers": "0", "services.nodeports": "0"}
    limits = platform.core.read_namespaced_limit_range("tenantry", ns_name)
    assert limits.spec.limits[0].default_request == {"cpu": "100m", "memory": "128Mi"}
    net = client.NetworkingV1Api(api_client)
    policy = net.read_namespaced_network_policy("tenantry-isolation", ns_name)
    sources = policy.spec.ingress[0]._from
    assert sources[0].pod_selector is not None
    assert sources[1].namespace_selector.match_labels == {"kubernetes.io/metadata.name": "ingress-nginx"}
    rbac = client.RbacAuthorizationV1Api(api_client)
    owners = rbac.read_namespaced_role_binding("tenantry-owners", ns_name)
    assert owners.role_ref.name == "tenantry-tenant-owner"
    assert owners.subjects[0].name == f"owner@{tenant}.example"
    support = rbac.read_namespaced_role_binding("tenantry-reseller-support", ns_name)
    assert support.role_ref.name == "tenantry-reseller-support"
    assert support.subjects[0].name == f"admin@{reseller}.example"
    ingress = net.read_namespaced_ingress("tenantry", ns_name)
    assert ingress.spec.ingress_class_name == "nginx"
    assert ingress.spec.rules[0].host == f"{tenant}.{reseller}-cloud.example"
    assert ingress.spec.rules[0].http.paths[0].backend.service.name == "web"
    branding = platform.core.read_namespaced_config_map("tenantry-branding", ns_name)
    assert branding.data["displayName"] == f"{reseller} Cloud"

    # Pods without requests get the plan's defaults; the quota counts them (no scheduler: Pending).
    platform.core.create_namespaced_pod(ns_name, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    pod = platform.core.read_namespaced_pod("p", ns_name)
    assert pod.spec.containers[0].resources.requests == {"cpu": "100m", "memory": "128Mi"}
    assert pod.spec.node_selector == {"pool": region}
    # One Normal Event tells it all (DESIGN §2): Ready, naming Admitted and the other transitions.
    ready = platform.wait_event(f"reseller-{reseller}", tenant, "Ready", "Normal")
    assert "Admitted" in told(ready.message), ready.message


def test_refused_tenant_has_no_namespace_and_is_admitted_once_licences_are_raised(platform: Platform) -> None:
    region, reseller = platform.setup(licenses=1)
    first = platform.tenant(reseller, region)
    platform.wait_tenant(reseller, first)
    second = platform.tenant(reseller, region)
    obj = platform.wait_refused(reseller, second, "LicenseLimitReached")
    assert obj["status"]["phase"] == "Pending"
    assert "spec.licenses" in condition(obj, "Admitted")["message"]  # type: ignore[index]
    assert platform.namespace(f"{reseller}--{second}") is None
    platform.wait_event(f"reseller-{reseller}", second, "LicenseLimitReached", "Warning")

    platform.patch("Reseller", reseller, {"spec": {"licenses": 2}})
    platform.wait_tenant(reseller, second)
    platform.wait_namespace(f"{reseller}--{second}")

    # Losing licences evicts nobody; the over-use is reported. Regaining them clears it.
    platform.patch("Reseller", reseller, {"spec": {"licenses": 0}})
    obj = platform.wait_condition("Reseller", reseller, None, "LicensesOverused", "True")
    assert obj["status"]["licenses"] == {"total": 0, "purchased": 0, "used": 2, "available": 0,
                                         "selfServiceLimit": 100, "purchasedThisMonth": 0}
    for name in (first, second):
        assert condition(platform.tenant_obj(reseller, name), "Ready")["status"] == "True"  # type: ignore[index]
    third = platform.tenant(reseller, region)
    platform.wait_refused(reseller, third, "LicenseLimitReached")
    platform.patch("Reseller", reseller, {"spec": {"licenses": 3}})
    platform.wait_condition("Reseller", reseller, None, "LicensesOverused", "False")
    platform.wait_tenant(reseller, third)


def test_racing_tenants_for_the_last_licences_exactly_as_many_as_fit(platform: Platform) -> None:
    region, reseller = platform.setup(licenses=3)
    names = [platform.unique_name("race", max_length=40) for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: platform.tenant(reseller, region, n), names))

    def settled() -> list[str] | None:
        objs = [platform.tenant_obj(reseller, n) for n in names]
        admitted = [o["metadata"]["name"] for o in objs if condition(o, "Admitted") and
                    condition(o, "Admitted")["status"] == "True"]  # type: ignore[index]
        refused = [o for o in objs if condition(o, "Admitted") and condition(o, "Admitted")["status"] == "False"]
        return admitted if len(admitted) + len(refused) == len(names) else None

    admitted = wait_for(settled, 60, message="all racing tenants decided")
    assert len(admitted) == 3
    # Ties go to the older creationTimestamp, then the name.
    objs = sorted((platform.tenant_obj(reseller, n) for n in names),
                  key=lambda o: (o["metadata"]["creationTimestamp"], o["metadata"]["name"]))  # type: ignore[index]
    assert sorted(admitted) == sorted(o["metadata"]["name"] for o in objs[:3])  # type: ignore[index]
    platform.wait_status("Reseller", reseller, None, lambda o: o["status"]["licenses"]["used"] == 3, "used 3")

    # A freed licence goes to exactly one waiting tenant: the oldest.
    platform.delete("Tenant", admitted[0], f"reseller-{reseller}")
    wait_for(lambda: platform.tenant_obj(reseller, admitted[0]) is None, 60, message="tenant deleted")
    next_in_line = objs[3]["metadata"]["name"]  # type: ignore[index]
    platform.wait_tenant(reseller, next_in_line, timeout=60)
    still_waiting = [o["metadata"]["name"] for o in objs[4:]]  # type: ignore[index]
    assert all(condition(platform.tenant_obj(reseller, n), "Admitted")["status"] == "False"  # type: ignore[index]
               for n in still_waiting)


def test_each_refusal_reason_is_reported(platform: Platform) -> None:
    region, reseller = platform.setup(allotment={"cpu": "1500m", "memory": "64Gi", "storage": "500Gi", "pods": "400"})
    ns = f"reseller-{reseller}"
    cases = {
        "UnknownRegion": platform.tenant(reseller, "nowhere"),
        "UnknownPlan": platform.tenant(reseller, region, plan="gold"),
        "DuplicateEmail": platform.tenant(reseller, region, email=f"billing@{reseller}.example"),
        "TooManyDomains": platform.tenant(reseller, region, domains=[{"host": "www.shop-a.example"}]),
    }
    big = platform.tenant(reseller, region)
    platform.wait_tenant(reseller, big)
    cases["InsufficientCapacity"] = platform.tenant(reseller, region)
    for reason, name in cases.items():
        obj = platform.wait_refused(reseller, name, reason)
        message = condition(obj, "Admitted")["message"]  # type: ignore[index]
        assert message.endswith("."), message
        assert platform.namespace(f"{reseller}--{name}") is None
        platform.wait_event(ns, name, reason)

    platform.patch("Reseller", reseller, {"spec": {"active": False}})
    inactive = platform.tenant(reseller, region)
    platform.wait_refused(reseller, inactive, "ResellerInactive")
    assert condition(platform.tenant_obj(reseller, big), "Ready")["status"] == "True"  # type: ignore[index]
    platform.patch("Reseller", reseller, {"spec": {"active": True}})
    platform.wait_refused(reseller, inactive, "InsufficientCapacity")  # decided again: now capacity is short

    # A plan created later admits the tenant that asked for it.
    platform.plan(reseller, "gold", quota={"cpu": "100m", "memory": "1Gi", "storage": "1Gi", "pods": "1"})
    platform.wait_tenant(reseller, cases["UnknownPlan"])


def test_plan_changes_are_admitted_for_the_difference_or_refused_keeping_the_quota(platform: Platform) -> None:
    region, reseller = platform.setup(allotment={"cpu": "4", "memory": "64Gi", "storage": "500Gi", "pods": "400"})
    platform.plan(reseller, "big", quota={"cpu": "3", "memory": "2Gi", "storage": "1Gi", "pods": "10"})
    a, b = platform.tenant(reseller, region), platform.tenant(reseller, region)
    platform.wait_tenant(reseller, a)
    platform.wait_tenant(reseller, b)
    ns = f"reseller-{reseller}"

    platform.patch("Tenant", a, {"spec": {"plan": "big"}}, ns)  # 3 + 1 = 4: fits
    platform.wait_status("Tenant", a, ns, lambda o: o["status"]["admission"]["plan"] == "big", "upgrade admitted")
    wait_for(lambda: platform.core.read_namespaced_resource_quota("tenantry", f"{reseller}--{a}")
             .spec.hard["requests.cpu"] == "3", message="quota resized")

    platform.patch("Tenant", b, {"spec": {"plan": "big"}}, ns)  # 3 + 3 > 4: refused
    obj = platform.wait_tenant(reseller, b, ready=False, reason="InsufficientCapacity")
    assert obj["status"]["admission"]["plan"] == "small"
    assert "is kept" in condition(obj, "Ready")["message"]  # type: ignore[index]
    assert platform.core.read_namespaced_resource_quota("tenantry", f"{reseller}--{b}").spec.hard["requests.cpu"] == "1"

    platform.patch("Tenant", b, {"spec": {"plan": "small"}}, ns)  # back to what it has: Ready again
    platform.wait_tenant(reseller, b)

    # Editing a plan flows to its tenants: small shrinks from 1 cpu to 500m (a shrink always fits).
    platform.patch("Plan", "small", {"spec": {"quota": {"cpu": "500m"}}}, ns)
    wait_for(lambda: platform.core.read_namespaced_resource_quota("tenantry", f"{reseller}--{b}")
             .spec.hard["requests.cpu"] == "500m", message="plan edit reached the tenant")

    # A region never changes after admission.
    platform.patch("Tenant", a, {"spec": {"region": "elsewhere"}}, ns)
    obj = platform.wait_tenant(reseller, a, ready=False, reason="RegionChangeRefused")
    assert obj["status"]["admission"]["region"] == region


def test_suspension_scales_to_zero_unroutes_and_keeps_the_licence(platform: Platform,
                                                                   api_client: client.ApiClient) -> None:
    region, reseller = platform.setup()
    tenant = platform.tenant(reseller, region)
    platform.wait_tenant(reseller, tenant)
    ns_name, ns = f"{reseller}--{tenant}", f"reseller-{reseller}"
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(ns_name, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})

    platform.patch("Tenant", tenant, {"spec": {"active": False}}, ns)
    obj = platform.wait_status("Tenant", tenant, ns, lambda o: o["status"].get("phase") == "Suspended", "Suspended")
    assert obj["status"]["hosts"] == []
    deployment = apps.read_namespaced_deployment("web", ns_name)
    assert deployment.spec.replicas == 0
    assert deployment.metadata.annotations["tenantry.dev/suspended-replicas"] == "2"
    net = client.NetworkingV1Api(api_client)
    wait_for(lambda: not net.list_namespaced_ingress(ns_name).items, message="ingress removed")
    assert platform.core.read_namespaced_resource_quota("tenantry", ns_name).spec.hard["pods"] == "0"
    platform.wait_status("Reseller", reseller, None, lambda o: o["status"]["licenses"]["used"] == 1,
                         "the suspended tenant keeps its licence")

    platform.patch("Tenant", tenant, {"spec": {"active": True}}, ns)
    platform.wait_status("Tenant", tenant, ns, lambda o: o["status"].get("phase") == "Active", "Active again")
    wait_for(lambda: apps.read_namespaced_deployment("web", ns_name).spec.replicas == 2, message="replicas back")
    wait_for(lambda: net.list_namespaced_ingress(ns_name).items, message="ingress back")


def test_deletion_policies_delete_or_retain_and_free_the_licence(platform: Platform,
                                                                  api_client: client.ApiClient) -> None:
    region, reseller = platform.setup(licenses=2)
    ns = f"reseller-{reseller}"
    gone, kept = platform.tenant(reseller, region), platform.tenant(reseller, region, deletionPolicy="Retain")
    platform.wait_tenant(reseller, gone)
    platform.wait_tenant(reseller, kept)
    platform.core.create_namespaced_config_map(f"{reseller}--{kept}", {"metadata": {"name": "data"},
                                                                         "data": {"k": "v"}})
    waiting = platform.tenant(reseller, region)
    platform.wait_refused(reseller, waiting, "LicenseLimitReached")

    platform.delete("Tenant", gone, ns)
    wait_for(lambda: platform.tenant_obj(reseller, gone) is None, 60, message="tenant gone")
    wait_for(lambda: (n := platform.namespace(f"{reseller}--{gone}")) is None or n.status.phase == "Terminating",
             60, message="namespace deleted")
    platform.wait_tenant(reseller, waiting, timeout=60)  # the freed licence is taken

    platform.delete("Tenant", kept, ns)
    wait_for(lambda: platform.tenant_obj(reseller, kept) is None, 60, message="retained tenant gone")
    ns_obj = platform.namespace(f"{reseller}--{kept}")
    assert ns_obj is not None and ns_obj.status.phase == "Active"
    assert not any(k.startswith("tenantry.dev/") or k == "app.kubernetes.io/managed-by"
                   for k in ns_obj.metadata.labels or {})
    assert platform.core.read_namespaced_config_map("data", f"{reseller}--{kept}").data == {"k": "v"}
    rbac = client.RbacAuthorizationV1Api(api_client)
    assert not rbac.list_namespaced_role_binding(f"{reseller}--{kept}").items
    # Its quotas stay, unlabelled, so the retained workloads stay contained (priority classes too).
    quotas = {q.metadata.name: q.metadata.labels or {}
              for q in platform.core.list_namespaced_resource_quota(f"{reseller}--{kept}").items}
    assert set(quotas) == {"tenantry", "tenantry-priority"}
    assert not [k for labels in quotas.values() for k in labels if k.startswith("tenantry.dev/")]
    platform.core.delete_namespace(f"{reseller}--{kept}")


def test_deleting_a_reseller_removes_its_tenants_by_their_policies(platform: Platform) -> None:
    region, reseller = platform.setup()
    tenants = [platform.tenant(reseller, region) for _ in range(2)]
    for t in tenants:
        platform.wait_tenant(reseller, t)
    platform.delete("Reseller", reseller)
    for t in tenants:
        wait_for(lambda t=t: (n := platform.namespace(f"{reseller}--{t}")) is None or n.status.phase == "Terminating",
                 90, message=f"tenant namespace of {t} deleted")
    wait_for(lambda: platform.namespace(f"reseller-{reseller}") is None, 90, message="control namespace gone")


def test_drift_is_corrected(platform: Platform, api_client: client.ApiClient) -> None:
    region, reseller = platform.setup()
    tenant = platform.tenant(reseller, region)
    platform.wait_tenant(reseller, tenant)
    ns_name = f"{reseller}--{tenant}"
    net = client.NetworkingV1Api(api_client)
    net.delete_namespaced_network_policy("tenantry-isolation", ns_name)
    platform.core.patch_namespaced_resource_quota("tenantry", ns_name, {"spec": {"hard": {"requests.cpu": "64"}}})
    wait_for(lambda: net.read_namespaced_network_policy("tenantry-isolation", ns_name), 20,
             message="network policy recreated")
    wait_for(lambda: platform.core.read_namespaced_resource_quota("tenantry", ns_name).spec.hard["requests.cpu"] == "1",
             20, message="quota edit reverted")


def test_region_status_and_changes_flow_to_tenants(platform: Platform) -> None:
    region = platform.region(capacity={"cpu": "10", "memory": "256Gi", "storage": "2Ti", "pods": "2000"})
    a = platform.reseller(region, allotment={"cpu": "6", "memory": "8Gi", "storage": "10Gi", "pods": "10"})
    platform.reseller(region, allotment={"cpu": "6", "memory": "8Gi", "storage": "10Gi", "pods": "10"})
    obj = platform.wait_condition("Region", region, None, "Overcommitted", "True")
    assert obj["status"]["allocated"]["cpu"] == "12"
    assert obj["status"]["resellers"] == 2
    assert "cpu 12 > 10" in condition(obj, "Overcommitted")["message"]  # type: ignore[index]

    platform.wait_namespace(f"reseller-{a}")
    platform.plan(a)
    tenant = platform.tenant(a, region)
    platform.wait_tenant(a, tenant)
    platform.wait_status("Region", region, None, lambda o: o["status"].get("tenants") == 1, "region counts tenant")
    platform.patch("Region", region, {"spec": {"nodePool": {"nodeSelector": {"pool": "moved"}}}})
    wait_for(lambda: platform.namespace(f"{a}--{tenant}").metadata.annotations[  # type: ignore[union-attr]
        "scheduler.alpha.kubernetes.io/node-selector"] == "pool=moved", message="node selector follows the region")


def test_a_reseller_cannot_take_another_resellers_domain(platform: Platform, api_client: client.ApiClient) -> None:
    region = platform.region()
    first = platform.reseller(region)
    platform.wait_namespace(f"reseller-{first}")
    platform.plan(first)
    victim = platform.tenant(first, region, "shop")
    platform.wait_tenant(first, victim)
    # A later reseller claims a domain nested under the first one's: refused for routing.
    platform.wait_younger_than("Reseller", first)
    second = platform.reseller(region, regions=[{"name": region, "domain": f"eu.{first}-cloud.example",
                                                 "allotment": {"cpu": "4", "memory": "8Gi", "storage": "10Gi",
                                                               "pods": "40"}}])
    obj = platform.wait_condition("Reseller", second, None, "Ready", "False", "DomainConflict")
    assert first in condition(obj, "Ready")["message"]  # type: ignore[index]
    platform.wait_namespace(f"reseller-{second}")
    platform.plan(second)
    intruder = platform.tenant(second, region, "shop")
    obj = platform.wait_status("Tenant", intruder, f"reseller-{second}",
                               lambda o: o["status"].get("phase") == "Active", "intruder provisioned")
    assert obj["status"]["hosts"] == []
    net = client.NetworkingV1Api(api_client)
    assert not net.list_namespaced_ingress(f"{second}--{intruder}").items
    # The first reseller's tenant is untouched.
    ingress = net.read_namespaced_ingress("tenantry", f"{first}--{victim}")
    assert ingress.spec.rules[0].host == f"shop.{first}-cloud.example"


def test_an_older_reseller_cannot_take_a_domain_in_service_by_changing_its_own(platform: Platform,
                                                                               api_client: client.ApiClient) -> None:
    region = platform.region()
    older = platform.reseller(region)
    platform.wait_younger_than("Reseller", older)
    younger = platform.reseller(region)
    for reseller in (older, younger):
        platform.wait_condition("Reseller", reseller, None, "Ready", "True")
    platform.plan(younger)
    live = platform.tenant(younger, region, "shop")
    platform.wait_tenant(younger, live)
    # The older reseller moves its region's domain under the younger one's, which serves a tenant.
    platform.patch("Reseller", older, {"spec": {"regions": [{
        "name": region, "domain": f"eu.{younger}-cloud.example", "tls": {"mode": "SelfSigned"},
        "allotment": {"cpu": "16", "memory": "64Gi", "storage": "500Gi", "pods": "400"}}]}})
    obj = platform.wait_condition("Reseller", older, None, "Ready", "False", "DomainConflict")
    assert younger in condition(obj, "Ready")["message"]  # type: ignore[index]
    # The domain in service stays where it is: the younger reseller and its tenant are untouched.
    assert condition(platform.get("Reseller", younger), "Ready")["status"] == "True"  # type: ignore[arg-type,index]
    ingress = client.NetworkingV1Api(api_client).read_namespaced_ingress("tenantry", f"{younger}--{live}")
    assert ingress.spec.rules[0].host == f"shop.{younger}-cloud.example"
    assert condition(platform.tenant_obj(younger, live), "Ready")["status"] == "True"  # type: ignore[index]


def test_a_deleted_region_or_plan_never_strips_a_running_tenant(platform: Platform) -> None:
    region, reseller = platform.setup()
    tenant = platform.tenant(reseller, region)
    platform.wait_tenant(reseller, tenant)
    ns_name = f"{reseller}--{tenant}"
    before = platform.namespace(ns_name).metadata.annotations  # type: ignore[union-attr]
    limits_before = platform.core.read_namespaced_limit_range("tenantry", ns_name).spec.limits[0].default_request

    platform.delete("Plan", "small", f"reseller-{reseller}")
    obj = platform.wait_tenant(reseller, tenant, ready=False, reason="KeptAsProvisioned")
    assert "Plan small" in condition(obj, "Ready")["message"]  # type: ignore[index]
    platform.delete("Region", region)
    platform.wait_status("Tenant", tenant, f"reseller-{reseller}",
                         lambda o: f"Region {region}" in condition(o, "Ready")["message"],  # type: ignore[index]
                         "the missing region is reported")
    assert platform.namespace(ns_name).metadata.annotations == before  # type: ignore[union-attr]
    assert platform.core.read_namespaced_limit_range("tenantry", ns_name).spec.limits[0].default_request \
        == limits_before

    platform.region(region)
    platform.plan(reseller)
    platform.wait_tenant(reseller, tenant)
