"""Metering a member cluster's region (DESIGN.md §7, docs/multi-cluster.md): the region's meter runs in
the control cluster, reads the Tenantry kinds there and the tenants' quotas (their usage) from the
member through `tenantry meter --usage-kubeconfig`, the kubeconfig the Region's Secret holds.

Two real `tenantry meter` processes for region `m1`, side by side: one given the member's kubeconfig
(what the operator's meter StatefulSet of a member region runs), one without it (control cluster only,
where the tenant has no namespace), which must see the tenant but no quota - so the flag is what
carries the member's usage into the metrics and the billing records.
"""

from __future__ import annotations

import base64
import json
import signal
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from multicluster_support import M1, POLL, Fleet, namespace_exists

from support.cluster import wait_for
from support.members import KUBECONFIG_KEY, NAMESPACE
from support.meter import MeterProcess, pending_pod, scrape

GIB = 2.0**30


@pytest.fixture
def meter_processes() -> Iterator[list[MeterProcess]]:
    """Meters the test started; any still running at the end is killed by its pid."""
    made: list[MeterProcess] = []
    yield made
    for meter in made:
        if meter.process is not None:
            meter.stop(signal.SIGKILL)


def member_kubeconfig_file(fleet: Fleet, tmp_path: Path) -> Path:
    """The kubeconfig the m1 Region's Secret holds (what the meter pod gets mounted), in a 0600 file."""
    ref = fleet.region(M1)["spec"]["cluster"]["kubeconfigSecretRef"]
    secret = client.CoreV1Api(fleet.control).read_namespaced_secret(ref["name"], ref.get("namespace", NAMESPACE))
    path = tmp_path / "member-1.kubeconfig"
    path.touch(mode=0o600)
    path.write_bytes(base64.b64decode((secret.data or {})[ref.get("key", KUBECONFIG_KEY)]))
    return path


def tenant_series(samples: dict[Any, float], name: str, tenant: str) -> dict[str, float]:
    """One tenant's samples of a per-resource family, by resource."""
    return {dict(labels)["resource"]: value for (sample, labels), value in samples.items()
            if sample == name and dict(labels).get("tenant") == tenant}


def records_of(path: Path, uid: str) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [r["data"] for r in map(json.loads, path.read_text().splitlines()) if r["data"]["tenantUID"] == uid]


def test_member_regions_meter_reads_quotas_from_the_member(fleet: Fleet, kubeconfig: str, tmp_path: Path,
                                                           meter_processes: list[MeterProcess]) -> None:
    region = fleet.regions[M1]
    (tenant,) = fleet.new_tenants(M1, 1, prefix="metered")
    uid = fleet.wait_tenant(tenant, timeout=90)["metadata"]["uid"]
    namespace = fleet.namespace_of(tenant)
    member = client.CoreV1Api(fleet.api_of(M1))
    # Its quota is in member 1 only: the control cluster has no namespace of the tenant.
    quota = member.read_namespaced_resource_quota("tenantry", namespace)
    assert quota.spec is not None and (quota.spec.hard or {}).get("requests.cpu") == "1"
    assert not namespace_exists(fleet.control, namespace)
    pending_pod(member, namespace, "web-1", "500m", "256Mi", counted=True)

    records = tmp_path / "records.jsonl"
    with_member = MeterProcess(kubeconfig, region, f"file:{records}", tmp_path / "spool-member",
                               tmp_path / "meter-member.log", window="10s",
                               usage_kubeconfig=member_kubeconfig_file(fleet, tmp_path))
    control_only = MeterProcess(kubeconfig, region, f"file:{tmp_path / 'records-control.jsonl'}",
                                tmp_path / "spool-control", tmp_path / "meter-control.log", window="10s")
    control_only.env.pop("TENANTRY_USAGE_KUBECONFIG", None)
    for meter in (with_member, control_only):
        meter_processes.append(meter)
        meter.start()  # /metrics answers once every watch has listed: the first scrape is the whole picture

    # Without the member's kubeconfig the meter knows the tenant (from the control cluster) but finds no quota.
    blind = scrape(control_only.port)
    assert tenant_series(blind, "tenantry_tenant_resource_quota", tenant) == {
        "cpu": 0.0, "memory": 0.0, "storage": 0.0, "pods": 0.0}, control_only.log.read_text()[-2000:]
    assert tenant_series(blind, "tenantry_tenant_resource_used", tenant)["cpu"] == 0.0

    # With it, the quota of plan `small` and the pod's requests, as the member's ResourceQuota has them.
    seen = scrape(with_member.port)
    assert tenant_series(seen, "tenantry_tenant_resource_quota", tenant) == {
        "cpu": 1.0, "memory": GIB, "storage": GIB, "pods": 10.0}, with_member.log.read_text()[-2000:]
    used = tenant_series(seen, "tenantry_tenant_resource_used", tenant)
    assert (used["cpu"], used["memory"], used["pods"]) == (0.5, 256 * 2.0**20, 1.0)

    # A 10 s window closes: the tenant's records land in the file sink, its reserved cpu and memory non-zero.
    def billed() -> dict[str, Decimal] | None:
        by_window: dict[str, dict[str, Decimal]] = {}
        for data in records_of(records, uid):
            by_window.setdefault(data["windowStart"], {})[data["meter"]] = Decimal(data["quantity"])
        return next((q for q in by_window.values() if q.get("cpu", 0) > 0 and q.get("memory", 0) > 0), None)

    quantities: dict[str, Decimal] = wait_for(billed, timeout=40, interval=POLL,
                                              message=f"a window's records of {tenant} in the file sink "
                                                      f"(meter log: {with_member.log})")
    assert quantities["license"] > 0, quantities
    assert {d["region"] for d in records_of(records, uid)} == {region}

    for meter in (with_member, control_only):
        assert meter.stop(signal.SIGTERM) == 0, meter.log.read_text()[-2000:]
