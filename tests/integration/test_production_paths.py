"""Production paths a platform takes on day one (issue 11, findings 1, 3 and 4), on the real control
plane with the operator running under the chart's role:

- a reseller whose region serves a certificate bought from a registrar (tls mode Secret: leaf plus
  intermediate, or a CA certificate and key) reconciles like any other: its status, licences, RBAC,
  branding and plans keep following its tenants;
- owners and admins that would open a namespace to the whole cluster (system: users and groups,
  ServiceAccounts of other namespaces) are refused with InvalidOwner / InvalidAdmin and never bound;
- a custom domain already served by any Ingress of the cluster, Tenantry's or not, is HostConflict.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from cryptography import x509
from kubernetes import client

from support.cluster import wait_for
from support.operator import OperatorProcess
from support.pki import new_pki
from support.platform import Platform, condition
from support.tls_secrets import put_tls_secret, secret_data

ALLOTMENT = {"cpu": "16", "memory": "64Gi", "storage": "500Gi", "pods": "400"}
TIMEOUT = 90  # the machine is shared and loaded: generous waits, never sleeps


# -- helpers ----------------------------------------------------------------------------------------


def licences(platform: Platform, reseller: str) -> dict[str, Any]:
    return ((platform.get("Reseller", reseller) or {}).get("status") or {}).get("licenses") or {}


def wait_licences(platform: Platform, reseller: str, used: int, available: int) -> None:
    wait_for(lambda: (licences(platform, reseller).get("used"), licences(platform, reseller).get("available"))
             == (used, available), TIMEOUT, message=f"Reseller {reseller}: {used} licences used, {available} free")


def binding_subjects(api: client.ApiClient, name: str, namespace: str) -> set[tuple[str, str, str]] | None:
    try:
        binding = client.RbacAuthorizationV1Api(api).read_namespaced_role_binding(name, namespace)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    return {(s.kind, s.namespace or "", s.name) for s in binding.subjects or []}


def make_ingress(api: client.ApiClient, namespace: str, name: str, *hosts: str) -> None:
    rules = [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
        "service": {"name": "web", "port": {"number": 80}}}}]}} for host in hosts]
    body = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"rules": rules}}
    client.NetworkingV1Api(api).create_namespaced_ingress(namespace, body)


def routed_hosts(api: client.ApiClient, namespace: str) -> set[str]:
    """The hosts of the tenant's `tenantry` Ingress (empty when it has none)."""
    try:
        ingress = client.NetworkingV1Api(api).read_namespaced_ingress("tenantry", namespace)
    except client.ApiException as error:
        if error.status == 404:
            return set()
        raise
    return {rule.host for rule in ingress.spec.rules or []}


def domain_message(obj: Mapping[str, Any], host: str) -> str:
    return next(d.get("message", "") for d in obj["status"].get("domains") or [] if d["host"] == host)


# -- finding 1: a reseller with a purchased certificate -----------------------------------------------


