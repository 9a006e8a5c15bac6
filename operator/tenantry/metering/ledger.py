"""What a reseller may read of its own billing, kept by each region's meter. Pure, apart from its file.

The platform's statements (`tenantry bill`) are built from the billing records in the platform's sink,
which resellers cannot read. So that a reseller sees what it owes with its own RBAC, each meter keeps
a small ledger of the records it emits and publishes it as ConfigMaps in the reseller's control
namespace (`reseller-<name>`, readable by its admins), with `publish` in `tenantry.metering.billing`:

- `tenantry-usage-<region>`: month-to-date retail and wholesale amounts per tenant (the closed
  windows of the calendar month, UTC), and the moment they run to; written at most once per
  billing window per reseller.
- `tenantry-bill-<yyyy-mm-dd>-<region>`: the day's wholesale charges by resource type (meter), the
  daily summary of DESIGN.md §4, written once the day's last window has closed ("the next day"),
  kept `RETENTION_DAYS` days.

The amounts are sums of the records' amounts, exactly as `tenantry bill` sums them (records by the
UTC day of `windowStart`; a daily line only where the wholesale amount is non-zero), so the two agree
to the cent.

The ledger lives in `<spool>/billing-ledger.json`, written (atomically) by the meter's tick after the
records are spooled and before the meter's checkpoint. It remembers the end of the last window it took
in (`through`): windows close in order, so a window closed again after a crash (same records, same ids)
is skipped. What the publisher changes (what it published) is written at the next tick: a crash before
that publishes the same documents again, which changes nothing.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from tenantry.metering.pricing import money_text
from tenantry.metering.records import TYPE, parse_rfc3339, rfc3339
from tenantry.metering.sinks import write_atomically

VERSION = 1
ZERO = Decimal(0)
FILE = "billing-ledger.json"
RETENTION_DAYS = 62


def _month(day: datetime.date) -> str:
    return day.strftime("%Y-%m")


def _add(into: dict[str, str], currency: str, amount: Decimal) -> None:
    into[currency] = money_text(Decimal(into.get(currency, "0")) + amount)


@functools.lru_cache(maxsize=256)
def _window(start: str, end: str) -> tuple[int, str, str]:
    """A record's window, as (end in epoch seconds, UTC day of its start, month): the same for
    every record of a close, so worked out once."""
    day = parse_rfc3339(start).date()
    return int(parse_rfc3339(end).timestamp()), day.isoformat(), _month(day)


TenantSums = tuple[str, str, tuple[dict[str, Decimal], dict[str, Decimal]]]


class Tally:
    """Records of closed windows summed up, ready for `BillingLedger.take`. `absorb` is a tally and a
    take; the meter adds a window close's records (~47,600 at 10,000 tenants) to a tally a few at a
    time between scrapes, and changes its ledger in one go at the take (the publisher reads the
    ledger meanwhile, and must never see a window half taken in)."""

    def __init__(self, through: int):
        self.through = through  # the ledger's: windows that end by then are already taken in
        self.newest = through
        self.taken = 0
        # reseller -> month -> tenant uid -> (tenant, plan, ({currency: retail}, {currency: wholesale}))
        self.months: dict[str, dict[str, dict[str, TenantSums]]] = {}
        # reseller -> day -> "meter|unit|currency" -> [quantity, wholesale amount]
        self.days: dict[str, dict[str, dict[str, list[Decimal]]]] = {}

    def add(self, record: Mapping[str, Any]) -> None:
        if record.get("type") != TYPE:
            return
        data = record["data"]
        end, day, month = _window(data["windowStart"], data["windowEnd"])
        if end <= self.through:
            return  # a window closed again after a crash: already counted
        self.newest = max(self.newest, end)
        self.taken += 1
        reseller, uid = data["reseller"], data["tenantUID"]
        tenants = self.months.setdefault(reseller, {}).setdefault(month, {})
        tenant = tenants.get(uid)
        sides = tenant[2] if tenant is not None else ({}, {})
        tenants[uid] = (tenant[0] if tenant is not None else data["tenant"], data["plan"], sides)  # the last plan
        retail, wholesale = data["retail"], data["wholesale"]
        sides[0][retail["currency"]] = sides[0].get(retail["currency"], ZERO) + Decimal(retail["amount"])
        amount = Decimal(wholesale["amount"])
        sides[1][wholesale["currency"]] = sides[1].get(wholesale["currency"], ZERO) + amount
        if amount:
            key = f"{data['meter']}|{data['unit']}|{wholesale['currency']}"
            line = self.days.setdefault(reseller, {}).setdefault(day, {}).setdefault(key, [ZERO, ZERO])
            line[0] += Decimal(data["quantity"])
            line[1] += amount


class BillingLedger:
    def __init__(self, region: str, path: Path | None = None):
        self.region = region
        self.path = path
        self.through = 0  # end (epoch seconds) of the last window taken in
        # reseller -> {"month": "2026-12", "tenants": {uid: {tenant, plan, retail: {cur: amt}, wholesale: {...}}}}
        self.months: dict[str, dict[str, Any]] = {}
        # reseller -> day -> "meter|unit|currency" -> [quantity, amount] (strings): days not yet published
        self.days: dict[str, dict[str, dict[str, list[str]]]] = {}
        # What is in the cluster: the usage document's digest, and the bill days, per reseller.
        self.published_usage: dict[str, str] = {}
        self.published_bills: dict[str, list[str]] = {}
        self.unsaved = False  # changed since the last save (the meter saves it at its next tick)

    # -- taking records in -----------------------------------------------------------------------

    def absorb(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Take in the records of closed windows; those of windows already taken in are skipped.
        Returns how many were taken."""
        tally = Tally(self.through)
        for record in records:
            tally.add(record)
        return self.take(tally)

    def take(self, tally: Tally) -> int:
        """Take in a tally of records (made from this ledger's `through`, nothing taken in since).
        Returns how many records it holds."""
        for _ in self.taking(tally):
            pass
        return tally.taken

    def taking(self, tally: Tally) -> Iterator[None]:
        """`take`, one reseller per step, for the meter's event loop (10,000 tenants' sums are tens of
        milliseconds of Decimal arithmetic). The ledger changes after the last step, at once: the
        publisher reads it between steps and must never see a window half taken in. So the steps
        build new documents (a month, a day's lines) and the documents in the ledger are replaced,
        never changed in place (which also lets `json_parts` write a snapshot a piece at a time)."""
        months: dict[str, dict[str, Any]] = {}
        days: dict[tuple[str, str], dict[str, list[str]]] = {}
        for reseller, by_month in tally.months.items():
            month = self.months.get(reseller)
            for name in sorted(by_month):  # windows close in order: a reseller's months only move on
                if month is None or month["month"] < name:
                    tenants: dict[str, Any] = {}
                elif month["month"] == name:
                    tenants = dict(month["tenants"])
                else:
                    continue  # a month before the one kept
                for uid, (tenant_name, plan, sides) in by_month[name].items():
                    old = tenants.get(uid)
                    retail: dict[str, str] = dict(old["retail"]) if old else {}
                    wholesale: dict[str, str] = dict(old["wholesale"]) if old else {}
                    for sums, amounts in ((retail, sides[0]), (wholesale, sides[1])):
                        for currency, amount in amounts.items():
                            _add(sums, currency, amount)
                    tenants[uid] = {"tenant": old["tenant"] if old else tenant_name, "plan": plan,
                                    "retail": retail, "wholesale": wholesale}
                month = months[reseller] = {"month": name, "tenants": tenants}
            for day, lines in tally.days.get(reseller, {}).items():
                into = {key: list(line) for key, line in self.days.get(reseller, {}).get(day, {}).items()}
                for key, (quantity, amount) in lines.items():
                    line = into.setdefault(key, ["0", "0"])
                    line[0] = money_text(Decimal(line[0]) + quantity)
                    line[1] = money_text(Decimal(line[1]) + amount)
                days[(reseller, day)] = into
            yield
        self.months.update(months)
        for (reseller, day), day_lines in days.items():
            self.days.setdefault(reseller, {})[day] = day_lines
        if tally.taken or tally.newest != self.through:
            self.through = max(self.through, tally.newest)
            self.unsaved = True

    def advance(self, window_start: int) -> None:
        """Every window before `window_start` is closed (the meter's open window starts there), even
        where no record was made: usage then runs to there."""
        if int(window_start) > self.through:
            self.through = int(window_start)
            self.unsaved = True

    # -- what to publish -------------------------------------------------------------------------

    def usage_document(self, reseller: str) -> dict[str, Any] | None:
        month = self.months.get(reseller)
        if month is None:
            return None
        return {"region": self.region, "reseller": reseller, "month": month["month"],
                "through": rfc3339(self.through), "tenants": month["tenants"]}

    def complete_days(self, reseller: str) -> list[str]:
        """Days whose every window has closed, not yet published."""
        today = datetime.datetime.fromtimestamp(self.through, tz=datetime.UTC).date() if self.through else None
        return sorted(day for day in self.days.get(reseller, {})
                      if today is not None and datetime.date.fromisoformat(day) < today)

    def bill_document(self, reseller: str, day: str) -> dict[str, Any]:
        lines = []
        totals: dict[str, str] = {}
        for key, (quantity, amount) in sorted(self.days[reseller][day].items()):
            meter, unit, currency = key.split("|")
            lines.append({"meter": meter, "unit": unit, "quantity": quantity, "currency": currency,
                          "amount": amount})
            _add(totals, currency, Decimal(amount))
        return {"region": self.region, "reseller": reseller, "day": day, "lines": lines, "total": totals}

    def resellers(self) -> list[str]:
        return sorted(set(self.months) | set(self.days) | set(self.published_bills))

    def expired_bills(self, reseller: str) -> list[str]:
        """Published bill days older than the retention."""
        if not self.through:
            return []
        today = datetime.datetime.fromtimestamp(self.through, tz=datetime.UTC).date()
        oldest = today - datetime.timedelta(days=RETENTION_DAYS)
        return [day for day in self.published_bills.get(reseller, []) if datetime.date.fromisoformat(day) < oldest]

    # -- after publishing ------------------------------------------------------------------------

    def usage_published(self, reseller: str, document: Mapping[str, Any]) -> None:
        self.published_usage[reseller] = digest(document)
        self.unsaved = True

    def usage_is_published(self, reseller: str, document: Mapping[str, Any]) -> bool:
        return self.published_usage.get(reseller) == digest(document)

    def bill_published(self, reseller: str, day: str) -> None:
        self.unsaved = True
        self.days.get(reseller, {}).pop(day, None)
        if not self.days.get(reseller):
            self.days.pop(reseller, None)
        days = self.published_bills.setdefault(reseller, [])
        if day not in days:
            days.append(day)
            days.sort()

    def bill_removed(self, reseller: str, day: str) -> None:
        self.unsaved = True
        days = self.published_bills.get(reseller, [])
        if day in days:
            days.remove(day)
        if not days:
            self.published_bills.pop(reseller, None)

    # -- persistence -----------------------------------------------------------------------------

    def to_json(self, *, documents: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": VERSION, "region": self.region, "through": self.through,
            "publishedUsage": dict(self.published_usage),
            "publishedBills": {reseller: list(days) for reseller, days in self.published_bills.items()}}
        if documents:
            data["months"], data["days"] = self.months, self.days
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], path: Path | None = None) -> BillingLedger:
        if data.get("version") != VERSION:
            raise ValueError(f"billing ledger version {data.get('version')!r} is not {VERSION}")
        ledger = cls(data["region"], path)
        ledger.through = int(data["through"])
        ledger.months = dict(data["months"])
        ledger.days = dict(data["days"])
        ledger.published_usage = dict(data.get("publishedUsage") or {})
        ledger.published_bills = dict(data.get("publishedBills") or {})
        return ledger

    @classmethod
    def load(cls, directory: Path, region: str) -> BillingLedger:
        path = directory / FILE
        if not path.exists():
            return cls(region, path)
        ledger = cls.from_json(json.loads(path.read_text()), path)
        if ledger.region != region:
            raise RuntimeError(f"{path} is the billing ledger of region {ledger.region!r}, not {region!r}: "
                               "give each region's meter its own --spool")
        return ledger

    def forget(self, reseller: str) -> None:
        """The reseller is gone (its control namespace with it): nothing of it is kept or published."""
        self.months.pop(reseller, None)
        self.days.pop(reseller, None)
        self.published_bills.pop(reseller, None)
        self.published_usage.pop(reseller, None)
        self.unsaved = True

    def to_bytes(self) -> bytes:
        """What `save` writes."""
        return "".join(self.json_parts()).encode()

    def json_parts(self) -> Iterator[str]:
        """The text of `to_json()`, one reseller's month or days per piece, for the
        meter's event loop (the whole is ~1.4 MiB at 10,000 tenants, too much for one `json.dumps`
        between scrapes). It is a snapshot of the moment the first piece is made: the publisher
        may change the ledger between pieces, and documents are replaced, never changed in place."""
        months = dict(self.months)
        days = {reseller: dict(by_day) for reseller, by_day in self.days.items()}
        rest = self.to_json(documents=False)
        yield json.dumps(rest, separators=(",", ":"), sort_keys=True)[:-1]
        for key, documents in (("days", days), ("months", months)):
            yield f',"{key}":{{'
            for index, reseller in enumerate(sorted(documents)):
                text = json.dumps(documents[reseller], separators=(",", ":"), sort_keys=True)
                yield f'{"," if index else ""}{json.dumps(reseller)}:{text}'
            yield "}"
        yield "}"

    def save(self) -> None:
        if self.path is not None:
            write_atomically(self.path, self.to_bytes())
            self.unsaved = False


def digest(document: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


