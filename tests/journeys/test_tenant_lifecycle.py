"""Journey 3: a reseller runs its customers through their lives.

One reseller, on the production TLS path (a wildcard certificate it bought, in a Secret), with three
plans. Its admin suspends a customer that has a real Deployment and brings it back; moves customers
between plans, and sees an upgrade that does not fit refused while the old quota stays; lets
customers go, keeping one's namespace (`deletionPolicy: Retain`) and deleting another's, and sees
the licences come back in its Reseller's status; and renews the wildcard certificate.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509
from journey_support import (
    Stage,
    buy_wildcard,
    condition_is,
    conditions,
    gone,
    metric_value,
    owner_of,
    parse_time,
    plan_doc,
    put_tls_secret,
    region_doc,
    secret_value,
    tenant_doc,
    unique_name,
    wait_condition,
    wait_event,
    wait_object,
)

from support.cluster import wait_for
from support.events import told
from support.operator import OperatorProcess

LICENSES = 6
ALLOTMENT = {"cpu": "10", "memory": "40Gi", "storage": "100Gi", "pods": "200"}
PLANS = {
    "starter": {"cpu": "2", "memory": "4Gi", "storage": "10Gi", "pods": "20"},
    "business": {"cpu": "6", "memory": "12Gi", "storage": "40Gi", "pods": "60"},
    "enterprise": {"cpu": "12", "memory": "24Gi", "storage": "80Gi", "pods": "100"},  # more than the allotment
}


@pytest.fixture(scope="module")
def shop(stage: Stage) -> dict[str, Any]:
    region = unique_name("life", max_length=30)
    reseller = unique_name("hoster", max_length=20)
    domain = f"{reseller}.example"
    alice = stage.open_reseller(region_doc(region, verification="None"), reseller, licenses=LICENSES,
                                tls={"mode": "Secret", "secretName": "wildcard"}, allotment=ALLOTMENT)
    wildcard = buy_wildcard(domain, stage.tmp / "wildcard-2026", days=90)
    put_tls_secret(alice, f"reseller-{reseller}", "wildcard", wildcard.fullchain_file, wildcard.key_file)
    alice.apply(*(plan_doc(reseller, name, quota=quota) for name, quota in PLANS.items()))
    return {"region": region, "reseller": reseller, "domain": domain, "wildcard": wildcard, "alice": alice}


def sign_up(shop: dict[str, Any], prefix: str, *, with_owner: bool = False, plan: str = "starter",
            **spec: Any) -> tuple[str, str]:
    """The reseller admin creates a tenant and waits for it to be Ready; (tenant, namespace)."""
    reseller, alice = shop["reseller"], shop["alice"]
    tenant = unique_name(prefix, max_length=40)
    if with_owner:
        spec["owners"] = [{"kind": "User", "name": owner_of(tenant)}]
    alice.apply(tenant_doc(reseller, tenant, shop["region"], plan, **spec))
    wait_condition(alice, "Ready", "True", None, "tenant", tenant, "-n", f"reseller-{reseller}")
    return tenant, f"{reseller}--{tenant}"


def licences_in_use(kubectl: Any, reseller: str) -> int:
    """The licences the Reseller's status says are used, once they match the admitted tenants the
    reseller lists (other tests of this journey have customers of the same reseller)."""
    def settled() -> tuple[int] | None:
        admitted = sum(condition_is(t, "Admitted", "True")
                       for t in kubectl.get_json("tenants", "-n", f"reseller-{reseller}")["items"])
        used = kubectl.get_json("reseller", reseller)["status"]["licenses"]["used"]
        return (int(used),) if used == admitted else None

    return wait_for(settled, timeout=45, interval=0.5,
                    message="the Reseller's licences used to match its admitted tenants")[0]


def quota(kubectl: Any, namespace: str, key: str) -> str:
    return str(kubectl.jsonpath("{.spec.hard." + key.replace(".", "\\.") + "}", "resourcequota", "tenantry",
                                "-n", namespace))


def test_suspension_scales_a_real_deployment_to_zero_and_reactivation_restores_it(
        shop: dict[str, Any], stage: Stage) -> None:
    reseller, alice = shop["reseller"], shop["alice"]
    tenant, namespace = sign_up(shop, "gym", with_owner=True)
    # The owner deploys three replicas of its site, behind the Service the Ingress points at.
    owner = stage.owner_at_work(tenant, namespace)
    owner.run("create", "deployment", "site", "--image=nginx", "--replicas=3", "-n", namespace)
    owner.run("expose", "deployment", "site", "--name=web", "--port=80", "-n", namespace)
    wait_for(lambda: alice.run("get", "ingress", "tenantry", "-n", namespace, check=False).returncode == 0,
             timeout=30, message="the tenant's Ingress")
    pods_before = quota(alice, namespace, "pods")
    used_before = licences_in_use(alice, reseller)

    alice.run("patch", "tenant", tenant, "-n", f"reseller-{reseller}", "--type=merge", "-p",
              '{"spec":{"active":false}}')
    obj = wait_object(alice, lambda o: (o.get("status") or {}).get("phase") == "Suspended",
                      "tenant", tenant, "-n", f"reseller-{reseller}", message="the tenant to be Suspended")
    assert obj["status"]["hosts"] == []
    deployment = alice.get_json("deployment", "site", "-n", namespace)
    assert deployment["spec"]["replicas"] == 0
    assert deployment["metadata"]["annotations"]["tenantry.dev/suspended-replicas"] == "3"
    wait_for(lambda: alice.run("get", "ingress", "tenantry", "-n", namespace, check=False).returncode != 0,
             timeout=30, message="the Ingress to be removed while suspended")
    assert quota(alice, namespace, "pods") == "0"
    # The owner cannot start anything meanwhile: the quota refuses every new pod.
    refused = owner.run("run", "sneaky", "--image=nginx", "--restart=Never", "-n", namespace, check=False)
    assert refused.returncode != 0 and "exceeded quota" in refused.stderr, refused.stderr
    # The licence is kept while suspended.
    assert licences_in_use(alice, reseller) == used_before

    alice.run("patch", "tenant", tenant, "-n", f"reseller-{reseller}", "--type=merge", "-p",
              '{"spec":{"active":true}}')
    wait_object(alice, lambda o: (o.get("status") or {}).get("phase") == "Active",
                "tenant", tenant, "-n", f"reseller-{reseller}", message="the tenant to be Active again")
    deployment = wait_object(alice, lambda o: o["spec"]["replicas"] == 3, "deployment", "site", "-n", namespace,
                             message="the Deployment's three replicas to be back")
    assert "tenantry.dev/suspended-replicas" not in (deployment["metadata"].get("annotations") or {})
    wait_for(lambda: alice.run("get", "ingress", "tenantry", "-n", namespace, check=False).returncode == 0,
             timeout=30, message="the Ingress to be back")
    assert quota(alice, namespace, "pods") == pods_before


def test_plan_upgrades_and_downgrades_change_the_quota_and_a_refused_upgrade_keeps_it(
        shop: dict[str, Any], stage: Stage) -> None:
    reseller, alice = shop["reseller"], shop["alice"]
    tenant, namespace = sign_up(shop, "agency")
    control = f"reseller-{reseller}"
    assert quota(alice, namespace, "requests.cpu") == "2"

    def move_to(plan: str) -> None:
        alice.run("patch", "tenant", tenant, "-n", control, "--type=merge", "-p", f'{{"spec":{{"plan":"{plan}"}}}}')

    move_to("business")
    wait_for(lambda: quota(alice, namespace, "requests.cpu") == "6", timeout=30, message="the upgrade's quota")
    assert quota(alice, namespace, "requests.memory") == "12Gi"
    wait_condition(alice, "Ready", "True", None, "tenant", tenant, "-n", control)

    move_to("starter")
    wait_for(lambda: quota(alice, namespace, "requests.cpu") == "2", timeout=30, message="the downgrade's quota")

    # Enterprise needs 12 cores; the reseller bought 10 in the region: refused, the old quota stays.
    move_to("enterprise")
    obj = wait_condition(alice, "Ready", "False", "InsufficientCapacity", "tenant", tenant, "-n", control)
    message = conditions(obj)["Ready"]["message"]
    assert "enterprise" in message or "starter" in message, message  # it names the plan at stake
    assert condition_is(obj, "Admitted", "True")
    assert quota(alice, namespace, "requests.cpu") == "2"
    wait_event(alice, control, tenant, "InsufficientCapacity", "Warning")

    move_to("starter")
    wait_condition(alice, "Ready", "True", None, "tenant", tenant, "-n", control)
    assert quota(alice, namespace, "requests.cpu") == "2"


def test_retained_and_deleted_tenants_free_their_licences(shop: dict[str, Any], stage: Stage) -> None:
    reseller, alice = shop["reseller"], shop["alice"]
    control = f"reseller-{reseller}"
    platform = stage.platform_admin
    kept, kept_ns = sign_up(shop, "archive", deletionPolicy="Retain")
    dropped, dropped_ns = sign_up(shop, "trial")
    alice.run("create", "configmap", "orders", "--from-literal=count=42", "-n", kept_ns)
    used = licences_in_use(alice, reseller)

    # Retain: the namespace and its data stay, Tenantry's access, routes and certificates go.
    alice.run("delete", "tenant", kept, "-n", control, "--timeout=60s")
    assert gone(alice, "tenant", kept, "-n", control)
    namespace = platform.get_json("namespace", kept_ns)
    assert namespace["status"]["phase"] == "Active"
    labels = namespace["metadata"].get("labels") or {}
    assert not any(k.startswith("tenantry.dev/") or k == "app.kubernetes.io/managed-by" for k in labels), labels
    assert platform.jsonpath("{.data.count}", "configmap", "orders", "-n", kept_ns) == "42"
    assert platform.get_json("rolebindings", "-n", kept_ns)["items"] == []
    assert platform.get_json("ingresses", "-n", kept_ns)["items"] == []
    assert not [s["metadata"]["name"] for s in platform.get_json("secrets", "-n", kept_ns)["items"]
                if s["metadata"]["name"].startswith("tenantry-tls-")]
    assert platform.run("get", "resourcequota", "tenantry", "-n", kept_ns, check=False).returncode == 0
    assert platform.run("get", "networkpolicy", "tenantry-isolation", "-n", kept_ns, check=False).returncode == 0
    # Nobody of the reseller can reach a retained namespace any more.
    alice.forbidden("get", "configmaps", "-n", kept_ns)
    stage.made.append(("Namespace", kept_ns))
    wait_object(alice, lambda o: o["status"]["licenses"]["used"] == used - 1, "reseller", reseller,
                message="the retained tenant's licence to be freed in the Reseller's status")

    # Delete: the namespace goes.
    alice.run("delete", "tenant", dropped, "-n", control, "--timeout=60s")
    wait_for(lambda: gone(platform, "namespace", dropped_ns)
             or platform.jsonpath("{.status.phase}", "namespace", dropped_ns, check=False) == "Terminating",
             timeout=60, message=f"namespace {dropped_ns} to be deleted")
    obj = wait_object(alice, lambda o: o["status"]["licenses"]["used"] == used - 2, "reseller", reseller,
                      message="the deleted tenant's licence to be freed in the Reseller's status")
    assert obj["status"]["licenses"]["available"] == obj["status"]["licenses"]["total"] - (used - 2)


def test_renewing_the_purchased_wildcard_rolls_to_the_reseller_and_its_tenants(
        shop: dict[str, Any], stage: Stage, operator: OperatorProcess) -> None:
    reseller, alice, domain = shop["reseller"], shop["alice"], shop["domain"]
    control = f"reseller-{reseller}"
    tenant, namespace = sign_up(shop, "studio")  # run by the reseller: it may carry the wildcard key
    host = f"{tenant}.{domain}"
    current = shop["wildcard"]
    obj = wait_condition(alice, "CertificateReady", "True", None, "tenant", tenant, "-n", control)
    reseller_obj = wait_condition(alice, "CertificateReady", "True", None, "reseller", reseller)
    assert parse_time(reseller_obj["status"]["regions"][0]["certificate"]["notAfter"]) == current.not_after
    served = x509.load_pem_x509_certificates(secret_value(alice, namespace, f"tenantry-tls-{host}", "tls.crt"))
    assert served[0] == current.leaf.cert

    # A hurried first try: the wrong certificate (another domain's). The reseller is told, and the
    # tenants keep being served the last good one.
    wrong = buy_wildcard(f"not-{domain}", stage.tmp / "wrong")
    put_tls_secret(alice, control, "wildcard", wrong.fullchain_file, wrong.key_file)
    reseller_obj = wait_condition(alice, "CertificateReady", "False", "HostNotCovered", "reseller", reseller)
    assert domain in conditions(reseller_obj)["CertificateReady"]["message"]
    assert x509.load_pem_x509_certificates(
        secret_value(alice, namespace, f"tenantry-tls-{host}", "tls.crt"))[0] == current.leaf.cert
    wait_event(stage.platform_admin, None, reseller, "HostNotCovered", "Warning")

    # Next year's certificate arrives; the admin replaces the Secret's data in place.
    renewed = current.renewed(days=365, directory=stage.tmp / "wildcard-2027")
    put_tls_secret(alice, control, "wildcard", renewed.fullchain_file, renewed.key_file)
    shop["wildcard"] = renewed
    reseller_obj = wait_object(
        alice, lambda o: parse_time(o["status"]["regions"][0]["certificate"]["notAfter"]) == renewed.not_after,
        "reseller", reseller, message="the Reseller's status to show the renewed certificate's notAfter")
    assert condition_is(reseller_obj, "CertificateReady", "True")
    wait_for(lambda: x509.load_pem_x509_certificates(
        secret_value(alice, namespace, f"tenantry-tls-{host}", "tls.crt"))[0] == renewed.leaf.cert,
        timeout=30, message="the tenant's TLS Secret to serve the renewed certificate")
    assert secret_value(alice, namespace, f"tenantry-tls-{host}", "tls.key") == renewed.leaf.key_pem
    obj = wait_object(alice, lambda o: any(parse_time(c["notAfter"]) == renewed.not_after
                                           for c in o["status"].get("certificates") or [] if c["host"] == host),
                      "tenant", tenant, "-n", control, message="the tenant's status to show the renewed notAfter")
    assert obj["status"]["hosts"] == [host]
    # The expiry the alerts watch moved with it.
    wait_for(lambda: metric_value(operator.metrics(), "tenantry_certificate_expiry_timestamp_seconds",
                                  namespace=control, name="wildcard", host=f"*.{domain}")
             == renewed.not_after.timestamp(), timeout=30, message="the wildcard's expiry metric to move")


def test_a_new_tenant_is_told_in_one_normal_event(shop: dict[str, Any]) -> None:
    """DESIGN §2: at most one Normal Event per reconcile. A new tenant's admission and readiness are one
    Event, reason Ready, whose message names Admitted too (issue 15: not an `Admitted` Event beside it)."""
    reseller, alice = shop["reseller"], shop["alice"]
    control = f"reseller-{reseller}"
    tenant, _ = sign_up(shop, "news")
    ready = wait_event(alice, control, tenant, "Ready", "Normal")
    normal = [e for e in alice.events(control, tenant) if e.get("type") == "Normal"]
    assert [(e["reason"], e.get("count", 1)) for e in normal] == [("Ready", 1)], normal
    summary = told(ready["message"])
    assert summary[0] == "Ready" and {"Admitted", "Provisioned"} <= set(summary[1:]), ready["message"]
