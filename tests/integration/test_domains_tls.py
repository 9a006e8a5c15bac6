"""Custom domains and TLS on the real control plane with the operator running (issue 4).

Certificates the tests supply are made with `cryptography` (support.pki); DNS ownership proofs are
answered by a real DNS server on loopback (support.dns.TEST_DNS, the operator's `dnsResolver`).
"""

from __future__ import annotations

import base64
import datetime
import time
from collections.abc import Mapping
from typing import Any

import pytest
from cryptography import x509
from kubernetes import client

from support.cluster import audit_events, audit_offset, wait_for
from support.dns import TEST_DNS
from support.operator import OPERATOR_USER, TEST_CONFIG, OperatorProcess
from support.pki import DAY, NOW, key_pem, new_pki
from support.platform import Platform, condition
from support.tls_secrets import put_tls_secret, secret_data
from tenantry.tls import certs

ISSUER_MISSING = "CertManagerMissing"


# -- helpers ----------------------------------------------------------------------------------------


def ingress_tls(api: client.ApiClient, namespace: str) -> dict[str, str | None] | None:
    """host -> TLS secret (None when routed without TLS) of the tenant's `tenantry` Ingress."""
    try:
        ingress = client.NetworkingV1Api(api).read_namespaced_ingress("tenantry", namespace)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    secrets = {h: t.secret_name for t in ingress.spec.tls or [] for h in t.hosts}
    return {rule.host: secrets.get(rule.host) for rule in ingress.spec.rules}


def leaf_of(data: Mapping[str, bytes]) -> x509.Certificate:
    return x509.load_pem_x509_certificates(data["tls.crt"])[0]


def cert_status(obj: Mapping[str, Any], host: str) -> dict[str, Any] | None:
    return next((c for c in obj["status"].get("certificates") or [] if c["host"] == host), None)


def domain_status(obj: Mapping[str, Any], host: str) -> dict[str, Any] | None:
    return next((d for d in obj["status"].get("domains") or [] if d["host"] == host), None)


def cert_condition(platform: Platform, reseller: str, tenant: str, status: str, reason: str | None = None,
                   timeout: float = 30) -> dict[str, Any]:
    return platform.wait_condition("Tenant", tenant, f"reseller-{reseller}", "CertificateReady", status, reason,
                                   timeout)


def operator_writes(audit_log: Any, since: int, *namespaces: str) -> list[tuple[str, str, str]]:
    """(verb, resource, name) of the operator's writes in these namespaces since the offset, other
    than Events and Plan status (tenant counts, refreshed a moment after a tenant changes)."""
    return [(e["verb"], e["objectRef"].get("resource", ""), e["objectRef"].get("name", ""))
            for e in audit_events(audit_log, since)
            if e.get("user", {}).get("username") == OPERATOR_USER
            and e["verb"] in ("create", "update", "patch", "delete")
            and e.get("objectRef", {}).get("namespace") in namespaces
            and e["objectRef"].get("resource") not in ("events", "plans")]


def reconciles(operator: OperatorProcess) -> float:
    """Tenant reconciles the operator has finished (its own metric)."""
    total = 0.0
    for line in operator.metrics().splitlines():
        if line.startswith('tenantry_operator_reconciles_total{kind="Tenant"'):
            total += float(line.rsplit(" ", 1)[1])
    return total


def operator_writes_cluster(audit_log: Any, since: int) -> list[tuple[str, str, str]]:
    return [(e["verb"], e["objectRef"].get("resource", ""), e["objectRef"].get("name", ""))
            for e in audit_events(audit_log, since) if e.get("user", {}).get("username") == OPERATOR_USER]


def no_key_in_logs_or_events(operator: OperatorProcess, core: client.CoreV1Api, *namespaces: str) -> None:
    assert "PRIVATE KEY" not in operator.log_text()
    for namespace in namespaces:
        for event in core.list_namespaced_event(namespace).items:
            assert "PRIVATE KEY" not in (event.message or "")


def region_without_verification(platform: Platform) -> str:
    return platform.region(domainVerification="None")


# -- SelfSigned, DNS proof, renewal, idleness ---------------------------------------------------------