@pytest.mark.parametrize("bundle", ["wildcard", "ca"])
def test_a_reseller_with_a_purchased_certificate_keeps_reconciling(
        platform: Platform, api_client: client.ApiClient, operator: OperatorProcess, bundle: str) -> None:
    """`wildcard`: the three files a registrar sells (leaf *.domain, intermediate, root as ca.crt);
    `ca`: a CA certificate and its key, from which Tenantry issues a leaf per tenant."""
    core = platform.core
    region = platform.region(domainVerification="None")
    reseller = platform.unique_name("rs", max_length=20)
    domain = f"{reseller}-cloud.example"
    secret = "wildcard" if bundle == "wildcard" else "reseller-ca"
    platform.reseller(region, reseller, licenses=3, regions=[{
        "name": region, "domain": domain, "tls": {"mode": "Secret", "secretName": secret}, "allotment": ALLOTMENT}])
    control = f"reseller-{reseller}"
    platform.wait_namespace(control, timeout=TIMEOUT)
    # Until the platform puts the certificate in place, the reseller says what is missing.
    platform.wait_condition("Reseller", reseller, None, "CertificateReady", "False", "SecretNotFound", TIMEOUT)

    pki = new_pki("Registrar")
    if bundle == "wildcard":
        leaf = pki.leaf(f"*.{domain}", domain)
        put_tls_secret(core, secret, control, pki.bundle(leaf, with_ca=True))  # tls.crt = leaf + intermediate
        issuer = "Registrar Intermediate CA"
    else:
        put_tls_secret(core, secret, control, {"tls.crt": pki.intermediate.cert_pem + pki.root.cert_pem,
                                               "tls.key": pki.intermediate.key_pem})
        issuer = "Registrar Root CA"
    obj = platform.wait_condition("Reseller", reseller, None, "CertificateReady", "True", "CertificatesReady",
                                  TIMEOUT)
    (entry,) = obj["status"]["regions"]
    assert issuer in entry["certificate"]["issuer"]
    assert entry["certificate"]["notAfter"]
    if bundle == "wildcard":
        assert entry["certificate"]["dnsNames"] == [f"*.{domain}", domain]
    assert condition(obj, "Ready")["status"] == "True"

    # Tenants sign up: one run by the reseller itself (no owners), one with an owner.
    platform.plan(reseller)
    hosted = platform.tenant(reseller, region, owners=[])
    owned = platform.tenant(reseller, region)
    for tenant in (hosted, owned):
        platform.wait_tenant(reseller, tenant, timeout=TIMEOUT)
    wait_licences(platform, reseller, used=2, available=1)
    hosted_tls = wait_for(lambda: secret_data(core, f"tenantry-tls-{hosted}.{domain}", f"{reseller}--{hosted}"),
                          TIMEOUT, message="the hosted tenant's certificate")
    served = x509.load_pem_x509_certificates(hosted_tls["tls.crt"])[0]
    if bundle == "wildcard":
        assert hosted_tls["tls.key"] == leaf.key_pem  # the reseller's own wildcard, no owner can read it
        platform.wait_condition("Tenant", owned, control, "CertificateReady", "False", "ResellerKeyWithheld", TIMEOUT)
    else:
        served.verify_directly_issued_by(pki.intermediate.cert)  # a leaf of its own, signed by the CA
        platform.wait_condition("Tenant", owned, control, "CertificateReady", "True", None, TIMEOUT)

    # Deleting a tenant shows the freed licence.
    platform.delete("Tenant", hosted, control)
    wait_licences(platform, reseller, used=1, available=2)

    # Its children are still corrected: deleted branding comes back.
    core.delete_namespaced_config_map("tenantry-branding", control)
    wait_for(lambda: core.read_namespaced_config_map("tenantry-branding", control), TIMEOUT,
             message="the reseller's branding ConfigMap to be restored")
    assert "list index out of range" not in operator.log_text()


