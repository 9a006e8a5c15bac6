"""Races with exactly one right outcome: tenants racing for the last licence (several resellers at
once), the last capacity, the same custom host (across resellers); a plan resized while its tenants
are being admitted; a reseller deactivated in the middle of a rollout.

Racers are created at once from a thread pool; the outcome must not depend on the order the
operator sees them in: the older creationTimestamp wins, then the name (DESIGN.md §3).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from reliability_support import FIGURES, admitted, decided, ledger_problems, wait_exact_ledger

from support.cluster import wait_for
from support.platform import SMALL, Platform, condition

ONE_CPU = SMALL  # the plan "small" as Platform.plan makes it
ROOMY = {"cpu": "100", "memory": "100Gi", "storage": "100Gi", "pods": "1000"}


def _race(make: Callable[[str], Any], names: Sequence[str]) -> None:
    with ThreadPoolExecutor(len(names)) as pool:
        list(pool.map(make, names))


def _settled(platform: Platform, reseller_of: dict[str, str], timeout: float = 90) -> dict[str, dict[str, Any]]:
    def check() -> dict[str, dict[str, Any]] | None:
        objs = {n: platform.tenant_obj(r, n) for n, r in reseller_of.items()}
        return objs if all(decided(o) for o in objs.values()) else None  # type: ignore[misc]

    return wait_for(check, timeout, interval=0.5, message="every racer decided")


def _age_order(objs: dict[str, dict[str, Any]], reseller_of: dict[str, str]) -> list[str]:
    return sorted(objs, key=lambda n: (objs[n]["metadata"]["creationTimestamp"], n, reseller_of[n]))


def _reason(obj: dict[str, Any] | None) -> str | None:
    found = condition(obj, "Admitted")
    return found["reason"] if found else None


@pytest.mark.parametrize(("resellers", "licenses", "racers"), [
    pytest.param(3, 2, 6, id="ci"),
    pytest.param(5, 3, 12, id="long", marks=pytest.mark.long),
])
def test_racing_for_the_last_licences_of_several_resellers_at_once(platform: Platform, resellers: int,
                                                                    licenses: int, racers: int) -> None:
    region = platform.region()
    names = [platform.reseller(region, licenses=licenses) for _ in range(resellers)]
    for reseller in names:
        platform.wait_namespace(f"reseller-{reseller}")
        platform.plan(reseller)
    reseller_of = {platform.unique_name("lic", max_length=40): r for r in names for _ in range(racers)}
    _race(lambda n: platform.tenant(reseller_of[n], region, n), list(reseller_of))
    objs = _settled(platform, reseller_of)
    for reseller in names:
        mine = {n: o for n, o in objs.items() if reseller_of[n] == reseller}
        order = _age_order(mine, reseller_of)
        assert {n for n in mine if admitted(mine[n])} == set(order[:licenses]), reseller
        assert {_reason(mine[n]) for n in order[licenses:]} == {"LicenseLimitReached"}
    wait_exact_ledger(platform, names, 60)
    FIGURES["races: last licence"] += resellers
    FIGURES["races: racers"] += len(reseller_of)


def test_racing_for_the_last_capacity(platform: Platform) -> None:
    region, reseller = platform.setup(licenses=20, allotment={**ROOMY, "cpu": "3"}, plan_quota=ONE_CPU)
    reseller_of = {platform.unique_name("cap", max_length=40): reseller for _ in range(8)}
    _race(lambda n: platform.tenant(reseller, region, n), list(reseller_of))
    objs = _settled(platform, reseller_of)
    order = _age_order(objs, reseller_of)
    assert {n for n in objs if admitted(objs[n])} == set(order[:3])
    assert {_reason(objs[n]) for n in order[3:]} == {"InsufficientCapacity"}
    wait_exact_ledger(platform, [reseller], 60, plans={(reseller, "small"): ONE_CPU})
    FIGURES["races: last capacity"] += 1
    FIGURES["races: racers"] += len(reseller_of)


def test_racing_for_the_same_custom_host_across_resellers(platform: Platform) -> None:
    region = platform.region(domainVerification="None")
    names = []
    for _ in range(2):
        reseller = platform.reseller(region)
        platform.wait_namespace(f"reseller-{reseller}")
        platform.plan(reseller, custom_domains=1)
        names.append(reseller)
    host = f"{platform.unique_name('shop')}.example"
    reseller_of = {platform.unique_name("host", max_length=40): names[i % 2] for i in range(6)}
    _race(lambda n: platform.tenant(reseller_of[n], region, n, domains=[{"host": host}]), list(reseller_of))
    objs = _settled(platform, reseller_of)
    winner = _age_order(objs, reseller_of)[0]
    assert [n for n in objs if admitted(objs[n])] == [winner]
    assert {_reason(o) for n, o in objs.items() if n != winner} == {"HostConflict"}
    winner_reseller = reseller_of[winner]

    def routed() -> bool:
        return host in ((platform.tenant_obj(winner_reseller, winner) or {}).get("status") or {}).get("hosts", [])

    wait_for(routed, 30, message="the winner routes the host")
    FIGURES["races: same custom host"] += 1
    FIGURES["races: racers"] += len(reseller_of)


def test_plan_resized_while_its_tenants_are_admitted(platform: Platform) -> None:
    region, reseller = platform.setup(licenses=20, allotment={**ROOMY, "cpu": "4"}, plan_quota=ONE_CPU)
    ns = f"reseller-{reseller}"
    names = [platform.unique_name("rsz", max_length=40) for _ in range(6)]
    two_cpu = {**ONE_CPU, "cpu": "2"}

    def act(index: int) -> None:
        if index == len(names):
            platform.patch("Plan", "small", {"spec": {"quota": {"cpu": "2"}}}, ns)
        else:
            platform.tenant(reseller, region, names[index])

    with ThreadPoolExecutor(len(names) + 1) as pool:
        list(pool.map(act, [0, 1, 2, len(names), 3, 4, 5]))

    last: list[str] = []

    def resized_outcome() -> list[str] | None:
        objs = {n: platform.tenant_obj(reseller, n) for n in names}
        if not all(decided(o) for o in objs.values()):
            return None
        last[:] = problems = ledger_problems(platform, [reseller], plans={(reseller, "small"): two_cpu})
        for name, obj in objs.items():
            if not admitted(obj):
                continue
            cpu = obj["status"]["admission"]["quota"]["cpu"]  # type: ignore[index]
            ready = condition(obj, "Ready")
            if cpu == "2" and ready["status"] != "True":  # type: ignore[index]
                problems.append(f"{name}: resized but not Ready")
            if cpu == "1" and ready["reason"] != "InsufficientCapacity":  # type: ignore[index]
                problems.append(f"{name}: kept at 1 cpu without saying why ({ready['reason']})")  # type: ignore[index]
        return None if problems else [n for n in names if admitted(objs[n])]

    try:
        before = wait_for(resized_outcome, 90, interval=0.5, message="an exact outcome after the resize")
    except AssertionError as error:
        raise AssertionError(f"{error}: {last}") from None
    # (An empty list of admitted tenants is falsy: the wait above already required somebody admitted.)

    # Back to 1 cpu: the resized tenants shrink (a shrink always fits) and exactly 4 fit; nobody
    # admitted before is dropped.
    platform.patch("Plan", "small", {"spec": {"quota": {"cpu": "1"}}}, ns)

    def shrunk() -> list[str] | None:
        objs = {n: platform.tenant_obj(reseller, n) for n in names}
        yes = [n for n in names if admitted(objs[n])]
        ready = all(condition(objs[n], "Ready")["status"] == "True" for n in yes)  # type: ignore[index]
        ok = len(yes) == 4 and ready and not ledger_problems(platform, [reseller],
                                                               plans={(reseller, "small"): ONE_CPU})
        return yes if ok else None

    after = wait_for(shrunk, 90, interval=0.5, message="exactly 4 tenants at 1 cpu after the shrink")
    assert set(before) <= set(after)
    FIGURES["races: plan resized during admission"] += 1


def test_reseller_deactivated_in_the_middle_of_a_rollout(platform: Platform) -> None:
    region, reseller = platform.setup(licenses=20)
    early = [platform.tenant(reseller, region, platform.unique_name("early", max_length=40)) for _ in range(5)]
    platform.patch("Reseller", reseller, {"spec": {"active": False}})
    late = [platform.tenant(reseller, region, platform.unique_name("late", max_length=40)) for _ in range(5)]
    reseller_of = dict.fromkeys(early + late, reseller)
    objs = _settled(platform, reseller_of)
    for name in late:  # created after the deactivation: never admitted
        assert _reason(objs[name]) == "ResellerInactive", name
        assert platform.namespace(f"{reseller}--{name}") is None
    for name in early:  # admitted ones keep running; the rest wait
        obj = objs[name]
        if admitted(obj):
            platform.wait_tenant(reseller, name)
        else:
            assert _reason(obj) == "ResellerInactive", name
    wait_exact_ledger(platform, [reseller], 60)

    platform.patch("Reseller", reseller, {"spec": {"active": True}})
    for name in early + late:
        platform.wait_tenant(reseller, name, timeout=60)
    wait_exact_ledger(platform, [reseller], 60)
    FIGURES["races: reseller deactivated mid-rollout"] += 1