def test_self_signed_hosts_dns_proof_renewal_and_no_needless_writes(
        platform: Platform, api_client: client.ApiClient, operator: OperatorProcess, audit_log: Any) -> None:
    core = platform.core
    region = platform.region()  # domainVerification: DNS
    reseller = platform.reseller(region, platformDomain=f"panel.{platform.unique_name('p')}.example")
    platform.wait_namespace(f"reseller-{reseller}")
    platform.plan(reseller, custom_domains=2)
    custom = f"www.{platform.unique_name('shop')}.example"
    tenant = platform.tenant(reseller, region, domains=[{"host": custom, "tls": {"mode": "SelfSigned"}}])
    namespace = f"{reseller}--{tenant}"
    default = f"{tenant}.{reseller}-cloud.example"

    # The default host is routed with a leaf from the reseller's CA, kept in the control namespace.
    obj = cert_condition(platform, reseller, tenant, "True")
    ca = wait_for(lambda: secret_data(core, "tenantry-ca", f"reseller-{reseller}"), message="the reseller CA")
    leaf_data = wait_for(lambda: secret_data(core, f"tenantry-tls-{default}", namespace), message="default leaf")
    ca_cert = x509.load_pem_x509_certificate(ca["tls.crt"])
    leaf_of(leaf_data).verify_directly_issued_by(ca_cert)
    certs.validate_bundle(leaf_data, default, datetime.datetime.now(datetime.UTC), min_validity=30 * DAY)
    assert wait_for(lambda: ingress_tls(api_client, namespace), message="ingress") == {
        default: f"tenantry-tls-{default}"}
    entry = cert_status(obj, default)
    assert entry is not None and entry["dnsNames"] == [default] and "Tenantry CA" in entry["issuer"]
    assert obj["status"]["hosts"] == [default]

    # The custom domain waits for its DNS proof; the token is in status.
    domain = domain_status(obj, custom)
    assert domain is not None and domain["verified"] is False and domain["token"].startswith("tenantry-")
    assert f"_tenantry-challenge.{custom}" in domain["message"]
    assert condition(obj, "DomainsRouted")["reason"] == "VerificationPending"

    # Waiting costs no writes: the operator looks every second, finds nothing, writes nothing.
    start = audit_offset(audit_log)
    asked = TEST_DNS.questions.count(f"_tenantry-challenge.{custom}")
    wait_for(lambda: TEST_DNS.questions.count(f"_tenantry-challenge.{custom}") >= asked + 3, timeout=20,
             message="the operator to ask DNS again")
    assert operator_writes(audit_log, start, namespace, f"reseller-{reseller}") == []

    TEST_DNS.set_txt(f"_tenantry-challenge.{custom}", "unrelated", domain["token"])
    wait_for(lambda: (ingress_tls(api_client, namespace) or {}).get(custom) == f"tenantry-tls-{custom}",
             timeout=30, message="the verified custom domain to be routed with TLS")
    obj = platform.wait_status("Tenant", tenant, f"reseller-{reseller}",
                               lambda o: (domain_status(o, custom) or {}).get("verified") is True
                               and cert_status(o, custom) is not None, "custom domain verified in status")
    assert obj["status"]["hosts"] == [default, custom]
    assert condition(obj, "CertificateReady")["status"] == "True"
    platform.wait_condition("Tenant", tenant, f"reseller-{reseller}", "DomainsRouted", "True")
    wait_for(lambda: {"VerificationPending", "DomainsRouted"}
             <= {e.reason for e in platform.events_for(f"reseller-{reseller}", tenant)},
             message="an Event when the domain waited for its proof, and when it was routed")

    # Reseller status: each region's certificate source and the platform domain's certificate.
    reseller_obj = platform.wait_status("Reseller", reseller, None,
                                        lambda o: "platformCertificate" in o.get("status", {}), "platform cert")
    assert reseller_obj["status"]["regions"][0]["certificate"]["issuer"] == ca_cert.subject.rfc4514_string()
    platform_cert = reseller_obj["status"]["platformCertificate"]
    assert platform_cert["dnsNames"] == [reseller_obj["spec"]["platformDomain"]]
    assert secret_data(core, "tenantry-platform-tls", f"reseller-{reseller}") is not None
    assert condition(reseller_obj, "CertificateReady")["status"] == "True"

    # The metric names each served host.
    metrics = operator.metrics()
    assert f'tenantry_certificate_expiry_timestamp_seconds{{host="{custom}",name="tenantry-tls-{custom}",' \
           f'namespace="{namespace}"}}' in metrics

    # A reseller change rolls through its tenants, and a tenant whose certificates are fine is not
    # written to: no Secret, Ingress or Tenant status write.
    start = audit_offset(audit_log)
    reconciled = reconciles(operator)
    platform.patch("Reseller", reseller, {"spec": {"licenses": 12}})
    platform.wait_status("Reseller", reseller, None, lambda o: o["status"]["licenses"]["total"] == 12, "licences")
    # The tenant is reconciled after the reseller changed; once its recheck and reconcile have run
    # (it asks DNS for nothing now), nothing of the tenant was written.
    wait_for(lambda: any(r == "resellers" for _, r, _ in operator_writes_cluster(audit_log, start))
             and reconciles(operator) > reconciled, message="the reseller status write and a tenant reconcile")
    assert operator_writes(audit_log, start, namespace, f"reseller-{reseller}") == []

    # Renewal: a leaf within certificateRenewBeforeDays of its end is replaced by a fresh one.
    authority = certs.supplied_authority({"tls.crt": ca["tls.crt"], "tls.key": ca["tls.key"]})
    short = certs.issue_leaf(authority, [default], datetime.datetime.now(datetime.UTC),
                             validity=datetime.timedelta(days=2))
    put_tls_secret(core, f"tenantry-tls-{default}", namespace, short)
    renewed = wait_for(lambda: (d := secret_data(core, f"tenantry-tls-{default}", namespace))
                       and leaf_of(d).not_valid_after_utc > NOW + 60 * DAY and d, message="the renewed leaf")
    leaf_of(renewed).verify_directly_issued_by(ca_cert)
    platform.wait_status("Tenant", tenant, f"reseller-{reseller}",
                         lambda o: (cert_status(o, default) or {}).get("notAfter")
                         == certs.rfc3339(leaf_of(renewed).not_valid_after_utc), "the renewed notAfter in status")

    # Removing the domain removes its route and its certificate.
    platform.patch("Tenant", tenant, {"spec": {"domains": []}}, f"reseller-{reseller}")
    wait_for(lambda: ingress_tls(api_client, namespace) == {default: f"tenantry-tls-{default}"},
             message="the custom domain to be unrouted")
    wait_for(lambda: secret_data(core, f"tenantry-tls-{custom}", namespace) is None,
             message="the custom domain's certificate to be deleted")

    # The reseller moves to another domain: its tenants follow, with new certificates.
    moved = f"{tenant}.{reseller}-moved.example"
    platform.patch("Reseller", reseller, {"spec": {"regions": [{
        "name": region, "domain": f"{reseller}-moved.example", "tls": {"mode": "SelfSigned"},
        "allotment": {"cpu": "16", "memory": "64Gi", "storage": "500Gi", "pods": "400"}}]}})
    wait_for(lambda: ingress_tls(api_client, namespace) == {moved: f"tenantry-tls-{moved}"},
             message="the tenant to move to the reseller's new domain")
    leaf_of(wait_for(lambda: secret_data(core, f"tenantry-tls-{moved}", namespace), message="new leaf")
            ).verify_directly_issued_by(ca_cert)
    wait_for(lambda: secret_data(core, f"tenantry-tls-{default}", namespace) is None,
             message="the old default host's certificate to be deleted")
    no_key_in_logs_or_events(operator, core, namespace, f"reseller-{reseller}")