def test_the_resellers_panel_is_issued_by_the_ca_it_bought_and_follows_it(
        platform: Platform, operator: OperatorProcess) -> None:
    """`spec.platformDomain` with a CA in a region's Secret: the panel's leaf comes from that CA, stays
    while the CA stays, is reissued when the CA is replaced, and falls back to Tenantry's CA, saying
    so, only when the CA's name constraints do not permit the panel host."""
    core = platform.core
    region = platform.region(domainVerification="None")
    reseller = platform.unique_name("pn", max_length=20)
    domain, control = f"{reseller}-cloud.example", f"reseller-{reseller}"
    panel = f"panel.{domain}"
    platform.reseller(region, reseller, licenses=3, platformDomain=panel, regions=[{
        "name": region, "domain": domain, "tls": {"mode": "Secret", "secretName": "reseller-ca"},
        "allotment": ALLOTMENT}])
    platform.wait_namespace(control, timeout=TIMEOUT)

    def bought(pki: Any) -> dict[str, bytes]:
        return {"tls.crt": pki.intermediate.cert_pem + pki.root.cert_pem, "tls.key": pki.intermediate.key_pem}

    def panel_issued_by(pki: Any) -> x509.Certificate:
        subject = pki.intermediate.cert.subject.rfc4514_string()
        platform.wait_status("Reseller", reseller, None, lambda o: (o["status"].get("platformCertificate") or {})
                             .get("issuer") == subject, f"the panel's certificate from {subject}", TIMEOUT)
        leaf = x509.load_pem_x509_certificates((secret_data(core, "tenantry-platform-tls", control) or {})
                                               ["tls.crt"])[0]
        leaf.verify_directly_issued_by(pki.intermediate.cert)
        assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName) == [panel]
        return leaf

    first = new_pki(platform.unique_name("First"))
    put_tls_secret(core, "reseller-ca", control, bought(first))
    panel_issued_by(first)
    platform.wait_condition("Reseller", reseller, None, "CertificateReady", "True", "CertificatesReady", TIMEOUT)

    # A reconcile for another reason leaves the panel's certificate as it is.
    version = core.read_namespaced_secret("tenantry-platform-tls", control).metadata.resource_version
    platform.patch("Reseller", reseller, {"spec": {"licenses": 4}})
    wait_licences(platform, reseller, used=0, available=4)
    assert core.read_namespaced_secret("tenantry-platform-tls", control).metadata.resource_version == version

    # The reseller replaces its CA: the panel's leaf is reissued by the new one.
    second = new_pki(platform.unique_name("Second"))
    core.patch_namespaced_secret("reseller-ca", control, {"data": {
        k: base64.b64encode(v).decode() for k, v in bought(second).items()}})
    panel_issued_by(second)

    # A CA constrained to other names cannot issue for the panel: Tenantry's CA does, and it says so.
    narrow = new_pki(platform.unique_name("Narrow"), permitted=[f"shop.{domain}"])
    core.patch_namespaced_secret("reseller-ca", control, {"data": {
        k: base64.b64encode(v).decode() for k, v in bought(narrow).items()}})
    obj = platform.wait_condition("Reseller", reseller, None, "CertificateReady", "False",
                                  "PlatformDomainNotPermitted", TIMEOUT)
    message = condition(obj, "CertificateReady")["message"]
    for part in (panel, "Tenantry's own CA", f"Secret {control}/reseller-ca", f"permit only shop.{domain}",
                 "spec.platformDomain"):
        assert part in message, message
    assert "Tenantry CA" in obj["status"]["platformCertificate"]["issuer"]
    assert obj["status"]["regions"][0]["certificate"]["issuer"] == narrow.root.cert.subject.rfc4514_string()
    platform.wait_event("default", reseller, "PlatformDomainNotPermitted", "Warning", timeout=TIMEOUT)


# -- finding 3: owners and admins --------------------------------------------------------------------


SYSTEM_SUBJECTS = [{"kind": "Group", "name": "system:authenticated"}, {"kind": "User", "name": "system:anonymous"},
                   {"kind": "Group", "name": "system:serviceaccounts"}]


