"""`tenantry bill`: a reseller's statement for a period, from billing records (HTML and CSV, jinja2).

A statement has four parts (DESIGN.md §4):
1. retail lines per tenant: what each tenant owes the reseller, per meter and unit price;
2. the wholesale shadow lines: what the platform charges the reseller for the same usage;
3. the daily wholesale summary per resource type (meter), as the platform invoices it;
4. the margin: retail minus wholesale, per currency (or in one currency given exchange rates).

Records are read from JSON-lines files (a `file:` sink's output, or a receiver's dump) and
de-duplicated by id first, so a replayed window is counted once. A record belongs to the period
when its window starts in it (UTC days). Amounts are summed exactly and rounded to cents only
when printed (pricing rule 3). Lines show their exact amount (the sum of the records' 6-place
amounts, as cloud bills show line items more precisely than the total), so a short period's usage
is visible even when it rounds to 0.00; totals and the margin are in cents.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2

from tenantry.metering.pricing import AMOUNT_EXPONENT, METERS, ZERO, money_text, statement_total
from tenantry.metering.records import TYPE, parse_rfc3339


def iter_records(paths: Iterable[str | Path]) -> Iterator[dict[str, Any]]:
    """Usage records from JSON-lines files, streamed (a month of a large region is many millions of
    lines: nothing here holds them all). Duplicates are not dropped here; see `load_records`."""
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    event = json.loads(line)
                except ValueError as error:
                    raise ValueError(f"{path}:{number}: not a JSON record: {error}") from error
                if event.get("type") == TYPE:
                    yield event


def load_records(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Usage records from JSON-lines files, the first of each id kept (later copies are replays)."""
    seen: set[str] = set()
    records = []
    for event in iter_records(paths):
        if event.get("id") in seen:
            continue
        seen.add(event["id"])
        records.append(event)
    return records


def _day(record: Mapping[str, Any]) -> datetime.date:
    return parse_rfc3339(record["data"]["windowStart"]).date()


def in_period(record: Mapping[str, Any], start: datetime.date, end: datetime.date) -> bool:
    return start <= _day(record) < end


def resellers_in(records: Iterable[Mapping[str, Any]], start: datetime.date, end: datetime.date) -> list[str]:
    """The resellers with records in the period (streams `records`)."""
    return sorted({r["data"]["reseller"] for r in records if in_period(r, start, end)})


@dataclass(frozen=True)
class Line:
    tenant: str
    meter: str
    unit: str
    quantity: Decimal
    currency: str
    unit_price: Decimal
    amount: Decimal  # exact

    @property
    def rounded(self) -> Decimal:
        return statement_total([self.amount])


@dataclass(frozen=True)
class DailyLine:
    day: datetime.date
    meter: str
    unit: str
    quantity: Decimal
    currency: str
    amount: Decimal

    @property
    def rounded(self) -> Decimal:
        return statement_total([self.amount])


@dataclass(frozen=True)
class MarginLine:
    currency: str
    retail: Decimal
    wholesale: Decimal

    @property
    def margin(self) -> Decimal:
        return statement_total([self.retail]) - statement_total([self.wholesale])


@dataclass
class Statement:
    reseller: str
    start: datetime.date
    end: datetime.date
    records: int
    retail: list[Line] = field(default_factory=list)
    wholesale: list[Line] = field(default_factory=list)
    daily: list[DailyLine] = field(default_factory=list)
    margin: list[MarginLine] = field(default_factory=list)
    converted: bool = False  # margin in one currency via exchange rates
    notes: list[str] = field(default_factory=list)

    def totals(self, side: str) -> dict[str, Decimal]:
        result: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for line in getattr(self, side):
            result[line.currency] += line.amount
        return {c: statement_total([v]) for c, v in sorted(result.items())}

    def summary_line(self) -> str:
        parts = [f"{m.currency} retail {money_text(statement_total([m.retail]))}, wholesale "
                 f"{money_text(statement_total([m.wholesale]))}, margin {money_text(m.margin)}" for m in self.margin]
        return "; ".join(parts) or "no charges"


def _lines(sums: Mapping[tuple[str, str, str, str, Decimal], Sequence[Decimal]]) -> list[Line]:
    order = {m: i for i, m in enumerate(METERS)}
    lines = [Line(t, m, u, q, c, p, a) for (t, m, u, c, p), (q, a) in sums.items() if q or a]
    return sorted(lines, key=lambda line: (line.tenant, order.get(line.meter, 99), line.currency, line.unit_price))