# -- Secret mode: validation failures -----------------------------------------------------------------


def supplied_secret_tenant(platform: Platform) -> tuple[str, str, str, str]:
    """(reseller, tenant, tenant namespace, host): a tenant whose custom domain (routed without a DNS
    proof) takes its certificate from Secret `www-tls` in its namespace; the namespace exists."""
    region = region_without_verification(platform)
    reseller = platform.reseller(region)
    platform.wait_namespace(f"reseller-{reseller}")
    platform.plan(reseller, custom_domains=1)
    host = f"www.{platform.unique_name('sup')}.example"
    tenant = platform.tenant(reseller, region, domains=[{"host": host, "tls": {"mode": "Secret",
                                                                                 "secretName": "www-tls"}}])
    namespace = f"{reseller}--{tenant}"
    platform.wait_namespace(namespace)
    return reseller, tenant, namespace, host


def test_tenant_supplied_certificates_are_validated_with_a_reason_per_failure(
        platform: Platform, api_client: client.ApiClient, operator: OperatorProcess) -> None:
    core = platform.core
    reseller, tenant, namespace, host = supplied_secret_tenant(platform)
    obj = cert_condition(platform, reseller, tenant, "False", certs.SECRET_NOT_FOUND)
    assert "www-tls" in condition(obj, "CertificateReady")["message"]
    # Routed (the region trusts it) but without TLS until the certificate is good.
    assert wait_for(lambda: ingress_tls(api_client, namespace), message="ingress")[host] is None

    pki, impostor = new_pki("Own"), new_pki("Own")  # the impostor's CAs have the same names, other keys
    good = pki.leaf(host, key_kind="rsa")
    mismatched = pki.bundle(good)
    mismatched["tls.key"] = pki.leaf(host).key_pem
    broken = {"tls.crt": good.cert_pem + impostor.intermediate.cert_pem, "tls.key": good.key_pem}
    parent = host.partition(".")[2]
    cases = [
        (mismatched, certs.KEY_MISMATCH),
        (broken, certs.BROKEN_CHAIN),
        (pki.bundle(good, with_intermediate=False), certs.INCOMPLETE_CHAIN),
        (pki.bundle(pki.leaf(host, not_before=NOW - 100 * DAY, not_after=NOW - DAY)), certs.EXPIRED),
        (pki.bundle(pki.leaf(host, not_after=NOW + 2 * DAY)), certs.EXPIRES_SOON),
        (pki.bundle(pki.leaf("elsewhere.example")), certs.HOST_NOT_COVERED),
        (pki.bundle(pki.leaf(f"*.{parent.partition('.')[2]}")), certs.HOST_NOT_COVERED),  # wildcard too shallow
        ({"tls.crt": good.key_pem, "tls.key": good.cert_pem + pki.intermediate.cert_pem}, certs.SWAPPED_FILES),
    ]
    cases.append(({"tls.crt": good.cert_pem, "tls.key": key_pem(good.key, b"pass")}, certs.ENCRYPTED_KEY))
    cases.append(({"tls.crt": b"garbage", "tls.key": good.key_pem}, certs.INVALID_PEM))
    for data, reason in cases:
        put_tls_secret(core, "www-tls", namespace, data)
        found = cert_condition(platform, reseller, tenant, "False", reason)
        message = condition(found, "CertificateReady")["message"]
        assert "PRIVATE KEY" not in message and host in message
        assert (ingress_tls(api_client, namespace) or {}).get(host) is None, reason

    # Wildcards one label deep are honoured.
    wildcard = pki.leaf(f"*.{parent}", key_kind="ed25519")
    put_tls_secret(core, "www-tls", namespace, pki.bundle(wildcard, with_ca=True))
    obj = cert_condition(platform, reseller, tenant, "True")
    assert cert_status(obj, host)["dnsNames"] == [f"*.{parent}"]
    assert "Own Intermediate CA" in cert_status(obj, host)["issuer"]
    wait_for(lambda: (ingress_tls(api_client, namespace) or {}).get(host) == f"tenantry-tls-{host}",
             message="the validated copy in the Ingress")
    copy = secret_data(core, f"tenantry-tls-{host}", namespace)
    assert copy is not None and leaf_of(copy) == wildcard.cert
    no_key_in_logs_or_events(operator, core, namespace, f"reseller-{reseller}")