def test_tenant_owners_are_people_or_service_accounts_of_the_tenant_itself(
        platform: Platform, api_client: client.ApiClient, can_i: Callable[..., bool]) -> None:
    region, reseller = platform.setup()
    control = f"reseller-{reseller}"

    # Kubernetes' own users and groups are refused by the API, at `kubectl apply`.
    for subject in SYSTEM_SUBJECTS:
        with pytest.raises(client.ApiException) as refused:
            platform.tenant(reseller, region, owners=[subject])
        assert refused.value.status == 422
        assert "spec.owners" in refused.value.body and subject["name"] in refused.value.body

    # A running neighbour, whose ServiceAccount the reseller tries to make an owner of a new tenant.
    bystander = platform.tenant(reseller, region)
    platform.wait_tenant(reseller, bystander, timeout=TIMEOUT)
    bystander_ns = f"{reseller}--{bystander}"
    before = client.RbacAuthorizationV1Api(api_client).read_namespaced_role_binding(
        "tenantry-owners", bystander_ns).metadata.resource_version
    person = {"kind": "User", "name": "joe@bakery.example"}
    foreign = {"kind": "ServiceAccount", "namespace": bystander_ns, "name": "default"}
    tenant = platform.tenant(reseller, region, owners=[person, foreign])
    namespace = f"{reseller}--{tenant}"
    obj = platform.wait_refused(reseller, tenant, "InvalidOwner", TIMEOUT)
    message = condition(obj, "Admitted")["message"]
    assert message == (
        f"spec.owners[1]: ServiceAccount {bystander_ns}/default is outside namespace {namespace}, and only "
        f"ServiceAccounts of {namespace} may be named here; create the ServiceAccount in {namespace}, or remove "
        "it from spec.owners. The tenant gets no namespace and nobody is granted anything; it is admitted by "
        "itself once spec.owners is fixed.")
    assert condition(obj, "Ready")["reason"] == "InvalidOwner"
    event = platform.wait_event(control, tenant, "InvalidOwner", "Warning")
    assert f"ServiceAccount {bystander_ns}/default" in event.message
    assert platform.namespace(namespace) is None
    wait_licences(platform, reseller, used=1, available=9)  # the refused tenant holds none
    # Nothing else is disturbed.
    assert client.RbacAuthorizationV1Api(api_client).read_namespaced_role_binding(
        "tenantry-owners", bystander_ns).metadata.resource_version == before

    # Fixed (a ServiceAccount of its own namespace is fine): admitted by itself.
    own = {"kind": "ServiceAccount", "namespace": namespace, "name": "deployer"}
    platform.patch("Tenant", tenant, {"spec": {"owners": [person, own]}}, control)
    platform.wait_tenant(reseller, tenant, timeout=TIMEOUT)
    assert binding_subjects(api_client, "tenantry-owners", namespace) == {
        ("User", "", "joe@bakery.example"), ("ServiceAccount", namespace, "deployer")}
    assert can_i(f"system:serviceaccount:{namespace}:deployer", [], "list", "secrets", namespace)

    # Admitted, then edited to name the neighbour's ServiceAccount: it keeps running, that subject
    # is never bound, the person keeps access.
    platform.patch("Tenant", tenant, {"spec": {"owners": [person, foreign]}}, control)
    obj = platform.wait_tenant(reseller, tenant, ready=False, reason="InvalidOwner", timeout=TIMEOUT)
    assert condition(obj, "Admitted")["status"] == "True" and obj["status"]["phase"] == "Active"
    assert condition(obj, "Ready")["message"].endswith(
        "The tenant keeps running; that subject is not bound, and the other owners keep their access.")
    wait_for(lambda: binding_subjects(api_client, "tenantry-owners", namespace) == {
        ("User", "", "joe@bakery.example")}, TIMEOUT, message="the owners' binding without the foreign account")
    assert not can_i(f"system:serviceaccount:{bystander_ns}:default",
                     ["system:serviceaccounts", f"system:serviceaccounts:{bystander_ns}"], "list", "secrets",
                     namespace)
    assert can_i("joe@bakery.example", [], "list", "secrets", namespace)
    platform.wait_event(control, tenant, "InvalidOwner", "Warning")


@contextlib.contextmanager
def tenant_crd_without_the_subject_rule(api: client.ApiClient, platform: Platform, reseller: str,
                                        region: str) -> Iterator[None]:
    """The Tenant CRD as an older Tenantry shipped it (no pattern on owner names), for objects stored
    before the upgrade; restored afterwards. Each switch is waited for with a dry-run create."""
    extensions = client.ApiextensionsV1Api(api)
    path = "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/owners/items/properties/name/pattern"
    raw = extensions.read_custom_resource_definition("tenants.tenantry.dev", _preload_content=False)
    pattern = json.loads(raw.data)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"]["owners"]["items"]["properties"]["name"].get("pattern")
    if pattern is None:  # CRDs of a Tenantry without the rule: they are that older version already
        yield
        return

    def accepted() -> bool:
        body = {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": "probe"},
                "spec": {"email": "probe@probe.example", "region": region, "plan": "small",
                         "owners": [{"kind": "Group", "name": "system:authenticated"}]}}
        try:
            client.CustomObjectsApi(api).create_namespaced_custom_object(
                "tenantry.dev", "v1alpha1", f"reseller-{reseller}", "tenants", body, dry_run="All")
        except client.ApiException as error:
            if error.status == 422:
                return False
            raise
        return True

    extensions.patch_custom_resource_definition("tenants.tenantry.dev", [{"op": "remove", "path": path}])
    try:
        wait_for(accepted, TIMEOUT, message="the Tenant CRD without the owner name rule")
        yield
    finally:
        extensions.patch_custom_resource_definition("tenants.tenantry.dev",
                                                    [{"op": "add", "path": path, "value": pattern}])
        wait_for(lambda: not accepted(), TIMEOUT, message="the Tenant CRD with its owner name rule again")


