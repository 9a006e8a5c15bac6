"""The TLS phase's pure decisions (tenantry.tls.decide), input by input: no apiserver, no DNS, no clock.

Each test builds the inputs controller/tls.py would gather and checks the decision: which hosts are
routed, which certificate each gets by mode (a bought wildcard with its chain, a bought CA,
Tenantry's CA, cert-manager), what happens to a missing, expired or mismatched Secret, and when a
certificate in place is kept or issued again (the renewal window).
"""

from __future__ import annotations

import datetime
from typing import Any

from support.pki import DAY, NOW, make_cert, new_pki
from tenantry.admission import HOST_CONFLICT, TOO_MANY_DOMAINS
from tenantry.builders.tls import ANNOTATION_SOURCE, CA_SECRET, decode_data, encode_data, tls_secret_name
from tenantry.models import TLSConfig
from tenantry.tls import certs, decide
from tenantry.tls.certs import Authority
from tenantry.tls.decide import (
    CustomDomain,
    HostInputs,
    Hosts,
    Policy,
    RegionInputs,
    ResellerInputs,
    Tenancy,
    WantedHost,
)
from tenantry.tls.dns import DnsError

POLICY = Policy(renew_before=30 * DAY, min_validity=7 * DAY)
HOST = "bakery.acme.example"
TENANCY = Tenancy("acme", "acme--bakery", {"app.kubernetes.io/managed-by": "tenantry"}, has_owners=False)
OWNED = Tenancy("acme", "acme--bakery", {"app.kubernetes.io/managed-by": "tenantry"}, has_owners=True)
RESELLER_BODY = {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Reseller",
                 "metadata": {"name": "acme", "uid": "r-uid"}, "spec": {}}


def tls(mode: str, **fields: Any) -> TLSConfig:
    return TLSConfig.model_validate({"mode": mode, **fields})


def live(manifest: dict[str, Any]) -> dict[str, Any]:
    """A manifest as it would come back from the apiserver (what the Store holds)."""
    return {**manifest, "metadata": {**manifest["metadata"], "resourceVersion": "1"}}


def secret_with(data: dict[str, bytes], source: str | None = None, name: str = tls_secret_name(HOST)) -> dict[str, Any]:
    annotations = {ANNOTATION_SOURCE: source} if source else {}
    return {"kind": "Secret", "metadata": {"name": name, "namespace": TENANCY.namespace, "annotations": annotations},
            "data": encode_data(data)}


def tenantry_ca() -> Authority:
    return certs.issue_ca("ACME (acme) Tenantry CA", NOW)


def decide_host(tenancy: Tenancy, host_tls: TLSConfig, *, default: bool = True, now: datetime.datetime = NOW,
                **inputs: Any) -> decide.HostCertificate:
    return decide.host_certificate(tenancy, HostInputs(WantedHost(HOST, host_tls, default), **inputs), now, POLICY)


# -- which hosts are routed -----------------------------------------------------------------------


def hosts(*domains: CustomDomain, allowed: int = 5, verification: str = "DNS",
          taken: tuple[str, str] | None = None) -> Hosts:
    return Hosts(HOST, tls("SelfSigned"), taken, "acme.example", domains, allowed, verification)


def domain(host: str, **fields: Any) -> CustomDomain:
    return CustomDomain(host, tls("SelfSigned"), f"token-{host}", **fields)


def test_a_custom_domain_is_routed_once_its_txt_record_holds_the_token() -> None:
    shop = domain("shop.example")
    assert decide.challenges(hosts(shop)) == ["shop.example"]
    pending = decide.route_hosts(hosts(shop), {"shop.example": ["something else"]})
    assert [w.host for w in pending.wanted] == [HOST] and pending.recheck
    assert pending.unrouted[0][1] == "VerificationPending" and "token-shop.example" in pending.unrouted[0][2]
    proven = decide.route_hosts(hosts(shop), {"shop.example": ["token-shop.example"]})
    assert [w.host for w in proven.wanted] == [HOST, "shop.example"] and not proven.recheck
    assert proven.proven == ["shop.example"] and proven.domains[0]["verified"] is True