def build_statement(records: Iterable[Mapping[str, Any]], reseller: str, start: datetime.date,
                    end: datetime.date, *, currency: str | None = None,
                    rates: Mapping[str, Decimal] | None = None) -> Statement:
    """One pass over `records` (a list or a stream): the reseller's records of the period are
    de-duplicated by id and summed as they come; only the sums are kept."""
    seen: set[bytes] = set()
    sums: dict[str, dict[tuple[str, str, str, str, Decimal], list[Decimal]]] = {"retail": {}, "wholesale": {}}
    daily: dict[tuple[datetime.date, str, str, str], list[Decimal]] = {}
    for record in records:
        data = record["data"]
        if data["reseller"] != reseller or not in_period(record, start, end):
            continue
        digest = bytes.fromhex(record["id"]) if len(record["id"]) == 64 else record["id"].encode()
        if digest in seen:
            continue  # a replay of a record already counted
        seen.add(digest)
        quantity = Decimal(data["quantity"])
        for side in ("retail", "wholesale"):
            priced = data[side]
            key = (data["tenant"], data["meter"], data["unit"], priced["currency"], Decimal(priced["unitPrice"]))
            entry = sums[side].setdefault(key, [ZERO, ZERO])
            entry[0] += quantity
            entry[1] += Decimal(priced["amount"])
        wholesale_amount = Decimal(data["wholesale"]["amount"])
        if wholesale_amount:
            entry = daily.setdefault((_day(record), data["meter"], data["unit"], data["wholesale"]["currency"]),
                                     [ZERO, ZERO])
            entry[0] += quantity
            entry[1] += wholesale_amount
    statement = Statement(reseller=reseller, start=start, end=end, records=len(seen))
    statement.retail = _lines(sums["retail"])
    statement.wholesale = [line for line in _lines(sums["wholesale"]) if line.amount]
    order = {m: i for i, m in enumerate(METERS)}
    statement.daily = sorted((DailyLine(d, m, u, q, c, a) for (d, m, u, c), (q, a) in daily.items()),
                             key=lambda line: (line.day, order.get(line.meter, 99), line.currency))

    retail: dict[str, Decimal] = defaultdict(lambda: ZERO)
    wholesale: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for line in statement.retail:
        retail[line.currency] += line.amount
    for line in statement.wholesale:
        wholesale[line.currency] += line.amount
    currencies = sorted(set(retail) | set(wholesale))
    rates = dict(rates or {})
    if currency:
        rates[currency] = Decimal(1)
    if currency and all(c in rates for c in currencies):
        statement.converted = True
        statement.margin = [MarginLine(currency, sum((retail[c] * rates[c] for c in currencies), ZERO),
                                       sum((wholesale[c] * rates[c] for c in currencies), ZERO))]
        if len(currencies) > 1 or currencies != [currency]:
            statement.notes.append("Margin converted to " + currency + " at " + ", ".join(
                f"1 {c} = {money_text(rates[c])} {currency}" for c in currencies if c != currency) + ".")
    else:
        statement.margin = [MarginLine(c, retail[c], wholesale[c]) for c in currencies]
        if len(currencies) > 1:
            missing = [c for c in currencies if c not in rates]
            statement.notes.append(
                "Retail and wholesale are in different currencies (" + ", ".join(currencies) + "); the margin is "
                "shown per currency. Give --currency and --rate for one margin"
                + (f" (missing rates: {', '.join(missing)})." if currency else "."))
    return statement


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("tenantry.metering", "templates"),
    autoescape=jinja2.select_autoescape(["html", "html.j2"], default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["money"] = lambda value: money_text(statement_total([value]))
_ENV.filters["exact"] = lambda value: money_text(Decimal(value).quantize(AMOUNT_EXPONENT))
_ENV.filters["qty"] = lambda value: money_text(Decimal(value).normalize()) if value else "0"


def render_html(statement: Statement) -> str:
    return _ENV.get_template("statement.html.j2").render(s=statement, generated=_now())


def csv_rows(statement: Statement) -> list[list[str]]:
    """The CSV statement as rows: one section column tells the parts apart."""
    rows = [["section", "reseller", "period_start", "period_end", "date", "tenant", "meter", "unit",
             "quantity", "currency", "unit_price", "amount"]]
    common = [statement.reseller, statement.start.isoformat(), statement.end.isoformat()]
    for section, lines in (("retail", statement.retail), ("wholesale", statement.wholesale)):
        for line in lines:
            rows.append([section, *common, "", line.tenant, line.meter, line.unit, money_text(line.quantity),
                         line.currency, money_text(line.unit_price), money_text(line.amount)])
    for daily in statement.daily:
        rows.append(["daily-wholesale", *common, daily.day.isoformat(), "", daily.meter, daily.unit,
                     money_text(daily.quantity), daily.currency, "", money_text(daily.amount)])
    for side in ("retail", "wholesale"):
        for cur, total in statement.totals(side).items():
            rows.append([f"total-{side}", *common, "", "", "", "", "", cur, "", money_text(total)])
    for margin in statement.margin:
        rows.append(["margin", *common, "", "", "", "", "", margin.currency, "", money_text(margin.margin)])
    return rows


def _csv_row(cells: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(cells)
    return buffer.getvalue()


_ENV.filters["csvrow"] = _csv_row


def render_csv(statement: Statement) -> str:
    return _ENV.get_template("statement.csv.j2").render(rows=csv_rows(statement))


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def write_statement(statement: Statement, directory: Path, formats: Sequence[str] | None = None) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{statement.reseller}-{statement.start.isoformat()}-{statement.end.isoformat()}"
    paths = []
    for fmt in formats or ("html", "csv"):
        path = directory / f"{stem}.{fmt}"
        path.write_text(render_html(statement) if fmt == "html" else render_csv(statement), encoding="utf-8")
        paths.append(path)
    return paths