# -- Secret mode: a supplied Secret is watched ----------------------------------------------------------

# The tests' operator resyncs every TEST_CONFIG["resyncSeconds"] (60 s): what happens within
# WATCH_BOUND seconds of a Secret change is the metadata-only watch of supplied Secrets at work, and
# the operator's log line naming that Secret as the cause says so whatever the resync timing.
WATCH_BOUND = 10.0
RESYNC_SECONDS = float(TEST_CONFIG["resyncSeconds"])  # type: ignore[arg-type]
# A resync this short would let a missing watch pass the tests below unnoticed.
assert RESYNC_SECONDS > WATCH_BOUND * 3, "TEST_CONFIG's resyncSeconds is too short for the watch tests"


def secret_lines(operator: OperatorProcess, since: int, namespace: str, name: str) -> list[str]:
    """The operator's log lines, after offset `since`, saying that Secret namespace/name woke someone."""
    return [line for line in operator.log_text()[since:].splitlines() if f"Secret {namespace}/{name} was " in line]


def woken_by_secret(operator: OperatorProcess, since: int, namespace: str, name: str, verb: str, reseller: str,
                    tenant: str) -> bool:
    return any(f"was {verb};" in line and f"Tenant reseller-{reseller}/{tenant}" in line
               for line in secret_lines(operator, since, namespace, name))


def test_a_tenant_waiting_for_its_secret_gets_its_certificate_seconds_after_it_is_created(
        platform: Platform, api_client: client.ApiClient, operator: OperatorProcess) -> None:
    reseller, tenant, namespace, host = supplied_secret_tenant(platform)
    cert_condition(platform, reseller, tenant, "False", certs.SECRET_NOT_FOUND)
    assert wait_for(lambda: ingress_tls(api_client, namespace), message="ingress")[host] is None

    pki = new_pki("Own")
    since, started = len(operator.log_text()), time.monotonic()
    put_tls_secret(platform.core, "www-tls", namespace, pki.bundle(pki.leaf(host)))
    cert_condition(platform, reseller, tenant, "True", timeout=WATCH_BOUND)
    wait_for(lambda: (ingress_tls(api_client, namespace) or {}).get(host) == f"tenantry-tls-{host}",
             timeout=max(1.0, WATCH_BOUND - (time.monotonic() - started)), message="the host served with TLS")
    assert time.monotonic() - started < WATCH_BOUND
    wait_for(lambda: woken_by_secret(operator, since, namespace, "www-tls", "created", reseller, tenant),
             timeout=5, message="the operator's log line: the new Secret woke the tenant")