def test_a_proven_domain_stays_routed_without_asking_dns_again() -> None:
    shop = domain("shop.example", previous={"host": "shop.example", "verified": True, "token": "token-shop.example"})
    assert decide.challenges(hosts(shop)) == []
    assert [w.host for w in decide.route_hosts(hosts(shop), {}).wanted] == [HOST, "shop.example"]
    # A proof of another token (a new Tenant of the same name) does not count.
    stale = domain("shop.example", previous={"host": "shop.example", "verified": True, "token": "old"})
    assert decide.challenges(hosts(stale)) == ["shop.example"]


def test_a_resolver_failure_is_said_and_looked_at_again() -> None:
    routing = decide.route_hosts(hosts(domain("shop.example")), {"shop.example": DnsError("timed out")})
    assert routing.recheck and "could not be checked (timed out)" in routing.domains[0]["message"]


def test_domains_beyond_the_plan_and_held_hosts_are_not_routed_nor_asked_for() -> None:
    first, held, extra = domain("a.example"), domain("b.example", conflict="Tenant x holds it."), domain("c.example")
    inputs = hosts(first, held, extra, allowed=2, verification="None")
    assert decide.challenges(inputs) == []
    routing = decide.route_hosts(inputs, {})
    assert [w.host for w in routing.wanted] == [HOST, "a.example"]
    assert [(h, r) for h, r, _ in routing.unrouted] == [("b.example", HOST_CONFLICT), ("c.example", TOO_MANY_DOMAINS)]
    condition = decide.tenant_tls(routing, [], ["a.example", "b.example", "c.example"]).domains_condition
    assert condition is not None and condition.status is False and condition.reason == HOST_CONFLICT


def test_a_default_host_on_a_domain_another_reseller_holds_is_not_routed() -> None:
    routing = decide.route_hosts(hosts(taken=("other", "acme.example")), {})
    assert routing.wanted == [] and routing.unrouted[0][:2] == (HOST, HOST_CONFLICT)
    condition = decide.tenant_tls(routing, [], []).domains_condition
    assert condition is not None and condition.status is False and "reseller other" in condition.message


# -- SelfSigned: Tenantry's CA, and the renewal window ---------------------------------------------


def test_a_leaf_from_the_tenantry_ca_is_kept_until_the_renewal_window() -> None:
    ca = tenantry_ca()
    first = decide_host(TENANCY, tls("SelfSigned"), authority=ca)
    assert first.problem is None and first.note and first.route.tls_secret == tls_secret_name(HOST)
    kept = decide_host(TENANCY, tls("SelfSigned"), authority=ca, live_copy=live(first.children[0]))
    assert kept.children == first.children and kept.note is None  # same manifest: nothing to write
    # Inside renewBefore of its notAfter, the same inputs give a new leaf.
    not_after = datetime.datetime.fromisoformat(first.status["notAfter"].replace("Z", "+00:00"))
    later = not_after - POLICY.renew_before + DAY
    renewed = decide_host(TENANCY, tls("SelfSigned"), authority=ca, live_copy=live(first.children[0]), now=later)
    assert renewed.note and renewed.children != first.children
    # A leaf of another CA (the CA was replaced) is issued again, too.
    other = decide_host(TENANCY, tls("SelfSigned"), authority=tenantry_ca(), live_copy=live(first.children[0]))
    assert other.note and other.children != first.children


def test_without_the_reseller_ca_the_host_says_why() -> None:
    problem = certs.CertificateProblem(decide.CA_UNAVAILABLE, "The control namespace does not exist yet.")
    result = decide_host(TENANCY, tls("SelfSigned"), authority=problem)
    assert result.problem == (decide.CA_UNAVAILABLE, "The control namespace does not exist yet.")
    assert result.route.tls_secret is None and result.children == []


