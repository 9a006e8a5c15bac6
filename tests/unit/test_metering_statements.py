"""`tenantry bill`: retail lines per tenant, wholesale shadow lines, daily wholesale summary, margin."""

from __future__ import annotations

import csv
import datetime
import io
import json
from decimal import Decimal
from pathlib import Path

from tenantry.cli import main
from tenantry.metering.pricing import Price
from tenantry.metering.records import usage_record
from tenantry.metering.statements import build_statement, load_records, render_csv, render_html

DAY1 = 1_800_000_000 - 1_800_000_000 % 86400  # midnight UTC
JAN = datetime.date.fromtimestamp(DAY1)


def rec(tenant: str, meter: str, quantity: str, start: int, retail: tuple[str, str], wholesale: tuple[str, str],
        reseller: str = "acme") -> dict:
    return usage_record(region="eu-west", reseller=reseller, tenant=tenant, tenant_uid=f"uid-{tenant}", plan="starter",
                        meter=meter, quantity=Decimal(quantity), window_start=start, window_end=start + 3600,
                        retail=Price(retail[0], Decimal(retail[1])),
                        wholesale=Price(wholesale[0], Decimal(wholesale[1])))


RECORDS = [
    rec("bakery", "cpu", "0.5", DAY1, ("USD", "0.05"), ("USD", "0.02")),
    rec("bakery", "cpu", "1.5", DAY1 + 3600, ("USD", "0.05"), ("USD", "0.02")),
    rec("bakery", "base", "0.001369863", DAY1, ("USD", "19.00"), ("USD", "0")),
    rec("bakery", "license", "0.001369863", DAY1, ("USD", "0"), ("USD", "25.00")),
    rec("florist", "memory", "10", DAY1 + 86400, ("USD", "0.006"), ("USD", "0.0025")),
    rec("other", "cpu", "100", DAY1, ("USD", "1"), ("USD", "1"), reseller="globex"),  # another reseller
    rec("bakery", "cpu", "9", DAY1 + 40 * 86400, ("USD", "0.05"), ("USD", "0.02")),  # outside the period
]


def test_statement_lines_totals_daily_summary_and_margin() -> None:
    s = build_statement(RECORDS, "acme", JAN, JAN + datetime.timedelta(days=30))
    assert s.records == 5
    retail = {(line.tenant, line.meter): line for line in s.retail}
    assert retail[("bakery", "cpu")].quantity == Decimal("2.0") and retail[("bakery", "cpu")].amount == Decimal("0.1")
    assert retail[("bakery", "base")].amount == Decimal("0.026027")  # record amounts (6 places), summed exactly
    assert retail[("bakery", "base")].rounded == Decimal("0.03")
    assert "other" not in {line.tenant for line in s.retail}
    wholesale = {(line.tenant, line.meter): line.amount for line in s.wholesale}
    assert wholesale == {("bakery", "cpu"): Decimal("0.04"), ("bakery", "license"): Decimal("0.034247"),
                         ("florist", "memory"): Decimal("0.025")}
    daily = [(d.day, d.meter, d.amount) for d in s.daily]
    assert daily == [(JAN, "cpu", Decimal("0.04")), (JAN, "license", Decimal("0.034247")),
                     (JAN + datetime.timedelta(days=1), "memory", Decimal("0.025"))]
    # retail 0.1 + 0.026027 + 0 + 0.06 = 0.186027 -> 0.19; wholesale 0.04 + 0.034247 + 0.025 = 0.099247 -> 0.10
    assert s.totals("retail") == {"USD": Decimal("0.19")} and s.totals("wholesale") == {"USD": Decimal("0.10")}
    assert [(m.currency, m.margin) for m in s.margin] == [("USD", Decimal("0.09"))]


def test_margin_across_currencies_needs_rates() -> None:
    records = [rec("bakery", "cpu", "10", DAY1, ("EUR", "0.05"), ("USD", "0.02"))]
    per_currency = build_statement(records, "acme", JAN, JAN + datetime.timedelta(days=1))
    assert {m.currency: m.margin for m in per_currency.margin} == {"EUR": Decimal("0.50"), "USD": Decimal("-0.20")}
    assert "different currencies" in per_currency.notes[0]
    converted = build_statement(records, "acme", JAN, JAN + datetime.timedelta(days=1), currency="USD",
                                rates={"EUR": Decimal("1.10")})
    assert [(m.currency, m.margin) for m in converted.margin] == [("USD", Decimal("0.35"))]  # 0.55 - 0.20


def test_html_and_csv_render_every_part() -> None:
    s = build_statement(RECORDS, "acme", JAN, JAN + datetime.timedelta(days=30))
    html = render_html(s)
    for part in ('id="retail"', 'id="wholesale"', 'id="daily"', 'id="margin"', "bakery", "florist", "0.19"):
        assert part in html
    rows = list(csv.DictReader(io.StringIO(render_csv(s))))
    sections = {row["section"] for row in rows}
    assert sections == {"retail", "wholesale", "daily-wholesale", "total-retail", "total-wholesale", "margin"}
    assert [r["amount"] for r in rows if r["section"] == "margin"] == ["0.09"]


def test_html_is_escaped() -> None:
    s = build_statement([rec("bakery", "cpu", "1", DAY1, ("USD", "1"), ("USD", "1"), reseller="<b>x</b>")],
                        "<b>x</b>", JAN, JAN + datetime.timedelta(days=1))
    assert "<b>x</b>" not in render_html(s) and "&lt;b&gt;x&lt;/b&gt;" in render_html(s)


def test_tenantry_bill_counts_replayed_records_once(tmp_path: Path, capsys) -> None:
    source = tmp_path / "records.jsonl"
    lines = [json.dumps(r) for r in RECORDS]
    source.write_text("\n".join(lines + lines[:3]) + "\n")  # a replay after a crash
    assert len(load_records([source])) == len(RECORDS)
    out = tmp_path / "statements"
    end = (JAN + datetime.timedelta(days=30)).isoformat()
    assert main(["bill", str(source), "--from", JAN.isoformat(), "--to", end, "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{r}-{JAN.isoformat()}-{(JAN + datetime.timedelta(days=30)).isoformat()}.{ext}"
        for r in ("acme", "globex") for ext in ("html", "csv"))
    assert "acme: USD retail 0.19, wholesale 0.10, margin 0.09" in capsys.readouterr().out