def test_a_renewed_supplied_certificate_is_served_within_seconds(
        platform: Platform, api_client: client.ApiClient, operator: OperatorProcess) -> None:
    core = platform.core
    reseller, tenant, namespace, host = supplied_secret_tenant(platform)
    pki = new_pki("Own")
    first = pki.leaf(host, not_after=NOW + 60 * DAY)
    put_tls_secret(core, "www-tls", namespace, pki.bundle(first))
    # At once with the watch; allowed up to a resync here, so that without it this test fails at the
    # renewal below, which is what it is about.
    cert_condition(platform, reseller, tenant, "True", timeout=RESYNC_SECONDS + 30)
    copy_name = f"tenantry-tls-{host}"
    wait_for(lambda: (d := secret_data(core, copy_name, namespace)) and leaf_of(d) == first.cert,
             message="the validated copy of the first certificate")

    # Renewed in place: same Secret, new key, serial and expiry. The copy the Ingress names follows.
    renewed = pki.leaf(host, not_after=NOW + 120 * DAY)
    assert renewed.cert.serial_number != first.cert.serial_number
    since, started = len(operator.log_text()), time.monotonic()
    put_tls_secret(core, "www-tls", namespace, pki.bundle(renewed))
    copy = wait_for(lambda: (d := secret_data(core, copy_name, namespace)) and leaf_of(d) == renewed.cert and d,
                    timeout=WATCH_BOUND, message="the renewed certificate in the copy")
    assert time.monotonic() - started < WATCH_BOUND
    assert copy["tls.key"] == renewed.key_pem
    platform.wait_status("Tenant", tenant, f"reseller-{reseller}",
                         lambda o: (cert_status(o, host) or {}).get("notAfter")
                         == certs.rfc3339(renewed.cert.not_valid_after_utc), "the renewed notAfter in status")
    assert (ingress_tls(api_client, namespace) or {}).get(host) == copy_name
    wait_for(lambda: woken_by_secret(operator, since, namespace, "www-tls", "replaced", reseller, tenant),
             timeout=5, message="the operator's log line: the replaced Secret woke the tenant")

    # Deleted: the tenant says so at once, and the last valid copy keeps serving.
    since, started = len(operator.log_text()), time.monotonic()
    core.delete_namespaced_secret("www-tls", namespace)
    obj = cert_condition(platform, reseller, tenant, "False", certs.SECRET_NOT_FOUND, timeout=WATCH_BOUND)
    assert time.monotonic() - started < WATCH_BOUND
    assert "last valid certificate is served" in condition(obj, "CertificateReady")["message"]
    assert leaf_of(secret_data(core, copy_name, namespace) or {}) == renewed.cert
    assert (ingress_tls(api_client, namespace) or {}).get(host) == copy_name
    assert woken_by_secret(operator, since, namespace, "www-tls", "deleted", reseller, tenant)
    no_key_in_logs_or_events(operator, core, namespace, f"reseller-{reseller}")


def test_secrets_nobody_names_wake_nobody(platform: Platform, operator: OperatorProcess) -> None:
    core = platform.core
    reseller, tenant, namespace, host = supplied_secret_tenant(platform)
    pki = new_pki("Own")
    put_tls_secret(core, "www-tls", namespace, pki.bundle(pki.leaf(host)))
    cert_condition(platform, reseller, tenant, "True")

    # Created, replaced, deleted: a Secret beside the tenant's own, and one of the same name in
    # another namespace (the reseller's). Nobody names either.
    since = len(operator.log_text())
    for where, name in ((namespace, "unrelated"), (f"reseller-{reseller}", "www-tls")):
        put_tls_secret(core, name, where, pki.bundle(pki.leaf(host)))
        put_tls_secret(core, name, where, pki.bundle(pki.leaf(host)))
        core.delete_namespaced_secret(name, where)
    # Then the Secret the tenant names. One watch delivers events in order, so once this one has
    # woken the tenant, the six before it were handled.
    put_tls_secret(core, "www-tls", namespace, pki.bundle(pki.leaf(host)))
    wait_for(lambda: woken_by_secret(operator, since, namespace, "www-tls", "replaced", reseller, tenant),
             timeout=WATCH_BOUND, message="the tenant's own Secret to wake it")
    assert secret_lines(operator, since, namespace, "unrelated") == []
    assert secret_lines(operator, since, f"reseller-{reseller}", "www-tls") == []


# -- key custody ----------------------------------------------------------------------------------------