def test_the_reseller_ca_is_reused_while_good_and_made_anew_otherwise() -> None:
    ca = tenantry_ca()
    data = certs.authority_secret_data(ca)
    assert decide.reseller_ca("acme", data, True, NOW, POLICY, "ACME") == (ca, False)
    near_expiry = NOW + certs.CA_VALIDITY - POLICY.renew_before + DAY
    fresh, new = decide.reseller_ca("acme", data, True, near_expiry, POLICY, "ACME")
    assert new and fresh != ca and "ACME (acme) Tenantry CA" in certs.cert_info(fresh.cert).subject
    assert decide.reseller_ca("acme", None, True, NOW, POLICY, "ACME")[1] is True
    try:
        decide.reseller_ca("acme", None, False, NOW, POLICY, "ACME")
    except certs.CertificateProblem as problem:
        assert problem.reason == decide.CA_UNAVAILABLE and "reseller-acme" in problem.message
    else:
        raise AssertionError("a CA was made without its namespace")
    assert decide.ca_manifest(RESELLER_BODY, ca)["metadata"]["name"] == CA_SECRET


# -- Secret: the tenant's own certificate ---------------------------------------------------------


def test_a_tenant_certificate_is_validated_then_copied() -> None:
    pki = new_pki()
    leaf = pki.leaf(HOST)
    result = decide_host(OWNED, tls("Secret", secretName="mine"), default=False, supplied=pki.bundle(leaf))
    assert result.problem is None and result.note
    copy = result.children[0]
    assert copy["metadata"]["name"] == tls_secret_name(HOST)
    assert copy["metadata"]["annotations"][ANNOTATION_SOURCE] == "acme--bakery/mine"
    assert decode_data(copy) == pki.bundle(leaf)


def test_missing_expired_and_mismatched_tenant_secrets_are_named() -> None:
    pki = new_pki()
    mine = tls("Secret", secretName="mine")
    missing = decide_host(OWNED, mine, default=False, supplied=None)
    assert missing.problem is not None and missing.problem[0] == certs.SECRET_NOT_FOUND
    assert "acme--bakery/mine does not exist" in missing.problem[1] and missing.route.tls_secret is None
    expired = pki.leaf(HOST, not_before=NOW - 100 * DAY, not_after=NOW - DAY)
    assert decide_host(OWNED, mine, default=False, supplied=pki.bundle(expired)).problem[0] == certs.EXPIRED
    other_key = {**pki.bundle(pki.leaf(HOST)), "tls.key": pki.bundle(pki.leaf(HOST))["tls.key"]}
    assert decide_host(OWNED, mine, default=False, supplied=other_key).problem[0] == certs.KEY_MISMATCH
    wrong_host = pki.leaf("other.example")
    assert decide_host(OWNED, mine, default=False,
                       supplied=pki.bundle(wrong_host)).problem[0] == certs.HOST_NOT_COVERED
    name = decide_host(OWNED, tls("Secret", secretName="tenantry-x"), default=False, supplied=pki.bundle(wrong_host))
    assert name.problem is not None and name.problem[0] == decide.INVALID_SECRET_NAME
    assert decide.supplied_secret(OWNED, WantedHost(HOST, tls("Secret", secretName="tenantry-x"), False)) is None


def test_a_broken_replacement_keeps_the_last_good_copy_serving() -> None:
    pki = new_pki()
    good = decide_host(OWNED, tls("Secret", secretName="mine"), default=False, supplied=pki.bundle(pki.leaf(HOST)))
    broken = decide_host(OWNED, tls("Secret", secretName="mine"), default=False, supplied={"tls.crt": b"junk"},
                         live_copy=live(good.children[0]))
    assert broken.problem is not None and "last valid certificate is served" in broken.problem[1]
    assert broken.route.tls_secret == tls_secret_name(HOST) and decode_data(broken.children[0]) == decode_data(
        good.children[0])
    # Once the last copy has expired itself, nothing is served.
    expired_copy = secret_with(pki.bundle(pki.leaf(HOST, not_before=NOW - 100 * DAY, not_after=NOW - DAY)),
                               source="acme--bakery/mine")
    dead = decide_host(OWNED, tls("Secret", secretName="mine"), default=False, supplied={"tls.crt": b"junk"},
                       live_copy=expired_copy)
    assert dead.route.tls_secret is None and dead.children == []


