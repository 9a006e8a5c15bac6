"""hack/bench works: a tiny run (2 resellers x 3 tenants) end to end, on a control plane of its own.

Not a timed assertion (the numbers of a loaded CI machine mean nothing): it checks that the tool
runs every phase and reports what a reader of docs/benchmarks.md relies on - every tenant Ready,
the floor made of the operator's own objects, no writes from an idle or restarted operator.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    assert wave["writes_per_tenant"].get("patch namespaces") == 1
    assert wave["writes_per_tenant"].get("patch tenants/status", 0) >= 1
    # ...and an idle or restarted operator writes nothing.
    assert results["idle"]["writes"] == {}
    assert results["restart"]["writes"] == {}
    assert results["restart"]["steady_s"] is not None
    assert len(results["single_tenant_s"]) == 1
    assert results["peak_rss_mib"] > 0
    assert [m["tenants"] for m in results["meter"]] == [100]
    assert "| ratio operator / floor |" in run.stdout
