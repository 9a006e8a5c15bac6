"""The sampler's join of quotas, tenants, plans, resellers and regions, and the custom collector."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from tenantry.metering.exporter import DeliveryStats, MeteringCollector, go_float
from tenantry.metering.integrator import Account, Integrator, TenantState
from tenantry.metering.pricing import METERS, Price, TenantPrices
from tenantry.metering.sampler import (
    Sampler,
    plan_pricing,
    quota_info,
    region_info,
    reseller_info,
    tenant_info,
)
from tenantry.settings import Settings

T0 = 1_800_000_000
GI = 2**30
METRIC_NAMES = {
    "tenantry_tenant_resource_used", "tenantry_tenant_resource_quota", "tenantry_tenant_cpu_core_seconds",
    "tenantry_tenant_memory_byte_seconds", "tenantry_tenant_storage_byte_seconds", "tenantry_tenant_license_seconds",
    "tenantry_charge", "tenantry_reseller_licenses", "tenantry_reseller_allotment", "tenantry_reseller_allocated",
    "tenantry_region_capacity", "tenantry_region_allocated", "tenantry_billing_records",
    "tenantry_billing_spool_records", "tenantry_watch_callback_errors", "tenantry_watch_consecutive_failures",
}


def quota(reseller: str, tenant: str, used: dict[str, str]) -> dict[str, Any]:
    hard = {"requests.cpu": "2", "requests.memory": "4Gi", "requests.storage": "20Gi", "pods": "20"}
    return {"metadata": {"name": "tenantry", "namespace": f"{reseller}--{tenant}"}, "status": {"used": used,
                                                                                             "hard": hard}}


def tenant(reseller: str, name: str, phase: str = "Active", region: str = "eu-west") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": f"reseller-{reseller}", "uid": f"uid-{name}"},
            "spec": {"plan": "starter"},
            "status": {"phase": phase, "namespace": f"{reseller}--{name}",
                       "admission": {"plan": "starter", "region": region}}}


PLAN = {"metadata": {"name": "starter", "namespace": "reseller-acme"},
        "spec": {"pricing": {"currency": "EUR", "monthly": "19.00", "cpu": "0.05", "memory": "0.006",
                             "storage": "0.0004"}}}
RESELLER = {"metadata": {"name": "acme"},
            "spec": {"licenses": 12, "regions": [{"name": "eu-west", "allotment": {"cpu": "16", "memory": "64Gi",
                                                                                  "storage": "500Gi", "pods": "400"}}]},
            "status": {"licenses": {"total": 12, "used": 2, "available": 10},
                       "regions": [{"name": "eu-west", "allocated": {"cpu": "4", "memory": "8Gi", "storage": "40Gi",
                                                                     "pods": "40"}}]}}
REGION = {"metadata": {"name": "eu-west"},
          "spec": {"capacity": {"cpu": "64", "memory": "256Gi", "storage": "2Ti", "pods": "2000"},
                   "pricing": {"currency": "USD", "cpu": "0.020", "memory": "0.0025", "storage": "0.00015"}},
          "status": {"allocated": {"cpu": "16", "memory": "64Gi", "storage": "500Gi", "pods": "400"}}}


class Picture:
    """A sampler fed like its reflectors would, driving an integrator, behind a collector."""

    def __init__(self, region: str = "eu-west", license_currency: str = "USD") -> None:
        self.now = float(T0)
        self.region = region
        self.integrator = Integrator(region, 3600, self.now)
        self.calls: list[tuple[str, TenantState | None]] = []
        self.sampler = Sampler(region, Settings().license_tiers, license_currency, on_state=self._on_state)
        self.sampler.go_live()
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = MeteringCollector(region, self.integrator, self.sampler, DeliveryStats("file"))
        self.registry.register(self.collector)

    def _on_state(self, uid: str, state: TenantState | None) -> None:
        self.calls.append((uid, state))
        self.integrator.set_state(self.now, uid, state)

    def feed(self, kind: str, obj: dict[str, Any] | None, key: tuple[str | None, str]) -> None:
        transform = {"ResourceQuota": quota_info, "Tenant": tenant_info, "Plan": plan_pricing,
                     "Reseller": lambda o: reseller_info(o, self.region), "Region": region_info}[kind]
        self.sampler.changed(kind, key, None, transform(obj) if obj is not None else None)

    def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        result = {}
        for family in text_string_to_metric_families(generate_latest(self.registry).decode()):
            for sample in family.samples:
                result[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return result


def labels(**kw: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(kw.items()))


def loaded() -> Picture:
    p = Picture()
    p.feed("Region", REGION, (None, "eu-west"))
    p.feed("Reseller", RESELLER, (None, "acme"))
    p.feed("Plan", PLAN, ("reseller-acme", "starter"))
    p.feed("Tenant", tenant("acme", "bakery"), ("reseller-acme", "bakery"))
    p.feed("ResourceQuota", quota("acme", "bakery", {"requests.cpu": "500m", "requests.memory": "1Gi",
                                                     "requests.storage": "0", "pods": "2"}),
           ("acme--bakery", "tenantry"))
    return p


def test_state_joins_quota_usage_phase_and_prices() -> None:
    p = loaded()
    state = p.sampler.states["uid-bakery"]
    assert state.used == {"cpu": Decimal("0.5"), "memory": Decimal(GI), "storage": 0, "pods": 2}
    assert state.hard["memory"] == 4 * GI and state.active and state.licensed
    assert state.prices.retail["cpu"].unit_price == Decimal("0.05") and state.prices.retail["cpu"].currency == "EUR"
    assert state.prices.wholesale["license"].unit_price == Decimal("20.00")  # 12 licences: tier 10-49


def test_only_changes_reach_the_integrator_and_a_plan_change_reprices_its_tenants() -> None:
    p = loaded()
    before = len(p.calls)
    p.feed("ResourceQuota", quota("acme", "bakery", {"requests.cpu": "500m", "requests.memory": "1Gi",
                                                     "requests.storage": "0", "pods": "2"}),
           ("acme--bakery", "tenantry"))
    assert len(p.calls) == before  # same usage: nothing to integrate
    p.feed("Plan", {**PLAN, "spec": {"pricing": {**PLAN["spec"]["pricing"], "cpu": "0.07"}}},
           ("reseller-acme", "starter"))
    assert p.calls[-1][1] is not None and p.calls[-1][1].prices.retail["cpu"].unit_price == Decimal("0.07")


def test_tenants_of_other_regions_and_pending_tenants_are_not_metered() -> None:
    p = loaded()
    p.feed("Tenant", tenant("acme", "elsewhere", region="us-east"), ("reseller-acme", "elsewhere"))
    p.feed("Tenant", {**tenant("acme", "waiting"), "status": {"phase": "Pending"}}, ("reseller-acme", "waiting"))
    assert set(p.sampler.states) == {"uid-bakery"}


def test_metric_names_and_values_follow_the_quota() -> None:
    p = loaded()
    samples = p.samples()
    families = {f.name for f in text_string_to_metric_families(generate_latest(p.registry).decode())}
    assert families == METRIC_NAMES
    used = labels(region="eu-west", reseller="acme", tenant="bakery", plan="starter", resource="cpu")
    assert samples[("tenantry_tenant_resource_used", used)] == 0.5
    assert samples[("tenantry_tenant_resource_quota", labels(region="eu-west", reseller="acme", tenant="bakery",
                                                             plan="starter", resource="memory"))] == 4 * GI
    assert samples[("tenantry_reseller_licenses", labels(reseller="acme", state="available"))] == 10
    assert samples[("tenantry_reseller_allotment", labels(reseller="acme", region="eu-west", resource="cpu"))] == 16
    assert samples[("tenantry_reseller_allocated", labels(reseller="acme", region="eu-west", resource="cpu"))] == 4
    assert samples[("tenantry_region_capacity", labels(region="eu-west", resource="pods"))] == 2000
    p.now += 3600
    p.integrator.advance(p.now)
    samples = p.samples()
    short = labels(region="eu-west", reseller="acme", tenant="bakery")
    assert samples[("tenantry_tenant_cpu_core_seconds_total", short)] == 1800
    assert samples[("tenantry_tenant_license_seconds_total", short)] == 3600
    # 0.5 core-hour x 0.05 + 1 GiB-hour x 0.006 + 3600/2628000 month x 19.00 (0.001369863 -> 0.026027)
    assert samples[("tenantry_charge_total", labels(region="eu-west", reseller="acme", tenant="bakery",
                                                    side="retail", currency="EUR"))] == 0.025 + 0.006 + 0.026027


def test_a_deleted_tenant_s_series_disappear_at_the_next_scrape() -> None:
    p = loaded()
    assert any(dict(lbl).get("tenant") == "bakery" for _, lbl in p.samples())
    p.now += 60
    p.feed("Tenant", None, ("reseller-acme", "bakery"))
    assert not any(dict(lbl).get("tenant") == "bakery" for _, lbl in p.samples())
    assert "uid-bakery" in p.integrator.accounts  # still to be billed when its window closes


def _label_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')


def reference_text(collector: MeteringCollector, *, sort_labels: bool) -> bytes:
    """The text format of `collector.collect()` as prometheus_client writes it, with the labels in
    the collector's order or (`sort_labels`) sorted as `generate_latest` sorts them."""
    out = []
    for family in collector.collect():
        name = f"{family.name}_total" if family.type == "counter" else family.name
        doc = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {doc}\n# TYPE {name} {family.type}\n")
        for sample in family.samples:
            items = sorted(sample.labels.items()) if sort_labels else list(sample.labels.items())
            labels = ",".join(f'{k}="{_label_value(v)}"' for k, v in items)
            out.append(f"{sample.name}{{{labels}}} {floatToGoString(sample.value)}\n")
    return "".join(out).encode()


