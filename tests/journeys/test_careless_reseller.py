"""Journey 5: what a careless reseller meets.

It names every authenticated user (or another tenant's ServiceAccount) as a tenant's owner, claims a
host the platform already serves from its own namespace, and signs up one customer more than it has
licences for. Each is refused with a reason it reads with kubectl (the Tenant's conditions, an Event
with the same reason, `kubectl describe`), nothing is granted or routed, and the refused tenant is
admitted by itself once the blocker is gone.

Refusals that are certain may also be denied at `kubectl apply` by the admission webhook (DESIGN §3);
then kubectl's error must name what is wrong. Either way the reseller is told, and nothing is made.
"""

from __future__ import annotations

from typing import Any

import pytest
from journey_support import (
    Stage,
    condition_is,
    conditions,
    gone,
    metric_value,
    owner_of,
    plan_doc,
    region_doc,
    tenant_doc,
    unique_name,
    wait_condition,
    wait_event,
    wait_object,
)

from support.cluster import wait_for
from support.kubectl import Kubectl
from support.operator import OperatorProcess


@pytest.fixture(scope="module")
def careless(stage: Stage) -> dict[str, Any]:
    region = unique_name("loose", max_length=30)
    reseller = unique_name("hasty", max_length=20)
    alice = stage.open_reseller(region_doc(region, verification="None"), reseller, licenses=5)
    alice.apply(plan_doc(reseller, "web", custom_domains=1))
    # A well-behaved customer whose ServiceAccount the careless reseller will name elsewhere.
    neighbour = unique_name("neighbour", max_length=40)
    alice.apply(tenant_doc(reseller, neighbour, region, "web", owners=[{"kind": "User", "name": owner_of(neighbour)}]))
    wait_condition(alice, "Ready", "True", None, "tenant", neighbour, "-n", f"reseller-{reseller}")
    return {"region": region, "reseller": reseller, "alice": alice, "neighbour": neighbour}


def refused(kubectl: Kubectl, doc: dict[str, Any], reason: str, names: str) -> dict[str, Any] | None:
    """Applies `doc`; it is either denied by kubectl with an error naming `names`, or accepted and
    then refused with Admitted=False `reason`, an Event with that reason, and `kubectl describe`
    showing it. Returns the refused Tenant (None when denied at apply)."""
    result = kubectl.apply(doc, check=False)
    name, namespace = doc["metadata"]["name"], doc["metadata"]["namespace"]
    if result.returncode != 0:
        assert names in result.stderr, f"kubectl apply was denied without naming {names!r}: {result.stderr}"
        assert gone(kubectl, "tenant", name, "-n", namespace)
        return None
    obj = wait_condition(kubectl, "Admitted", "False", reason, "tenant", name, "-n", namespace)
    message = conditions(obj)["Admitted"]["message"]
    assert names in message, f"the {reason} message does not say what is wrong: {message}"
    event = wait_event(kubectl, namespace, name, reason, "Warning")
    assert names in event["message"], event["message"]
    assert reason in kubectl.describe("tenant", name, "-n", namespace)
    return obj


SYSTEM_SUBJECTS = [
    {"kind": "Group", "name": "system:authenticated"},  # every user and every ServiceAccount
    {"kind": "Group", "name": "system:serviceaccounts"},  # every workload of the cluster
    {"kind": "User", "name": "system:serviceaccount:kube-system:replicaset-controller"},  # an SA written as a User
    {"kind": "User", "name": "system:kube-controller-manager"},
]


def test_an_owner_naming_every_authenticated_user_is_refused(careless: dict[str, Any], stage: Stage) -> None:
    reseller, region, alice = careless["reseller"], careless["region"], careless["alice"]
    for subject in SYSTEM_SUBJECTS[1:]:
        other = unique_name("system", max_length=40)
        refused(alice, tenant_doc(reseller, other, region, "web", owners=[subject]), "InvalidOwner", subject["name"])
        assert gone(stage.platform_admin, "namespace", f"{reseller}--{other}")
    tenant = unique_name("open-door", max_length=40)
    doc = tenant_doc(reseller, tenant, region, "web", owners=[SYSTEM_SUBJECTS[0]])
    refused(alice, doc, "InvalidOwner", "system:authenticated")
    namespace = f"{reseller}--{tenant}"
    assert gone(stage.platform_admin, "namespace", namespace)
    # Nothing was granted: any user, and any other tenant's workload, is still a stranger there.
    anybody = stage.kubectl.as_user("mallory@example.com", "system:authenticated")
    assert not anybody.can_i("get", "secrets", "-n", namespace)
    assert not anybody.can_i("create", "pods", "-n", namespace)
    # The reseller fixes the owner: admitted by itself.
    alice.apply(tenant_doc(reseller, tenant, region, "web", owners=[{"kind": "User", "name": owner_of(tenant)}]))
    wait_condition(alice, "Ready", "True", None, "tenant", tenant, "-n", f"reseller-{reseller}")
    assert not anybody.can_i("get", "secrets", "-n", namespace)


