"""Journey 4: the meter runs through windows and a replacement, and the bill adds up.

The platform runs `tenantry meter` for a region under the chart's meter ServiceAccount (a process
here: the control plane has no kubelet), with short windows and a `file:` sink. Tenant owners run
pods; the meter's metrics show their requests; the meter is killed mid-window and replaced by a new
one on the same spool, as a rescheduled pod on the same volume would be; no window is lost or
billed twice. `tenantry bill` then gives the reseller's statement: retail lines per tenant, the
wholesale shadow, totals and the margin, equal to the records they came from.
"""

from __future__ import annotations

import csv
import datetime
import itertools
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pytest
from journey_support import (
    Stage,
    owner_of,
    plan_doc,
    records,
    region_doc,
    tenant_doc,
    unique_name,
    wait_condition,
    wait_object,
)
from kubernetes import client

from support.accounts import service_account_kubeconfig
from support.cluster import REPO_ROOT, wait_for
from support.meter import MeterProcess, scrape

WINDOW_SECONDS = 4
# Prices big enough for a 4-second window to be worth cents (a core-hour at 360 is 0.40 per 4 s).
RETAIL = {"currency": "USD", "monthly": "7300.00", "cpu": "360.00", "memory": "36.00", "storage": "0"}
WHOLESALE = {"currency": "USD", "cpu": "180.00", "memory": "9.00", "storage": "0"}
QUOTA = {"cpu": "4", "memory": "4Gi", "storage": "10Gi", "pods": "10"}
USAGE = {"a": ("500m", "256Mi"), "b": ("1", "512Mi")}  # the pod each owner runs: cpu, memory requests
CORES = {"a": Decimal("0.5"), "b": Decimal("1")}


def pod_doc(name: str, cpu: str, memory: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
        "automountServiceAccountToken": False,
        "containers": [{"name": "main", "image": "registry.invalid/shop:1",
                        "resources": {"requests": {"cpu": cpu, "memory": memory},
                                      "limits": {"cpu": cpu, "memory": memory}}}]}}


@pytest.fixture(scope="module")
def metered(stage: Stage, api_client: client.ApiClient, kubeconfig: str) -> Iterator[dict[str, Any]]:
    region, reseller = unique_name("meter", max_length=30), unique_name("billed", max_length=20)
    alice = stage.open_reseller(region_doc(region, pricing=WHOLESALE), reseller, licenses=3)
    alice.apply(plan_doc(reseller, "metered", quota=QUOTA, pricing=RETAIL))
    tenants = {key: unique_name(f"cust{key}", max_length=40) for key in USAGE}
    alice.apply(*(tenant_doc(reseller, name, region, "metered", owners=[{"kind": "User", "name": owner_of(name)}])
                  for name in tenants.values()))
    for key, name in tenants.items():
        wait_condition(alice, "Ready", "True", None, "tenant", name, "-n", f"reseller-{reseller}")
        owner, namespace = stage.owner(name), f"{reseller}--{name}"
        cpu, memory = USAGE[key]
        # The namespace's `default` ServiceAccount comes a moment after the namespace: retry until then.
        wait_for(lambda o=owner, c=cpu, m=memory, n=namespace: o.apply(
            pod_doc("web", c, m) | {"metadata": {"name": "web", "namespace": n}}, check=False).returncode == 0,
            timeout=30, message=f"the owner's pod in {namespace}")
        wait_object(owner, lambda o, c=cpu: o["status"].get("used", {}).get("requests.cpu") == c,
                    "resourcequota", "tenantry", "-n", namespace, message=f"the quota of {namespace} to count the pod")
    meter_kubeconfig = service_account_kubeconfig(api_client, kubeconfig, "tenantry-system", "tenantry-meter",
                                                  stage.tmp / "meter.kubeconfig")
    sink = stage.tmp / "billing" / "records.jsonl"
    sink.parent.mkdir()
    made: list[MeterProcess] = []

    def new_meter() -> MeterProcess:
        meter = MeterProcess(meter_kubeconfig, region, f"file:{sink}", stage.tmp / "spool", stage.tmp / "meter.log",
                             window=f"{WINDOW_SECONDS}s")
        made.append(meter)
        return meter

    yield {"region": region, "reseller": reseller, "tenants": tenants, "sink": sink, "new_meter": new_meter,
           "alice": alice}
    for meter in made:
        if meter.process is not None and meter.process.poll() is None:
            meter.stop(signal.SIGKILL)


