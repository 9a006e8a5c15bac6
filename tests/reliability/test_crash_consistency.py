"""Crash consistency: the operator is SIGKILLed at random points while tenants of several resellers
are created, moved between plans and deleted; after the last restart everything converges to an
exact ledger (licences used == admitted tenants == tenant namespaces), with no orphan namespace,
binding or secret, and nobody admitted beyond licences or capacity. A crash just after a tenant's
admission was recorded (before its status said so) loses neither the decision nor its telling.

CI runs ~60 tenants and 6 kills; `pytest --long` runs 200 tenants and 15 kills.
"""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from reliability_support import FIGURES, admitted, ledger_problems, tenants_of, timed_seconds

from support.cluster import wait_for
from support.events import told
from support.operator import OperatorProcess
from support.platform import GROUP, SMALL, VERSION, Platform

BIG = {"cpu": "2", "memory": "2Gi", "storage": "2Gi", "pods": "20"}


def _scenario(platform: Platform, operator: OperatorProcess, *, tenants: int, resellers: int, kills: int,
              seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    per_reseller = tenants // resellers
    # Licences and cpu are both short: about 70% of each reseller's tenants fit, so licences,
    # capacity and the queue of waiting tenants are all exercised.
    licenses = int(per_reseller * 0.7)
    region = platform.region(capacity={"cpu": "1000", "memory": "4000Gi", "storage": "4000Gi", "pods": "100000"})
    names = [platform.reseller(region, licenses=licenses,
                               allotment={"cpu": str(licenses + per_reseller // 5), "memory": "1000Gi",
                                          "storage": "1000Gi", "pods": "10000"})
             for _ in range(resellers)]
    plans: dict[tuple[str, str], dict[str, str]] = {}
    for reseller in names:
        platform.wait_namespace(f"reseller-{reseller}")
        platform.plan(reseller, "small", quota=SMALL)
        platform.plan(reseller, "big", quota=BIG)
        plans[(reseller, "small")], plans[(reseller, "big")] = SMALL, BIG

    live: list[tuple[str, str]] = []
    deleted: list[tuple[str, str]] = []
    counts = {"creates": 0, "plan changes": 0, "deletes": 0, "kills": 0}

    def one_operation() -> None:
        roll = rng.random()
        if live and roll < 0.15:
            reseller, tenant = live.pop(rng.randrange(len(live)))
            platform.delete("Tenant", tenant, f"reseller-{reseller}")
            deleted.append((reseller, tenant))
            counts["deletes"] += 1
        elif live and roll < 0.35:
            reseller, tenant = rng.choice(live)
            platform.patch("Tenant", tenant, {"spec": {"plan": rng.choice(["small", "big"])}}, f"reseller-{reseller}")
            counts["plan changes"] += 1
        elif counts["creates"] < tenants:
            reseller = names[counts["creates"] % resellers]
            tenant = platform.tenant(reseller, region, platform.unique_name("cc", max_length=40),
                                     plan=rng.choice(["small", "small", "big"]))
            live.append((reseller, tenant))
            counts["creates"] += 1

    # Operations in waves; between waves the operator is killed at a random moment, a few operations
    # happen while it is down, and it is started again.
    total_operations = int(tenants * 1.45)
    wave = max(total_operations // (kills + 1), 1)
    done = 0
    while counts["creates"] < tenants or done < total_operations:
        for _ in range(wave):
            one_operation()
            done += 1
        if counts["kills"] < kills:
            time.sleep(rng.uniform(0.0, 2.5))  # somewhere in the middle of the operator's work
            operator.kill()
            counts["kills"] += 1
            for _ in range(rng.randint(0, 3)):
                one_operation()
                done += 1
            operator.start()
    # One more crash while it converges.
    time.sleep(rng.uniform(0.5, 2.0))
    operator.kill()
    counts["kills"] += 1
    operator.start()

    started = time.monotonic()
    last: list[str] = []

    def converged() -> bool:
        nonlocal last
        last = ledger_problems(platform, names, deleted, plans)
        return not last

    deadline = time.monotonic() + 240 + tenants * 2
    while not converged():  # polling, not sleeping as an assertion: the deadline fails the test
        assert time.monotonic() < deadline, f"no exact ledger after the crashes: {last}"
        time.sleep(2)
    converge_seconds = timed_seconds(started)
    # And it holds: a further look finds the same exact ledger (nothing was about to move).
    assert ledger_problems(platform, names, deleted, plans) == []
    admitted_count = sum(admitted(t) for r in names for t in tenants_of(platform, r))
    assert admitted_count <= licenses * resellers
    return {**counts, "admitted": admitted_count, "converged in s": converge_seconds}


@pytest.mark.parametrize(("tenants", "resellers", "kills"), [
    pytest.param(60, 3, 6, id="ci-60-tenants"),
    pytest.param(200, 5, 15, id="long-200-tenants", marks=pytest.mark.long),
])
def test_sigkill_at_random_points_converges_to_an_exact_ledger(
        platform: Platform, operator: OperatorProcess, tenants: int, resellers: int, kills: int) -> None:
    result = _scenario(platform, operator, tenants=tenants, resellers=resellers, kills=kills, seed=tenants)
    FIGURES["crash: operator SIGKILLs"] += result["kills"]
    FIGURES["crash: tenants created"] += result["creates"]
    FIGURES["crash: plan changes"] += result["plan changes"]
    FIGURES["crash: tenants deleted"] += result["deletes"]
    FIGURES["crash: tenants admitted at the end"] += result["admitted"]
    print(f"crash consistency ({tenants} tenants): {result}")
    wait_for(lambda: operator.process is not None and operator.process.poll() is None, 5,
             message="the operator running after the test")


def test_an_admission_recorded_before_a_crash_is_kept_and_told_by_the_next_operator(
        platform: Platform, operator: OperatorProcess) -> None:
    """What an operator killed between the write-ahead admission and the reconcile's status write leaves
    (controller/tenant.py): the finalizer and status.admission, no condition, no Event. The next operator
    keeps that decision (its admittedAt) and tells it: one Normal Event, Ready, naming Admitted."""
    region, reseller = platform.setup()
    control = f"reseller-{reseller}"
    admitted_at = "2026-01-02T03:04:05Z"
    operator.stop()
    try:
        name = platform.tenant(reseller, region)
        platform.patch("Tenant", name, {"metadata": {"finalizers": ["tenantry.dev/finalizer"]}}, control)
        platform.objects.patch_namespaced_custom_object_status(GROUP, VERSION, control, "tenants", name, {
            "status": {"admission": {"plan": "small", "region": region, "quota": SMALL, "admittedAt": admitted_at}}})
    finally:
        operator.start()
    obj = platform.wait_tenant(reseller, name, timeout=60)
    assert obj["status"]["admission"]["admittedAt"] == admitted_at  # decided once, by the operator that crashed
    ready = platform.wait_event(control, name, "Ready", "Normal")
    assert "Admitted" in told(ready.message), ready.message
    normal = [e for e in platform.events_for(control, name) if e.type == "Normal"]
    assert [e.reason for e in normal] == ["Ready"], [(e.reason, e.message) for e in normal]