def test_reseller_key_is_never_copied_where_tenant_owners_can_read_it(
        platform: Platform, api_client: client.ApiClient, impersonated_client: Any, can_i: Any,
        operator: OperatorProcess) -> None:
    core = platform.core
    region = region_without_verification(platform)
    reseller = platform.reseller(region)
    control = f"reseller-{reseller}"
    platform.wait_namespace(control)
    platform.plan(reseller)
    domain = f"{reseller}-cloud.example"
    pki = new_pki("Reseller")
    wildcard = pki.leaf(f"*.{domain}")
    put_tls_secret(core, "wildcard", control, pki.bundle(wildcard))

    hosted = platform.tenant(reseller, region, owners=[])  # run by the reseller itself: no owners
    owned = platform.tenant(reseller, region)  # with an owner, who can read Secrets in its namespace
    owner = f"owner@{owned}.example"
    for tenant in (hosted, owned):
        cert_condition(platform, reseller, tenant, "True")

    # The reseller switches the region to its wildcard certificate: the change rolls through.
    platform.patch("Reseller", reseller, {"spec": {"regions": [{
        "name": region, "domain": domain, "tls": {"mode": "Secret", "secretName": "wildcard"},
        "allotment": {"cpu": "16", "memory": "64Gi", "storage": "500Gi", "pods": "400"}}]}})
    cert_condition(platform, reseller, owned, "False", "ResellerKeyWithheld")
    obj = cert_condition(platform, reseller, hosted, "True")
    assert cert_status(obj, f"{hosted}.{domain}")["dnsNames"] == [f"*.{domain}"]
    hosted_ns, owned_ns = f"{reseller}--{hosted}", f"{reseller}--{owned}"
    wait_for(lambda: (secret_data(core, f"tenantry-tls-{hosted}.{domain}", hosted_ns) or {}).get("tls.key")
             == wildcard.key_pem, message="the copy for the tenant without owners")
    assert ingress_tls(api_client, owned_ns) == {f"{owned}.{domain}": None}
    # The reseller's own certificate is in the expiry metric too (alerts fire before it lapses).
    wait_for(lambda: f'tenantry_certificate_expiry_timestamp_seconds{{host="*.{domain}",name="wildcard",'
             f'namespace="{control}"}}' in operator.metrics(), message="the wildcard's expiry metric")

    def reseller_key_in(namespace: str) -> bool:
        return any(base64.b64decode((s.data or {}).get("tls.key", "")) == wildcard.key_pem
                   for s in core.list_namespaced_secret(namespace).items)

    # The owner reads every Secret of its namespace (its role allows it) and finds no reseller key;
    # the reseller's control namespace is out of reach.
    as_owner = client.CoreV1Api(impersonated_client(owner))
    readable = as_owner.list_namespaced_secret(owned_ns).items
    assert all(base64.b64decode((s.data or {}).get("tls.key", "")) != wildcard.key_pem for s in readable)
    assert not reseller_key_in(owned_ns)
    assert not can_i(owner, [], "get", "secrets", control, name="wildcard")
    assert not can_i(owner, [], "get", "secrets", control, name="tenantry-ca")
    with pytest.raises(client.ApiException) as denied:
        as_owner.read_namespaced_secret("tenantry-ca", control)
    assert denied.value.status == 403

    # The reseller renews its wildcard in place (same Secret): the renewal rolls through its tenants.
    renewed = pki.leaf(f"*.{domain}")
    put_tls_secret(core, "wildcard", control, pki.bundle(renewed))
    wait_for(lambda: (secret_data(core, f"tenantry-tls-{hosted}.{domain}", hosted_ns) or {}).get("tls.key")
             == renewed.key_pem, message="the renewed wildcard to reach the tenant")
    wildcard = renewed

    # The hosted tenant gains an owner: the copy is withdrawn.
    new_owner = f"new@{hosted}.example"
    platform.patch("Tenant", hosted, {"spec": {"owners": [{"kind": "User", "name": new_owner}]}}, control)
    cert_condition(platform, reseller, hosted, "False", "ResellerKeyWithheld")
    wait_for(lambda: not reseller_key_in(hosted_ns), message="the reseller key copy to be deleted")
    wait_for(lambda: can_i(new_owner, [], "list", "secrets", hosted_ns), message="the new owner's access")
    assert not reseller_key_in(hosted_ns)

    # A CA certificate in the Secret: a leaf per tenant, the CA key stays in the control namespace.
    put_tls_secret(core, "reseller-ca", control, {"tls.crt": pki.intermediate.cert_pem + pki.root.cert_pem,
                                                  "tls.key": pki.intermediate.key_pem})
    platform.patch("Reseller", reseller, {"spec": {"regions": [{
        "name": region, "domain": domain, "tls": {"mode": "Secret", "secretName": "reseller-ca"},
        "allotment": {"cpu": "16", "memory": "64Gi", "storage": "500Gi", "pods": "400"}}]}})
    for tenant, namespace in ((owned, owned_ns), (hosted, hosted_ns)):
        cert_condition(platform, reseller, tenant, "True")
        host = f"{tenant}.{domain}"
        leaf = wait_for(lambda h=host, n=namespace: secret_data(core, f"tenantry-tls-{h}", n), message="leaf")
        leaf_of(leaf).verify_directly_issued_by(pki.intermediate.cert)
        assert leaf["tls.key"] != pki.intermediate.key_pem
        assert all(pki.intermediate.key_pem not in base64.b64decode(v)
                   for s in core.list_namespaced_secret(namespace).items for v in (s.data or {}).values())
    no_key_in_logs_or_events(operator, core, owned_ns, hosted_ns, control)


