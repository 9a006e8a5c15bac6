"""Reseller self-service licence purchases (LicenseOrder, DESIGN.md §2 and §4). Pure logic, no I/O.

- `quote` prices an order: the volume tier its quantity falls in (settings `licenseOrders.tiers`,
  default 1-9: 25.00, 10-49: 20.00, 50-99: 17.50, 100+: 15.00 USD), one-time, `Decimal` throughout.
- `decide_order` decides it once: Fulfilled at once while the reseller is active and the month's
  purchases stay within its self-service limit, else Rejected (`ResellerInactive`,
  `OverSelfServiceLimit`) with a message that says what to do.
- `OrderBook` is the ledger the decisions need: every order's phase, quantity and fulfilment time,
  from the watched statuses plus the decisions made here and not yet seen back (as the
  AdmissionBook does for tenants). Purchased licences and the month's purchases are derived from it,
  never counted up and down, so a crash neither loses nor doubles a purchase.
- `billing_record` is the CloudEvent of an order or its refund, with the deterministic id
  sha256(`license-order|<uid>`) / sha256(`license-refund|<uid>`), built from the order's status alone,
  so that a record sent again after a crash is byte-for-byte the same.

An order is decided once. Its phase then never changes, except Fulfilled -> Refunded when a platform
admin deletes it; a later edit of its spec changes nothing (the decision, quantity and price live in
status, which only the operator may write).
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

PENDING, FULFILLED, REJECTED, REFUNDED = "Pending", "Fulfilled", "Rejected", "Refunded"
PHASES = (PENDING, FULFILLED, REJECTED, REFUNDED)
# Reasons of the Ready condition (exact strings, DESIGN.md §2).
OVER_SELF_SERVICE_LIMIT = "OverSelfServiceLimit"
RESELLER_INACTIVE = "ResellerInactive"

RECORD_TYPE = "dev.tenantry.license-order.v1"
ORDER, REFUND = "order", "refund"  # the two records an order can make (status.billing.<kind>)

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
CENTS = Decimal("0.01")


class Tier(Protocol):
    """A volume tier (settings.OrderTier): orders of at least `min_quantity` pay `unit_price` each."""

    @property
    def min_quantity(self) -> int: ...

    @property
    def unit_price(self) -> Decimal: ...


@dataclass(frozen=True)
class Quote:
    """What an order costs: its tier's label ("10-49"), the unit price and the amount."""

    currency: str
    tier: str
    unit_price: Decimal
    amount: Decimal

    def to_status(self) -> dict[str, str]:
        return {"currency": self.currency, "tier": self.tier, "unitPrice": money(self.unit_price),
                "amount": money(self.amount)}


def money(value: Decimal) -> str:
    """Money as a plain decimal string with at least two places: 25 -> "25.00", 17.5 -> "17.50"."""
    if value == value.quantize(CENTS):
        value = value.quantize(CENTS)
    return format(value, "f")


def tier_label(tiers: Sequence[Tier], index: int) -> str:
    """ "1-9", "10-49", "100+" (a tier of one quantity: "7")."""
    low = tiers[index].min_quantity
    if index + 1 == len(tiers):
        return f"{low}+"
    high = tiers[index + 1].min_quantity - 1
    return str(low) if high == low else f"{low}-{high}"


def quote(quantity: int, tiers: Sequence[Tier], currency: str) -> Quote:
    """The price of an order of `quantity` licences: every licence at its tier's unit price."""
    ordered = sorted(tiers, key=lambda t: t.min_quantity)
    index = max(i for i, tier in enumerate(ordered) if quantity >= tier.min_quantity or i == 0)
    unit = Decimal(ordered[index].unit_price)
    return Quote(currency, tier_label(ordered, index), unit, unit * quantity)


@dataclass(frozen=True)
class Decision:
    phase: str  # FULFILLED or REJECTED
    reason: str
    message: str


def month_name(moment: datetime.datetime) -> str:
    return MONTHS[moment.month - 1]


def decide_order(quantity: int, fulfilled_this_month: int, limit: int, reseller_active: bool | None, *,
                 reseller: str, now: datetime.datetime, price: Quote) -> Decision:
    """Fulfil or reject one order. `reseller_active` is None when the reseller does not exist.

    The self-service limit counts the licences of this calendar month's (UTC) fulfilled orders,
    this one included; refunded orders no longer count."""
    if reseller_active is None:
        return Decision(REJECTED, RESELLER_INACTIVE,
                        f"Reseller {reseller} does not exist; licences can be ordered only in the control "
                        "namespace of an existing, active reseller.")
    if not reseller_active:
        return Decision(REJECTED, RESELLER_INACTIVE,
                        f"Reseller {reseller} is inactive (spec.active: false), so it cannot buy licences; "
                        "ask the platform to reactivate it, then order again.")
    total = fulfilled_this_month + quantity
    month = month_name(now)
    if total > limit:
        left = max(limit - fulfilled_this_month, 0)
        if left == 0:
            advice = (f"you have bought all {limit} licences your self-service limit allows in {month}; order "
                      "again next month, or ask the platform to raise spec.licensePolicy.selfServiceLimit.")
        else:
            advice = (f"order at most {left}, or ask the platform to raise "
                      "spec.licensePolicy.selfServiceLimit.")
        return Decision(REJECTED, OVER_SELF_SERVICE_LIMIT,
                        f"This order of {quantity} would bring {month}'s purchases to {total}, over your "
                        f"self-service limit of {limit}; {advice}")
    plural = "licence" if quantity == 1 else "licences"
    return Decision(FULFILLED, FULFILLED,
                    f"{quantity} {plural} at {money(price.unit_price)} {price.currency} each (tier {price.tier}): "
                    f"{money(price.amount)} {price.currency}, added to reseller {reseller}'s licences. "
                    f"{month}'s purchases: {total} of {limit}.")


