"""The sampler's join of quotas, tenants, plans, resellers and regions, and the custom collector."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tenantry.metering.exporter import DeliveryStats, MeteringCollector
from tenantry.metering.integrator import Integrator, TenantState
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
    "tenantry_billing_spool_records",
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

    def __init__(self) -> None:
        self.now = float(T0)
        self.integrator = Integrator("eu-west", 3600, self.now)
        self.calls: list[tuple[str, TenantState | None]] = []
        self.sampler = Sampler("eu-west", Settings().license_tiers, "USD", on_state=self._on_state)
        self.sampler.go_live()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(MeteringCollector("eu-west", self.integrator, self.sampler, DeliveryStats("file")))

    def _on_state(self, uid: str, state: TenantState | None) -> None:
        self.calls.append((uid, state))
        self.integrator.set_state(self.now, uid, state)

    def feed(self, kind: str, obj: dict[str, Any] | None, key: tuple[str | None, str]) -> None:
        transform = {"ResourceQuota": quota_info, "Tenant": tenant_info, "Plan": plan_pricing,
                     "Reseller": lambda o: reseller_info(o, "eu-west"), "Region": region_info}[kind]
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


def test_the_fast_text_path_serves_exactly_the_samples_of_the_collector() -> None:
    from tenantry.metering.exporter import MeteringCollector

    p = loaded()
    p.feed("Tenant", tenant("acme", "florist"), ("reseller-acme", "florist"))
    p.feed("ResourceQuota", quota("acme", "florist", {"requests.cpu": "2", "requests.memory": "3Gi",
                                                      "requests.storage": "5Gi", "pods": "4"}),
           ("acme--florist", "tenantry"))
    p.now += 1234.5
    p.integrator.advance(p.now)
    collector = next(c for c in p.registry._collector_to_names if isinstance(c, MeteringCollector))

    def parsed(text: str) -> dict:
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    for _ in range(2):  # the second time from the per-state cache
        assert parsed(collector.render_text().decode()) == parsed(generate_latest(p.registry).decode())
    p.feed("Tenant", None, ("reseller-acme", "florist"))
    assert parsed(collector.render_text().decode()) == parsed(generate_latest(p.registry).decode())
    assert "florist" not in collector.render_text().decode()


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