# -- hijacking and limits ------------------------------------------------------------------------------


def test_hosts_cannot_be_taken_from_other_tenants_or_resellers(platform: Platform,
                                                               api_client: client.ApiClient) -> None:
    region = region_without_verification(platform)
    first = platform.reseller(region)
    second = platform.reseller(region)
    for reseller in (first, second):
        platform.wait_namespace(f"reseller-{reseller}")
        platform.plan(reseller, custom_domains=2)
    shop = f"shop.{platform.unique_name('brand')}.example"

    # `neighbour` is the older tenant (created first, and first by name should the second tie).
    neighbour = platform.tenant(first, region, platform.unique_name("aa"))
    platform.wait_tenant(first, neighbour)
    holder = platform.tenant(first, region, platform.unique_name("zz"), domains=[{"host": shop}])
    platform.wait_tenant(first, holder)
    wait_for(lambda: shop in (ingress_tls(api_client, f"{first}--{holder}") or {}), message="holder routed")

    # Another reseller's new tenant asks for the same host: refused, no namespace.
    thief = platform.tenant(second, region, domains=[{"host": shop}])
    obj = platform.wait_refused(second, thief, "HostConflict")
    assert "already used by another tenant" in condition(obj, "Admitted")["message"]
    assert platform.namespace(f"{second}--{thief}") is None

    # A host under any reseller's domain (here the first reseller's region domain) is refused.
    squatter = platform.tenant(second, region, domains=[{"host": f"login.{first}-cloud.example"}])
    obj = platform.wait_refused(second, squatter, "HostConflict")
    assert f"{first}-cloud.example" in condition(obj, "Admitted")["message"]

    # An admitted tenant that adds someone else's host keeps running but is not routed on it, even
    # when it is older: the host stays with the tenant that proved it (here: a trusted region).
    platform.patch("Tenant", neighbour, {"spec": {"domains": [{"host": shop}]}}, f"reseller-{first}")
    obj = platform.wait_tenant(first, neighbour, ready=False, reason="HostConflict")
    assert condition(obj, "Admitted")["status"] == "True"
    assert "HostConflict" in domain_status(obj, shop)["message"]
    assert condition(obj, "DomainsRouted")["reason"] == "HostConflict"
    assert shop not in (ingress_tls(api_client, f"{first}--{neighbour}") or {})
    assert shop in (ingress_tls(api_client, f"{first}--{holder}") or {})

    # Wildcards are refused by the API itself.
    with pytest.raises(client.ApiException) as refused:
        platform.tenant(first, region, domains=[{"host": f"*.{platform.unique_name('w')}.example"}])
    assert refused.value.status == 422

    # The plan's allowance: two domains on a plan with one.
    platform.plan(first, "one-domain", custom_domains=1)
    greedy = platform.tenant(first, region, plan="one-domain",
                             domains=[{"host": f"a.{platform.unique_name('g')}.example"},
                                      {"host": f"b.{platform.unique_name('g')}.example"}])
    platform.wait_refused(first, greedy, "TooManyDomains")


# -- Issuer mode without cert-manager --------------------------------------------------------------------


def test_issuer_mode_says_when_cert_manager_is_missing(platform: Platform, api_client: client.ApiClient) -> None:
    region = region_without_verification(platform)
    reseller = platform.reseller(region, regions=[{
        "name": region, "domain": f"{platform.unique_name('iss')}.example",
        "tls": {"mode": "Issuer", "issuerRef": {"kind": "ClusterIssuer", "name": "letsencrypt"}},
        "allotment": {"cpu": "16", "memory": "64Gi", "storage": "500Gi", "pods": "400"}}])
    platform.wait_namespace(f"reseller-{reseller}")
    platform.plan(reseller)
    tenant = platform.tenant(reseller, region)
    obj = cert_condition(platform, reseller, tenant, "False", ISSUER_MISSING)
    assert "cert-manager" in condition(obj, "CertificateReady")["message"]
    assert condition(obj, "Ready")["status"] == "True"  # the tenant runs; only its certificate waits
    namespace = f"{reseller}--{tenant}"
    assert list((wait_for(lambda: ingress_tls(api_client, namespace), message="ingress")).values()) == [None]
    platform.wait_event(f"reseller-{reseller}", tenant, ISSUER_MISSING)



