"""The admission decision module: each refusal reason, plan changes, and properties that must hold
for any platform (hypothesis): never more tenants than licences, never more quota than allotted,
e-mail unique, and the same outcome whatever order the tenants are looked at in."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tenantry import admission as adm
from tenantry.admission import AdmissionBook, PlanTerms, ResellerTerms, TenantClaim
from tenantry.controller.specs import read_spec, reseller_terms

GI = Decimal(2**30)


def quota(cpu: str = "1", memory_gi: int = 1, storage_gi: int = 1, pods: int = 10) -> dict[str, Decimal]:
    return {"cpu": Decimal(cpu), "memory": memory_gi * GI, "storage": storage_gi * GI, "pods": Decimal(pods)}


def reseller(name: str = "acme", *, licenses: int = 10, active: bool = True, created: str = "2026-01-01T00:00:00Z",
             allotment: dict[str, Decimal] | None = None, email: str | None = None) -> ResellerTerms:
    return ResellerTerms(name=name, created=created, email=email or f"billing@{name}.example", active=active,
                         licenses=licenses, allotments={"eu": allotment or quota("100", 100, 100, 1000)},
                         domains={"eu": f"{name}.example"})


def tenant(name: str, *, reseller_name: str = "acme", created: str = "2026-02-01T00:00:00Z", plan: str = "small",
           region: str = "eu", email: str | None = None, domains: tuple[str, ...] = ()) -> TenantClaim:
    return TenantClaim(reseller=reseller_name, name=name, created=created, email=email or f"{name}@x.example",
                       region=region, plan=plan, domains=domains, uid=f"uid-{reseller_name}-{name}")


def book_with(*resellers: ResellerTerms, plans: dict[str, PlanTerms] | None = None) -> AdmissionBook:
    book = AdmissionBook()
    book.set_regions(["eu"])
    for r in resellers:
        book.set_reseller(r)
        for plan_name, terms in (plans or {"small": PlanTerms(quota("1", 1, 1, 10), custom_domains=1)}).items():
            book.set_plan(r.name, plan_name, terms)
    return book


def admit(book: AdmissionBook, claim: TenantClaim) -> adm.Verdict:
    book.upsert_tenant(claim)
    verdict = book.decide(claim.key)
    if verdict.record is not None:
        book.record(claim.key, verdict.record)
    return verdict


# -- each refusal reason -----------------------------------------------------------------------------


def test_admits_within_licences_and_refuses_the_next_with_licence_limit() -> None:
    book = book_with(reseller(licenses=2))
    assert admit(book, tenant("a")).admitted
    assert admit(book, tenant("b")).admitted
    verdict = admit(book, tenant("c"))
    assert not verdict.admitted
    assert verdict.reason == "LicenseLimitReached"
    assert "spec.licenses" in verdict.message


def test_insufficient_capacity_names_the_resource_short() -> None:
    book = book_with(reseller(allotment=quota("1.5", 100, 100, 100)))
    assert admit(book, tenant("a")).admitted
    verdict = admit(book, tenant("b"))
    assert verdict.reason == "InsufficientCapacity"
    assert "cpu: needs 1, 500m left" in verdict.message


def test_inactive_reseller_admits_nobody_new_but_keeps_existing() -> None:
    book = book_with(reseller())
    assert admit(book, tenant("a")).admitted
    book.set_reseller(reseller(active=False))
    assert admit(book, tenant("b")).reason == "ResellerInactive"
    assert book.decide(("acme", "a")).admitted  # sticky


def test_unknown_region_and_plan() -> None:
    book = book_with(reseller())
    assert admit(book, tenant("a", region="mars")).reason == "UnknownRegion"
    assert admit(book, tenant("b", plan="gold")).reason == "UnknownPlan"


def test_region_the_platform_has_but_the_reseller_does_not_sell() -> None:
    book = book_with(reseller())
    book.set_regions(["eu", "us"])
    verdict = admit(book, tenant("a", region="us"))
    assert verdict.reason == "UnknownRegion"
    assert "does not sell" in verdict.message


def test_duplicate_email_with_a_reseller_and_with_an_older_tenant() -> None:
    book = book_with(reseller(), reseller("globex", email="shared@x.example"))
    assert admit(book, tenant("a", email="shared@x.example")).reason == "DuplicateEmail"
    assert admit(book, tenant("b", email="joe@x.example")).admitted
    assert admit(book, tenant("c", email="JOE@x.example", created="2026-03-01T00:00:00Z")).reason == "DuplicateEmail"


def test_too_many_domains_and_host_conflicts() -> None:
    book = book_with(reseller())
    assert admit(book, tenant("a", domains=("a.shop", "b.shop"))).reason == "TooManyDomains"
    assert admit(book, tenant("b", domains=("*.shop",))).reason == "HostConflict"
    assert admit(book, tenant("c", domains=("www.acme.example",))).reason == "HostConflict"
    assert admit(book, tenant("d", domains=("www.bakery.shop",))).admitted
    verdict = admit(book, tenant("e", domains=("www.bakery.shop",), created="2026-03-01T00:00:00Z"))
    assert verdict.reason == "HostConflict"


def test_older_pending_tenant_goes_first_whatever_the_event_order() -> None:
    book = book_with(reseller(licenses=1))
    old, new = tenant("zz-old", created="2026-01-01T00:00:00Z"), tenant("aa-new", created="2026-01-02T00:00:00Z")
    book.upsert_tenant(old)
    assert not admit(book, new).admitted  # the newer one is looked at first, and still waits
    assert admit(book, old).admitted


def test_same_second_ties_go_by_name() -> None:
    book = book_with(reseller(licenses=1))
    book.upsert_tenant(tenant("b"))
    assert not admit(book, tenant("c")).admitted
    book.upsert_tenant(tenant("a"))
    assert admit(book, tenant("a")).admitted
    assert not admit(book, tenant("b")).admitted


def test_lowering_licences_never_evicts_and_deleting_frees() -> None:
    book = book_with(reseller(licenses=3))
    for name in "abc":
        assert admit(book, tenant(name)).admitted
    book.set_reseller(reseller(licenses=1))
    assert all(book.decide(("acme", n)).admitted for n in "abc")
    assert book.usage("acme")[0] == 3
    book.set_reseller(reseller(licenses=3))
    book.remove_tenant(("acme", "a"))
    assert admit(book, tenant("d")).admitted


# -- changes of admitted tenants ---------------------------------------------------------------------


def test_plan_upgrade_is_admitted_for_the_difference_or_refused_keeping_the_old_quota() -> None:
    plans = {"small": PlanTerms(quota("1", 1, 1, 10)), "big": PlanTerms(quota("3", 1, 1, 10))}
    book = book_with(reseller(allotment=quota("4", 100, 100, 100)), plans=plans)
    assert admit(book, tenant("a")).admitted
    assert admit(book, tenant("b")).admitted
    upgraded = admit(book, tenant("a", plan="big"))  # 1 + 3 = 4 cpu: fits exactly
    assert upgraded.record is not None and upgraded.record.plan == "big" and upgraded.change_refused is None
    refused = admit(book, tenant("b", plan="big"))  # 3 + 3 > 4
    assert refused.admitted and refused.record is not None and refused.record.plan == "small"
    assert refused.change_refused is not None and refused.change_refused[0] == "InsufficientCapacity"


def test_downgrade_always_fits_even_when_the_reseller_is_over() -> None:
    plans = {"small": PlanTerms(quota("1", 1, 1, 10)), "big": PlanTerms(quota("3", 1, 1, 10))}
    book = book_with(reseller(allotment=quota("3", 100, 100, 100)), plans=plans)
    assert admit(book, tenant("a", plan="big")).admitted
    book.set_reseller(reseller(allotment=quota("1", 100, 100, 100)))
    verdict = admit(book, tenant("a", plan="small"))
    assert verdict.record is not None and verdict.record.plan == "small" and verdict.change_refused is None


def test_region_change_is_refused_and_plan_deletion_keeps_the_quota() -> None:
    book = book_with(reseller())
    assert admit(book, tenant("a")).admitted
    moved = admit(book, tenant("a", region="us"))
    assert moved.change_refused is not None and moved.change_refused[0] == "RegionChangeRefused"
    book.set_plan("acme", "small", None)
    kept = admit(book, tenant("a"))
    assert kept.admitted and kept.change_refused is not None and kept.change_refused[0] == "UnknownPlan"


def test_a_recreated_tenant_is_decided_afresh() -> None:
    book = book_with(reseller(licenses=1))
    assert admit(book, tenant("a")).admitted
    book.remove_tenant(("acme", "a"))
    again = tenant("a")
    assert admit(book, again).admitted
    assert book.usage("acme")[0] == 1


# -- properties --------------------------------------------------------------------------------------

names = st.sampled_from([f"t{i}" for i in range(12)])


@st.composite
def platforms(draw: st.DrawFn) -> tuple[list[ResellerTerms], dict[str, PlanTerms], list[TenantClaim]]:
    resellers = [
        reseller(name, licenses=draw(st.integers(0, 6)), active=draw(st.booleans()) or name == "r0",
                 allotment=quota(str(draw(st.integers(0, 8))), draw(st.integers(0, 8)), 100, 100),
                 created=f"2026-01-0{i + 1}T00:00:00Z")
        for i, name in enumerate(("r0", "r1", "r2"))
    ]
    plans = {"small": PlanTerms(quota("1", 1, 1, 10), 1), "big": PlanTerms(quota("2", 3, 1, 10), 0)}
    tenants = []
    for i in range(draw(st.integers(0, 14))):
        tenants.append(tenant(
            f"t{i}", reseller_name=draw(st.sampled_from(["r0", "r1", "r2", "ghost"])),
            created=f"2026-02-0{draw(st.integers(1, 3))}T00:00:00Z",
            plan=draw(st.sampled_from(["small", "big", "none"])),
            region=draw(st.sampled_from(["eu", "eu", "eu", "us"])),
            email=draw(st.sampled_from(["a@x.example", "b@x.example", "billing@r1.example", f"u{i}@x.example"])),
            domains=draw(st.sampled_from([(), (), ("shop.example",), ("www.r0.example",), ("other.example",)])),
        ))
    return resellers, plans, tenants


def settle(resellers: list[ResellerTerms], plans: dict[str, PlanTerms], tenants: list[TenantClaim],
           order: list[int]) -> tuple[AdmissionBook, frozenset[tuple[str, str]]]:
    """Decide tenants in the given order, over and over, until nothing changes (as the operator's
    queue does when every change re-enqueues the pending tenants)."""
    book = book_with(*resellers, plans=plans)
    for claim in tenants:
        book.upsert_tenant(claim)
    for _ in range(len(tenants) + 2):
        before = {c.key for c in book.all_tenants() if book.record_of(c) is not None}
        for index in order:
            claim = tenants[index]
            verdict = book.decide(claim.key)
            if verdict.record is not None:
                book.record(claim.key, verdict.record)
        after = {c.key for c in book.all_tenants() if book.record_of(c) is not None}
        if after == before:
            break
    return book, frozenset(after)


@settings(max_examples=300, deadline=None)
@given(platforms(), st.randoms(use_true_random=False))
def test_invariants_and_order_independence(platform, random) -> None:  # type: ignore[no-untyped-def]
    resellers, plans, tenants = platform
    order = list(range(len(tenants)))
    book, admitted = settle(resellers, plans, tenants, order)
    random.shuffle(order)
    _, admitted_shuffled = settle(resellers, plans, tenants, order)
    assert admitted == admitted_shuffled, "the outcome depends on the order tenants were looked at"

    emails = [book.tenant(k).email.lower() for k in admitted]  # type: ignore[union-attr]
    assert len(emails) == len(set(emails)), "two admitted tenants share an e-mail address"
    reseller_emails = {r.email.lower() for r in resellers}
    assert not reseller_emails & set(emails), "an admitted tenant uses a reseller's e-mail address"
    hosts = [h for k in admitted for h in book.tenant(k).domains]  # type: ignore[union-attr]
    assert len(hosts) == len(set(hosts)), "two admitted tenants share a custom domain"
    for r in resellers:
        used, allocated = book.usage(r.name)
        assert used <= r.licenses, f"{r.name}: {used} admitted with {r.licenses} licences"
        for region, amounts in allocated.items():
            allotment = adm.full_quota(r.allotments.get(region, {}))
            for resource, amount in amounts.items():
                assert amount <= allotment[resource], f"{r.name}/{region}/{resource} over its allotment"
        if not r.active:
            assert used == 0


def test_a_domain_belongs_to_the_older_reseller() -> None:
    book = book_with(reseller("acme", created="2026-01-01T00:00:00Z"),
                     reseller("globex", created="2026-01-02T00:00:00Z"))
    assert book.domain_taken("globex", "eu.acme.example") == ("acme", "acme.example")
    assert book.domain_taken("globex", "example") == ("acme", "acme.example")  # a parent collides too
    assert book.domain_taken("acme", "globex.example") is None  # the older one keeps its own
    assert book.domain_taken("globex", "globex.example") is None


def test_a_domain_in_service_stays_with_its_reseller_against_an_older_or_tied_newcomer() -> None:
    """creationTimestamp has one-second resolution and ties go by name: a reseller applied a moment
    after another, in the same second, can sort first. It must not take a domain already serving
    tenants; between two resellers that serve nothing yet, age (then name) decides as before."""
    same_second = "2026-01-01T00:00:00Z"
    zeta = dataclasses.replace(reseller("zeta", created=same_second), serving=frozenset({"zeta.example"}))
    alpha = dataclasses.replace(reseller("alpha", created=same_second), domains={"eu": "eu.zeta.example"})
    book = book_with(zeta, alpha)
    assert book.domain_taken("alpha", "eu.zeta.example") == ("zeta", "zeta.example")
    assert book.domain_taken("zeta", "zeta.example") is None
    # Serving nothing, the tie goes to the name: alpha holds it and zeta is the one refused.
    book.set_reseller(dataclasses.replace(zeta, serving=frozenset()))
    assert book.domain_taken("zeta", "zeta.example") == ("alpha", "eu.zeta.example")
    assert book.domain_taken("alpha", "eu.zeta.example") is None
    # Serving a domain is per domain: zeta serving another domain does not protect this one.
    book.set_reseller(dataclasses.replace(zeta, serving=frozenset({"other.example"})))
    assert book.domain_taken("zeta", "zeta.example") == ("alpha", "eu.zeta.example")


def test_reseller_terms_read_the_domains_in_service_from_a_ready_status() -> None:
    body: dict[str, Any] = {
        "apiVersion": "tenantry.dev/v1alpha1", "kind": "Reseller",
        "metadata": {"name": "acme", "uid": "u1", "generation": 2, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"companyName": "Acme", "email": "billing@acme.example", "licenses": 3,
                 "regions": [{"name": "eu", "domain": "acme.example",
                              "allotment": {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "pods": "10"}},
                             {"name": "us", "domain": "new.acme.example",
                              "allotment": {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "pods": "10"}}]},
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}],
                   "regions": [{"name": "eu", "domain": "acme.example"}, {"name": "us", "domain": "old.acme.example"}]},
    }
    spec, problem = read_spec("Reseller", body)
    assert spec is not None, problem
    # The us domain changed since the status was written: not in service yet.
    assert reseller_terms(body, spec).serving == {"acme.example"}
    assert reseller_terms(body, spec, ready=True).serving == {"acme.example", "new.acme.example"}
    assert reseller_terms(body, spec, ready=False).serving == frozenset()
    body["status"]["conditions"][0]["status"] = "False"
    assert reseller_terms(body, spec).serving == frozenset()