def assert_served_text_is_the_collectors(p: Picture) -> str:
    expected = reference_text(p.collector, sort_labels=False)
    assert reference_text(p.collector, sort_labels=True) == generate_latest(p.registry)  # the reference is exact
    for _ in range(2):  # the second time from the per-state caches
        assert p.collector.render_text() == expected
    return expected.decode()


def reseller_in(name: str, region: str, used: int = 2) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {**RESELLER["spec"], "regions": [{**RESELLER["spec"]["regions"][0], "name": region}]},
            "status": {"licenses": {"total": 12, "used": used, "available": 12 - used},
                       "regions": [{**RESELLER["status"]["regions"][0], "name": region}]}}


def awkward_picture(license_currency: str) -> Picture:
    """Two resellers, label values that need escaping, tenants on a zero-priced plan; with licences
    priced in another currency than the region's USD, three charge keys per tenant, else two."""
    p = Picture(region='eu-"west\\1', license_currency=license_currency)
    region = p.region
    p.feed("Region", {**REGION, "metadata": {"name": region}}, (None, region))
    for reseller in ("acme", 'we"ird\\co'):
        p.feed("Reseller", reseller_in(reseller, region), (None, reseller))
        p.feed("Plan", PLAN, (f"reseller-{reseller}", "starter"))
        p.feed("Plan", {"spec": {"pricing": {"currency": "EUR", "monthly": "0", "cpu": "0", "memory": "0",
                                             "storage": "0"}}}, (f"reseller-{reseller}", 'fr"ee\nplan'))
    for reseller, name, plan, cpu in (("acme", "bakery", "starter", "500m"), ("acme", 'fl"or\\ist\n', "starter", "2"),
                                      ('we"ird\\co', "idle", "starter", "0"),
                                      ('we"ird\\co', "gratis", 'fr"ee\nplan', "250m")):
        obj = tenant(reseller, name, region=region)
        obj["status"]["admission"]["plan"] = plan
        p.feed("Tenant", obj, (f"reseller-{reseller}", name))
        p.feed("ResourceQuota", quota(reseller, name, {"requests.cpu": cpu, "requests.memory": "1536Mi",
                                                       "requests.storage": "3Gi" if cpu != "0" else "0",
                                                       "pods": "3"}),
               (f"{reseller}--{name}", "tenantry"))
    return p


