"""Which CA signs a reseller's panel certificate (`spec.platformDomain`): a CA the reseller bought
before Tenantry's self-signed one, within the bought CA's name constraints
(tenantry.tls.decide.choose_panel_issuer, tenantry.tls.certs.name_constraints_refusal), and a
leaf that already lives as long as its CA is not reissued on every reconcile (certs.reusable_leaf)."""

from __future__ import annotations

import datetime

from cryptography import x509

from support.pki import DAY, NOW, make_cert, new_pki
from tenantry.tls import certs
from tenantry.tls.certs import Authority
from tenantry.tls.decide import PanelIssuer, SuppliedCA, choose_panel_issuer


def bought_ca(name: str, *, permitted: list[str] | None = None, excluded: list[str] | None = None,
              days: int = 1825) -> Authority:
    """A CA as a reseller buys it: an intermediate under a root, with DNS name constraints if given."""
    pki = new_pki(name, permitted=permitted or (), excluded=excluded or (), intermediate_days=days)
    return Authority(pki.intermediate.cert_pem, pki.intermediate.key_pem, pki.root.cert_pem)


def supplied(region: str, domain: str, authority: Authority) -> SuppliedCA:
    return SuppliedCA(region, domain, f"reseller-acme/{region}-ca", authority)


def test_without_a_bought_ca_the_tenantry_ca_issues() -> None:
    assert choose_panel_issuer("panel.acme.example", []) == PanelIssuer(None)


def test_the_ca_of_the_nearest_ancestor_domain_issues_else_the_first() -> None:
    first = supplied("us", "acme-us.example", bought_ca("us"))
    grandparent = supplied("eu", "acme.example", bought_ca("eu"))
    parent = supplied("de", "de.acme.example", bought_ca("de"))
    assert choose_panel_issuer("panel.de.acme.example", [first, grandparent, parent]).ca == parent
    assert choose_panel_issuer("panel.acme.example", [first, grandparent, parent]).ca == grandparent
    assert choose_panel_issuer("acme.example", [first, grandparent]).ca == grandparent  # the domain itself
    # No region's domain is above the panel host: the first CA region, in spec order.
    assert choose_panel_issuer("panel.acme.cloud", [first, grandparent, parent]).ca == first
    # A suffix that is not a whole label is no ancestor.
    assert choose_panel_issuer("panel.notacme.example", [first, grandparent]).ca == first


def test_a_ca_whose_name_constraints_refuse_the_host_is_passed_over() -> None:
    narrow = supplied("eu", "acme.example", bought_ca("eu", permitted=["shop.acme.example"]))
    wide = supplied("us", "acme-us.example", bought_ca("us", permitted=["acme.example"]))
    chosen = choose_panel_issuer("panel.acme.example", [narrow, wide])
    assert chosen.ca == wide and chosen.refusals == ()
    # No CA may: Tenantry's CA, and each refusal names the Secret, the region and the constraint.
    chosen = choose_panel_issuer("panel.acme.example", [narrow])
    assert chosen.ca is None
    assert chosen.refusals == ("the CA in Secret reseller-acme/eu-ca (region eu) cannot issue for it: the name "
                               "constraints of CN=eu Intermediate CA permit only shop.acme.example",)


def test_name_constraints_follow_rfc_5280_dns_subtrees() -> None:
    ca = bought_ca("x", permitted=["acme.example", ".acme.cloud"], excluded=["admin.acme.example"])
    assert certs.name_constraints_refusal(ca, "acme.example") is None
    assert certs.name_constraints_refusal(ca, "panel.acme.example") is None
    assert certs.name_constraints_refusal(ca, "panel.acme.cloud") is None
    assert certs.name_constraints_refusal(ca, "acme.cloud") is not None  # ".acme.cloud": below it only
    assert certs.name_constraints_refusal(ca, "panel.notacme.example") is not None
    assert "exclude admin.acme.example" in (certs.name_constraints_refusal(ca, "x.admin.acme.example") or "")
    assert certs.name_constraints_refusal(bought_ca("free"), "anything.example") is None
    assert certs.name_constraints_refusal(bought_ca("ex", excluded=["evil.example"]), "acme.example") is None


def test_a_constraint_on_the_root_above_the_ca_counts_too() -> None:
    ca = bought_ca("leafca")
    root = make_cert("Constrained Root", ca=True, name_constraints=x509.NameConstraints(
        permitted_subtrees=[x509.DNSName("acme.example")], excluded_subtrees=None))
    under = Authority(ca.cert_pem, ca.key_pem, root.cert_pem)
    assert certs.name_constraints_refusal(under, "panel.acme.example") is None
    assert "CN=Constrained Root permit only acme.example" in (
        certs.name_constraints_refusal(under, "panel.other.example") or "")


def test_a_leaf_as_old_as_its_ca_allows_is_kept_not_reissued_every_reconcile() -> None:
    month = datetime.timedelta(days=30)
    ca = bought_ca("short", days=20)  # valid, but within the renewal margin
    data = certs.issue_leaf(ca, ["panel.acme.example"], NOW)
    assert certs.cert_info(certs.load_certificates(data["tls.crt"])[0]).not_after == ca.cert.not_valid_after_utc
    # A new leaf could not outlive the CA: keep this one.
    assert certs.reusable_leaf(data, ["panel.acme.example"], ca, NOW, month) is not None
    # Once the CA is replaced by a longer-lived one the leaf is reissued from it.
    assert certs.reusable_leaf(data, ["panel.acme.example"], bought_ca("long"), NOW, month) is None
    # An expired leaf is never kept.
    assert certs.reusable_leaf(data, ["panel.acme.example"], ca, NOW + 21 * DAY, month) is None