def cpu_windows(sink: Path, tenant: str) -> list[tuple[str, str, str]]:
    return sorted({(r["data"]["windowStart"], r["data"]["windowEnd"], r["data"]["quantity"])
                   for r in records(sink) if r["data"]["tenant"] == tenant and r["data"]["meter"] == "cpu"})


def test_the_meter_survives_a_replacement_and_the_bill_adds_up(metered: dict[str, Any], tmp_path: Path) -> None:
    region, reseller, tenants, sink = metered["region"], metered["reseller"], metered["tenants"], metered["sink"]
    meter: MeterProcess = metered["new_meter"]()
    meter.start()

    # What the tenants use, as the platform's Prometheus scrapes it.
    def sample(name: str, **labels: str) -> float | None:
        return scrape(meter.port).get((name, tuple(sorted(labels.items()))))

    for key, tenant in tenants.items():
        common = {"region": region, "reseller": reseller, "tenant": tenant, "plan": "metered"}
        cpu = float(CORES[key])
        wait_for(lambda c=common, v=cpu: sample("tenantry_tenant_resource_used", **c, resource="cpu") == v,
                 timeout=30, message=f"the meter to show {tenant}'s cpu requests")
        assert sample("tenantry_tenant_resource_quota", **common, resource="cpu") == 4.0
    wait_for(lambda: sample("tenantry_reseller_licenses", reseller=reseller, state="used") == 2, timeout=30,
             message="the meter to show the reseller's 2 licences used")

    # Windows close and reach the sink; then the meter's pod dies mid-window without warning, and its
    # replacement starts on the same volume.
    wait_for(lambda: len(cpu_windows(sink, tenants["a"])) >= 2, timeout=40, message="two closed windows")
    meter.stop(signal.SIGKILL)
    killed_at = datetime.datetime.now(datetime.UTC)
    replacement: MeterProcess = metered["new_meter"]()
    replacement.start()

    def windows_after_the_replacement() -> bool:
        ends = [datetime.datetime.fromisoformat(end.replace("Z", "+00:00"))
                for _, end, _ in cpu_windows(sink, tenants["a"])]
        return sum(end > killed_at for end in ends) >= 3

    wait_for(windows_after_the_replacement, timeout=60, message="three windows closed after the replacement")
    assert replacement.stop() == 0  # a clean shutdown on SIGTERM

    # No window lost, none billed twice, every whole window billed in full.
    all_records = records(sink)
    by_id: dict[str, dict[str, Any]] = {}
    for record in all_records:
        assert by_id.setdefault(record["id"], record) == record, "a replayed record differs from the original"
    unique = list(by_id.values())
    for key, tenant in tenants.items():
        windows = cpu_windows(sink, tenant)
        for (_, end, _), (start, _, _) in itertools.pairwise(windows):
            assert start == end, f"a window of {tenant} is missing: {windows}"
        assert len({start for start, _, _ in windows}) == len(windows), f"a window billed twice: {windows}"
        expected = (CORES[key] * WINDOW_SECONDS / 3600).quantize(Decimal("0.000000001"), ROUND_HALF_EVEN)
        assert {Decimal(q) for _, _, q in windows[1:]} == {expected}, windows
        meters = {r["data"]["meter"] for r in unique if r["data"]["tenant"] == tenant}
        assert meters == {"cpu", "memory", "base", "license"}, meters

    # The statement of the period the records cover.
    mine = [r for r in unique if r["data"]["reseller"] == reseller]
    days = sorted({r["data"]["windowStart"][:10] for r in mine})
    first_day = datetime.date.fromisoformat(days[0])
    after_last = datetime.date.fromisoformat(days[-1]) + datetime.timedelta(days=1)
    out = tmp_path / "statements"
    printed = subprocess.run([sys.executable, "-m", "tenantry", "bill", str(sink), "--reseller", reseller,
                              "--from", first_day.isoformat(), "--to", after_last.isoformat(), "--out", str(out)],
                             check=True, cwd=REPO_ROOT, capture_output=True, text=True).stdout
    name = f"{reseller}-{first_day.isoformat()}-{after_last.isoformat()}"
    rows = list(csv.DictReader((out / f"{name}.csv").read_text().splitlines()))
    assert (out / f"{name}.html").exists()

    def exact(side: str, tenant: str | None = None, meter_name: str | None = None) -> Decimal:
        return sum((Decimal(r["data"][side]["amount"]) for r in mine
                    if (tenant is None or r["data"]["tenant"] == tenant)
                    and (meter_name is None or r["data"]["meter"] == meter_name)), Decimal(0))

    # Retail lines per tenant and meter, each the exact sum of its records.
    retail = {(row["tenant"], row["meter"]): Decimal(row["amount"]) for row in rows if row["section"] == "retail"}
    assert {t for t, _ in retail} == set(tenants.values())
    for (tenant, meter_name), amount in retail.items():
        assert amount == exact("retail", tenant, meter_name), (tenant, meter_name)
    # The wholesale shadow: the same usage at the platform's prices, per tenant and meter.
    wholesale = {(row["tenant"], row["meter"]): Decimal(row["amount"])
                 for row in rows if row["section"] == "wholesale"}
    assert {t for t, _ in wholesale} == set(tenants.values())
    assert sum(wholesale.values()) == exact("wholesale")
    assert sum(retail.values()) == exact("retail")
    # The daily wholesale summary per resource type adds up to the same.
    daily = [Decimal(row["amount"]) for row in rows if row["section"] == "daily-wholesale"]
    assert daily and sum(daily) == exact("wholesale")
    # Totals in cents, and the margin the reseller keeps.
    cents = Decimal("0.01")
    totals = {row["section"]: Decimal(row["amount"]) for row in rows
              if row["section"] in ("total-retail", "total-wholesale", "margin")}
    assert totals["total-retail"] == exact("retail").quantize(cents, ROUND_HALF_EVEN)
    assert totals["total-wholesale"] == exact("wholesale").quantize(cents, ROUND_HALF_EVEN)
    assert abs(totals["margin"] - (exact("retail") - exact("wholesale"))) <= cents
    assert totals["margin"] > 0  # the plan sells at twice the wholesale price
    assert f"{reseller}: USD retail {totals['total-retail']}" in printed, printed