# -- Secret: the reseller's bought wildcard and chain, or its bought CA -----------------------------


def test_a_bought_wildcard_with_its_chain_is_copied_only_where_no_owner_can_read_it() -> None:
    pki = new_pki()
    wildcard = pki.bundle(pki.leaf("*.acme.example"))
    region = tls("Secret", secretName="wild")
    assert decide.supplied_secret(TENANCY, WantedHost(HOST, region, True)) == ("reseller-acme", "wild")
    hosted = decide_host(TENANCY, region, supplied=wildcard)
    assert hosted.problem is None and decode_data(hosted.children[0]) == wildcard
    assert hosted.children[0]["metadata"]["annotations"][ANNOTATION_SOURCE] == "reseller-acme/wild"
    assert hosted.status is not None and hosted.status["dnsNames"] == ["*.acme.example"]

    owned = decide_host(OWNED, region, supplied=wildcard, live_copy=live(hosted.children[0]))
    assert owned.problem is not None and owned.problem[0] == decide.RESELLER_KEY_WITHHELD
    assert owned.children == [] and owned.route.tls_secret is None
    assert owned.withdraw == tls_secret_name(HOST)  # the copy made before the owners came goes now
    assert "PRIVATE KEY" not in owned.problem[1]
    # A broken wildcard does not keep a reseller's key where owners can read it either.
    broken = decide_host(OWNED, region, supplied={"tls.crt": b"junk"}, live_copy=live(hosted.children[0]))
    assert broken.children == [] and broken.withdraw == tls_secret_name(HOST)


def test_a_wildcard_without_its_intermediate_is_refused() -> None:
    pki = new_pki()
    bare = pki.bundle(pki.leaf("*.acme.example"), with_intermediate=False)
    result = decide_host(TENANCY, tls("Secret", secretName="wild"), supplied=bare)
    assert result.problem is not None and result.problem[0] == certs.INCOMPLETE_CHAIN


def test_a_bought_ca_issues_a_leaf_per_tenant_and_its_key_stays_with_the_reseller() -> None:
    pki = new_pki()
    bought = {"tls.crt": pki.intermediate.cert_pem + pki.root.cert_pem, "tls.key": pki.intermediate.key_pem}
    result = decide_host(OWNED, tls("Secret", secretName="ca"), supplied=bought)
    assert result.problem is None and result.withdraw is None
    data = decode_data(result.children[0]) or {}
    assert data["tls.key"] != pki.intermediate.key_pem and pki.intermediate.cert_pem in data["tls.crt"]
    assert result.status is not None and result.status["dnsNames"] == [HOST]
    again = decide_host(OWNED, tls("Secret", secretName="ca"), supplied=bought, live_copy=live(result.children[0]))
    assert again.children == result.children  # reused, not issued on every reconcile
    expired_ca = make_cert("Old CA", issuer=pki.root, ca=True, not_before=NOW - 100 * DAY, not_after=NOW - DAY)
    stale = decide_host(OWNED, tls("Secret", secretName="ca"),
                        supplied={"tls.crt": expired_ca.cert_pem + pki.root.cert_pem, "tls.key": expired_ca.key_pem})
    assert stale.problem is not None and stale.problem[0] == certs.EXPIRED


# -- Issuer: cert-manager -------------------------------------------------------------------------


