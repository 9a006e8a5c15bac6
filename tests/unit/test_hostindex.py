"""The cluster-wide Ingress host index (tenantry.hostindex) and the HostConflict admission draws
from it: a custom domain is refused when any Ingress that is not a tenant's own serves it."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st
from test_admission import admit, book_with, quota, reseller, tenant

from tenantry.admission import PlanTerms
from tenantry.hostindex import IngressHostIndex, ingress_hosts, wildcard_of


def ingress(*hosts: str, tls: tuple[str, ...] = ()) -> dict:
    return {"spec": {"rules": [{"host": h} for h in hosts] + [{"http": {}}], "tls": [{"hosts": list(tls)}]}}


def test_hosts_of_an_ingress_come_from_rules_and_tls() -> None:
    assert ingress_hosts(ingress("B.example.com", "a.example.com", tls=("c.example.com",))) == (
        "a.example.com", "b.example.com", "c.example.com")
    assert ingress_hosts({"spec": {"defaultBackend": {}}}) == ()
    assert wildcard_of("www.shop.example") == "*.shop.example"
    assert wildcard_of("shop.example") is None  # *.example would be a TLD wildcard


def test_index_keeps_keys_not_objects_and_reports_what_changed() -> None:
    index = IngressHostIndex()
    assert index.put("w", ("monitoring", "grafana"), ["grafana.p.example"]) == {"grafana.p.example"}
    assert index.put("w", ("monitoring", "grafana"), ["grafana.p.example"]) == set()  # nothing new
    assert index.holder("grafana.p.example") == (("monitoring", "grafana"), "grafana.p.example")
    assert index.holder("GRAFANA.p.example") is not None
    assert index.holder("grafana.p.example", except_namespace="monitoring") is None
    assert index.put("w", ("monitoring", "grafana"), ["g2.p.example"]) == {"grafana.p.example", "g2.p.example"}
    assert index.holder("grafana.p.example") is None
    assert index.remove("w", ("monitoring", "grafana")) == {"g2.p.example"}
    assert len(index) == 0


def test_two_sources_never_undo_each_other() -> None:
    index = IngressHostIndex()
    index.put("labelled", ("ns", "x"), ["x.example.com"])
    index.put("unlabelled", ("ns", "x"), ["x.example.com"])
    index.remove("labelled", ("ns", "x"))  # its label went: the other watch has it now
    assert index.holder("x.example.com") == (("ns", "x"), "x.example.com")
    assert index.replace_source("unlabelled", {}) == {"x.example.com"}
    assert index.holder("x.example.com") is None


def test_a_wildcard_ingress_serves_the_hosts_one_label_below() -> None:
    index = IngressHostIndex()
    index.put("w", ("edge", "wild"), ["*.platform.example"])
    assert index.holder("grafana.platform.example") == (("edge", "wild"), "*.platform.example")
    assert index.holder("a.grafana.platform.example") is None


@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["x", "y", "z"]),
                          st.lists(st.sampled_from(["h1.e.com", "h2.e.com", "h3.e.com"]), max_size=3)), max_size=20))
def test_the_index_always_equals_the_last_hosts_of_each_ingress(updates: list) -> None:
    index = IngressHostIndex()
    last: dict = {}
    for namespace, name, hosts in updates:
        index.put("w", (namespace, name), hosts)
        last[(namespace, name)] = set(hosts)
    for host in ("h1.e.com", "h2.e.com", "h3.e.com"):
        holders = sorted(k for k, hosts in last.items() if host in hosts)
        assert index.holder(host) == ((holders[0], host) if holders else None)


# -- admission -------------------------------------------------------------------------------------------


def test_a_custom_domain_served_by_another_ingress_is_refused_naming_it() -> None:
    book = book_with(reseller())
    book.ingresses.put("w", ("monitoring", "grafana"), ["grafana.platform.example"])
    verdict = admit(book, tenant("a", domains=("grafana.platform.example",)))
    assert (verdict.admitted, verdict.reason) == (False, "HostConflict")
    assert verdict.message == (
        "Custom domain grafana.platform.example is already served by Ingress monitoring/grafana; one host is "
        "routed to one place only. Remove it from spec.domains, or have that Ingress changed first.")
    book.ingresses.remove("w", ("monitoring", "grafana"))
    assert book.claimants(["grafana.platform.example"]) == [("acme", "a")]
    assert admit(book, tenant("a", domains=("grafana.platform.example",))).admitted


def test_the_tenants_own_namespace_and_a_domain_it_already_serves_do_not_count() -> None:
    book = book_with(reseller(), plans={"small": PlanTerms(quota(), custom_domains=2)})
    book.ingresses.put("w", ("acme--a", "web"), ["www.a.example"])  # made by its owner, in its namespace
    assert admit(book, tenant("a", domains=("www.a.example",))).admitted
    # Later, someone else's Ingress takes the host the tenant serves (verified, routed): it stays.
    book.ingresses.put("w", ("other", "copy"), ["www.a.example"])
    live = dataclasses.replace(tenant("a", domains=("www.a.example",)), verified_domains=("www.a.example",))
    assert admit(book, live).change_refused is None
    # A domain the tenant adds now is refused as a change: it keeps running, unrouted there.
    book.ingresses.put("w", ("other", "shop"), ["shop.a.example"])
    verdict = admit(book, dataclasses.replace(live, domains=("www.a.example", "shop.a.example")))
    assert verdict.admitted and verdict.change_refused is not None
    assert verdict.change_refused[0] == "HostConflict" and "Ingress other/shop" in verdict.change_refused[1]


def test_claimants_of_a_wildcard_are_the_hosts_below_it() -> None:
    book = book_with(reseller())
    book.upsert_tenant(tenant("a", domains=("x.shop.example",)))
    book.upsert_tenant(tenant("b", domains=("shop.example",)))
    assert book.claimants(["*.shop.example"]) == [("acme", "a")]
    assert book.claimants([]) == []