def test_the_meter_the_operator_runs_keeps_its_records_on_durable_storage(metered: dict[str, Any],
                                                                          stage: Stage) -> None:
    """DESIGN §4: a restart loses no record. A meter pod is rescheduled on every node drain; its
    spool and checkpoint must survive that, so they may not live on an emptyDir."""
    region = metered["region"]
    platform = stage.platform_admin
    name = f"tenantry-meter-{region}"

    def workload() -> dict[str, Any] | None:
        for kind in ("statefulset", "deployment"):
            found = platform.run("get", kind, name, "-n", "tenantry-system", "-o", "json", check=False)
            if found.returncode == 0:
                return dict(json.loads(found.stdout))
        return None

    meter: dict[str, Any] = wait_for(workload, timeout=30, message=f"the operator's meter workload {name}")
    pod = meter["spec"]["template"]["spec"]
    ephemeral = [v["name"] for v in pod.get("volumes") or [] if "emptyDir" in v]
    assert not ephemeral, (f"{meter['kind']} {name} keeps {ephemeral} on an emptyDir: its unsent records and "
                           "the open window's usage are lost when the pod is rescheduled")
    claims = [v for v in pod.get("volumes") or [] if "persistentVolumeClaim" in v]
    assert claims or meter["spec"].get("volumeClaimTemplates"), f"{name} has no persistent volume"
