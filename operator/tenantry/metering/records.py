"""Billing records: CloudEvents 1.0 JSON events of type `dev.tenantry.usage.v1` (DESIGN.md §4).

The id is the hex sha256 of `region|tenant uid|meter|windowStart` (windowStart as written in the
record, RFC 3339 UTC with a `Z`), so a window replayed after a crash, or re-sent after a sink
outage, carries the same id and any consumer can drop the duplicate.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from tenantry.metering.pricing import UNITS, Price, amount_of, money_text

TYPE = "dev.tenantry.usage.v1"
SPEC_VERSION = "1.0"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"


# Cached: a window close writes the same two moments into every record (~47,600 at 10,000 tenants),
# and strftime is a good part of a record's cost.
@functools.lru_cache(maxsize=256)
def rfc3339(timestamp: int | float | Decimal) -> str:
    """Seconds since the epoch as RFC 3339 UTC (`2026-11-23T20:00:00Z`); whole seconds."""
    moment = datetime.datetime.fromtimestamp(int(timestamp), tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.lru_cache(maxsize=256)  # the ledger reads the same window bounds from every record of a close
def parse_rfc3339(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def record_id(region: str, tenant_uid: str, meter: str, window_start: str) -> str:
    return hashlib.sha256(f"{region}|{tenant_uid}|{meter}|{window_start}".encode()).hexdigest()


def usage_record(*, region: str, reseller: str, tenant: str, tenant_uid: str, plan: str, meter: str,
                 quantity: Decimal, window_start: int, window_end: int, retail: Price,
                 wholesale: Price) -> dict[str, Any]:
    start, end = rfc3339(window_start), rfc3339(window_end)
    return {
        "specversion": SPEC_VERSION,
        "type": TYPE,
        "source": f"tenantry/region/{region}",
        "subject": f"{reseller}/{tenant}",
        "id": record_id(region, tenant_uid, meter, start),
        "time": end,
        "datacontenttype": "application/json",
        "data": {
            "region": region,
            "reseller": reseller,
            "tenant": tenant,
            "tenantUID": tenant_uid,
            "plan": plan,
            "meter": meter,
            "unit": UNITS[meter],
            "quantity": money_text(quantity),
            "windowStart": start,
            "windowEnd": end,
            "retail": _priced(quantity, retail),
            "wholesale": _priced(quantity, wholesale),
        },
    }


def _priced(quantity: Decimal, price: Price) -> dict[str, str]:
    return {"currency": price.currency, "unitPrice": money_text(price.unit_price),
            "amount": money_text(amount_of(quantity, price.unit_price))}


def validate_record(event: Mapping[str, Any]) -> list[str]:
    """What is wrong with an event read back from a sink (empty when it is a usage record)."""
    problems = []
    for key in ("specversion", "type", "source", "subject", "id", "data"):
        if key not in event:
            problems.append(f"missing {key}")
    if event.get("type") != TYPE:
        problems.append(f"type is {event.get('type')!r}, not {TYPE}")
    data = event.get("data") or {}
    for key in ("region", "reseller", "tenant", "tenantUID", "meter", "quantity", "windowStart", "retail",
                "wholesale"):
        if key not in data:
            problems.append(f"data.{key} missing")
    if not problems and event["id"] != record_id(data["region"], data["tenantUID"], data["meter"],
                                                 data["windowStart"]):
        problems.append("id does not match region|tenantUID|meter|windowStart")
    return problems