def test_system_owners_stored_before_the_crd_rule_are_refused_and_unbound_by_the_operator(
        platform: Platform, api_client: client.ApiClient, can_i: Callable[..., bool]) -> None:
    """A platform upgrading Tenantry may hold Tenants whose owners the new CRD would refuse: the
    operator itself refuses them and takes the access away (the CRD rule alone would leave them)."""
    region, reseller = platform.setup()
    control = f"reseller-{reseller}"
    person = {"kind": "User", "name": "joe@bakery.example"}
    everyone = {"kind": "Group", "name": "system:authenticated"}
    running = platform.tenant(reseller, region, owners=[person])
    platform.wait_tenant(reseller, running, timeout=TIMEOUT)
    namespace = f"{reseller}--{running}"
    with tenant_crd_without_the_subject_rule(api_client, platform, reseller, region):
        newcomer = platform.tenant(reseller, region, owners=[everyone])
        platform.patch("Tenant", running, {"spec": {"owners": [person, everyone]}}, control)
    obj = platform.wait_refused(reseller, newcomer, "InvalidOwner", TIMEOUT)
    assert condition(obj, "Admitted")["message"].startswith(
        "spec.owners[0]: Group system:authenticated is a Kubernetes system group (names starting with system: "
        "stand for Kubernetes itself or for many users and workloads at once), and Tenantry never grants access "
        "to one; name the person's own User or Group instead, or remove it from spec.owners.")
    assert platform.namespace(f"{reseller}--{newcomer}") is None
    obj = platform.wait_tenant(reseller, running, ready=False, reason="InvalidOwner", timeout=TIMEOUT)
    assert condition(obj, "Admitted")["status"] == "True"
    assert binding_subjects(api_client, "tenantry-owners", namespace) == {("User", "", person["name"])}
    assert not can_i("someone@anywhere.example", ["system:authenticated"], "list", "secrets", namespace)
    assert can_i(person["name"], [], "list", "secrets", namespace)


def test_reseller_admins_are_never_system_subjects_or_foreign_service_accounts(
        platform: Platform, api_client: client.ApiClient, can_i: Callable[..., bool]) -> None:
    region = platform.region()
    for subject in SYSTEM_SUBJECTS:
        with pytest.raises(client.ApiException) as refused:
            platform.reseller(region, admins=[subject])
        assert refused.value.status == 422 and "spec.admins" in refused.value.body

    alice = {"kind": "User", "name": "alice@acme.example"}
    foreign = {"kind": "ServiceAccount", "namespace": "kube-system", "name": "default"}
    reseller = platform.reseller(region, admins=[alice, foreign])
    control = f"reseller-{reseller}"
    obj = platform.wait_condition("Reseller", reseller, None, "Ready", "False", "InvalidAdmin", TIMEOUT)
    assert condition(obj, "Ready")["message"] == (
        f"spec.admins[1]: ServiceAccount kube-system/default is outside namespace {control}, and only "
        f"ServiceAccounts of {control} may be named here; create the ServiceAccount in {control}, or remove it "
        "from spec.admins. That subject is not bound; the reseller's other admins and its tenants are not affected.")
    assert binding_subjects(api_client, "tenantry-reseller-admins", control) == {("User", "", alice["name"])}
    assert can_i(alice["name"], [], "create", "tenants", control, group="tenantry.dev")
    intruder = ("system:serviceaccount:kube-system:default", ["system:serviceaccounts",
                                                              "system:serviceaccounts:kube-system"])
    assert not can_i(*intruder, "list", "tenants", control, group="tenantry.dev")

    # Its tenants are served as usual; the support binding in their namespaces leaves the account out.
    platform.plan(reseller)
    tenant = platform.tenant(reseller, region)
    platform.wait_tenant(reseller, tenant, timeout=TIMEOUT)
    namespace = f"{reseller}--{tenant}"
    assert binding_subjects(api_client, "tenantry-reseller-support", namespace) == {("User", "", alice["name"])}
    assert not can_i(*intruder, "list", "pods", namespace)

    # The platform fixes the list: Ready again.
    platform.patch("Reseller", reseller, {"spec": {"admins": [alice]}})
    platform.wait_condition("Reseller", reseller, None, "Ready", "True", None, TIMEOUT)


