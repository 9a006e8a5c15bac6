"""Journey 1: a platform's first day.

The platform admin installs Tenantry (the chart's RBAC), creates a Region, and two Resellers with the
certificates it bought: one with a registrar's wildcard chain (root -> intermediate -> leaf
`*.domain`), one with an issuing CA. It sees them Ready with the certificate's expiry in their status
and their licences counted; each reseller admin can run its own business and nobody else's.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from cryptography import x509
from journey_support import (
    METER_SA,
    OPERATOR_SA,
    Stage,
    admin_of,
    buy_ca,
    buy_wildcard,
    condition_is,
    metric_value,
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
from support.kubectl import Kubectl
from support.operator import OperatorProcess


def printed_columns(kubectl: Kubectl, *args: str) -> dict[str, str]:
    """The columns of `kubectl get ARGS` (one object) as a person reads them, by header."""
    header, row = kubectl.run("get", *args).stdout.splitlines()[:2]
    starts = [i for i, ch in enumerate(header) if ch != " " and (i == 0 or header[i - 1] == " ")]
    bounds = [*starts[1:], None]
    return {header[s:e].strip(): row[s:e].strip() for s, e in zip(starts, bounds, strict=True)}

LICENSES = 5


@pytest.fixture(scope="module")
def day_one(stage: Stage) -> dict[str, Any]:
    """The platform admin's first hour: a Region, a Reseller with a purchased wildcard chain, a
    Reseller with a purchased CA, each certificate put in the reseller's control namespace as a
    kubernetes.io/tls Secret, as docs/domains-and-tls.md says."""
    region = unique_name("day", max_length=30)
    wild, issuing = unique_name("wild", max_length=20), unique_name("ca", max_length=20)
    wild_domain, ca_domain = f"{wild}.example", f"{issuing}.example"
    wildcard = buy_wildcard(wild_domain, stage.tmp / "wildcard")
    ca = buy_ca(issuing, stage.tmp / "ca")
    stage.apply_as_platform(region_doc(region, verification="None"))
    stage.apply_as_platform(
        reseller_doc(wild, [reseller_region(region, wild_domain, {"mode": "Secret", "secretName": "wildcard"})],
                     licenses=LICENSES, platformDomain=f"panel.{wild_domain}"),
        reseller_doc(issuing, [reseller_region(region, ca_domain, {"mode": "Secret", "secretName": "issuing-ca"})],
                     licenses=LICENSES, platformDomain=f"panel.{ca_domain}"))
    for reseller in (wild, issuing):
        stage.wait_control_namespace(reseller)
    # The registrar's files: the certificate with its intermediate, the key, and the root as ca.crt.
    put_tls_secret(stage.platform_admin, f"reseller-{wild}", "wildcard", wildcard.fullchain_file,
                   wildcard.key_file, ca=wildcard.root_file)
    put_tls_secret(stage.platform_admin, f"reseller-{issuing}", "issuing-ca", ca.chain_file, ca.key_file)
    return {"region": region, "wild": wild, "issuing": issuing, "wildcard": wildcard, "ca": ca,
            "wild_domain": wild_domain, "ca_domain": ca_domain}


def test_the_chart_rbac_is_installed_with_least_privilege(stage: Stage) -> None:
    platform = stage.platform_admin
    # The three roles the operator binds exist (README: "Install and operate").
    names = platform.run("get", "clusterroles", "tenantry-reseller", "tenantry-reseller-support",
                         "tenantry-tenant-owner", "tenantry-operator", "tenantry-meter", "-o", "name").stdout.split()
    assert names == [f"clusterrole.rbac.authorization.k8s.io/{n}" for n in (
        "tenantry-reseller", "tenantry-reseller-support", "tenantry-tenant-owner", "tenantry-operator",
        "tenantry-meter")]
    # The operator writes status and children, never Regions, Resellers, pods or nodes.
    operator = stage.kubectl.as_user(OPERATOR_SA)
    assert operator.can_i("patch", "tenants.tenantry.dev", "--subresource=status", "-n", "reseller-x")
    assert operator.can_i("bind", "clusterroles.rbac.authorization.k8s.io/tenantry-tenant-owner")
    for verb, resource in (("update", "resellers.tenantry.dev"), ("create", "regions.tenantry.dev"),
                           ("create", "pods"), ("get", "nodes"), ("escalate", "clusterroles.rbac.authorization.k8s.io"),
                           ("bind", "clusterroles.rbac.authorization.k8s.io/cluster-admin")):
        assert not operator.can_i(verb, resource, "-A"), f"the operator may {verb} {resource}"
    # The meter only reads quotas and the Tenantry kinds: no Secret, no write.
    meter = stage.kubectl.as_user(METER_SA)
    assert meter.can_i("list", "resourcequotas", "-A")
    assert meter.can_i("watch", "tenants.tenantry.dev", "-A")
    for verb, resource in (("get", "secrets"), ("create", "resourcequotas"), ("patch", "tenants.tenantry.dev")):
        assert not meter.can_i(verb, resource, "-A"), f"the meter may {verb} {resource}"


def test_reseller_admins_can_run_their_own_business_and_nobody_elses(day_one: dict[str, Any],
                                                                      stage: Stage) -> None:
    wild, issuing = day_one["wild"], day_one["issuing"]
    alice = stage.reseller_admin(wild)
    own, other = f"reseller-{wild}", f"reseller-{issuing}"
    for verb in ("create", "list", "delete"):
        assert alice.can_i(verb, "tenants.tenantry.dev", "-n", own), f"{verb} tenants in {own}"
    assert alice.can_i("create", "plans.tenantry.dev", "-n", own)
    assert alice.can_i("create", "secrets", "-n", own)  # she supplies her own certificates
    assert alice.can_i("get", f"resellers.tenantry.dev/{wild}")
    assert alice.can_i("list", "regions.tenantry.dev")
    for args in (("create", "tenants.tenantry.dev", "-n", other), ("get", "secrets", "-n", other),
                 ("get", f"resellers.tenantry.dev/{issuing}"), ("update", f"resellers.tenantry.dev/{wild}"),
                 ("create", "resellers.tenantry.dev"), ("list", "namespaces"),
                 ("patch", "tenants.tenantry.dev", "--subresource=status", "-n", own)):
        assert not alice.can_i(*args), f"{admin_of(wild)} may {' '.join(args)}"
    # A colleague in the reseller's admin group has the same rights.
    colleague = stage.kubectl.as_user(f"bob@{wild}.example", f"{wild}-admins")
    assert colleague.can_i("create", "tenants.tenantry.dev", "-n", own)
    assert not colleague.can_i("create", "tenants.tenantry.dev", "-n", other)
    # Real requests, as the other reseller's admin would type them.
    stage.reseller_admin(issuing).forbidden("get", "tenants", "-n", own)
    stage.reseller_admin(issuing).forbidden("get", "secret", "wildcard", "-n", own)


def test_a_reseller_with_a_purchased_wildcard_chain_is_ready_and_counts_its_licences(
        day_one: dict[str, Any], stage: Stage, operator: OperatorProcess) -> None:
    wild, region, domain = day_one["wild"], day_one["region"], day_one["wild_domain"]
    wildcard = day_one["wildcard"]
    platform = stage.platform_admin

    reseller = wait_condition(platform, "Ready", "True", None, "reseller", wild)
    assert condition_is(reseller, "CertificateReady", "True"), reseller["status"].get("conditions")
    certificate = reseller["status"]["regions"][0]["certificate"]
    assert parse_time(certificate["notAfter"]) == wildcard.not_after
    assert certificate["dnsNames"] == [f"*.{domain}"]
    licenses = reseller["status"]["licenses"]
    assert (licenses["total"], licenses["used"], licenses["available"]) == (LICENSES, 0, LICENSES)
    # Its panel domain is covered by the wildcard: served with the purchased certificate too.
    assert reseller["status"]["platformCertificate"]["dnsNames"] == [f"*.{domain}"]
    panel = x509.load_pem_x509_certificates(secret_value(platform, f"reseller-{wild}", "tenantry-platform-tls",
                                                         "tls.crt"))
    assert panel[0] == wildcard.leaf.cert
    # Before the certificate was supplied it said so, as a Warning the platform admin reads.
    assert "SecretNotFound" in platform.describe("reseller", wild)
    # The expiry the alerts watch is the purchased certificate's.
    wait_for(lambda: metric_value(operator.metrics(), "tenantry_certificate_expiry_timestamp_seconds",
                                  namespace=f"reseller-{wild}", name="wildcard", host=f"*.{domain}")
             == wildcard.not_after.timestamp(), timeout=30, message="the wildcard's expiry metric")

    # The reseller signs up a tenant it runs itself (no owners): it gets the purchased certificate.
    alice = stage.reseller_admin(wild)
    plan = plan_doc(wild, "starter")
    tenant = unique_name("shop", max_length=40)
    alice.apply(plan, tenant_doc(wild, tenant, region, "starter"))
    obj = wait_condition(alice, "Ready", "True", None, "tenant", tenant, "-n", f"reseller-{wild}")
    host = f"{tenant}.{domain}"
    assert obj["status"]["hosts"] == [host]
    namespace = f"{wild}--{tenant}"
    served = x509.load_pem_x509_certificates(secret_value(alice, namespace, f"tenantry-tls-{host}", "tls.crt"))
    assert served[0] == wildcard.leaf.cert
    # The licence it took is counted where the platform and the reseller look.
    wait_object(platform, lambda o: o["status"]["licenses"]["used"] == 1
                and o["status"]["licenses"]["available"] == LICENSES - 1, "reseller", wild,
                message="the reseller's status to count the tenant's licence")
    assert alice.jsonpath("{.status.licenses.used}", "reseller", wild) == "1"
    assert metric_value(operator.metrics(), "tenantry_tenant_ready", namespace=f"reseller-{wild}",
                        reseller=wild, tenant=tenant) == 1
    # The Region shows what it sold: both resellers' allotments, and the tenant.
    region_obj = wait_object(platform, lambda o: (o.get("status") or {}).get("tenants", 0) >= 1, "region", region,
                             message="the Region to count the tenant")
    assert region_obj["status"]["resellers"] == 2
    assert region_obj["status"]["allocated"]["cpu"] == "32"
    # `kubectl get reseller` shows it Ready, with its licences used and bought.
    assert printed_columns(platform, "reseller", wild) | {"AGE": ""} == {
        "NAME": wild, "COMPANY": f"{wild} Hosting", "USED": "1", "TOTAL": str(LICENSES), "TENANTS": "1",
        "ACTIVE": "true", "READY": "True", "AGE": ""}


def test_a_reseller_with_a_purchased_ca_issues_a_certificate_per_tenant(day_one: dict[str, Any],
                                                                         stage: Stage) -> None:
    issuing, region, domain, ca = day_one["issuing"], day_one["region"], day_one["ca_domain"], day_one["ca"]
    platform = stage.platform_admin
    reseller = wait_condition(platform, "Ready", "True", None, "reseller", issuing)
    assert condition_is(reseller, "CertificateReady", "True"), reseller["status"].get("conditions")
    assert parse_time(reseller["status"]["regions"][0]["certificate"]["notAfter"]) == ca.not_after

    # A tenant with an owner: its own leaf from the CA, never the CA's key.
    alice = stage.reseller_admin(issuing)
    tenant = unique_name("bakery", max_length=40)
    alice.apply(plan_doc(issuing, "starter"),
                tenant_doc(issuing, tenant, region, "starter", owners=[{"kind": "User", "name": owner_of(tenant)}]))
    obj = wait_condition(alice, "CertificateReady", "True", None, "tenant", tenant, "-n", f"reseller-{issuing}")
    host, namespace = f"{tenant}.{domain}", f"{issuing}--{tenant}"
    owner = stage.owner(tenant)
    leaf = x509.load_pem_x509_certificates(secret_value(owner, namespace, f"tenantry-tls-{host}", "tls.crt"))[0]
    leaf.verify_directly_issued_by(ca.pki.intermediate.cert)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sans == [host]
    assert secret_value(owner, namespace, f"tenantry-tls-{host}", "tls.key") != ca.pki.intermediate.key_pem
    entry = next(c for c in obj["status"]["certificates"] if c["host"] == host)
    assert parse_time(entry["notAfter"]) == leaf.not_valid_after_utc
    assert leaf.not_valid_after_utc > datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)
    # The owner cannot reach the CA's key in the control namespace.
    owner.forbidden("get", "secret", "issuing-ca", "-n", f"reseller-{issuing}")
    wait_object(platform, lambda o: o["status"]["licenses"]["used"] == 1, "reseller", issuing,
                message="the reseller's status to count the tenant's licence")


def test_the_resellers_panel_is_served_under_the_ca_it_bought(day_one: dict[str, Any], stage: Stage) -> None:
    """The reseller's own panel (`spec.platformDomain`) is a production host like its tenants': with
    a CA supplied in mode Secret it must not get a leaf of the operator's self-signed CA, which every
    browser warns about."""
    issuing, domain, ca = day_one["issuing"], day_one["ca_domain"], day_one["ca"]
    platform = stage.platform_admin
    bought = ca.pki.intermediate.cert.subject.rfc4514_string()

    def panel_issuer(reseller: dict[str, Any]) -> str | None:
        return ((reseller.get("status") or {}).get("platformCertificate") or {}).get("issuer")

    # The first leaf may predate the operator's first sight of the CA Secret; the bought CA's must follow.
    wait_object(platform, lambda o: panel_issuer(o) == bought, "reseller", issuing,
                message=f"panel.{domain}'s certificate in the Reseller's status issued by the CA it bought ({bought})")
    panel = x509.load_pem_x509_certificates(secret_value(platform, f"reseller-{issuing}", "tenantry-platform-tls",
                                                         "tls.crt"))[0]
    panel.verify_directly_issued_by(ca.pki.intermediate.cert)
