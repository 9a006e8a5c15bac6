"""Custom domains of tenants already admitted (tenantry.admission): a host taken from another tenant
or beyond the plan's allowance is refused as a change, and a proven host stays with its tenant."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from test_admission import admit

from tenantry.admission import AdmissionBook, PlanTerms, ResellerTerms, TenantClaim


def quota(cpu: str = "1", memory_gi: int = 1, storage_gi: int = 1, pods: int = 10) -> dict[str, Decimal]:
    gi = Decimal(2**30)
    return {"cpu": Decimal(cpu), "memory": memory_gi * gi, "storage": storage_gi * gi, "pods": Decimal(pods)}


def reseller(name: str = "acme", created: str = "2026-01-01T00:00:00Z") -> ResellerTerms:
    return ResellerTerms(name=name, created=created, email=f"billing@{name}.example", active=True, licenses=10,
                         allotments={"eu": quota("100", 100, 100, 1000)}, domains={"eu": f"{name}.example"})


def tenant(name: str, *, created: str = "2026-02-01T00:00:00Z", domains: tuple[str, ...] = ()) -> TenantClaim:
    return TenantClaim(reseller="acme", name=name, created=created, email=f"{name}@x.example", region="eu",
                       plan="small", domains=domains, uid=f"uid-{name}")


def book_with(*resellers: ResellerTerms) -> AdmissionBook:
    book = AdmissionBook()
    book.set_regions(["eu"])
    for terms in resellers:
        book.set_reseller(terms)
        book.set_plan(terms.name, "small", PlanTerms(quota(), custom_domains=1))
    return book


def test_an_admitted_tenant_adding_a_held_host_stays_admitted_but_is_refused_the_change() -> None:
    book = book_with(reseller())
    assert admit(book, tenant("holder", domains=("www.shop.example",))).admitted
    assert admit(book, tenant("other")).admitted
    verdict = admit(book, tenant("other", domains=("www.shop.example",)))
    assert verdict.admitted and verdict.change_refused is not None
    assert verdict.change_refused[0] == "HostConflict" and "not routed" in verdict.change_refused[1]
    assert book.host_holder("www.shop.example") == ("acme", "holder")


def test_an_admitted_tenant_under_a_reseller_domain_or_over_its_allowance() -> None:
    book = book_with(reseller(), reseller("globex", created="2026-01-02T00:00:00Z"))
    assert admit(book, tenant("t")).admitted
    squatting = admit(book, tenant("t", domains=("login.globex.example",)))
    assert squatting.change_refused is not None and squatting.change_refused[0] == "HostConflict"
    greedy = admit(book, tenant("t", domains=("a.shop.example", "b.shop.example")))
    assert greedy.admitted and greedy.change_refused is not None and greedy.change_refused[0] == "TooManyDomains"


def test_a_proven_host_stays_with_its_tenant_against_an_older_claimant() -> None:
    book = book_with(reseller())
    old = tenant("old", created="2026-02-01T00:00:00Z")
    new = tenant("new", created="2026-03-01T00:00:00Z", domains=("www.shop.example",))
    assert admit(book, old).admitted and admit(book, new).admitted
    book.upsert_tenant(replace(book.tenant(new.key) or new, verified_domains=("www.shop.example",)))
    verdict = admit(book, replace(book.tenant(old.key) or old, domains=("www.shop.example",)))
    assert verdict.change_refused is not None and verdict.change_refused[0] == "HostConflict"
    assert book.host_holder("www.shop.example") == new.key
    # Without the proof, age decides (older first), as for any other claim.
    book.upsert_tenant(replace(book.tenant(new.key) or new, verified_domains=()))
    assert book.host_holder("www.shop.example") == old.key


def test_unchanged_tenants_with_their_own_domains_are_not_refused_anything() -> None:
    book = AdmissionBook()
    book.set_regions(["eu"])
    book.set_reseller(ResellerTerms(name="acme", created="2026-01-01T00:00:00Z", email="b@acme.example", active=True,
                                    licenses=5, allotments={"eu": quota("10", 10, 10, 100)},
                                    domains={"eu": "acme.example"}))
    book.set_plan("acme", "small", PlanTerms(quota(), custom_domains=2))
    claim = TenantClaim(reseller="acme", name="t", created="2026-02-01T00:00:00Z", email="t@x.example",
                        region="eu", plan="small", domains=("a.t.example", "b.t.example"), uid="u")
    assert admit(book, claim).admitted
    again = admit(book, claim)
    assert again.admitted and again.change_refused is None
