"""Kubernetes quantities as exact decimals.

Admission sums quotas and metering prices them, so quantities are parsed into `Decimal`
(never float) in base units: cores for cpu, bytes for memory and storage, a count for pods.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# The quantity grammar of k8s.io/apimachinery/pkg/api/resource, as one regular expression.
QUANTITY_PATTERN = r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?[0-9]+))?$"
_QUANTITY_RE = re.compile(QUANTITY_PATTERN)

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
}

GIB = Decimal(2**30)


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity."""


def parse_quantity(value: str | int | float | Decimal) -> Decimal:
    """'500m' -> Decimal('0.5'), '1Gi' -> Decimal(1073741824), 20 -> Decimal(20)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    text = str(value).strip()
    match = _QUANTITY_RE.match(text)
    if not match:
        raise QuantityError(f"{value!r} is not a Kubernetes quantity (examples: 500m, 2, 4Gi, 1.5T)")
    number, suffix = match.group(1), match.group(3) or ""
    try:
        base = Decimal(number)
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only numbers
        raise QuantityError(f"{value!r} is not a Kubernetes quantity") from exc
    if suffix in _BINARY:
        return base * _BINARY[suffix]
    if suffix in _DECIMAL:
        return base * _DECIMAL[suffix]
    return base * (Decimal(10) ** int(suffix[1:]))  # an exponent such as e3


def is_quantity(value: object) -> bool:
    try:
        parse_quantity(value)  # type: ignore[arg-type]
    except (QuantityError, TypeError):
        return False
    return True


def format_quantity(resource: str, amount: Decimal) -> str:
    """A readable quantity string for status: cores as millicores when fractional, bytes in Gi/Mi."""
    if resource == "cpu":
        if amount == amount.to_integral_value():
            return str(int(amount))
        return f"{int((amount * 1000).to_integral_value())}m"
    if resource in ("memory", "storage"):
        for suffix, factor in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
            if amount and amount % factor == 0:
                return f"{int(amount / factor)}{suffix}"
        return str(int(amount))
    return str(int(amount)) if amount == amount.to_integral_value() else str(amount)
