"""hack/bench works: a tiny run (2 resellers x 3 tenants) end to end, on a control plane of its own,
and with `--clusters 2` (2 x 2 tenants over two member clusters, DESIGN.md §7).

Not a timed assertion (the numbers of a loaded CI machine mean nothing): it checks that the tool
runs every phase and reports what a reader of docs/benchmarks.md relies on - every tenant Ready,
the floor made of the operator's own objects, no writes from an idle or restarted operator.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support.cluster import REPO_ROOT


# It starts a control plane of its own (the bench never shares one), so it has no `control_plane`
# fixture; the marker still keeps it out of `-m "not controlplane"`.
@pytest.mark.controlplane
@pytest.mark.timeout(600)
def test_bench_runs_every_phase_at_a_tiny_size(tmp_path: Path) -> None:
    results_path = tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, str(REPO_ROOT / "hack" / "bench_operator.py"), "--resellers", "2", "--tenants", "3",
         "--idle", "3", "--probes", "1", "--meter", "100", "--json", str(results_path)],
        capture_output=True, text=True, timeout=540, cwd=REPO_ROOT,
    )
    assert run.returncode == 0, f"hack/bench failed:\n{run.stdout[-3000:]}\n{run.stderr[-5000:]}"
    results = json.loads(results_path.read_text())

    assert results["tenants"] == 6
    wave = results["wave"]
    assert 0 < wave["latency_p50_s"] <= wave["latency_p99_s"] <= wave["total_s"] + 1
    # The floor recreates exactly what the operator made for a tenant, namespace included.
    floor = results["floor"]
    assert floor["kinds_per_tenant"]["Namespace"] == 1
    assert floor["objects"] == 6 * sum(floor["kinds_per_tenant"].values())
    assert results["ratio_operator_to_floor"] > 0
    # The operator's writes are counted from the audit log: the wave made children and statuses...
    assert wave["writes_per_tenant"].get("create namespaces") == 1  # absent from the cache: created, not applied
    assert wave["writes_per_tenant"].get("patch tenants/status", 0) >= 1
    # ...and an idle or restarted operator writes nothing.
    assert results["idle"]["writes"] == {}
    assert results["restart"]["writes"] == {}
    assert results["restart"]["steady_s"] is not None
    assert len(results["single_tenant_s"]) == 1
    assert results["peak_rss_mib"] > 0
    assert [m["tenants"] for m in results["meter"]] == [100]
    assert "| ratio operator / floor |" in run.stdout


@pytest.fixture(scope="module")
def clusters_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """`hack/bench --clusters 2 --resellers 2 --tenants 2`, run once for the tests below: a control
    plane and two member control planes of its own, one tenant region on each member."""
    results_path = tmp_path_factory.mktemp("bench-clusters") / "results.json"
    run = subprocess.run(
        [sys.executable, str(REPO_ROOT / "hack" / "bench_operator.py"), "--clusters", "2", "--resellers", "2",
         "--tenants", "2", "--idle", "3", "--probes", "2", "--meter", "", "--json", str(results_path)],
        capture_output=True, text=True, timeout=540, cwd=REPO_ROOT,
    )
    assert run.returncode == 0, f"hack/bench --clusters 2 failed:\n{run.stdout[-3000:]}\n{run.stderr[-5000:]}"
    return json.loads(results_path.read_text()), run.stdout


@pytest.mark.controlplane
@pytest.mark.timeout(600)
def test_bench_spreads_tenants_over_member_clusters(clusters_run: tuple[dict[str, Any], str]) -> None:
    results, stdout = clusters_run
    assert results["tenants"] == 4 and results["member_clusters"] == 2
    # Reseller r sells in region r mod 2: two tenants per member, each Ready, timed per member.
    members = results["clusters"]
    assert sorted(members) == ["member-1", "member-2"]
    assert [members[m]["region"] for m in ("member-1", "member-2")] == ["bench-1", "bench-2"]
    for figures in members.values():
        assert figures["tenants"] == 2
        assert 0 < figures["latency_p50_s"] <= figures["latency_p99_s"] <= figures["wave_total_s"] + 1
        assert figures["floor_s"] > 0
    # Each tenant's objects are written in its member, the Tenant's status in the control cluster: the
    # namespace once per tenant, in the member only.
    writes = results["wave"]["writes_per_tenant_by_cluster"]
    assert writes["control"].get("create namespaces", 0) == writes["control"].get("patch namespaces", 0) == 0
    assert writes["member-1"].get("create namespaces") == writes["member-2"].get("create namespaces") == 0.5
    assert writes["control"].get("patch tenants/status", 0) >= 1
    assert not any(k.startswith(("patch tenants", "create events")) for m in ("member-1", "member-2")
                   for k in writes[m])
    assert results["wave"]["writes_per_tenant"]["create namespaces"] == 1
    # The floor read the same objects back from each member and made them there, one client each.
    floor = results["floor"]
    assert floor["kinds_per_tenant"]["Namespace"] == 1
    assert floor["objects"] == 4 * sum(floor["kinds_per_tenant"].values())
    assert {m: floor["clusters"][m]["tenants"] for m in ("member-1", "member-2")} == {"member-1": 2, "member-2": 2}
    assert sum(f["workers"] for f in floor["clusters"].values()) == results["workers"]
    # An idle operator writes in no cluster; every member's API server and etcd are counted.
    assert results["idle"]["writes_by_cluster"] == {"control": {}, "member-1": {}, "member-2": {}}
    assert {"member-1 apiserver", "member-2 etcd"} <= results["wave"]["cpu_seconds"].keys()
    assert results["restart"]["steady_s"] is not None
    assert len(results["single_tenant_s"]) == 2
    assert "| member-2 | bench-2 | 2 |" in stdout and "| ratio operator / floor |" in stdout


@pytest.mark.controlplane
@pytest.mark.timeout(600)
def test_bench_restart_over_member_clusters_writes_nothing(clusters_run: tuple[dict[str, Any], str]) -> None:
    results, _ = clusters_run
    assert results["restart"]["writes_by_cluster"] == {"control": {}, "member-1": {}, "member-2": {}}