@pytest.mark.parametrize("license_currency", ["USD", "GBP"])
def test_the_served_text_is_byte_for_byte_prometheus_client_s_text_of_the_collector(license_currency: str) -> None:
    """render_text (what /metrics serves) against prometheus_client's text of collect(), through
    ticks, a window close, usage, price and plan changes, and tenants coming and going: every
    cached piece of text must follow the state it was made from."""
    p = awkward_picture(license_currency)
    text = assert_served_text_is_the_collectors(p)
    assert "tenantry_charge_total" not in text.split("# TYPE tenantry_charge_total counter\n")[1].split("#")[0]
    assert r'tenant="fl\"or\\ist\n"' in text and r'region="eu-\"west\\1"' in text
    for step in (15, 15.001, 0.5, 1800):
        p.now += step
        p.integrator.advance(p.now)
        text = assert_served_text_is_the_collectors(p)
    assert 'side="wholesale",currency="USD"} ' in text
    assert ('side="wholesale",currency="GBP"} ' in text) == (license_currency == "GBP")
    assert 'tenant="gratis",side="retail",currency="EUR"} 0.0\n' in text
    p.now += 1800  # across the window's end: closed amounts plus the open window
    p.integrator.advance(p.now)
    assert any(a.charges for a in p.integrator.accounts.values())
    assert_served_text_is_the_collectors(p)
    p.now += 15
    p.feed("ResourceQuota", quota("acme", "bakery", {"requests.cpu": "1500m", "requests.memory": "2Gi",
                                                     "requests.storage": "1Gi", "pods": "7"}),
           ("acme--bakery", "tenantry"))
    assert 'resource="pods"} 7.0\n' in assert_served_text_is_the_collectors(p)
    p.feed("Plan", {**PLAN, "spec": {"pricing": {**PLAN["spec"]["pricing"], "currency": "CHF"}}},
           ("reseller-acme", "starter"))  # closed EUR amounts stay, the open window is in CHF now
    p.now += 15
    p.integrator.advance(p.now)
    text = assert_served_text_is_the_collectors(p)
    assert 'tenant="bakery",side="retail",currency="EUR"} ' in text
    assert 'tenant="bakery",side="retail",currency="CHF"} ' in text
    p.feed("Tenant", None, ("reseller-acme", 'fl"or\\ist\n'))
    assert "ist" not in assert_served_text_is_the_collectors(p)
    p.feed("Tenant", tenant("acme", "newcomer", region=p.region), ("reseller-acme", "newcomer"))
    p.feed("Reseller", reseller_in("acme", p.region, used=3), (None, "acme"))
    p.collector.stats.record("failed", 2)
    text = assert_served_text_is_the_collectors(p)
    assert 'tenant="newcomer"' in text and 'reseller="acme",state="used"} 3.0\n' in text
    assert 'sink="file",result="failed"} 2.0\n' in text
    p.feed("Region", None, (None, p.region))
    assert_served_text_is_the_collectors(p)
    p.integrator.advance(p.now + 7200)
    for uid, _account in list(p.integrator.live()):
        p.integrator.set_state(p.now + 7200, uid, None)
    assert "tenant=" not in assert_served_text_is_the_collectors(p)


