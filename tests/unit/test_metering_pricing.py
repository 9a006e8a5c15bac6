"""Pricing, records and time integration of metering, with hand-computed values and an injected clock."""

from __future__ import annotations

import json
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tenantry.metering.integrator import Integrator, TenantState
from tenantry.metering.pricing import (
    amount_of,
    license_tier_price,
    quantity_of,
    statement_total,
    tenant_prices,
)
from tenantry.metering.records import record_id, validate_record
from tenantry.models import RetailPricing, WholesalePricing
from tenantry.settings import Settings

GI = Decimal(2**30)
T0 = 1_800_000_000  # 2027-01-15T08:00:00Z, on an hour boundary
STARTER = RetailPricing(currency="EUR", monthly=Decimal("19.00"), cpu=Decimal("0.05"), memory=Decimal("0.006"),
                        storage=Decimal("0.0004"))
REGION = WholesalePricing(currency="USD", cpu=Decimal("0.020"), memory=Decimal("0.0025"), storage=Decimal("0.00015"))
PRICES = tenant_prices(STARTER, REGION, Decimal("25.00"), "USD")


def state(uid: str, *, cpu: str = "0", memory: Decimal = Decimal(0), storage: Decimal = Decimal(0),
          phase: str = "Active", tenant: str | None = None) -> TenantState:
    return TenantState(uid=uid, reseller="acme", tenant=tenant or uid, plan="starter", active=phase == "Active",
                       licensed=True, used={"cpu": Decimal(cpu), "memory": memory, "storage": storage,
                                            "pods": Decimal(1)},
                       hard={"cpu": Decimal(2), "memory": 4 * GI, "storage": 20 * GI, "pods": Decimal(20)},
                       prices=PRICES)


def by_meter(records: list[dict], tenant: str) -> dict[str, dict]:
    return {r["data"]["meter"]: r["data"] for r in records if r["data"]["tenant"] == tenant}


# -- pricing ---------------------------------------------------------------------------------------


def test_volume_tiers_price_every_licence_at_the_tier_of_the_count() -> None:
    tiers = Settings().license_tiers
    assert [license_tier_price(tiers, n) for n in (0, 1, 9, 10, 49, 50, 99, 100, 5000)] == [
        Decimal("25.00"), Decimal("25.00"), Decimal("25.00"), Decimal("20.00"), Decimal("20.00"),
        Decimal("17.50"), Decimal("17.50"), Decimal("15.00"), Decimal("15.00")]


def test_quantities_are_in_billing_units_and_rounded_half_even_to_nine_places() -> None:
    assert quantity_of("cpu", Decimal(1800)) == Decimal("0.5")  # core-seconds -> core-hours
    assert quantity_of("memory", 2700 * GI) == Decimal("0.75")  # byte-seconds -> GiB-hours
    assert quantity_of("license", Decimal(730 * 3600)) == Decimal(1)  # a month is 730 hours
    assert quantity_of("base", Decimal(1800)) == Decimal("0.000684932")  # 0.000684931506.. rounds up
    assert quantity_of("cpu", Decimal(4800)) == Decimal("1.333333333")


def test_amounts_are_quantity_times_price_rounded_half_even_to_six_places() -> None:
    assert amount_of(Decimal("1.333333333"), Decimal("0.05")) == Decimal("0.066667")
    assert amount_of(Decimal("0.0000125"), Decimal("1")) == Decimal("0.000012")  # half to even: down
    assert amount_of(Decimal("0.0000135"), Decimal("1")) == Decimal("0.000014")  # half to even: up
    assert statement_total([Decimal("0.005"), Decimal("0.01")]) == Decimal("0.02")


def test_prices_carry_currency_per_side() -> None:
    assert PRICES.retail["cpu"].currency == "EUR" and PRICES.wholesale["cpu"].currency == "USD"
    assert PRICES.retail["base"].unit_price == Decimal("19.00")
    assert PRICES.wholesale["base"].unit_price == 0
    assert PRICES.retail["license"].unit_price == 0
    assert PRICES.wholesale["license"].unit_price == Decimal("25.00")


# -- records ---------------------------------------------------------------------------------------


