"""Reconciling one Region: capacity sold (the sum of reseller allotments) against its capacity."""

from __future__ import annotations

from decimal import Decimal

from tenantry.builders.common import quota_strings
from tenantry.conditions import Condition
from tenantry.controller.context import Operator, publish_status
from tenantry.controller.specs import INVALID_SPEC, read_spec
from tenantry.naming import QUOTA_RESOURCES, REGION


def region_allocation(op: Operator, region: str) -> tuple[dict[str, Decimal], int]:
    """Sum of the allotments resellers hold in the region, and how many resellers sell there."""
    total = {r: Decimal(0) for r in QUOTA_RESOURCES}
    resellers = 0
    for terms in op.book.resellers.values():
        allotment = terms.allotments.get(region)
        if allotment is None:
            continue
        resellers += 1
        for resource in QUOTA_RESOURCES:
            total[resource] += allotment.get(resource, Decimal(0))
    return total, resellers


async def reconcile_region(op: Operator, name: str) -> None:
    body = op.store.get(REGION, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return
    spec, problem = read_spec(REGION, body)
    if spec is None:
        await publish_status(op, body, {}, [Condition("Ready", False, INVALID_SPEC, problem or "")])
        return
    allocated, resellers = region_allocation(op, name)
    capacity = spec.capacity.as_decimals()
    tenants = sum(1 for claim in op.book.all_tenants()
                  if (record := op.book.record_of(claim)) is not None and record.region == name)
    over = [f"{r} {quota_strings(allocated)[r]} > {quota_strings(capacity)[r]}"
            for r in QUOTA_RESOURCES if allocated[r] > capacity[r]]
    overcommitted = (
        Condition("Overcommitted", True, "AllotmentsExceedCapacity",
                  f"Reseller allotments exceed the region's capacity ({'; '.join(over)}); raise spec.capacity "
                  "or lower allotments if tenants must be guaranteed their quota.")
        if over else
        Condition("Overcommitted", False, "WithinCapacity", "Reseller allotments fit in the region's capacity.")
    )
    fields = {"allocated": quota_strings(allocated), "resellers": resellers, "tenants": tenants}
    await publish_status(op, body, fields, [
        Condition("Ready", True, "Ready", f"Region {name} is sold by {resellers} reseller(s)."), overcommitted,
    ])
