#!/usr/bin/env python3
"""The metering part of `make demo`: run a Region's meter with short windows, then print a statement.

    KUBECONFIG=.dev/kubeconfig .venv/bin/python hack/demo_billing.py --dir .dev

Expects `examples/` applied and the operator running (tenant namespaces exist). It creates a Pending
pod with resource requests in each tenant namespace of the region (no scheduler: the pod stays
Pending, the quota counts it), runs `tenantry meter --region R --window 10s` until a few windows
have closed, stops it, and renders `tenantry bill` for today: the HTML and CSV paths are printed
with the CSV's totals and margin.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TENANTRY = [sys.executable, "-m", "tenantry"]


def create_pending_pods(region: str) -> list[str]:
    from kubernetes import client, config

    config.load_kube_config()
    core = client.CoreV1Api()
    namespaces = [ns.metadata.name for ns in core.list_namespace(
        label_selector=f"app.kubernetes.io/managed-by=tenantry,tenantry.dev/region={region}").items]
    made = []
    for namespace in namespaces:
        pod = client.V1Pod(metadata=client.V1ObjectMeta(name="demo-web"), spec=client.V1PodSpec(
            automount_service_account_token=False, containers=[client.V1Container(
                name="web", image="registry.invalid/demo:never-pulled",
                resources=client.V1ResourceRequirements(requests={"cpu": "250m", "memory": "256Mi"},
                                                        limits={"cpu": "250m", "memory": "256Mi"}))]))
        deadline = time.monotonic() + 30
        while True:
            try:
                core.create_namespaced_pod(namespace, pod)
                made.append(namespace)
                break
            except client.ApiException as error:
                if error.status == 409:
                    made.append(namespace)
                    break
                if time.monotonic() > deadline or error.status not in (403, 404, 500):
                    print(f"  (no demo pod in {namespace}: {error.reason})")
                    break
                time.sleep(1)  # the namespace's default ServiceAccount or quota status is on its way
    return made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default=".dev", help="where the records, spool and statements go")
    parser.add_argument("--region", default="eu-west")
    parser.add_argument("--window", default="10s")
    parser.add_argument("--windows", type=int, default=2, help="closed windows to wait for")
    args = parser.parse_args()
    base = Path(args.dir).resolve()
    records = base / "billing" / "records.jsonl"
    spool = base / "meter" / args.region
    out = base / "statements"
    records.parent.mkdir(parents=True, exist_ok=True)

    print(f"Metering region {args.region} with {args.window} windows ...")
    pods = create_pending_pods(args.region)
    print(f"  Pending demo pods (250m cpu, 256Mi) in: {', '.join(pods) or 'none'}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(base / "meter.log", "ab")  # noqa: SIM115 - the child holds it
    meter = subprocess.Popen([*TENANTRY, "meter", "--region", args.region, "--sink", f"file:{records}",
                              "--interval", "1s", "--window", args.window, "--port", str(port),
                              "--bind-address", "127.0.0.1", "--spool", str(spool)],
                             stdout=log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
    log.close()
    try:
        def windows() -> set[str]:
            if not records.exists():
                return set()
            return {json.loads(line)["data"]["windowStart"] for line in records.read_text().splitlines() if line}

        before = windows()  # a previous run's records
        deadline = time.monotonic() + 180
        while len(windows() - before) < args.windows:
            if meter.poll() is not None:
                print((base / "meter.log").read_text()[-3000:])
                return 1
            if time.monotonic() > deadline:
                print("  the meter closed no window within 3 minutes; see", base / "meter.log")
                return 1
            time.sleep(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            lines = [line for line in response.read().decode().splitlines()
                     if line.startswith(("tenantry_tenant_resource_used", "tenantry_charge_total"))
                     and ('resource="cpu"' in line or "charge" in line)]
        print("  Metrics (excerpt):")
        for line in lines[:8]:
            print("   ", line)
    finally:
        meter.send_signal(signal.SIGTERM)
        meter.wait(20)

    today = datetime.datetime.now(datetime.UTC).date()
    subprocess.run([*TENANTRY, "bill", str(records), "--from", today.isoformat(),
                    "--to", (today + datetime.timedelta(days=1)).isoformat(), "--out", str(out)],
                   check=True, cwd=REPO, env={**os.environ})
    import csv

    for csv_path in sorted(out.glob(f"*-{today.isoformat()}-*.csv")):
        print(f"\nStatement {csv_path.with_suffix('.html')}")
        with open(csv_path, newline="") as f:
            for row in csv.DictReader(f):
                if row["section"] in ("retail", "wholesale"):
                    print(f"    {row['section']:<10} {row['tenant']:<14} {row['meter']:<8} {row['quantity']:>12} "
                          f"{row['unit']:<14} {row['amount']:>10} {row['currency']}")
                elif row["section"] != "daily-wholesale":
                    print(f"    {row['section']:<40} {row['amount']:>21} {row['currency']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