def test_record_id_is_sha256_of_region_uid_meter_window_start() -> None:
    import hashlib

    expected = hashlib.sha256(b"eu-west|uid-1|cpu|2027-01-15T08:00:00Z").hexdigest()
    assert record_id("eu-west", "uid-1", "cpu", "2027-01-15T08:00:00Z") == expected


# -- integration over time: a scripted scenario ---------------------------------------------------


def scripted_scenario(integrator: Integrator, checkpoint_at: float | None = None) -> tuple[Integrator, list[dict]]:
    """Tenant a: created, resized, suspended, deleted within one window. Tenant b: created
    mid-window and still running after it. Returns the integrator (restored from a JSON checkpoint
    at `checkpoint_at`, as a restarted meter would be) and every record emitted."""
    events = [
        (T0 + 0, "a", state("a", cpu="0.5", memory=GI)),
        (T0 + 900, "a", state("a", cpu="1.5", memory=2 * GI)),  # resized
        (T0 + 1200, "b", state("b", cpu="2")),
        (T0 + 1800, "a", state("a", phase="Suspended")),  # suspended: workloads at zero, licence kept
        (T0 + 2700, "a", None),  # deleted
    ]
    records: list[dict] = []
    for at, uid, new in events:
        if checkpoint_at is not None and at > checkpoint_at:
            records += integrator.advance(checkpoint_at)
            integrator = Integrator.from_json(json.loads(integrator.checkpoint_bytes()))
            checkpoint_at = None
        records += integrator.set_state(at, uid, new)
    records += integrator.advance(T0 + 4000)
    return integrator, records


def test_scripted_scenario_matches_hand_computed_quantities_and_amounts() -> None:
    integrator, records = scripted_scenario(Integrator("eu-west", 3600, T0))
    a, b = by_meter(records, "a"), by_meter(records, "b")

    # a: cpu 0.5 x 900 s + 1.5 x 900 s = 1800 core-s = 0.5 core-hour; nothing after the suspension.
    assert a["cpu"]["quantity"] == "0.500000000" and a["cpu"]["unit"] == "core-hour"
    assert a["cpu"]["retail"] == {"currency": "EUR", "unitPrice": "0.05", "amount": "0.025000"}
    assert a["cpu"]["wholesale"] == {"currency": "USD", "unitPrice": "0.020", "amount": "0.010000"}
    # a: memory 1 GiB x 900 s + 2 GiB x 900 s = 2700 GiB-s = 0.75 GiB-hour.
    assert a["memory"]["quantity"] == "0.750000000"
    assert a["memory"]["retail"]["amount"] == "0.004500" and a["memory"]["wholesale"]["amount"] == "0.001875"
    # a: held a licence 2700 s (suspended too) = 2700 / 2628000 month; base fee only while Active (1800 s).
    assert a["license"]["quantity"] == "0.001027397" and a["license"]["unit"] == "license-month"
    assert a["license"]["wholesale"] == {"currency": "USD", "unitPrice": "25.00", "amount": "0.025685"}
    assert a["license"]["retail"]["amount"] == "0.000000"
    assert a["base"]["quantity"] == "0.000684932"
    assert a["base"]["retail"] == {"currency": "EUR", "unitPrice": "19.00", "amount": "0.013014"}
    assert "storage" not in a  # nothing used, nothing billed

    # b: 2 cores from T0+1200 to the window's end: 4800 core-s.
    assert b["cpu"]["quantity"] == "1.333333333" and b["cpu"]["retail"]["amount"] == "0.066667"
    assert b["cpu"]["windowStart"] == "2027-01-15T08:00:00Z" and b["cpu"]["windowEnd"] == "2027-01-15T09:00:00Z"
    assert b["license"]["quantity"] == "0.000913242"  # 2400 s

    assert all(validate_record(r) == [] for r in records)
    assert len({r["id"] for r in records}) == len(records)
    # a is gone after its last window; b goes on in the next one (400 s so far).
    assert [uid for uid, _ in integrator.live()] == ["b"]
    assert integrator.accounts["b"].window["cpu"] == Decimal(800)
    assert integrator.window_start == T0 + 3600


