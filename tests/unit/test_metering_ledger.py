"""A meter's billing ledger (tenantry.metering.ledger): what a reseller may read of its own billing
agrees with `tenantry bill` to the cent, survives a window closed twice, and is kept bounded."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tenantry.metering.billing import build_bill_config_map, build_usage_config_map
from tenantry.metering.integrator import Integrator, TenantState
from tenantry.metering.ledger import RETENTION_DAYS, BillingLedger, Tally
from tenantry.metering.pricing import Price, TenantPrices, statement_total
from tenantry.metering.records import usage_record
from tenantry.metering.statements import build_statement

MIDNIGHT = 1_800_000_000 - 1_800_000_000 % 86400  # a UTC midnight (2027-01-15)
DAY = datetime.datetime.fromtimestamp(MIDNIGHT, tz=datetime.UTC).date()
PRICES = TenantPrices(
    retail={"cpu": Price("EUR", Decimal("0.05")), "memory": Price("EUR", Decimal("0.006")),
            "storage": Price("EUR", Decimal("0.0004")), "base": Price("EUR", Decimal("19.00")),
            "license": Price("EUR", Decimal("0"))},
    wholesale={"cpu": Price("USD", Decimal("0.020")), "memory": Price("USD", Decimal("0.0025")),
               "storage": Price("USD", Decimal("0.00015")), "base": Price("USD", Decimal("0")),
               "license": Price("USD", Decimal("25.00"))})


def state(tenant: str, cpu: str, reseller: str = "acme") -> TenantState:
    return TenantState(uid=f"uid-{tenant}", reseller=reseller, tenant=tenant, plan="small", active=True,
                       licensed=True, used={"cpu": Decimal(cpu), "memory": Decimal(2**29)}, prices=PRICES)


def two_days(window: int = 3600) -> list[dict]:
    """Records of two tenants over the last hours of one day and the first of the next."""
    integrator = Integrator("eu-west", window, MIDNIGHT - 5 * 3600)
    records = integrator.set_state(MIDNIGHT - 5 * 3600, "uid-bakery", state("bakery", "0.5"))
    records += integrator.set_state(MIDNIGHT - 4 * 3600 + 1234, "uid-florist", state("florist", "1.25"))
    records += integrator.set_state(MIDNIGHT - 2 * 3600 + 17, "uid-bakery", state("bakery", "2"))
    records += integrator.set_state(MIDNIGHT - 3600, "uid-other", state("other", "3", reseller="globex"))
    records += integrator.advance(MIDNIGHT + 2 * 3600)
    return records


def test_the_daily_bill_and_month_to_date_match_tenantry_bill_to_the_cent() -> None:
    records = two_days()
    ledger = BillingLedger("eu-west")
    ledger.absorb(records)
    ledger.advance(MIDNIGHT + 2 * 3600)
    assert ledger.complete_days("acme") == [(DAY - datetime.timedelta(days=1)).isoformat()]  # today is not over
    yesterday = DAY - datetime.timedelta(days=1)
    bill = ledger.bill_document("acme", yesterday.isoformat())
    statement = build_statement(records, "acme", yesterday, DAY)
    assert [(line["meter"], line["unit"], Decimal(line["quantity"]), line["currency"], Decimal(line["amount"]))
            for line in bill["lines"]] == [(d.meter, d.unit, d.quantity, d.currency, d.amount)
                                          for d in sorted(statement.daily, key=lambda d: d.meter)]
    assert {c: statement_total([Decimal(a)]) for c, a in bill["total"].items()} == statement.totals("wholesale")
    # Month to date: each tenant's retail and wholesale, as the statement's lines of the month sum them.
    usage = ledger.usage_document("acme")
    assert usage is not None and usage["through"] == "2027-01-15T02:00:00Z"
    month = build_statement(records, "acme", DAY.replace(day=1), DAY + datetime.timedelta(days=1))
    for uid, tenant in usage["tenants"].items():
        for side in ("retail", "wholesale"):
            exact = sum((line.amount for line in getattr(month, side) if line.tenant == tenant["tenant"]),
                        Decimal(0))
            assert Decimal(tenant[side][{"retail": "EUR", "wholesale": "USD"}[side]]) == exact, (uid, side)
    assert ledger.usage_document("globex") is not None and "uid-other" not in usage["tenants"]


def test_a_window_closed_again_after_a_crash_is_counted_once(tmp_path: Path) -> None:
    records = two_days()
    ledger = BillingLedger.load(tmp_path, "eu-west")
    first = [r for r in records if r["data"]["windowStart"] < "2027-01-14T22:00:00Z"]
    ledger.absorb(first)
    ledger.advance(MIDNIGHT - 2 * 3600)
    ledger.save()
    restored = BillingLedger.load(tmp_path, "eu-west")
    assert restored.absorb(records) == len(records) - len(first)  # the replayed windows are skipped
    again = BillingLedger("eu-west")
    again.absorb(records)
    assert restored.days == again.days and restored.months == again.months


def test_a_new_month_starts_from_zero_and_published_bills_expire() -> None:
    ledger = BillingLedger("eu-west")
    feb = MIDNIGHT + 17 * 86400  # 2027-02-01
    one = [usage_record(region="eu-west", reseller="acme", tenant="bakery", tenant_uid="u", plan="small",
                        meter="cpu", quantity=Decimal(1), window_start=start, window_end=start + 3600,
                        retail=Price("EUR", Decimal("1")), wholesale=Price("USD", Decimal("0.5")))
           for start in (feb - 3600, feb)]
    ledger.absorb(one[:1])
    assert ledger.usage_document("acme")["month"] == "2027-01"  # type: ignore[index]
    ledger.absorb(one[1:])
    usage = ledger.usage_document("acme")
    assert usage is not None and usage["month"] == "2027-02" and usage["tenants"]["u"]["retail"] == {"EUR": "1.000000"}
    ledger.bill_published("acme", "2027-01-31")
    ledger.advance(feb + (RETENTION_DAYS + 1) * 86400)
    assert ledger.expired_bills("acme") == ["2027-01-31"]
    ledger.bill_removed("acme", "2027-01-31")
    assert ledger.expired_bills("acme") == [] and "acme" not in ledger.published_bills


def test_config_maps_carry_the_documents_where_the_reseller_reads_them() -> None:
    ledger = BillingLedger("eu-west")
    ledger.absorb(two_days())
    ledger.advance(MIDNIGHT + 2 * 3600)
    usage = build_usage_config_map(ledger.usage_document("acme") or {})
    assert usage["metadata"]["namespace"] == "reseller-acme" and usage["metadata"]["name"] == "tenantry-usage-eu-west"
    assert usage["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "tenantry-meter"  # never the operator's
    day = ledger.complete_days("acme")[0]
    bill = build_bill_config_map(ledger.bill_document("acme", day))
    assert bill["metadata"]["name"] == f"tenantry-bill-{day}-eu-west"
    assert json.loads(bill["data"]["bill.json"])["day"] == day


@settings(max_examples=30, deadline=None)
@given(st.sampled_from([60, 600, 900, 3600, 7200]), st.integers(min_value=1, max_value=40))
def test_daily_lines_equal_the_statement_whatever_the_window(window: int, splits: int) -> None:
    integrator = Integrator("eu-west", window, MIDNIGHT - 3 * 3600)
    records = integrator.set_state(MIDNIGHT - 3 * 3600, "uid-a", state("a", "0.75"))
    for step in range(splits):
        at = MIDNIGHT - 3 * 3600 + (step + 1) * (5 * 3600 // (splits + 1))
        records += integrator.set_state(at, "uid-a", state("a", str(Decimal(step % 4) / 4 + 1)))
    records += integrator.advance(MIDNIGHT + 3 * 3600)
    ledger = BillingLedger("eu-west")
    ledger.absorb(records)
    ledger.advance(integrator.window_start)
    for day in ledger.complete_days("acme"):
        date = datetime.date.fromisoformat(day)
        statement = build_statement(records, "acme", date, date + datetime.timedelta(days=1))
        got = {c: statement_total([Decimal(a)]) for c, a in ledger.bill_document("acme", day)["total"].items()}
        assert got == statement.totals("wholesale")


def test_the_publisher_never_sees_a_window_half_taken_in_nor_a_half_written_file(tmp_path: Path) -> None:
    """The meter takes a close's records in, and writes the ledger, a reseller at a time between
    scrapes (`taking`, `json_parts`); the publisher reads and changes the ledger in between."""
    records = two_days()
    first = [r for r in records if r["data"]["windowStart"] < "2027-01-14T22:00:00Z"]
    ledger = BillingLedger.load(tmp_path, "eu-west")
    ledger.absorb(first)
    before = {reseller: ledger.usage_document(reseller) for reseller in ledger.resellers()}
    tally = Tally(ledger.through)
    for record in records:
        tally.add(record)
    steps = ledger.taking(tally)
    next(steps)  # one reseller done: nothing shows yet
    assert {reseller: ledger.usage_document(reseller) for reseller in ledger.resellers()} == before
    for _ in steps:
        pass
    once = BillingLedger("eu-west")
    once.absorb(records)
    assert (ledger.months, ledger.days, ledger.through) == (once.months, once.days, once.through)

    pieces = ledger.json_parts()
    text = next(pieces)  # the snapshot is of this moment
    expected = json.loads(json.dumps(ledger.to_json()))
    day = sorted(ledger.days["acme"])[0]
    ledger.bill_published("acme", day)  # what the publisher does meanwhile
    ledger.forget("globex")
    text += "".join(pieces)
    assert json.loads(text) == expected
    ledger.save()
    assert BillingLedger.load(tmp_path, "eu-west").to_json() == json.loads(json.dumps(ledger.to_json()))