@settings(max_examples=3000, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**17), 10**17).map(float)
       | st.decimals(min_value=0, max_value=10**16, places=3, allow_nan=False).map(float))
@example(0.0)
@example(-0.0)
@example(1e6)
@example(math.nextafter(1e6, 0))
@example(1e16)
@example(math.nextafter(1e16, 0))
@example(1234567.0)
@example(1000000.5)
@example(-1e6)
@example(5e-324)
@example(1e-5)
@example(1.7976931348623157e308)
@example(math.inf)
@example(-math.inf)
@example(math.nan)
def test_go_float_is_prometheus_client_s_float_to_go_string(value: float) -> None:
    assert go_float(value) == floatToGoString(value)


def _charges_as_a_dict(account: Account) -> list[tuple[tuple[str, str], float]]:
    """The metric's definition, plainly: closed amounts, then each non-zero meter's running cost
    added to its key in METERS order, retail then wholesale."""
    unit = {"cpu": 1 / 3600, "memory": 1 / (2**30 * 3600), "storage": 1 / (2**30 * 3600),
            "license": 1 / 2628000, "base": 1 / 2628000}
    result = {key: float(value) for key, value in account.charges.items()}
    for meter in METERS:
        integral = account.window[meter]
        if integral:
            for side, price in (("retail", account.last.prices.retail[meter]),
                                ("wholesale", account.last.prices.wholesale[meter])):
                key = (side, price.currency)
                result[key] = result.get(key, 0.0) + float(integral) * (unit[meter] * float(price.unit_price))
    return sorted(result.items())


_CURRENCIES = st.sampled_from(["EUR", "USD", "GBP"])
_AMOUNTS = st.decimals(min_value=0, max_value=10**6, places=6, allow_nan=False)