def test_a_restart_from_the_checkpoint_yields_the_same_records() -> None:
    _, straight = scripted_scenario(Integrator("eu-west", 3600, T0))
    for cut in (T0 + 100, T0 + 1500, T0 + 2000):
        _, resumed = scripted_scenario(Integrator("eu-west", 3600, T0), checkpoint_at=cut)
        assert resumed == straight


def test_time_while_the_meter_was_down_is_billed_at_the_last_known_state() -> None:
    integrator = Integrator("eu-west", 3600, T0)
    integrator.set_state(T0, "a", state("a", cpu="1"))
    integrator.advance(T0 + 600)
    restored = Integrator.from_json(json.loads(json.dumps(integrator.to_json())))
    # Back 5400 s later, past the window's end: the closed window is billed in full.
    records = restored.set_state(T0 + 6000, "a", state("a", cpu="1"))
    assert by_meter(records, "a")["cpu"]["quantity"] == "1.000000000"


def test_a_window_crossed_by_many_changes_splits_exactly_at_the_boundary() -> None:
    integrator = Integrator("eu-west", 10, T0 + 5)
    integrator.set_state(T0 + 5, "a", state("a", cpu="3600"))  # 3600 cores: 1 core-hour per second
    records = integrator.advance(T0 + 25)
    quantities = [(r["data"]["windowStart"], r["data"]["quantity"]) for r in records if r["data"]["meter"] == "cpu"]
    assert quantities == [("2027-01-15T08:00:00Z", "5.000000000"), ("2027-01-15T08:00:10Z", "10.000000000")]


def test_a_clock_stepping_back_bills_no_negative_time() -> None:
    integrator = Integrator("eu-west", 3600, T0)
    integrator.set_state(T0 + 100, "a", state("a", cpu="1"))
    integrator.advance(T0 + 200)
    integrator.advance(T0 + 150)
    assert integrator.accounts["a"].window["cpu"] == Decimal(100)


def test_a_new_window_length_applies_after_the_open_window_and_starts_never_repeat() -> None:
    integrator = Integrator("eu-west", 10, T0)
    integrator.set_state(T0, "a", state("a", cpu="1"))
    integrator.advance(T0 + 5)
    restored = Integrator.from_json(integrator.to_json(), window_seconds=3600)
    records = restored.advance(T0 + 3600)
    starts = [r["data"]["windowStart"] for r in records if r["data"]["meter"] == "cpu"]
    assert starts == ["2027-01-15T08:00:00Z", "2027-01-15T08:00:10Z"]
    assert restored.window_start == T0 + 3600 and restored.window_end == T0 + 7200


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 7200), st.integers(0, 4000)), min_size=1, max_size=12),
       st.sampled_from([10, 60, 900, 3600]))
def test_core_seconds_are_conserved_whatever_the_windows(changes: list[tuple[int, int]], window: int) -> None:
    """Sum over windows of billed core-seconds = the exact integral of the step function."""
    changes = sorted(changes)
    integrator = Integrator("eu-west", window, T0)
    integrator.set_state(T0, "a", state("a", cpu="0"))
    expected, last_t, last_m = Decimal(0), 0, Decimal(0)
    for t, millicores in changes:
        expected += last_m * (t - last_t)
        integrator.set_state(T0 + t, "a", state("a", cpu=str(Decimal(millicores) / 1000)))
        last_t, last_m = t, Decimal(millicores) / 1000
    expected += last_m * (8000 - last_t)
    integrator.advance(T0 + 8000)
    assert integrator.accounts["a"].totals["cpu"] == expected


def test_the_fast_checkpoint_text_is_the_checkpoint() -> None:
    integrator, _ = scripted_scenario(Integrator("eu-west", 3600, T0))
    integrator.set_state(T0 + 4100, "c", state("c", cpu="0.25"))
    integrator.set_state(T0 + 4200, "c", None)  # deleted: `last` is written separately
    integrator.advance(T0 + 4300)
    for _ in range(2):  # the second time from the states' cached text
        assert json.loads(integrator.checkpoint_bytes()) == integrator.to_json()
    restored = Integrator.from_json(json.loads(integrator.checkpoint_bytes()))
    assert restored.to_json() == integrator.to_json()
