"""Pure pricing: what a tenant's usage costs at retail (its Plan) and wholesale (its Region, licences).

Everything is `decimal.Decimal`; no float ever touches money or a billed quantity.

What is billed (one record per tenant, meter and window):

| meter     | quantity (unit)                                   | retail price (Plan)    | wholesale price            |
|-----------|---------------------------------------------------|------------------------|----------------------------|
| `cpu`     | quota `used` requests.cpu x time (core-hour)      | `pricing.cpu`          | Region `pricing.cpu`       |
| `memory`  | quota `used` requests.memory x time (GiB-hour)    | `pricing.memory`       | Region `pricing.memory`    |
| `storage` | quota `used` requests.storage x time (GiB-hour)   | `pricing.storage`      | Region `pricing.storage`   |
| `base`    | time the tenant is Active (month)                 | `pricing.monthly`      | 0 (the licence is its cost)|
| `license` | time the tenant holds a licence (license-month)   | 0 (in the base fee)    | licence tier price         |

The billed quantity is the quota's `status.used` of the *requests*, not `hard`: a plan's quota is
a ceiling the monthly fee pays for, and what a tenant reserves on the shared pool (its pods'
requests, which the scheduler sets aside whether or not they are busy) is what costs the platform.
Every retail charge has its wholesale shadow on the same quantity, so the reseller's margin on a
line is exactly (retail price - wholesale price) x quantity.

A month is 730 hours (365 x 24 / 12), so a monthly price prorates the same in February and March.
A suspended tenant keeps its licence (charged wholesale) but pays no monthly base fee.

Licences are priced by volume tier: all of a reseller's licences cost the price of the tier its
licence count (`spec.licenses`) falls in (`licenseTiers`, e.g. 1-9: 25.00, 10-49: 20.00, ...).

Rounding rule (one rule, applied in exactly these places, ROUND_HALF_EVEN everywhere):
1. a record's quantity is rounded to 9 decimal places (`QUANTITY_EXPONENT`);
2. a record's amount is quantity (as rounded) x unit price, rounded to 6 decimal places
   (`AMOUNT_EXPONENT`), so that amount = quantity x unitPrice can be checked from the record alone;
3. a statement sums record amounts exactly and rounds each printed total to the currency's
   2 decimal places (`STATEMENT_EXPONENT`) only when it prints it.
Banker's rounding is unbiased over the many small amounts a meter emits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from tenantry.quantity import GIB

METERS = ("cpu", "memory", "storage", "license", "base")
USAGE_METERS = ("cpu", "memory", "storage")
UNITS = {"cpu": "core-hour", "memory": "GiB-hour", "storage": "GiB-hour", "license": "license-month",
         "base": "month"}

SECONDS_PER_HOUR = Decimal(3600)
HOURS_PER_MONTH = Decimal(730)
SECONDS_PER_MONTH = SECONDS_PER_HOUR * HOURS_PER_MONTH

QUANTITY_EXPONENT = Decimal("1e-9")
AMOUNT_EXPONENT = Decimal("1e-6")
STATEMENT_EXPONENT = Decimal("0.01")
ROUNDING = ROUND_HALF_EVEN

# ISO 4217 "no currency": a price that is not known (e.g. a tenant whose Plan was never seen).
NO_CURRENCY = "XXX"
ZERO = Decimal(0)


def quantity_of(meter: str, integral: Decimal) -> Decimal:
    """A meter's billed quantity from its time integral (core-seconds, byte-seconds or seconds)."""
    if meter == "cpu":
        value = integral / SECONDS_PER_HOUR
    elif meter in ("memory", "storage"):
        value = integral / (GIB * SECONDS_PER_HOUR)
    elif meter in ("license", "base"):
        value = integral / SECONDS_PER_MONTH
    else:
        raise ValueError(f"unknown meter {meter!r}; meters are {', '.join(METERS)}")
    return round_quantity(value)


def round_quantity(value: Decimal) -> Decimal:
    return value.quantize(QUANTITY_EXPONENT, rounding=ROUNDING)


def amount_of(quantity: Decimal, unit_price: Decimal) -> Decimal:
    """Rule 2: the amount of a record."""
    return (quantity * unit_price).quantize(AMOUNT_EXPONENT, rounding=ROUNDING)


def statement_total(amounts: Iterable[Decimal]) -> Decimal:
    """Rule 3: an exact sum, rounded to cents for printing."""
    return sum(amounts, ZERO).quantize(STATEMENT_EXPONENT, rounding=ROUNDING)


def money_text(value: Decimal) -> str:
    """A Decimal as a plain decimal string (never scientific notation)."""
    return format(value, "f")


@dataclass(frozen=True)
class Price:
    currency: str
    unit_price: Decimal

    def to_json(self) -> dict[str, str]:
        return {"currency": self.currency, "unitPrice": money_text(self.unit_price)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Price:
        return cls(data["currency"], Decimal(data["unitPrice"]))


FREE = Price(NO_CURRENCY, ZERO)


@dataclass(frozen=True)
class TenantPrices:
    """The retail and wholesale price of each meter for one tenant, as in force now."""

    retail: Mapping[str, Price]
    wholesale: Mapping[str, Price]

    def to_json(self) -> dict[str, Any]:
        return {"retail": {m: p.to_json() for m, p in self.retail.items()},
                "wholesale": {m: p.to_json() for m, p in self.wholesale.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TenantPrices:
        return cls({m: Price.from_json(p) for m, p in data["retail"].items()},
                   {m: Price.from_json(p) for m, p in data["wholesale"].items()})


UNPRICED = TenantPrices({m: FREE for m in METERS}, {m: FREE for m in METERS})


def license_tier_price(tiers: Iterable[Any], licenses: int) -> Decimal:
    """Volume tier price per licence-month for a reseller holding `licenses` licences.

    `tiers` are `settings.LicenseTier`s (min_licenses, price) ordered by min_licenses; a count below
    the first tier (0 licences) pays the first tier's price."""
    ordered = sorted(tiers, key=lambda t: t.min_licenses)
    if not ordered:
        return ZERO
    price = ordered[0].price
    for tier in ordered:
        if licenses >= tier.min_licenses:
            price = tier.price
    return Decimal(price)


def tenant_prices(plan_pricing: Any | None, region_pricing: Any | None, license_price: Decimal,
                  license_currency: str) -> TenantPrices:
    """Prices of every meter from a Plan's RetailPricing and a Region's WholesalePricing (models.py).

    A missing plan or region prices its side at zero in no currency (`XXX`) rather than guessing."""
    if plan_pricing is not None:
        currency = plan_pricing.currency
        retail = {"cpu": Price(currency, plan_pricing.cpu), "memory": Price(currency, plan_pricing.memory),
                  "storage": Price(currency, plan_pricing.storage), "base": Price(currency, plan_pricing.monthly),
                  "license": Price(currency, ZERO)}
    else:
        retail = {m: FREE for m in METERS}
    if region_pricing is not None:
        currency = region_pricing.currency
        wholesale = {"cpu": Price(currency, region_pricing.cpu), "memory": Price(currency, region_pricing.memory),
                     "storage": Price(currency, region_pricing.storage), "base": Price(currency, ZERO)}
    else:
        wholesale = {m: FREE for m in ("cpu", "memory", "storage", "base")}
    wholesale["license"] = Price(license_currency, license_price)
    return TenantPrices(retail, wholesale)