_WINDOW = st.fixed_dictionaries({m: st.sampled_from([Decimal(0)]) | st.decimals(
    min_value=0, max_value=10**15, places=3, allow_nan=False) for m in METERS})
_CLOSED = st.dictionaries(st.tuples(st.sampled_from(["retail", "wholesale"]), _CURRENCIES), _AMOUNTS)


def _prices(currencies: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Price]]:
    return st.fixed_dictionaries({m: st.builds(Price, currencies, _AMOUNTS) for m in METERS})


def _one_currency_prices() -> st.SearchStrategy[dict[str, Price]]:
    """Every meter of a side in one currency: the usual price list, and charges_for_metrics' fast path."""
    return _CURRENCIES.flatmap(lambda currency: _prices(st.just(currency)))


def _check_charges_for_metrics(retail: dict[str, Price], wholesale: dict[str, Price], window: dict[str, Decimal],
                               closed: dict[tuple[str, str], Decimal]) -> None:
    state = TenantState(uid="u", reseller="r", tenant="t", plan="p", active=True, licensed=True,
                        prices=TenantPrices(retail, wholesale))
    account = Account(state=state, last=state, since=Decimal(T0), window=window, charges=closed)

    def exactly(rows: list[tuple[tuple[str, str], float]]) -> list[tuple[tuple[str, str], str]]:
        return [(key, repr(value)) for key, value in rows]  # every bit of the float, -0.0 too

    assert exactly(Integrator.charges_for_metrics(account)) == exactly(_charges_as_a_dict(account))


@settings(max_examples=500, deadline=None)
@given(retail=_prices(_CURRENCIES), wholesale=_prices(_CURRENCIES), window=_WINDOW, closed=_CLOSED)
def test_charges_for_metrics_are_the_closed_amounts_plus_the_running_cost_in_meter_order(
        retail: dict[str, Price], wholesale: dict[str, Price], window: dict[str, Decimal],
        closed: dict[tuple[str, str], Decimal]) -> None:
    _check_charges_for_metrics(retail, wholesale, window, closed)


@settings(max_examples=300, deadline=None)
@given(retail=_one_currency_prices(), wholesale=_one_currency_prices(), window=_WINDOW, closed=_CLOSED)
def test_charges_for_metrics_with_one_currency_a_side(
        retail: dict[str, Price], wholesale: dict[str, Price], window: dict[str, Decimal],
        closed: dict[tuple[str, str], Decimal]) -> None:
    _check_charges_for_metrics(retail, wholesale, window, closed)


def test_a_deleted_plan_s_tenants_keep_its_last_prices() -> None:
    p = loaded()
    p.feed("Plan", None, ("reseller-acme", "starter"))
    assert p.sampler.states["uid-bakery"].prices.retail["base"].unit_price == Decimal("19.00")


def test_an_unreadable_object_is_skipped_not_fatal() -> None:
    from tenantry.metering.sampler import Reflector

    seen: list[Any] = []
    reflector = Reflector(None, "Tenant", tenant_info, lambda *args: seen.append(args))  # type: ignore[arg-type]
    reflector._put({"metadata": {"namespace": "reseller-acme", "name": "broken"}, "status": {"admission": 7}})
    reflector._put(tenant("acme", "fine"))
    assert [args[1] for args in seen] == [("reseller-acme", "fine")]


def test_until_every_list_is_in_states_are_held_back_so_a_partial_picture_bills_nothing_wrong() -> None:
    calls: list[tuple[str, TenantState | None]] = []
    sampler = Sampler("eu-west", Settings().license_tiers, "USD", on_state=lambda u, s: calls.append((u, s)))
    sampler.changed("Tenant", ("reseller-acme", "bakery"), None, tenant_info(tenant("acme", "bakery")))
    sampler.changed("ResourceQuota", ("acme--bakery", "tenantry"), None, quota_info(
        quota("acme", "bakery", {"requests.cpu": "1", "requests.memory": "1Gi", "requests.storage": "0",
                                 "pods": "1"})))
    assert calls == []  # the Tenant alone (no quota yet) looked idle: that was never passed on
    sampler.go_live()
    assert [(uid, s.used["cpu"]) for uid, s in calls if s] == [("uid-bakery", Decimal(1))]