def test_cert_manager_mode() -> None:
    issuer = tls("Issuer", issuerRef={"kind": "ClusterIssuer", "name": "letsencrypt"})
    missing = decide_host(OWNED, issuer, cert_manager=False)
    assert missing.problem is not None and missing.problem[0] == decide.CERT_MANAGER_MISSING and missing.pending
    waiting = decide_host(OWNED, issuer, cert_manager=True)
    assert waiting.problem is not None and waiting.problem[0] == decide.CERTIFICATE_NOT_READY and waiting.pending
    assert waiting.children[0]["kind"] == "Certificate" and waiting.route.tls_secret is None
    ready = {"status": {"notAfter": "2030-01-01T00:00:00Z",
                        "conditions": [{"type": "Ready", "status": "True"}]}}
    served = decide_host(OWNED, issuer, cert_manager=True, live_certificate=ready)
    assert served.problem is None and served.route.tls_secret == tls_secret_name(HOST)
    assert served.status == {"host": HOST, "issuer": "ClusterIssuer/letsencrypt", "dnsNames": [HOST],
                             "notAfter": "2030-01-01T00:00:00Z"}
    result = decide.tenant_tls(decide.Routing([], [], [], False, []), [served], [])
    assert result.condition.status is True and "2030-01-01T00:00:00Z" in result.condition.message
    assert decide.expiry_series("acme--bakery", [served]) == [
        ("acme--bakery", tls_secret_name(HOST), HOST, "2030-01-01T00:00:00Z")]


def test_the_secret_cert_manager_left_for_a_host_that_is_gone_is_named() -> None:
    def certificate(name: str, secret: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": "acme--bakery"}, "spec": {"secretName": secret}}

    issued = [certificate("tenantry-a", "tenantry-tls-a"), certificate("tenantry-b", "tenantry-tls-b"),
              certificate("tenantry-c", "someone-elses")]
    assert decide.stale_issued_secrets(issued, {"tenantry-a"}) == [("acme--bakery", "tenantry-tls-b")]


# -- the reseller's own certificates --------------------------------------------------------------


def test_the_reseller_reports_each_region_and_serves_its_panel_from_a_covering_wildcard() -> None:
    pki = new_pki()
    ca = tenantry_ca()
    wildcard = pki.bundle(pki.leaf("*.acme.example"))
    body = {**RESELLER_BODY, "status": {"regions": [{"name": "eu", "certificate": None}]}}
    inputs = ResellerInputs(body, ca, [
        RegionInputs("eu", "acme.example", tls("Secret", secretName="wild"), wildcard),
        RegionInputs("us", "acme-us.example", tls("Secret", secretName="gone"), None),
        RegionInputs("ap", "acme-ap.example", tls("SelfSigned")),
    ], "panel.acme.example", None)
    result = decide.reseller_tls(inputs, NOW, POLICY)
    assert result.condition.status is False and result.condition.reason == certs.SECRET_NOT_FOUND
    assert "Region us:" in result.condition.message
    assert result.regions["eu"]["dnsNames"] == ["*.acme.example"] and "us" not in result.regions
    assert result.regions["ap"]["issuer"] == certs.cert_info(ca.cert).subject
    assert result.platform is not None and result.platform["dnsNames"] == ["*.acme.example"]
    panel = result.children[1]
    assert decode_data(panel) == wildcard and panel["metadata"]["annotations"][ANNOTATION_SOURCE] == (
        "reseller-acme/wild")
    assert result.wake_tenants  # the eu region's certificate changed: its tenants look again
    assert ("reseller-acme", "wild", "*.acme.example", certs.rfc3339(certs.cert_info(
        certs.load_certificates(wildcard["tls.crt"])[0]).not_after)) in result.served


def test_a_reseller_without_supplied_certificates_signs_its_panel_and_keeps_it() -> None:
    ca = tenantry_ca()
    inputs = ResellerInputs(RESELLER_BODY, ca, [RegionInputs("eu", "acme.example", tls("SelfSigned"))],
                            "panel.acme.example", None)
    first = decide.reseller_tls(inputs, NOW, POLICY)
    assert first.condition.status is True and first.note and not first.wake_tenants
    kept = decide.reseller_tls(ResellerInputs(RESELLER_BODY, ca, inputs.regions, "panel.acme.example",
                                              decode_data(first.children[1])), NOW, POLICY)
    assert kept.children == first.children and kept.note is None