def test_another_tenants_service_account_as_owner_is_refused(careless: dict[str, Any], stage: Stage) -> None:
    reseller, region, alice = careless["reseller"], careless["region"], careless["alice"]
    neighbour_ns = f"{reseller}--{careless['neighbour']}"
    tenant = unique_name("borrowed", max_length=40)
    doc = tenant_doc(reseller, tenant, region, "web",
                     owners=[{"kind": "ServiceAccount", "name": "default", "namespace": neighbour_ns}])
    refused(alice, doc, "InvalidOwner", neighbour_ns)
    assert gone(stage.platform_admin, "namespace", f"{reseller}--{tenant}")
    # The neighbour's workloads got nothing.
    workload = stage.kubectl.as_user(f"system:serviceaccount:{neighbour_ns}:default",
                                     "system:serviceaccounts", f"system:serviceaccounts:{neighbour_ns}")
    assert not workload.can_i("get", "secrets", "-n", f"{reseller}--{tenant}")
    # An admitted tenant whose owners are changed to a system group keeps its namespace, and the
    # group is granted nothing there.
    victim = careless["neighbour"]
    result = alice.run("patch", "tenant", victim, "-n", f"reseller-{reseller}", "--type=merge", "-p",
                       '{"spec":{"owners":[{"kind":"Group","name":"system:serviceaccounts"}]}}', check=False)
    anybody = stage.kubectl.as_user("system:serviceaccount:kube-system:default", "system:serviceaccounts")
    if result.returncode == 0:
        wait_condition(alice, "Ready", "False", "InvalidOwner", "tenant", victim, "-n", f"reseller-{reseller}")
    else:
        assert "system:serviceaccounts" in result.stderr, result.stderr
    assert not anybody.can_i("get", "secrets", "-n", neighbour_ns)
    assert stage.platform_admin.run("get", "namespace", neighbour_ns, check=False).returncode == 0
    alice.run("patch", "tenant", victim, "-n", f"reseller-{reseller}", "--type=merge", "-p",
              f'{{"spec":{{"owners":[{{"kind":"User","name":"{owner_of(victim)}"}}]}}}}')
    wait_condition(alice, "Ready", "True", None, "tenant", victim, "-n", f"reseller-{reseller}")