# -- the ledger ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderEntry:
    """One decided order as the ledger sees it."""

    uid: str
    reseller: str
    name: str
    phase: str
    quantity: int
    fulfilled_at: str  # RFC 3339 UTC, "" when never fulfilled


def parse_time(text: str) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(datetime.UTC)
    except ValueError:
        return None


def entry_from_status(reseller: str, obj: Mapping[str, Any]) -> OrderEntry | None:
    """The ledger entry of a watched order, or None while it is undecided."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    phase = status.get("phase")
    if phase not in (FULFILLED, REJECTED, REFUNDED):
        return None
    quantity = status.get("quantity")
    return OrderEntry(uid=meta.get("uid", ""), reseller=reseller, name=meta.get("name", ""), phase=phase,
                      quantity=quantity if isinstance(quantity, int) else 0,
                      fulfilled_at=status.get("fulfilledAt") or "")


class OrderBook:
    """Every decided order: from watched statuses, and from decisions not yet seen back in a status."""

    def __init__(self) -> None:
        self._seen: dict[str, OrderEntry] = {}
        self._unconfirmed: dict[str, OrderEntry] = {}
        # The controller's decisions not yet written (what a retried status write needs), by uid.
        self.decisions: dict[str, Any] = {}

    def observe(self, uid: str, entry: OrderEntry | None) -> None:
        """An order as its latest watch event shows it (None: not decided yet)."""
        if entry is None:
            self._seen.pop(uid, None)
        else:
            self._seen[uid] = entry
            mine = self._unconfirmed.get(uid)
            if mine is not None and mine.phase == entry.phase:
                del self._unconfirmed[uid]  # the status caught up with the decision

    def forget(self, uid: str) -> None:
        self._seen.pop(uid, None)
        self._unconfirmed.pop(uid, None)
        self.decisions.pop(uid, None)

    def record(self, entry: OrderEntry) -> None:
        """Remember a decision at once, before its status write returns."""
        if self._seen.get(entry.uid) != entry:
            self._unconfirmed[entry.uid] = entry

    def entry(self, uid: str) -> OrderEntry | None:
        return self._unconfirmed.get(uid) or self._seen.get(uid)

    def entries(self, reseller: str) -> list[OrderEntry]:
        uids = set(self._seen) | set(self._unconfirmed)
        found = [self.entry(uid) for uid in uids]
        return [e for e in found if e is not None and e.reseller == reseller]

    def purchased(self, reseller: str) -> int:
        """Licences bought and not refunded."""
        return sum(e.quantity for e in self.entries(reseller) if e.phase == FULFILLED)

    def fulfilled_in_month(self, reseller: str, moment: datetime.datetime) -> int:
        """Licences of the reseller's orders fulfilled (and not refunded) in the UTC month of `moment`."""
        total = 0
        for entry in self.entries(reseller):
            when = parse_time(entry.fulfilled_at) if entry.phase == FULFILLED else None
            if when is not None and (when.year, when.month) == (moment.year, moment.month):
                total += entry.quantity
        return total


def self_service_limit(policy_limit: int | None, default: int) -> int:
    return default if policy_limit is None else policy_limit


# -- billing records -------------------------------------------------------------------------------


def record_id(kind: str, order_uid: str) -> str:
    prefix = "license-order" if kind == ORDER else "license-refund"
    return hashlib.sha256(f"{prefix}|{order_uid}".encode()).hexdigest()


def billing_record(kind: str, reseller: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    """The CloudEvent of an order (kind ORDER) or its refund (REFUND), from the order's status alone.

    `quantity` is the licences of the order in both; a refund's `amount` is negative. `time` is when
    the order was fulfilled, or refunded."""
    meta, status = obj["metadata"], obj["status"]
    price = status["price"]
    amount = Decimal(price["amount"])
    when = status.get("fulfilledAt") if kind == ORDER else status.get("refundedAt")
    return {
        "specversion": "1.0",
        "type": RECORD_TYPE,
        "source": f"tenantry/reseller/{reseller}",
        "subject": reseller,
        "id": record_id(kind, meta["uid"]),
        "time": when,
        "datacontenttype": "application/json",
        "data": {
            "reseller": reseller,
            "order": meta["name"],
            "orderUID": meta["uid"],
            "quantity": status["quantity"],
            "tier": price["tier"],
            "currency": price["currency"],
            "unitPrice": price["unitPrice"],
            "amount": money(amount if kind == ORDER else -amount),
        },
    }