# -- finding 4: hosts served by any Ingress of the cluster --------------------------------------------


def test_a_custom_domain_served_by_any_ingress_of_the_cluster_is_a_host_conflict(
        platform: Platform, api_client: client.ApiClient, namespace: str) -> None:
    """`namespace` plays the platform's own `monitoring` namespace, which Tenantry does not own."""
    region = platform.region(domainVerification="None")  # custom domains are routed without a DNS proof
    reseller = platform.reseller(region)
    control = f"reseller-{reseller}"
    platform.wait_namespace(control, timeout=TIMEOUT)
    platform.plan(reseller, custom_domains=2)
    suffix = f"{platform.unique_name('pf')}.example"
    grafana, prometheus, probe = f"grafana.{suffix}", f"prometheus.{suffix}", f"probe.{suffix}"
    make_ingress(api_client, namespace, "grafana", grafana)
    make_ingress(api_client, namespace, "prometheus", prometheus)

    # A new tenant claiming the platform's host is refused, and gets nothing.
    tenant = platform.tenant(reseller, region, domains=[{"host": grafana}])
    obj = platform.wait_refused(reseller, tenant, "HostConflict", TIMEOUT)
    assert condition(obj, "Admitted")["message"] == (
        f"Custom domain {grafana} is already served by Ingress {namespace}/grafana; one host is routed to one "
        "place only. Remove it from spec.domains, or have that Ingress changed first.")
    event = platform.wait_event(control, tenant, "HostConflict", "Warning")
    assert f"Ingress {namespace}/grafana" in event.message
    assert platform.namespace(f"{reseller}--{tenant}") is None

    # An admitted tenant adding one keeps running, and is not routed there.
    other = platform.tenant(reseller, region)
    platform.wait_tenant(reseller, other, timeout=TIMEOUT)
    other_ns = f"{reseller}--{other}"
    platform.patch("Tenant", other, {"spec": {"domains": [{"host": prometheus}]}}, control)
    obj = platform.wait_tenant(reseller, other, ready=False, reason="HostConflict", timeout=TIMEOUT)
    assert condition(obj, "Admitted")["status"] == "True"
    assert f"Ingress {namespace}/prometheus" in domain_message(obj, prometheus)
    assert condition(obj, "DomainsRouted")["reason"] == "HostConflict"
    assert prometheus not in routed_hosts(api_client, other_ns)

    # The platform retires those Ingresses: both tenants get their hosts by themselves.
    networking = client.NetworkingV1Api(api_client)
    networking.delete_namespaced_ingress("grafana", namespace)
    networking.delete_namespaced_ingress("prometheus", namespace)
    platform.wait_tenant(reseller, tenant, timeout=TIMEOUT)
    platform.wait_tenant(reseller, other, timeout=TIMEOUT)
    tenant_ns = f"{reseller}--{tenant}"
    wait_for(lambda: grafana in routed_hosts(api_client, tenant_ns), TIMEOUT, message="grafana routed")
    wait_for(lambda: prometheus in routed_hosts(api_client, other_ns), TIMEOUT, message="prometheus routed")

    # Ingresses in the tenant's own namespace are its own business, and a platform Ingress made later
    # for a host a tenant already serves does not unroute the live site (the newcomer is the double).
    make_ingress(api_client, tenant_ns, "web", grafana)
    make_ingress(api_client, namespace, "late", grafana, probe)
    newcomer = platform.tenant(reseller, region, domains=[{"host": probe}])  # shows the index has "late"
    platform.wait_refused(reseller, newcomer, "HostConflict", TIMEOUT)
    platform.patch("Tenant", tenant, {"spec": {"displayName": "touched"}}, control)
    generation = platform.get("Tenant", tenant, control)["metadata"]["generation"]
    obj = platform.wait_status("Tenant", tenant, control, lambda o: o["status"].get("observedGeneration") == generation
                               and condition(o, "Ready")["status"] == "True", "the tenant reconciled, still Ready",
                               TIMEOUT)
    assert grafana in obj["status"]["hosts"] and grafana in routed_hosts(api_client, tenant_ns)

