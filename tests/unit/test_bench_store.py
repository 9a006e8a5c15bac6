"""hack/bench_store.py (issue 15): the measurement of what the operator keeps per tenant runs, and the Store
keeps a tenant within its budget."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from support.hack_scripts import REPO

# What the Store holds of one tenant (its Tenant and ten children, and their share of the indexes), by
# structure; 40 kB before the Store kept objects compact and the children as text (controller/compact.py).
STORE_BUDGET = 25_000


def test_the_store_keeps_a_tenant_within_its_budget(tmp_path: Path) -> None:
    out = tmp_path / "bench_store.json"
    env = {**os.environ, "PYTHONPATH": str(REPO / "operator")}
    subprocess.run([sys.executable, str(REPO / "hack" / "bench_store.py"), "--tenants", "20", "--per-reseller", "10",
                    "--json", str(out)], check=True, env=env, capture_output=True, timeout=300)
    results = json.loads(out.read_text())
    kinds = ["Tenant", "Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy", "RoleBinding", "Ingress",
             "ConfigMap", "Secret"]
    assert list(results["steps"]) == ["Reseller, Plan", *kinds, "certificate expiry series"]
    assert all(results["structures"][f"Store: {kind}"] > 0 for kind in kinds)
    store = sum(size for name, size in results["structures"].items() if name.startswith("Store: "))
    assert store < STORE_BUDGET, results["structures"]
    assert results["total"] > store  # the AdmissionBook, the parsed specs, the series: each tenant's too
    assert results["rss"] > 0 and results["cpu"]["put"] > 0 and results["cpu"]["get"] > 0