CERT_MANAGER_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "certificates.cert-manager.io"},
    "spec": {"group": "cert-manager.io", "scope": "Namespaced",
             "names": {"kind": "Certificate", "plural": "certificates", "singular": "certificate"},
             "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                           "schema": {"openAPIV3Schema": {"type": "object",
                                                          "x-kubernetes-preserve-unknown-fields": True}}}]},
}


def test_issuer_mode_requests_a_certificate_and_reflects_its_readiness(
        platform: Platform, api_client: client.ApiClient) -> None:
    """cert-manager's CRD (the shape it serves) is installed for this test and removed after it; the
    test plays cert-manager: it issues the Secret and marks the Certificate Ready."""
    extensions = client.ApiextensionsV1Api(api_client)
    extensions.create_custom_resource_definition(CERT_MANAGER_CRD)
    try:
        objects = client.CustomObjectsApi(api_client)
        wait_for(lambda: objects.list_cluster_custom_object("cert-manager.io", "v1", "certificates") is not None,
                 message="the Certificate kind to be served")
        region = region_without_verification(platform)
        domain = f"{platform.unique_name('acme')}.example"
        reseller = platform.reseller(region, regions=[{
            "name": region, "domain": domain,
            "tls": {"mode": "Issuer", "issuerRef": {"kind": "ClusterIssuer", "name": "letsencrypt"}},
            "allotment": {"cpu": "16", "memory": "64Gi", "storage": "500Gi", "pods": "400"}}])
        platform.wait_namespace(f"reseller-{reseller}")
        platform.plan(reseller)
        tenant = platform.tenant(reseller, region)
        namespace, host = f"{reseller}--{tenant}", f"{tenant}.{domain}"

        obj = cert_condition(platform, reseller, tenant, "False", "CertificateNotReady")
        assert "letsencrypt" in condition(obj, "CertificateReady")["message"]
        certificate = objects.get_namespaced_custom_object("cert-manager.io", "v1", namespace, "certificates",
                                                           f"tenantry-{host}")
        assert certificate["spec"] == {"secretName": f"tenantry-tls-{host}", "dnsNames": [host],
                                       "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer",
                                                     "name": "letsencrypt"}}
        assert ingress_tls(api_client, namespace) == {host: None}

        pki = new_pki("ACME")
        leaf = pki.leaf(host)
        put_tls_secret(platform.core, f"tenantry-tls-{host}", namespace, pki.bundle(leaf))
        not_after = certs.rfc3339(leaf.cert.not_valid_after_utc)
        objects.patch_namespaced_custom_object_status(
            "cert-manager.io", "v1", namespace, "certificates", f"tenantry-{host}",
            {"status": {"notAfter": not_after, "conditions": [
                {"type": "Ready", "status": "True", "reason": "Ready", "message": "Certificate is up to date"}]}})
        obj = cert_condition(platform, reseller, tenant, "True")
        assert cert_status(obj, host) == {"host": host, "issuer": "ClusterIssuer/letsencrypt", "dnsNames": [host],
                                          "notAfter": not_after}
        wait_for(lambda: ingress_tls(api_client, namespace) == {host: f"tenantry-tls-{host}"},
                 message="the Ingress to use cert-manager's Secret")

        # Back to SelfSigned: the Certificate goes, and so does the key cert-manager left behind.
        platform.patch("Reseller", reseller, {"spec": {"regions": [{
            "name": region, "domain": domain, "tls": {"mode": "SelfSigned"},
            "allotment": {"cpu": "16", "memory": "64Gi", "storage": "500Gi", "pods": "400"}}]}})
        wait_for(lambda: not objects.list_namespaced_custom_object("cert-manager.io", "v1", namespace,
                                                                   "certificates")["items"],
                 message="the Certificate to be pruned")
        fresh = wait_for(lambda: (d := secret_data(platform.core, f"tenantry-tls-{host}", namespace))
                         and d["tls.key"] != leaf.key_pem and d, message="an operator-issued leaf")
        assert "Tenantry CA" in leaf_of(fresh).issuer.rfc4514_string()
        cert_condition(platform, reseller, tenant, "True")
    finally:
        extensions.delete_custom_resource_definition(CERT_MANAGER_CRD["metadata"]["name"])
