"""The pure parts of reseller self-service licence purchases (tenantry.licensing): prices by volume
tier, the once-only decision, the ledger of decided orders, and the billing records' ids."""

from __future__ import annotations

import datetime
import hashlib
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantry import licensing
from tenantry.settings import Settings

TIERS = Settings().license_orders.tiers
DEC = datetime.datetime(2026, 12, 14, 10, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(("quantity", "tier", "unit", "amount"), [
    (1, "1-9", "25.00", "25.00"), (9, "1-9", "25.00", "225.00"),
    (10, "10-49", "20.00", "200.00"), (49, "10-49", "20.00", "980.00"),
    (50, "50-99", "17.50", "875.00"), (99, "50-99", "17.50", "1732.50"),
    (100, "100+", "15.00", "1500.00"), (1000, "100+", "15.00", "15000.00"),
])
def test_the_default_tiers_price_an_order_by_its_quantity(quantity: int, tier: str, unit: str, amount: str) -> None:
    price = licensing.quote(quantity, TIERS, "USD")
    assert price.to_status() == {"currency": "USD", "tier": tier, "unitPrice": unit, "amount": amount}


@given(st.integers(min_value=1, max_value=100_000))
def test_an_amount_is_exactly_quantity_times_the_unit_price_and_larger_orders_never_cost_more_per_licence(
        quantity: int) -> None:
    price = licensing.quote(quantity, TIERS, "USD")
    assert isinstance(price.amount, Decimal)
    assert price.amount == price.unit_price * quantity
    assert licensing.quote(quantity + 1, TIERS, "USD").unit_price <= price.unit_price


def _decide(quantity: int, so_far: int, limit: int = 100, active: bool | None = True) -> licensing.Decision:
    return licensing.decide_order(quantity, so_far, limit, active, reseller="acme", now=DEC,
                                  price=licensing.quote(quantity, TIERS, "USD"))


def test_an_order_within_the_limit_is_fulfilled_and_says_what_it_cost() -> None:
    decision = _decide(15, 20)
    assert (decision.phase, decision.reason) == ("Fulfilled", "Fulfilled")
    assert "15 licences at 20.00 USD each (tier 10-49): 300.00 USD" in decision.message
    assert "December's purchases: 35 of 100" in decision.message
    assert _decide(30, 70).phase == "Fulfilled"  # exactly at the limit


def test_an_order_over_the_limit_is_rejected_saying_how_many_fit_and_who_can_raise_it() -> None:
    decision = _decide(60, 70)
    assert (decision.phase, decision.reason) == ("Rejected", "OverSelfServiceLimit")
    assert decision.message == (
        "This order of 60 would bring December's purchases to 130, over your self-service limit of 100; "
        "order at most 30, or ask the platform to raise spec.licensePolicy.selfServiceLimit.")
    spent = _decide(1, 100)
    assert spent.reason == "OverSelfServiceLimit"
    assert "you have bought all 100 licences your self-service limit allows in December" in spent.message
    assert _decide(1, 0, limit=0).reason == "OverSelfServiceLimit"


def test_an_inactive_or_missing_reseller_cannot_buy() -> None:
    inactive = _decide(1, 0, active=False)
    assert (inactive.phase, inactive.reason) == ("Rejected", "ResellerInactive")
    assert "ask the platform to reactivate it" in inactive.message
    missing = _decide(1, 0, active=None)
    assert (missing.phase, missing.reason) == ("Rejected", "ResellerInactive")


def _entry(uid: str, phase: str, quantity: int, at: str, reseller: str = "acme") -> licensing.OrderEntry:
    return licensing.OrderEntry(uid, reseller, uid, phase, quantity, at)


def test_the_ledger_counts_fulfilled_orders_of_the_month_in_utc_and_forgets_refunds() -> None:
    book = licensing.OrderBook()
    book.observe("a", _entry("a", "Fulfilled", 10, "2026-12-01T00:00:00Z"))
    book.observe("b", _entry("b", "Fulfilled", 5, "2026-11-30T23:59:59Z"))  # November, UTC
    book.observe("c", _entry("c", "Rejected", 50, ""))
    book.observe("d", _entry("d", "Fulfilled", 7, "2026-12-13T10:00:00Z", reseller="other"))
    assert book.fulfilled_in_month("acme", DEC) == 10
    assert book.purchased("acme") == 15
    book.record(_entry("a", "Refunded", 10, "2026-12-01T00:00:00Z"))
    assert (book.purchased("acme"), book.fulfilled_in_month("acme", DEC)) == (5, 0)


def test_a_decision_counts_before_its_status_is_seen_and_an_older_event_does_not_undo_it() -> None:
    book = licensing.OrderBook()
    book.record(_entry("a", "Fulfilled", 10, "2026-12-14T10:00:00Z"))
    assert book.fulfilled_in_month("acme", DEC) == 10
    book.observe("a", None)  # an event from before the status write (kopf adding its finalizer)
    assert book.fulfilled_in_month("acme", DEC) == 10
    book.observe("a", _entry("a", "Fulfilled", 10, "2026-12-14T10:00:00Z"))
    book.record(_entry("a", "Refunded", 10, "2026-12-14T10:00:00Z"))
    book.observe("a", _entry("a", "Fulfilled", 10, "2026-12-14T10:00:00Z"))  # still the old status
    assert book.purchased("acme") == 0
    book.forget("a")
    assert book.entry("a") is None


def _order(phase: str = "Fulfilled") -> dict:
    return {"metadata": {"name": "december", "namespace": "reseller-acme", "uid": "u-1"},
            "status": {"phase": phase, "quantity": 15, "fulfilledAt": "2026-12-01T10:00:00Z",
                       "refundedAt": "2026-12-02T10:00:00Z",
                       "price": {"currency": "USD", "tier": "10-49", "unitPrice": "20.00", "amount": "300.00"}}}


def test_order_and_refund_records_have_deterministic_ids_and_opposite_amounts() -> None:
    order = licensing.billing_record("order", "acme", _order())
    refund = licensing.billing_record("refund", "acme", _order("Refunded"))
    assert order["id"] == hashlib.sha256(b"license-order|u-1").hexdigest()
    assert refund["id"] == hashlib.sha256(b"license-refund|u-1").hexdigest()
    assert order == licensing.billing_record("order", "acme", _order())  # a resend is the same record
    assert (order["type"], order["source"], order["subject"]) == ("dev.tenantry.license-order.v1",
                                                                  "tenantry/reseller/acme", "acme")
    assert order["data"] == {"reseller": "acme", "order": "december", "orderUID": "u-1", "quantity": 15,
                             "tier": "10-49", "currency": "USD", "unitPrice": "20.00", "amount": "300.00"}
    assert refund["data"]["amount"] == "-300.00" and refund["time"] == "2026-12-02T10:00:00Z"


def test_settings_refuse_tiers_that_do_not_start_at_one_and_float_prices() -> None:
    with pytest.raises(ValueError, match="start at minQuantity 1"):
        Settings.model_validate({"licenseOrders": {"tiers": [{"minQuantity": 5, "unitPrice": "1.00"}]}})
    with pytest.raises(ValueError, match="float"):
        Settings.model_validate({"licenseOrders": {"tiers": [{"minQuantity": 1, "unitPrice": 1.5}]}})
