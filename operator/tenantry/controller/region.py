"""Reconciling one Region: capacity sold (the sum of reseller allotments) against its capacity."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from tenantry.builders.common import quota_strings
from tenantry.builders.meter import build_meter_children, meter_name
from tenantry.conditions import Condition
from tenantry.controller.apply import sync_children
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
    metering, failure = await _sync_meter(op, body)
    await publish_status(op, body, fields, [
        Condition("Ready", True, "Ready", f"Region {name} is sold by {resellers} reseller(s)."), overcommitted,
        *([metering] if metering else []),
    ])
    if failure is not None:
        raise failure  # the queue retries with back-off; the condition says what failed meanwhile


# -- the region's meter (DESIGN.md §4) -----------------------------------------------------------

log = logging.getLogger("tenantry")
SERVICE_MONITOR_RECHECK_SECONDS = 300.0
_service_monitor_checked: dict[int, float] = {}


async def _service_monitors_available(op: Operator) -> bool:
    """Whether the Prometheus Operator's ServiceMonitor is served; looked up again every few minutes
    so that installing it later is noticed, without a discovery call per reconcile."""
    now = time.monotonic()
    if now - _service_monitor_checked.get(id(op), -SERVICE_MONITOR_RECHECK_SECONDS) >= SERVICE_MONITOR_RECHECK_SECONDS:
        _service_monitor_checked[id(op)] = now
        if await op.client.kind_exists("ServiceMonitor"):
            op.features.add("ServiceMonitor")
        else:
            op.features.discard("ServiceMonitor")
    return "ServiceMonitor" in op.features


async def _sync_meter(op: Operator, body: Mapping[str, Any]) -> tuple[Condition | None, Exception | None]:
    """Run the region's meter (Deployment, Service, ConfigMap, ServiceMonitor), or remove it when
    metering is disabled. Returns the `Metering` condition and the error to retry on, if any."""
    name = body["metadata"]["name"]
    metering = op.settings.metering
    if not metering.enabled:
        for kind in ("ServiceMonitor", "Service", "Deployment", "ConfigMap"):
            if op.store.get(kind, meter_name(name), metering.namespace) is not None:
                await op.client.delete(kind, meter_name(name), metering.namespace)
                op.store.delete(kind, meter_name(name), metering.namespace)
        return None, None
    try:
        monitor = await _service_monitors_available(op)
        children = build_meter_children(body, op.settings, service_monitor=monitor)
        await sync_children(op.client, op.store, (REGION, None, name), children)
    except Exception as error:  # reported in status, retried by the queue
        log.warning("Region %s: running its meter failed and will be retried: %s", name, error)
        return Condition("Metering", False, "MeterFailed",
                         f"The meter Deployment {metering.namespace}/{meter_name(name)} could not be applied "
                         f"and will be retried: {error}"), error
    return Condition("Metering", True, "MeterDeployed",
                     f"The meter runs as Deployment {metering.namespace}/{meter_name(name)}."), None