def test_a_host_the_platform_serves_from_another_namespace_cannot_be_taken(careless: dict[str, Any],
                                                                           stage: Stage) -> None:
    reseller, region, alice = careless["reseller"], careless["region"], careless["alice"]
    platform = stage.platform_admin
    monitoring = unique_name("monitoring")
    host = f"grafana.{unique_name('platform')}.example"
    # The platform's own Grafana, behind an Ingress Tenantry knows nothing about.
    stage.apply_as_platform({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": monitoring}})
    platform.apply({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                    "metadata": {"name": "grafana", "namespace": monitoring},
                    "spec": {"ingressClassName": "nginx", "rules": [{"host": host, "http": {"paths": [{
                        "path": "/", "pathType": "Prefix",
                        "backend": {"service": {"name": "grafana", "port": {"number": 80}}}}]}}]}})

    tenant = unique_name("phisher", max_length=40)
    refused(alice, tenant_doc(reseller, tenant, region, "web", domains=[{"host": host}]), "HostConflict", monitoring)
    assert gone(platform, "namespace", f"{reseller}--{tenant}")

    # An admitted tenant that adds the host keeps running, and is not routed on it.
    neighbour = careless["neighbour"]
    alice.run("patch", "tenant", neighbour, "-n", f"reseller-{reseller}", "--type=merge", "-p",
              f'{{"spec":{{"domains":[{{"host":"{host}"}}]}}}}')
    obj = wait_condition(alice, "Ready", "False", "HostConflict", "tenant", neighbour, "-n", f"reseller-{reseller}")
    assert condition_is(obj, "Admitted", "True")
    assert host not in obj["status"]["hosts"]
    assert monitoring in conditions(obj)["Ready"]["message"], conditions(obj)["Ready"]["message"]
    ingress = alice.get_json("ingress", "tenantry", "-n", f"{reseller}--{neighbour}")
    assert host not in {rule["host"] for rule in ingress["spec"]["rules"]}
    alice.run("patch", "tenant", neighbour, "-n", f"reseller-{reseller}", "--type=merge", "-p",
              '{"spec":{"domains":[]}}')
    wait_condition(alice, "Ready", "True", None, "tenant", neighbour, "-n", f"reseller-{reseller}")

    # The platform moves Grafana elsewhere: the waiting tenant is admitted by itself, with the host.
    platform.run("delete", "ingress", "grafana", "-n", monitoring)
    obj = wait_condition(alice, "Ready", "True", None, "tenant", tenant, "-n", f"reseller-{reseller}")
    assert host in obj["status"]["hosts"]


def test_one_customer_more_than_the_licences_waits_for_a_licence(stage: Stage, operator: OperatorProcess) -> None:
    region = unique_name("full", max_length=30)
    reseller = unique_name("small", max_length=20)
    alice = stage.open_reseller(region_doc(region, verification="None"), reseller, licenses=1)
    control = f"reseller-{reseller}"
    alice.apply(plan_doc(reseller, "web"))
    first = unique_name("first", max_length=40)
    alice.apply(tenant_doc(reseller, first, region, "web"))
    wait_condition(alice, "Ready", "True", None, "tenant", first, "-n", control)

    second = unique_name("second", max_length=40)
    obj = refused(alice, tenant_doc(reseller, second, region, "web"), "LicenseLimitReached", "licen")
    assert obj is not None  # licences may come back: never denied at apply
    assert gone(stage.platform_admin, "namespace", f"{reseller}--{second}")
    wait_object(alice, lambda o: (o["status"]["licenses"]["used"], o["status"]["licenses"]["available"]) == (1, 0),
                "reseller", reseller, message="the Reseller's status to show its one licence used, none available")
    # The platform's dashboard counts the waiting customer.
    refusals = metric_value(operator.metrics(), "tenantry_operator_tenants_refused", reason="LicenseLimitReached")
    assert refusals is not None and refusals >= 1

    # The platform sells it one more licence: the waiting customer is admitted by itself.
    stage.platform_admin.run("patch", "reseller", reseller, "--type=merge", "-p", '{"spec":{"licenses":2}}')
    wait_condition(alice, "Ready", "True", None, "tenant", second, "-n", control, timeout=60)
    wait_for(lambda: alice.get_json("reseller", reseller)["status"]["licenses"]["used"] == 2, timeout=30,
             message="both licences used")

    # The platform takes a licence back: nobody is evicted, the over-use is reported.
    stage.platform_admin.run("patch", "reseller", reseller, "--type=merge", "-p", '{"spec":{"licenses":1}}')
    wait_condition(stage.platform_admin, "LicensesOverused", "True", None, "reseller", reseller)
    for tenant in (first, second):
        assert condition_is(alice.get_json("tenant", tenant, "-n", control), "Ready", "True")
        assert stage.platform_admin.run("get", "namespace", f"{reseller}--{tenant}", check=False).returncode == 0


def test_a_duplicate_email_and_an_inactive_reseller_are_told_apart(careless: dict[str, Any], stage: Stage) -> None:
    reseller, region, alice = careless["reseller"], careless["region"], careless["alice"]
    neighbour = careless["neighbour"]
    taken = alice.jsonpath("{.spec.email}", "tenant", neighbour, "-n", f"reseller-{reseller}")
    copycat = unique_name("copycat", max_length=40)
    doc = tenant_doc(reseller, copycat, region, "web")
    doc["spec"]["email"] = taken
    refused(alice, doc, "DuplicateEmail", taken)


def test_a_deactivated_reseller_signs_up_nobody_and_its_customers_keep_running(stage: Stage) -> None:
    region = unique_name("closing", max_length=30)
    reseller = unique_name("leaving", max_length=20)
    alice = stage.open_reseller(region_doc(region, verification="None"), reseller, licenses=3)
    control = f"reseller-{reseller}"
    alice.apply(plan_doc(reseller, "web"))
    customer = unique_name("loyal", max_length=40)
    alice.apply(tenant_doc(reseller, customer, region, "web"))
    wait_condition(alice, "Ready", "True", None, "tenant", customer, "-n", control)

    # The platform stops selling through this reseller.
    stage.platform_admin.run("patch", "reseller", reseller, "--type=merge", "-p", '{"spec":{"active":false}}')
    wait_object(stage.platform_admin, lambda o: (o.get("status") or {}).get("observedGeneration")
                == o["metadata"]["generation"], "reseller", reseller, message="the deactivation to be seen")
    late = unique_name("late", max_length=40)
    obj = refused(alice, tenant_doc(reseller, late, region, "web"), "ResellerInactive", reseller)
    assert obj is not None
    customer_obj = alice.get_json("tenant", customer, "-n", control)
    assert condition_is(customer_obj, "Ready", "True") and customer_obj["status"]["phase"] == "Active"
    assert stage.platform_admin.run("get", "namespace", f"{reseller}--{customer}", check=False).returncode == 0


def test_a_new_customer_never_inherits_a_retained_namespace(careless: dict[str, Any], stage: Stage) -> None:
    """A customer leaves with `deletionPolicy: Retain` (its data stays for the platform to hand
    over); the reseller later signs up someone else under the same name. The newcomer must not be
    given the former customer's namespace, Secrets and all."""
    reseller, region, alice = careless["reseller"], careless["region"], careless["alice"]
    control = f"reseller-{reseller}"
    name = unique_name("reused", max_length=40)
    namespace = f"{reseller}--{name}"
    alice.apply(tenant_doc(reseller, name, region, "web", deletionPolicy="Retain",
                           owners=[{"kind": "User", "name": owner_of(name)}]))
    wait_condition(alice, "Ready", "True", None, "tenant", name, "-n", control)
    former = stage.owner_at_work(name, namespace, "secrets")
    former.run("create", "secret", "generic", "customer-db", "--from-literal=password=former-customer",
               "-n", namespace)
    alice.run("delete", "tenant", name, "-n", control, "--timeout=60s")
    stage.made.append(("Namespace", namespace))
    assert stage.platform_admin.run("get", "namespace", namespace, check=False).returncode == 0

    # Months later, a new customer under the same name.
    newcomer = f"new-owner@{name}.example"
    alice.apply(tenant_doc(reseller, name, region, "web", owners=[{"kind": "User", "name": newcomer}]))
    wait_for(lambda: conditions(alice.get_json("tenant", name, "-n", control)).get("Ready"), timeout=45,
             message="the new tenant to be decided")
    stranger = stage.kubectl.as_user(newcomer)
    readable = stranger.run("get", "secret", "customer-db", "-n", namespace, check=False)
    assert readable.returncode != 0, (
        f"the new owner of tenant {name} reads the former customer's Secret in the retained namespace "
        f"{namespace}:\n{readable.stdout}")
    assert not stranger.can_i("get", "secrets", "-n", namespace)


def test_a_plan_inflated_beyond_the_allotment_changes_nobodys_quota(stage: Stage) -> None:
    region = unique_name("tight", max_length=30)
    reseller = unique_name("greedy", max_length=20)
    alice = stage.open_reseller(region_doc(region, verification="None"), reseller,
                                allotment={"cpu": "4", "memory": "8Gi", "storage": "10Gi", "pods": "40"})
    control = f"reseller-{reseller}"
    alice.apply(plan_doc(reseller, "web"))
    customer = unique_name("customer", max_length=40)
    alice.apply(tenant_doc(reseller, customer, region, "web"))
    wait_condition(alice, "Ready", "True", None, "tenant", customer, "-n", control)
    namespace = f"{reseller}--{customer}"
    # What its one customer takes of the allotment is in the Reseller's status.
    wait_object(alice, lambda o: o["status"]["regions"][0]["allocated"]["cpu"] == "1", "reseller", reseller,
                message="the Reseller's status to show the 1 core its tenant's plan takes")

    # The reseller edits its Plan to sell 100 cores it never bought.
    alice.run("patch", "plan", "web", "-n", control, "--type=merge", "-p", '{"spec":{"quota":{"cpu":"100"}}}')
    wait_condition(alice, "Ready", "False", "InsufficientCapacity", "tenant", customer, "-n", control)
    assert alice.jsonpath("{.spec.hard.requests\\.cpu}", "resourcequota", "tenantry", "-n", namespace) == "1"
    assert alice.get_json("reseller", reseller)["status"]["regions"][0]["allocated"]["cpu"] == "1"
