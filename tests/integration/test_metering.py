"""Metering on the real control plane (issue 5): the meter's metrics follow quota usage, records of a
scripted scenario match hand-computed values, a failing receiver gets every record once it recovers,
a meter killed mid-window loses nothing (the operator's meter StatefulSet per Region and its volume:
test_meter_volume.py).

Pods are created with resource requests and stay Pending (no scheduler); the resource-quota
controller counts them all the same. Two ways of running the meter:
- in-process (`support.meter.InProcessMeter`) with a frozen clock the test advances, for exact amounts: the
  cluster changes while the clock stands still, the test waits until the meter has seen the change,
  then moves the clock on;
- `tenantry meter` as a subprocess with the real clock and short windows, to SIGKILL it.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from kubernetes import client

from support.cloudevents_receiver import Receiver
from support.cluster import wait_for
from support.meter import FrozenClock, InProcessMeter, MeterProcess, pending_pod, scrape
from support.platform import Platform
from tenantry.metering.integrator import TenantState
from tenantry.quantity import parse_quantity

REPO = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000  # the frozen clock's start, on an hour boundary (2027-01-15T08:00:00Z)
GIB = Decimal(2**30)
PLAN_PRICING = {"currency": "EUR", "monthly": "19.00", "cpu": "0.05", "memory": "0.006", "storage": "0.0004"}
REGION_PRICING = {"currency": "USD", "cpu": "0.020", "memory": "0.0025", "storage": "0.00015"}
BIG = {"cpu": "4", "memory": "4Gi", "storage": "10Gi", "pods": "10"}


# -- helpers ----------------------------------------------------------------------------------------


def quota_used(core: client.CoreV1Api, namespace: str) -> dict[str, str]:
    return dict(core.read_namespaced_resource_quota("tenantry", namespace).status.used or {})


def wait_quota(core: client.CoreV1Api, namespace: str, cpu: str, pods: str) -> dict[str, str]:
    return wait_for(lambda: (u := quota_used(core, namespace)).get("pods") == pods
                    and u.get("requests.cpu") == cpu and u, timeout=40,
                    message=f"quota of {namespace} to count {pods} pods, {cpu} cpu")


def labels(**kw: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(kw.items()))


def metered_platform(platform: Platform, licenses: int = 10) -> tuple[str, str]:
    region = platform.region(pricing=REGION_PRICING)
    reseller = platform.reseller(region, licenses=licenses)
    platform.wait_namespace(f"reseller-{reseller}")
    platform.plan(reseller, quota=BIG, pricing=PLAN_PRICING)
    platform.plan(reseller, "large", quota={**BIG, "cpu": "8"}, pricing=PLAN_PRICING)
    return region, reseller


# -- the scripted scenario, exact amounts -----------------------------------------------------------


def test_metrics_follow_quota_usage_and_records_match_hand_computed_amounts(
        platform: Platform, api_client: client.ApiClient, kubeconfig: str, tmp_path: Path) -> None:
    core = client.CoreV1Api(api_client)
    region, reseller = metered_platform(platform)
    a, b = platform.tenant(reseller, region, plan="small"), platform.tenant(reseller, region, plan="small")
    for tenant in (a, b):
        platform.wait_tenant(reseller, tenant)
    ns_a, ns_b = f"{reseller}--{a}", f"{reseller}--{b}"
    pending_pod(core, ns_a, "web-1", "500m", "256Mi")
    pending_pod(core, ns_b, "web-1", "1", "512Mi")
    wait_quota(core, ns_a, "500m", "1")
    wait_quota(core, ns_b, "1", "1")
    uid_a = platform.tenant_obj(reseller, a)["metadata"]["uid"]
    uid_b = platform.tenant_obj(reseller, b)["metadata"]["uid"]

    clock = FrozenClock(T0)
    records_file = tmp_path / "records.jsonl"
    meter = InProcessMeter(kubeconfig, region, tmp_path / "spool", f"file:{records_file}", clock)
    try:
        def sees(uid: str, check: Callable[[TenantState], bool]) -> TenantState:
            return wait_for(lambda: (s := meter.state(uid)) is not None and check(s) and s, timeout=40,
                            message=f"the meter to see the change of {uid}")

        sees(uid_a, lambda s: s.used["cpu"] == Decimal("0.5") and s.prices.retail["cpu"].unit_price == Decimal("0.05"))
        sees(uid_b, lambda s: s.used["cpu"] == 1)

        # Metric values are the quota's usage, read back from the apiserver.
        samples = scrape(meter.meter.port)
        for tenant, namespace in ((a, ns_a), (b, ns_b)):
            used = quota_used(core, namespace)
            common = {"region": region, "reseller": reseller, "tenant": tenant, "plan": "small"}
            for resource, key in (("cpu", "requests.cpu"), ("memory", "requests.memory")):
                assert samples[("tenantry_tenant_resource_used", labels(**common, resource=resource))] == float(
                    parse_quantity(used[key]))
            assert samples[("tenantry_tenant_resource_used", labels(**common, resource="pods"))] == 1
            assert samples[("tenantry_tenant_resource_quota", labels(**common, resource="cpu"))] == 4
        # Reseller and region figures come from their status, followed by watch.
        wait_for(lambda: scrape(meter.meter.port)[("tenantry_reseller_licenses",
                                                   labels(reseller=reseller, state="used"))] == 2,
                 timeout=30, message="the meter to see the reseller's 2 licences used")
        assert samples[("tenantry_region_capacity", labels(region=region, resource="cpu"))] == 64

        # T0+600: tenant a is resized (a second pod); T0+1200: b is suspended; T0+1800: a is deleted.
        clock.now = T0 + 600
        meter.tick()
        platform.patch("Tenant", a, {"spec": {"plan": "large"}}, f"reseller-{reseller}")  # a bigger quota
        pending_pod(core, ns_a, "web-2", "500m", "256Mi")  # and more of it used
        sees(uid_a, lambda s: s.used["cpu"] == 1 and s.used["memory"] == 512 * 2**20 and s.hard["cpu"] == 8)
        samples = scrape(meter.meter.port)
        large = {"region": region, "reseller": reseller, "tenant": a, "plan": "large"}
        assert samples[("tenantry_tenant_resource_used", labels(**large, resource="cpu"))] == 1.0
        assert samples[("tenantry_tenant_resource_quota", labels(**large, resource="cpu"))] == 8.0
        old_plan = {**large, "plan": "small"}
        assert ("tenantry_tenant_resource_quota", labels(**old_plan, resource="cpu")) not in samples

        clock.now = T0 + 1200
        meter.tick()
        platform.patch("Tenant", b, {"spec": {"active": False}}, f"reseller-{reseller}")
        sees(uid_b, lambda s: not s.active and s.licensed)

        clock.now = T0 + 1800
        meter.tick()
        platform.delete("Tenant", a, f"reseller-{reseller}")
        wait_for(lambda: meter.state(uid_a) is None, timeout=60, message="the meter to see tenant a deleted")
        samples = scrape(meter.meter.port)
        assert not any(dict(lbl).get("tenant") == a for _, lbl in samples)  # its series are gone

        # T0+2400: tenant c is created mid-window, with a pod.
        clock.now = T0 + 2400
        meter.tick()
        c = platform.tenant(reseller, region, plan="small")
        platform.wait_tenant(reseller, c)
        pending_pod(core, f"{reseller}--{c}", "web-1", "250m", "128Mi")
        uid_c = platform.tenant_obj(reseller, c)["metadata"]["uid"]
        sees(uid_c, lambda s: s.used["cpu"] == Decimal("0.25") and s.active)

        clock.now = T0 + 3600 + 60  # the window is closed at the next tick
        assert meter.tick() > 0
        assert meter.deliver()
    finally:
        meter.stop()

    records = [json.loads(line) for line in records_file.read_text().splitlines()]
    got = {(r["data"]["tenant"], r["data"]["meter"]): r["data"] for r in records}
    window = ("2027-01-15T08:00:00Z", "2027-01-15T09:00:00Z")
    assert {(d["windowStart"], d["windowEnd"]) for d in got.values()} == {window}
    assert {r["id"] for r in records} == {
        hashlib.sha256(f"{region}|{d['tenantUID']}|{d['meter']}|{window[0]}".encode()).hexdigest()
        for d in got.values()}

    def check(tenant: str, meter_name: str, quantity: str, retail: str, wholesale: str) -> None:
        data = got[(tenant, meter_name)]
        assert (data["quantity"], data["retail"]["amount"], data["wholesale"]["amount"]) == (
            quantity, retail, wholesale), (tenant, meter_name, data)

    # a: cpu 0.5 x 600 s + 1 x 1200 s = 1500 core-s = 0.416666667 core-hour;
    #    retail x 0.05 = 0.02083333335 -> 0.020833; wholesale x 0.020 = 0.00833333334 -> 0.008333.
    assert got[(a, "cpu")]["plan"] == "large"  # the plan in force when a was last seen
    check(a, "cpu", "0.416666667", "0.020833", "0.008333")
    # a: memory 0.25 GiB x 600 s + 0.5 GiB x 1200 s = 750 GiB-s = 0.208333333 GiB-hour;
    #    x 0.006 = 0.00125 (0.001249999998 -> 0.001250); x 0.0025 = 0.000520833 -> 0.000521.
    check(a, "memory", "0.208333333", "0.001250", "0.000521")
    # a: 1800 s with a licence and Active = 1800 / 2628000 month = 0.000684932;
    #    base x 19.00 = 0.013013708 -> 0.013014; licence x 20.00 (10 licences: tier 10-49) = 0.013699.
    check(a, "base", "0.000684932", "0.013014", "0.000000")
    check(a, "license", "0.000684932", "0.000000", "0.013699")
    # b: 1 core for the whole hour (suspension keeps its Pending pod, so its requests still count).
    check(b, "cpu", "1.000000000", "0.050000", "0.020000")
    check(b, "memory", "0.500000000", "0.003000", "0.001250")
    # b: Active 1200 s (base), licence all 3600 s (kept while suspended).
    check(b, "base", "0.000456621", "0.008676", "0.000000")  # 19.00 x 0.000456621 = 0.008675799
    check(b, "license", "0.001369863", "0.000000", "0.027397")  # 20.00 x 0.001369863 = 0.02739726
    # c: from T0+2400 to the window's end, 1200 s: 0.25 core -> 300 core-s = 0.083333333 core-hour;
    #    128 Mi = 0.125 GiB -> 150 GiB-s = 0.041666667 GiB-hour; 1200 s = 0.000456621 month.
    check(c, "cpu", "0.083333333", "0.004167", "0.001667")
    check(c, "memory", "0.041666667", "0.000250", "0.000104")
    check(c, "base", "0.000456621", "0.008676", "0.000000")
    check(c, "license", "0.000456621", "0.000000", "0.009132")
    assert not any(meter_name == "storage" for _, meter_name in got)

    # The statement of that day, from the same records.
    out = tmp_path / "statements"
    subprocess.run([sys.executable, "-m", "tenantry", "bill", str(records_file), "--reseller", reseller,
                    "--from", "2027-01-15", "--to", "2027-01-16", "--out", str(out)], check=True, cwd=REPO)
    csv_text = (out / f"{reseller}-2027-01-15-2027-01-16.csv").read_text()
    # retail EUR: a 0.020833 + 0.001250 + 0.013014, b 0.05 + 0.003 + 0.008676,
    #             c 0.004167 + 0.000250 + 0.008676 = 0.109866 -> 0.11
    assert f"total-retail,{reseller},2027-01-15,2027-01-16,,,,,,EUR,,0.11" in csv_text
    # wholesale USD: a 0.008333 + 0.000521 + 0.013699, b 0.02 + 0.00125 + 0.027397,
    #                c 0.001667 + 0.000104 + 0.009132 = 0.082103 -> 0.08
    assert f"total-wholesale,{reseller},2027-01-15,2027-01-16,,,,,,USD,,0.08" in csv_text
    assert "daily-wholesale" in csv_text
    assert "<table id=\"margin\">" in (out / f"{reseller}-2027-01-15-2027-01-16.html").read_text()


# -- a failing receiver and a killed meter ----------------------------------------------------------


@pytest.fixture
def meter_processes() -> Iterator[list[MeterProcess]]:
    made: list[MeterProcess] = []
    yield made
    for process in made:
        if process.process is not None:
            process.stop(signal.SIGKILL)


def test_outage_and_crash_lose_no_record_and_replays_keep_ids(
        platform: Platform, api_client: client.ApiClient, kubeconfig: str, tmp_path: Path,
        meter_processes: list[MeterProcess]) -> None:
    core = client.CoreV1Api(api_client)
    region, reseller = metered_platform(platform)
    tenant = platform.tenant(reseller, region, plan="small")
    platform.wait_tenant(reseller, tenant)
    namespace = f"{reseller}--{tenant}"
    pending_pod(core, namespace, "web-1", "1", "1Gi")
    wait_quota(core, namespace, "1", "1")
    uid = platform.tenant_obj(reseller, tenant)["metadata"]["uid"]
    spool = tmp_path / "spool"

    with Receiver() as receiver:
        receiver.failing = True  # the billing system is down from the start
        meter = MeterProcess(kubeconfig, region, receiver.url, spool, tmp_path / "meter.log")
        meter_processes.append(meter)
        meter.start()
        common = labels(region=region, reseller=reseller, tenant=tenant, plan="small", resource="cpu")
        wait_for(lambda: scrape(meter.port).get(("tenantry_tenant_resource_used", common)) == 1.0, timeout=30,
                 message="the meter's cpu usage metric to be the quota's 1 core")

        # Windows close, the receiver refuses them: they wait in the spool.
        wait_for(lambda: receiver.refused >= 2 and scrape(meter.port)[
            ("tenantry_billing_spool_records", labels(region=region))] >= 6, timeout=40,
            message="records to pile up in the spool while the receiver fails")
        assert scrape(meter.port)[("tenantry_billing_records_total",
                                   labels(region=region, sink="http", result="failed"))] > 0

        # A crash mid-window, down across a window boundary, then a restart from the same spool.
        meter.stop(signal.SIGKILL)
        killed_at = datetime.datetime.now(datetime.UTC)
        wait_for(lambda: datetime.datetime.now(datetime.UTC) - killed_at > datetime.timedelta(seconds=5),
                 timeout=10, interval=0.5, message="the meter to stay down across a window boundary")
        meter.start()
        receiver.failing = False

        def delivered_after_restart() -> bool:
            windows = {r["data"]["windowEnd"] for r in receiver.records() if r["data"]["meter"] == "cpu"}
            return any(datetime.datetime.fromisoformat(w.replace("Z", "+00:00")) > killed_at
                       + datetime.timedelta(seconds=12) for w in windows)

        wait_for(delivered_after_restart, timeout=60, message="windows after the restart to be delivered")
        meter.stop(signal.SIGTERM)
        assert meter.process is not None and meter.process.returncode == 0

        unique = receiver.unique()
        copies = receiver.records()
        assert sorted((spool / "outbox").glob("*.json")) == []  # everything delivered, nothing waits
    # A record received twice (delivered, then the meter died before it could forget it) is the
    # same record: same id, same content. De-duplicating by id is all a receiver has to do.
    for record in copies:
        assert record == unique[record["id"]]

    mine = [r for r in unique.values() if r["data"]["tenantUID"] == uid]
    cpu = sorted((r["data"]["windowStart"], r["data"]["windowEnd"], r["data"]["quantity"])
                 for r in mine if r["data"]["meter"] == "cpu")
    # Every window from the first to the last, none missing (the crash and the outage lost nothing) ...
    for (_, end, _), (start, _, _) in itertools.pairwise(cpu):
        assert start == end, f"a gap in the windows: {cpu}"
    assert len(cpu) >= 6
    # ... and every whole window billed in full: 1 core x 4 s = 0.001111111 core-hour, the windows the
    # meter was down in included (billed at the usage it last saw, which did not change).
    assert {q for _, _, q in cpu[1:]} == {"0.001111111"}, cpu
    # Each record exactly once after de-duplication, and a duplicate (a replay) is identical in id.
    by_window_meter = {(r["data"]["windowStart"], r["data"]["meter"]) for r in mine}
    assert len(by_window_meter) == len(mine)
    assert {r["data"]["meter"] for r in mine} == {"cpu", "memory", "license", "base"}
