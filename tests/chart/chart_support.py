"""Helpers of the chart tests: render charts/tenantry with the real Helm engine, find objects,
and the metric names Tenantry exports (for the dashboard and alert checks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support.hack_scripts import hack_script

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "tenantry"
FILES = CHART / "files"
OPERATOR_ROLE_FILE = FILES / "operator-clusterrole.yaml"
PLATFORM_ROLES_FILE = FILES / "platform-clusterroles.yaml"
RULES_FILE = FILES / "prometheus-rules.yaml"
DASHBOARD_FILE = FILES / "dashboards" / "tenantry.json"
INSTALL_MANIFEST = REPO / "manifests" / "install.yaml"

# DESIGN.md §4: the meters' metric names (dashboards and alerts rely on them).
METER_METRICS = frozenset({
    "tenantry_tenant_resource_used", "tenantry_tenant_resource_quota",
    "tenantry_tenant_cpu_core_seconds_total", "tenantry_tenant_memory_byte_seconds_total",
    "tenantry_tenant_storage_byte_seconds_total", "tenantry_tenant_license_seconds_total",
    "tenantry_charge_total", "tenantry_reseller_licenses", "tenantry_reseller_allotment",
    "tenantry_reseller_allocated", "tenantry_region_capacity", "tenantry_region_allocated",
    "tenantry_certificate_expiry_timestamp_seconds", "tenantry_billing_records_total",
    "tenantry_billing_spool_records",
})


def render(values: dict[str, Any] | None = None, *, release: str = "tenantry", namespace: str = "tenantry-system",
           include_crds: bool = False) -> list[dict[str, Any]]:
    """The chart's objects as Helm renders them (templates in install order; CRDs first if asked)."""
    objects: list[dict[str, Any]] = hack_script("render-manifests").render_objects(
        values, release=release, namespace=namespace, include_crds=include_crds)
    return objects


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[o['metadata']['name'] for o in found]}"
    return found[0]


def operator_metric_names() -> set[str]:
    """Sample names of every metric the operator defines (controller/metrics.py), with the suffixes
    Prometheus sees: counters end in _total, histograms give _bucket, _sum and _count."""
    from prometheus_client.metrics import MetricWrapperBase

    from tenantry.controller import license_order, metrics
    from tenantry.webhook import server as webhook_server

    # Families a collector builds at scrape time (licence self-service) are listed by their module.
    names: set[str] = set(license_order.SCRAPE_TIME_METRICS)
    for value in [*vars(metrics).values(), *vars(license_order).values(), *vars(webhook_server).values()]:
        if not isinstance(value, MetricWrapperBase):
            continue
        for family in value.describe():
            if family.type == "counter":
                names.add(family.name + "_total")
            elif family.type == "histogram":
                names |= {family.name + suffix for suffix in ("_bucket", "_sum", "_count")}
            else:
                names.add(family.name)
    return names


def exported_metric_names() -> set[str]:
    return operator_metric_names() | METER_METRICS
