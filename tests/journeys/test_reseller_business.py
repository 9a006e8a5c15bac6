"""Journey 2: a reseller signs up its customers.

The platform has two regions: one that routes custom domains at once (`domainVerification: None`)
and one that wants a DNS TXT proof first. The reseller's admin, with kubectl and nothing but the
chart's RBAC, creates a Plan and tenants with and without owners and custom domains, and sees them
Ready, with their hosts, Ingress and TLS. The tenant owner works in its namespace with kubectl and
is refused everywhere else; another reseller sees none of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from journey_support import (
    Purchase,
    Stage,
    buy_ca,
    condition_is,
    conditions,
    owner_of,
    parse_time,
    plan_doc,
    put_tls_secret,
    region_doc,
    reseller_doc,
    reseller_region,
    secret_value,
    tenant_doc,
    unique_name,
    wait_condition,
    wait_object,
)

from support.cluster import wait_for
from support.dns import TEST_DNS
from support.kubectl import Kubectl
from support.pki import new_pki


@pytest.fixture(scope="module")
def market(stage: Stage) -> dict[str, Any]:
    """Two regions; reseller `a` sells in both (a purchased CA where domains are trusted, the
    operator's own CA where they are proven by DNS), reseller `b` in the first; each has a Plan."""
    trusted, proven = unique_name("open", max_length=30), unique_name("dns", max_length=30)
    a, b = unique_name("shops", max_length=20), unique_name("rival", max_length=20)
    stage.apply_as_platform(region_doc(trusted, verification="None"), region_doc(proven, verification="DNS"))
    stage.apply_as_platform(
        reseller_doc(a, [reseller_region(trusted, f"{a}.example", {"mode": "Secret", "secretName": "issuing-ca"}),
                         reseller_region(proven, f"{a}-dns.example")]),
        reseller_doc(b, [reseller_region(trusted, f"{b}.example")]))
    for reseller in (a, b):
        stage.wait_control_namespace(reseller)
    ca = buy_ca(a, stage.tmp / "ca")
    # The reseller supplies its own issuing CA (its role lets it write Secrets in its control namespace).
    put_tls_secret(stage.reseller_admin(a), f"reseller-{a}", "issuing-ca", ca.chain_file, ca.key_file)
    for reseller in (a, b):
        stage.reseller_admin(reseller).apply(plan_doc(reseller, "shop", custom_domains=2))
    # Reseller b already has a customer.
    rival_tenant = unique_name("corner", max_length=40)
    stage.reseller_admin(b).apply(tenant_doc(b, rival_tenant, trusted, "shop",
                                             owners=[{"kind": "User", "name": owner_of(rival_tenant)}]))
    return {"trusted": trusted, "proven": proven, "a": a, "b": b, "ca": ca, "rival_tenant": rival_tenant}


def buy_host_certificate(host: str, directory: Path) -> Purchase:
    """A certificate for one host, bought by the customer (leaf, intermediate, root, key)."""
    pki = new_pki(f"Registrar of {host}")
    return Purchase(host, pki, pki.leaf(host), directory).write()


def ingress_hosts(kubectl: Kubectl, namespace: str) -> dict[str, str]:
    """host -> TLS Secret of the tenant's Ingress, as `kubectl get ingress tenantry` shows it."""
    ingress = kubectl.get_json("ingress", "tenantry", "-n", namespace)
    secrets = {h: t.get("secretName", "") for t in ingress["spec"].get("tls") or [] for h in t["hosts"]}
    return {rule["host"]: secrets.get(rule["host"], "") for rule in ingress["spec"]["rules"]}


def test_a_tenant_with_an_owner_and_a_custom_domain_is_routed_with_tls(market: dict[str, Any],
                                                                        stage: Stage) -> None:
    a, region, ca = market["a"], market["trusted"], market["ca"]
    alice = stage.reseller_admin(a)
    tenant = unique_name("bakery", max_length=40)
    custom = f"www.{unique_name('bakery')}.example"
    alice.apply(tenant_doc(a, tenant, region, "shop", owners=[{"kind": "User", "name": owner_of(tenant)}],
                           domains=[{"host": custom}]))
    obj = wait_condition(alice, "Ready", "True", None, "tenant", tenant, "-n", f"reseller-{a}")
    default, namespace = f"{tenant}.{a}.example", f"{a}--{tenant}"
    assert obj["status"]["phase"] == "Active"
    assert obj["status"]["namespace"] == namespace
    assert obj["status"]["hosts"] == [default, custom]
    assert condition_is(obj, "Admitted", "True") and condition_is(obj, "Provisioned", "True")

    # `kubectl get ingress` in the tenant namespace: both hosts, each with its own TLS Secret.
    hosts = wait_for(lambda: (h := ingress_hosts(alice, namespace)) and len(h) == 2 and h, timeout=30,
                     message="the Ingress to route both hosts")
    assert hosts == {default: f"tenantry-tls-{default}", custom: f"tenantry-tls-{custom}"}
    obj = wait_condition(alice, "CertificateReady", "True", None, "tenant", tenant, "-n", f"reseller-{a}")
    # The default host's certificate comes from the reseller's CA; the tenant's status says when it ends.
    leaf = x509.load_pem_x509_certificates(secret_value(alice, namespace, f"tenantry-tls-{default}", "tls.crt"))[0]
    leaf.verify_directly_issued_by(ca.pki.intermediate.cert)
    expiry = {c["host"]: c["notAfter"] for c in obj["status"]["certificates"]}
    assert set(expiry) == {default, custom}
    # The owner sees the same from inside: quota, the Ingress, the TLS Secrets of its hosts.
    owner = stage.owner(tenant)
    assert owner.jsonpath("{.spec.hard.pods}", "resourcequota", "tenantry", "-n", namespace) == "10"
    assert ingress_hosts(owner, namespace) == hosts
    # ... and the reseller's white label, for its own pages.
    assert owner.jsonpath("{.data.displayName}", "configmap", "tenantry-branding", "-n", namespace) == f"{a} Cloud"
    # The reseller reads the sign-up as a story: `kubectl get tenants`, `kubectl describe`.
    listing = alice.run("get", "tenants", "-n", f"reseller-{a}").stdout
    row = next(line for line in listing.splitlines() if line.startswith(tenant + " "))
    assert "True" in row.split(), listing
    described = alice.describe("tenant", tenant, "-n", f"reseller-{a}")
    assert "Normal" in described.split("Events:")[-1], described
    wait_object(alice, lambda o: (o.get("status") or {}).get("tenants", 0) >= 1, "plan", "shop", "-n", f"reseller-{a}",
                message="the Plan to count its tenants")


def test_a_custom_domain_is_routed_once_its_dns_proof_is_in_place(market: dict[str, Any], stage: Stage) -> None:
    a, region = market["a"], market["proven"]
    alice = stage.reseller_admin(a)
    tenant = unique_name("florist", max_length=40)
    custom = f"shop.{unique_name('florist')}.example"
    alice.apply(tenant_doc(a, tenant, region, "shop", owners=[{"kind": "User", "name": owner_of(tenant)}],
                           domains=[{"host": custom}]))
    default, namespace = f"{tenant}.{a}-dns.example", f"{a}--{tenant}"
    # Admitted and routed on its default host; the custom domain waits for its TXT record.
    obj = wait_condition(alice, "DomainsRouted", "False", "VerificationPending", "tenant", tenant,
                         "-n", f"reseller-{a}")
    assert condition_is(obj, "Admitted", "True")
    domain = next(d for d in obj["status"]["domains"] if d["host"] == custom)
    assert domain["verified"] is False
    assert f"_tenantry-challenge.{custom}" in domain["message"] and domain["token"]
    wait_for(lambda: list(ingress_hosts(alice, namespace)) == [default], timeout=30,
             message="the default host to be routed while the proof is pending")

    # The customer creates the TXT record at its DNS provider.
    TEST_DNS.set_txt(f"_tenantry-challenge.{custom}", domain["token"])
    obj = wait_condition(alice, "DomainsRouted", "True", None, "tenant", tenant, "-n", f"reseller-{a}", timeout=60)
    assert obj["status"]["hosts"] == [default, custom]
    assert next(d for d in obj["status"]["domains"] if d["host"] == custom)["verified"] is True
    wait_for(lambda: custom in ingress_hosts(alice, namespace), timeout=30, message="the proven domain routed")
    events = {e["reason"] for e in alice.events(f"reseller-{a}", tenant)}
    assert "VerificationPending" in events, events


def test_a_tenant_without_owners_is_run_by_the_reseller_alone(market: dict[str, Any], stage: Stage) -> None:
    a, region = market["a"], market["trusted"]
    alice = stage.reseller_admin(a)
    tenant = unique_name("managed", max_length=40)
    alice.apply(tenant_doc(a, tenant, region, "shop"))
    obj = wait_condition(alice, "Ready", "True", None, "tenant", tenant, "-n", f"reseller-{a}")
    namespace = obj["status"]["namespace"]
    # The reseller's support staff work there; nobody else was given anything.
    assert alice.can_i("create", "deployments.apps", "-n", namespace)
    assert alice.can_i("get", "secrets", "-n", namespace)
    stranger = stage.kubectl.as_user(f"someone@{tenant}.example")
    assert not stranger.can_i("get", "pods", "-n", namespace)
    colleague = stage.kubectl.as_user(f"bob@{a}.example", f"{a}-admins")  # in the reseller's admin group
    assert colleague.can_i("create", "deployments.apps", "-n", namespace)
    bindings = alice.get_json("rolebindings", "-n", namespace)["items"]
    roles = {b["roleRef"]["name"] for b in bindings}
    assert "tenantry-tenant-owner" not in roles and "tenantry-reseller-support" in roles


def test_the_tenant_owner_works_in_its_namespace_and_is_refused_elsewhere(market: dict[str, Any],
                                                                          stage: Stage) -> None:
    a, b, region = market["a"], market["b"], market["trusted"]
    alice = stage.reseller_admin(a)
    tenant = unique_name("cafe", max_length=40)
    alice.apply(tenant_doc(a, tenant, region, "shop", owners=[{"kind": "User", "name": owner_of(tenant)}]))
    wait_condition(alice, "Ready", "True", None, "tenant", tenant, "-n", f"reseller-{a}")
    namespace = f"{a}--{tenant}"
    joe = stage.owner_at_work(tenant, namespace)

    # Everyday work with kubectl in its namespace.
    joe.run("create", "deployment", "web", "--image=nginx", "-n", namespace)
    joe.run("create", "secret", "generic", "db", "--from-literal=password=s3cret", "-n", namespace)
    joe.run("create", "configmap", "site", "--from-literal=title=Cafe", "-n", namespace)
    assert joe.jsonpath("{.spec.replicas}", "deployment", "web", "-n", namespace) == "1"
    # What Tenantry owns there is visible and not editable.
    assert joe.jsonpath("{.metadata.name}", "resourcequota", "tenantry", "-n", namespace) == "tenantry"
    joe.forbidden("patch", "resourcequota", "tenantry", "-n", namespace, "--type=merge",
                  "-p", '{"spec":{"hard":{"pods":"1000"}}}')
    joe.forbidden("delete", "networkpolicy", "tenantry-isolation", "-n", namespace)
    # What it may edit but Tenantry owns (the reseller's white label) is put back at once.
    joe.run("patch", "configmap", "tenantry-branding", "-n", namespace, "--type=merge",
            "-p", '{"data":{"displayName":"Totally Legit Bank"}}')
    wait_for(lambda: joe.jsonpath("{.data.displayName}", "configmap", "tenantry-branding", "-n", namespace)
             == f"{a} Cloud", timeout=30, message="the reseller's branding to be put back")
    joe.forbidden("create", "rolebinding", "mine", "--clusterrole=admin", f"--user={owner_of(tenant)}",
                  "-n", namespace)
    # Nowhere else: not the reseller's control namespace, not another tenant, not the cluster.
    joe.forbidden("get", "tenants", "-n", f"reseller-{a}")
    joe.forbidden("get", "secrets", "-n", f"reseller-{a}")
    joe.forbidden("get", "pods", "-n", f"{b}--{market['rival_tenant']}")
    joe.forbidden("get", "namespaces")
    joe.forbidden("delete", "namespace", namespace)
    joe.forbidden("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=privileged", "--overwrite")
    joe.forbidden("get", "regions")
    joe.forbidden("create", "namespace", f"{tenant}-extra")


def test_resellers_never_see_each_others_tenants(market: dict[str, Any], stage: Stage) -> None:
    a, b = market["a"], market["b"]
    rival, rival_tenant = stage.reseller_admin(b), market["rival_tenant"]
    alice = stage.reseller_admin(a)
    wait_condition(rival, "Ready", "True", None, "tenant", rival_tenant, "-n", f"reseller-{b}")
    listed = rival.run("get", "tenants", "-n", f"reseller-{b}", "-o", "name").stdout.split()
    assert listed == [f"tenant.tenantry.dev/{rival_tenant}"]
    for who, other in ((alice, b), (rival, a)):
        who.forbidden("get", "tenants", "-n", f"reseller-{other}")
        who.forbidden("get", "plans", "-n", f"reseller-{other}")
        who.forbidden("get", "events", "-n", f"reseller-{other}")
        who.forbidden("get", "reseller", other)
    alice.forbidden("get", "tenants", "--all-namespaces")
    alice.forbidden("get", "pods", "-n", f"{b}--{rival_tenant}")
    alice.forbidden("get", "secrets", "-n", f"{b}--{rival_tenant}")
    rival.forbidden("get", "secret", "issuing-ca", "-n", f"reseller-{a}")
    # Each sees its own reseller, with its own tenants counted.
    obj = wait_object(rival, lambda o: (o.get("status") or {}).get("tenants") == 1, "reseller", b,
                      message="reseller b to count its one tenant")
    assert "Ready" in conditions(obj)


def test_a_customer_brings_its_own_certificate_and_deploys_from_ci(market: dict[str, Any], stage: Stage) -> None:
    """The production path for a custom domain: the customer bought a certificate for its own host,
    puts it in its namespace, and deploys with a CI ServiceAccount of its namespace named as an owner."""
    a, region = market["a"], market["trusted"]
    alice = stage.reseller_admin(a)
    tenant = unique_name("agency", max_length=40)
    namespace = f"{a}--{tenant}"
    custom = f"www.{unique_name('agency')}.example"
    bought = buy_host_certificate(custom, stage.tmp / tenant)
    alice.apply(tenant_doc(a, tenant, region, "shop",
                           owners=[{"kind": "User", "name": owner_of(tenant)},
                                   {"kind": "ServiceAccount", "name": "deployer", "namespace": namespace}],
                           domains=[{"host": custom, "tls": {"mode": "Secret", "secretName": "www-tls"}}]))
    obj = wait_condition(alice, "Ready", "True", None, "tenant", tenant, "-n", f"reseller-{a}")
    joe = stage.owner_at_work(tenant, namespace, "secrets")
    # Until the Secret is there the host is said to wait for it.
    assert condition_is(obj, "CertificateReady", "False", "SecretNotFound"), conditions(obj).get("CertificateReady")
    put_tls_secret(joe, namespace, "www-tls", bought.fullchain_file, bought.key_file)
    obj = wait_condition(alice, "CertificateReady", "True", None, "tenant", tenant, "-n", f"reseller-{a}")
    entry = next(c for c in obj["status"]["certificates"] if c["host"] == custom)
    assert parse_time(entry["notAfter"]) == bought.not_after
    served = x509.load_pem_x509_certificates(secret_value(joe, namespace, f"tenantry-tls-{custom}", "tls.crt"))
    assert served[0] == bought.leaf.cert
    assert ingress_hosts(joe, namespace)[custom] == f"tenantry-tls-{custom}"
    # The CI pipeline's ServiceAccount deploys, and can do nothing elsewhere.
    joe.run("create", "serviceaccount", "deployer", "-n", namespace)
    ci = stage.kubectl.as_user(f"system:serviceaccount:{namespace}:deployer", "system:serviceaccounts",
                               f"system:serviceaccounts:{namespace}")
    wait_for(lambda: ci.can_i("create", "deployments.apps", "-n", namespace), timeout=30,
             message="the CI ServiceAccount's access")
    ci.run("create", "deployment", "web", "--image=nginx", "-n", namespace)
    ci.forbidden("get", "secrets", "-n", f"reseller-{a}")
    ci.forbidden("get", "pods", "-n", f"{market['b']}--{market['rival_tenant']}")


def test_the_platform_replaces_a_resellers_admin(market: dict[str, Any], stage: Stage) -> None:
    """Staff turnover: the platform swaps the reseller's admin; the one who left loses every right at
    once (control namespace and tenant namespaces), the newcomer gets them."""
    region = market["trusted"]
    reseller = unique_name("turnover", max_length=20)
    stage.apply_as_platform(reseller_doc(reseller, [reseller_region(region, f"{reseller}.example")]))
    stage.wait_control_namespace(reseller)
    leaving, control = stage.reseller_admin(reseller), f"reseller-{reseller}"
    leaving.apply(plan_doc(reseller, "shop"))
    tenant = unique_name("client", max_length=40)
    leaving.apply(tenant_doc(reseller, tenant, region, "shop"))
    wait_condition(leaving, "Ready", "True", None, "tenant", tenant, "-n", control)
    namespace = f"{reseller}--{tenant}"
    assert leaving.can_i("get", "secrets", "-n", namespace)

    successor = f"carol@{reseller}.example"
    stage.platform_admin.run("patch", "reseller", reseller, "--type=merge", "-p",
                             f'{{"spec":{{"admins":[{{"kind":"User","name":"{successor}"}}]}}}}')
    carol = stage.kubectl.as_user(successor)
    for where in (("create", "tenants.tenantry.dev", "-n", control), ("get", "secrets", "-n", namespace),
                  ("get", f"resellers.tenantry.dev/{reseller}")):
        wait_for(lambda w=where: carol.can_i(*w), timeout=30, message=f"{successor} may {' '.join(where)}")
        wait_for(lambda w=where: not leaving.can_i(*w), timeout=30,
                 message=f"the former admin no longer may {' '.join(where)}")
    leaving.forbidden("get", "tenants", "-n", control)
