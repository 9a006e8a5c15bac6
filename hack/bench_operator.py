#!/usr/bin/env python3
"""The operator at scale (issue 8): R resellers x T tenants on a fresh private control plane.

    hack/bench                              # 20 x 50 = 1,000 tenants, results as a Markdown table
    hack/bench --resellers 2 --tenants 3    # a smoke run (what tests/integration/test_bench_smoke.py does)
    hack/bench --json results.json --profile wave.svg

What one run does, in order, on one control plane it starts in a temporary directory (and stops by
pid at the end):
1. runs the real operator (`tenantry run`, a subprocess) under its own ServiceAccount and the
   chart's ClusterRole (the pieces of tests/support/operator.py), with `workers` reconcilers;
2. creates one Region, R Resellers (licences and allotment with headroom, so that admission's
   contention rule never makes the wave wait) and one Plan per reseller;
3. the wave: creates R x T Tenants at once, and watches them: per-tenant latency is from the moment
   its create was sent to the moment the watch shows Ready=True; the total is first create to last
   Ready;
4. quiet: waits until the operator stops writing, then counts its writes for `--idle` seconds
   (the audit log, by the operator's user) - a resync falls inside that window;
5. a single tenant on the idle operator (`--probes` of them, one after another);
6. restart: stops the operator and starts it again over everything that exists, and measures the
   time until it has reconciled every object and its queue is empty, and the writes it made;
7. the floor: the very same child objects the operator made (read back from the cluster, renamed
   into fresh namespaces) created directly with one pooled async client (tenantry.kube, aiohttp) at
   the operator's worker count, the namespace first and the rest of a tenant's children at once -
   what the operator would take if its own work cost nothing;
8. the meter: hack/bench_meter.py at 1,000 and 10,000 tenants (scrape time, no cluster needed).

With `--clusters N` (DESIGN.md §7), N member control planes run beside the control one, each set up
as docs/multi-cluster.md tells a platform (tests/support/members.py `install_member`), and there are N
Regions, one per member (`spec.cluster`); reseller r sells in region r mod N, so every Reseller, Plan
and Tenant has the same spec as without members and the tenants are spread evenly when N divides R.
Writes are counted in every cluster's audit log (the operator's user of each), CPU per component of
every cluster, and the floor reads each tenant's objects from its member and creates the renamed
copies in that member, with one client per member, the operator's workers split between them.

API requests per tenant come from the audit log (writes, by verb and resource) and from the
operator's own counter `tenantry_operator_api_requests_total` (reads too). Peak RSS is the
operator's VmHWM from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the operator-as-a-subprocess pieces live with the tests

from kubernetes import client as kubernetes_client  # noqa: E402

from support import cluster  # noqa: E402
from support.members import MEMBER_OPERATOR_USER, MemberCluster, start_members, stop_members  # noqa: E402
from support.operator import OPERATOR_USER, OperatorProcess, operator_kubeconfig  # noqa: E402
from tenantry.kube import ApiError, Credentials, KubeClient  # noqa: E402
from tenantry.webhook.configuration import CONFIGURATION_NAME as WEBHOOK_CONFIGURATION  # noqa: E402

GROUP_VERSION = "tenantry.dev/v1alpha1"
REGION = "bench"
PLAN = "bench"
PLAN_QUOTA = {"cpu": "100m", "memory": "128Mi", "storage": "1Gi", "pods": "5"}
# Admission waits up to 2 s for a tenant that takes one of the last `contention_margin` (5)
# licences or plan-sized slices of capacity; this much headroom keeps every bench tenant clear of it.
HEADROOM = 20
CHILD_KINDS = ("Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy", "RoleBinding", "Ingress",
               "ConfigMap", "Secret")
MANAGED = "app.kubernetes.io/managed-by=tenantry"


@dataclass
class Cluster:
    """One cluster the bench measures: the control cluster, or a member with the Region that lives there."""

    name: str  # "control", "member-1", ...
    cp: Any  # hack/controlplane.py ControlPlane
    user: str  # the operator's user in this cluster, as its audit log names it
    client: KubeClient  # admin
    region: str = ""  # the Region whose tenants are made here ("" for the control cluster with members)

    @property
    def audit_log(self) -> Path:
        return Path(self.cp.audit_log)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


# -- what we read from the operator and the apiserver ------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmHWM and VmRSS of a process, in KiB."""
    result = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            result[key] = int(value.split()[0])
    return result


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far."""
    if not pid:
        return float("nan")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_of(clusters: list[Cluster], process: OperatorProcess) -> dict[str, float]:
    """CPU seconds so far of the operator and of each control-plane component, a member's prefixed
    with its name ("member-1 apiserver")."""
    result = {"operator": cpu_seconds(process.pid)}
    for c in clusters:
        prefix = "" if c.name == "control" else f"{c.name} "
        for component in ("etcd", "apiserver", "controller-manager"):
            result[prefix + component] = cpu_seconds(c.cp.pid(component))
    return result


QUEUE_DEPTH, RECONCILES = "tenantry_operator_queue_depth", "tenantry_operator_reconciles_total"


def scrape(process: OperatorProcess, *names: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The operator's /metrics as {(name, labels): value}; with `names`, only those families: the bench
    polls while it measures, and must not itself load the operator (a series per tenant)."""
    samples = {}
    for line in process.metrics(*names).splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        if not match:
            continue
        labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', match.group(3) or "")))
        samples[(match.group(1), labels)] = float(match.group(4))
    return samples


def metric_by(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, label: str
              ) -> dict[str, float]:
    """The samples of one metric summed by one label's value (e.g. reconciles by kind, whatever the result)."""
    result: dict[str, float] = {}
    for (n, labels), value in samples.items():
        if n == name:
            key = dict(labels).get(label, "")
            result[key] = result.get(key, 0.0) + value
    return result


def _mean_delta(before: dict[tuple[str, tuple[tuple[str, str], ...]], float],
                after: dict[tuple[str, tuple[tuple[str, str], ...]], float], histogram: str, kind: str) -> float:
    """Mean of a histogram's observations between two scrapes, for one kind."""
    total = metric_by(after, f"{histogram}_sum", "kind").get(kind, 0) - metric_by(before, f"{histogram}_sum", "kind"
                                                                                 ).get(kind, 0)
    count = metric_by(after, f"{histogram}_count", "kind").get(kind, 0) - metric_by(before, f"{histogram}_count",
                                                                                   "kind").get(kind, 0)
    return total / count if count else float("nan")


def operator_writes(audit_log: Path, since: int, until: int | None = None, user: str = OPERATOR_USER
                    ) -> Counter[str]:
    """The operator's writes (as `user`) in the audit log between two offsets, as 'verb resource[/sub]' -> count."""
    counts: Counter[str] = Counter()
    with open(audit_log, "rb") as f:
        f.seek(since)
        data = f.read() if until is None else f.read(max(0, until - since))
    for line in data.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line being written right now
        if event.get("stage") != "ResponseComplete" or event.get("user", {}).get("username") != user:
            continue
        ref = event.get("objectRef", {})
        if cluster.is_lease(ref):
            continue  # leader election: the leader renews its Lease every 2 s, idle or not
        resource = ref.get("resource", "?") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        counts[f"{event.get('verb')} {resource}"] += 1
    return counts


def size(path: Path) -> int:
    return cluster.audit_offset(path)


def offsets(clusters: list[Cluster]) -> dict[str, int]:
    """Where each cluster's audit log ends now."""
    return {c.name: size(c.audit_log) for c in clusters}


def writes_since(clusters: list[Cluster], since: dict[str, int]) -> dict[str, Counter[str]]:
    """The operator's writes in each cluster since `offsets`."""
    return {c.name: operator_writes(c.audit_log, since[c.name], user=c.user) for c in clusters}


def summed(by_cluster: dict[str, Counter[str]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for counts in by_cluster.values():
        total.update(counts)
    return total


# -- the platform --------------------------------------------------------------------------------


def reseller_name(index: int) -> str:
    return f"bench{index:03d}"


def tenant_name(index: int) -> str:
    return f"t{index:05d}"


def region_names(members: int) -> list[str]:
    """The bench's Regions: one of the control cluster, or one per member cluster."""
    return [f"{REGION}-{m}" for m in range(1, members + 1)] if members else [REGION]


def region_of(reseller: int, regions: list[str]) -> str:
    """Reseller r sells in one region, r mod N: its Reseller and Plan look as with one region."""
    return regions[reseller % len(regions)]


def tenant_manifest(reseller: str, name: str, region: str = REGION) -> dict[str, Any]:
    return {"apiVersion": GROUP_VERSION, "kind": "Tenant",
            "metadata": {"name": name, "namespace": f"reseller-{reseller}"},
            "spec": {"displayName": f"Tenant {name}", "email": f"{name}@{reseller}.customers.example",
                     "region": region, "plan": PLAN, "owners": [{"kind": "User", "name": f"owner@{name}.example"}]}}


def scaled(quantity: str, factor: int) -> str:
    match = re.fullmatch(r"(\d+)([A-Za-z]*)", quantity)
    assert match, quantity
    return f"{int(match.group(1)) * factor}{match.group(2)}"


async def create_platform(client: KubeClient, resellers: int, tenants: int, extra: int,
                          members: list[MemberCluster]) -> None:
    """The Regions (one per member, each naming its kubeconfig Secret; or one of the control cluster),
    the Resellers and their Plans; returns once every Region is reachable and every Reseller and Plan Ready."""
    seats = tenants + extra + HEADROOM
    regions = region_names(len(members))
    for index, name in enumerate(regions):
        sellers = sum(1 for r in range(resellers) if region_of(r, regions) == name)
        region: dict[str, Any] = {"apiVersion": GROUP_VERSION, "kind": "Region", "metadata": {"name": name}, "spec": {
            "displayName": "Bench",
            "nodePool": {"nodeSelector": {"pool": name}},
            "ingress": {"className": "nginx", "controllerNamespace": "ingress-nginx"},
            "domainVerification": "None",
            "capacity": {k: scaled(v, seats * max(sellers, 1)) for k, v in PLAN_QUOTA.items()},
            "pricing": {"currency": "USD", "cpu": "0.020", "memory": "0.0025", "storage": "0.00015"}}}
        if members:
            region["spec"]["cluster"] = {"kubeconfigSecretRef": members[index].secret_ref()}
        await client.create(region)
    for name in regions if members else ():
        await wait_until(lambda name=name: condition(client, "Region", name, "ClusterReachable"), 120,
                         f"region {name} to reach its cluster")
    await asyncio.gather(*(client.create({
        "apiVersion": GROUP_VERSION, "kind": "Reseller", "metadata": {"name": reseller_name(r)}, "spec": {
            "companyName": f"Bench {r}", "email": f"billing@{reseller_name(r)}.example", "licenses": seats,
            "admins": [{"kind": "User", "name": f"admin@{reseller_name(r)}.example"}],
            "branding": {"displayName": f"Bench {r} Cloud", "primaryColor": "#0a7cff"},
            "regions": [{"name": region_of(r, regions), "domain": f"{reseller_name(r)}.bench.example",
                         "tls": {"mode": "SelfSigned"},
                         "allotment": {k: scaled(v, seats) for k, v in PLAN_QUOTA.items()}}]}})
        for r in range(resellers)))
    # Plans live in the reseller's control namespace, which the operator makes.
    for r in range(resellers):
        await wait_until(lambda r=r: client.get("Namespace", f"reseller-{reseller_name(r)}"), 120,
                         f"namespace reseller-{reseller_name(r)}")
    await asyncio.gather(*(client.create({
        "apiVersion": GROUP_VERSION, "kind": "Plan",
        "metadata": {"name": PLAN, "namespace": f"reseller-{reseller_name(r)}"},
        "spec": {"displayName": "Bench", "quota": PLAN_QUOTA, "defaults": {"cpu": "50m", "memory": "64Mi"},
                 "pricing": {"currency": "EUR", "monthly": "1.00"}}}) for r in range(resellers)))
    for r in range(resellers):
        await wait_until(lambda r=r: ready(client, "Plan", PLAN, f"reseller-{reseller_name(r)}"), 120,
                         f"plan of {reseller_name(r)}")
        await wait_until(lambda r=r: ready(client, "Reseller", reseller_name(r)), 120, f"reseller {reseller_name(r)}")


async def condition(client: KubeClient, kind: str, name: str, type_: str) -> bool:
    """The object's condition `type_` is True."""
    obj = await client.get(kind, name)
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == type_ and c.get("status") == "True" for c in conditions)


async def ready(client: KubeClient, kind: str, name: str, namespace: str | None = None) -> bool:
    obj = await client.get(kind, name, namespace)
    return obj is not None and is_ready(obj)


def is_ready(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj["metadata"].get("generation"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


async def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


class ReadyWatch:
    """Watches every Tenant; remembers when each was first seen Ready (monotonic clock)."""

    def __init__(self, client: KubeClient):
        self.client = client
        self.ready_at: dict[tuple[str, str], float] = {}
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        _, version = await self.client.list_with_version("Tenant")
        self._task = asyncio.create_task(self._run(version))

    async def _run(self, version: str) -> None:
        while True:
            try:
                async for event_type, obj in self.client.watch("Tenant", resource_version=version):
                    version = obj["metadata"].get("resourceVersion", version)
                    if event_type == "BOOKMARK":
                        continue
                    key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
                    if key not in self.ready_at and is_ready(obj):
                        self.ready_at[key] = time.monotonic()
                        self.changed.set()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # 410, a dropped stream: list again (only tenants not yet seen matter)
                if not (isinstance(error, ApiError) and error.status == 410):
                    log(f"the bench's watch of Tenants failed ({error!r}); listing again")
                await asyncio.sleep(0.2)
                items, version = await self.client.list_with_version("Tenant")
                for obj in items:
                    key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
                    if key not in self.ready_at and is_ready(obj):
                        self.ready_at[key] = time.monotonic()
                self.changed.set()

    async def wait_for(self, keys: set[tuple[str, str]], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not keys <= self.ready_at.keys():
            if self._task is not None and self._task.done():
                self._task.result()  # raises what stopped the watch
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                missing = sorted(keys - self.ready_at.keys())
                raise TimeoutError(f"{len(missing)} tenants not Ready after {timeout:.0f}s, e.g. {missing[:3]}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def create_all(client: KubeClient, manifests: list[dict[str, Any]], concurrency: int, rate: float = 0.0
                     ) -> dict[tuple[str, str], float]:
    """Create the tenants, `concurrency` at a time, at most `rate` per second (0: as fast as the
    apiserver takes them); when each create was sent (monotonic)."""
    sent: dict[tuple[str, str], float] = {}
    pending = iter(enumerate(manifests))
    started = time.monotonic()

    async def creator() -> None:
        for index, manifest in pending:
            if rate > 0:
                await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
            key = (manifest["metadata"]["namespace"], manifest["metadata"]["name"])
            sent[key] = time.monotonic()
            await client.create(manifest)

    await asyncio.gather(*(creator() for _ in range(concurrency)))
    return sent


async def wait_quiet(process: OperatorProcess, clusters: list[Cluster], quiet: float, timeout: float) -> float:
    """Until the operator's queue is empty and it has written nothing in any cluster for `quiet` seconds; how long."""
    started = time.monotonic()
    offset, since = offsets(clusters), time.monotonic()
    while time.monotonic() - started < timeout:
        await asyncio.sleep(0.5)
        depth = metric_by(scrape(process, QUEUE_DEPTH), QUEUE_DEPTH, "")
        now_offset = offsets(clusters)
        wrote = any(operator_writes(c.audit_log, offset[c.name], now_offset[c.name], c.user) for c in clusters)
        if wrote or any(depth.values()):
            offset, since = now_offset, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return time.monotonic() - started
        offset = now_offset
    raise TimeoutError(f"the operator did not go quiet within {timeout:.0f}s")


# -- the floor -----------------------------------------------------------------------------------


_SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation", "selfLink",
                  "finalizers")


def clean(obj: dict[str, Any], namespace: str, floor_namespace: str) -> dict[str, Any]:
    """An object as a client would create it, moved from `namespace` to `floor_namespace`."""
    obj = {k: v for k, v in obj.items() if k != "status"}
    meta = {k: v for k, v in obj["metadata"].items() if k not in _SERVER_FIELDS}
    if meta.get("annotations"):
        meta["annotations"] = {k: v for k, v in meta["annotations"].items()
                               if not k.startswith("kubectl.kubernetes.io/")}
    obj["metadata"] = meta
    if obj["kind"] == "Namespace":
        obj.pop("spec", None)  # finalizers: [kubernetes], set by the server
    text = json.dumps(obj).replace(f'"{namespace}"', f'"{floor_namespace}"')
    return json.loads(text)


async def read_children(client: KubeClient, namespaces: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Every object the operator made in each tenant namespace (and the namespace itself)."""
    wanted = set(namespaces)
    children: dict[str, list[dict[str, Any]]] = {ns: [] for ns in namespaces}
    for kind in CHILD_KINDS:
        for obj in await client.list(kind, label_selector=MANAGED):
            ns = obj["metadata"]["name"] if kind == "Namespace" else obj["metadata"].get("namespace")
            if ns in wanted:
                children[ns].append(obj)
    return children


def shares(total: int, parts: int) -> list[int]:
    """`total` workers split as evenly as can be between `parts` clients, each at least one."""
    return [max(1, total // parts + (1 if i < total % parts else 0)) for i in range(parts)]


async def run_floor(targets: dict[str, tuple[KubeClient, dict[str, list[dict[str, Any]]]]], workers: int,
                    apply: bool = False, by_cluster: bool = False) -> dict[str, Any]:
    """Create each tenant's objects (the namespace first, then the rest at once), `workers` tenants at
    a time: with POST, or with server-side apply like the operator (`apply`, to tell the cost of SSA).
    `targets`: per cluster, its admin client and the objects of its tenants; the clusters' clients run
    side by side from the same start, the workers split between them; with `by_cluster` the result
    also has each one's figures under `clusters`."""
    prefix = "ssa" if apply else "floor"

    async def one(client: KubeClient, children: dict[str, list[dict[str, Any]]], count: int
                  ) -> tuple[list[float], list[float], int]:
        send = client.apply if apply else client.create
        plans = []
        for ns, objects in children.items():
            floor_ns = f"{prefix}-{ns}"[:63]
            manifests = [clean(o, ns, floor_ns) for o in objects]
            plans.append(([m for m in manifests if m["kind"] == "Namespace"],
                          [m for m in manifests if m["kind"] != "Namespace"]))
        durations: list[float] = []
        done_at: list[float] = []
        todo = iter(plans)

        async def worker() -> None:
            for namespaces, rest in todo:
                began = time.monotonic()
                for manifest in namespaces:
                    await send(manifest)
                await asyncio.gather(*(send(m) for m in rest))
                durations.append(time.monotonic() - began)
                done_at.append(time.monotonic() - started)

        await asyncio.gather(*(worker() for _ in range(count)))
        return durations, done_at, sum(len(a) + len(b) for a, b in plans)

    for client, _ in targets.values():
        client.requests.clear()
    started = time.monotonic()
    outcomes = await asyncio.gather(*(one(client, children, count) for (client, children), count
                                      in zip(targets.values(), shares(workers, len(targets)), strict=True)))
    total = time.monotonic() - started

    def figures(durations: list[float], done_at: list[float], objects: int, tenants: int) -> dict[str, Any]:
        return {"objects": objects, "objects_per_tenant": objects / max(tenants, 1),
                "per_tenant_p50_s": percentile(durations, 50), "per_tenant_p99_s": percentile(durations, 99),
                # Every tenant "arrives" at the start: its latency is when its last object was created.
                "burst_latency_p50_s": percentile(done_at, 50), "burst_latency_p99_s": percentile(done_at, 99)}

    requests: Counter[str] = Counter()
    for client, _ in targets.values():
        requests.update(client.requests)
    result = {"seconds": total, **figures([d for o in outcomes for d in o[0]], [d for o in outcomes for d in o[1]],
                                          sum(o[2] for o in outcomes), sum(len(c) for _, c in targets.values())),
              "requests": dict(requests)}
    if by_cluster:
        result["clusters"] = {
            name: {"seconds": max(done_at, default=0.0), "workers": count, "tenants": len(children),
                   **figures(durations, done_at, objects, len(children))}
            for (name, (_, children)), (durations, done_at, objects), count
            in zip(targets.items(), outcomes, shares(workers, len(targets)), strict=True)}
    return result


# -- the run -------------------------------------------------------------------------------------


def operator_config(workers: int | None, resync: float) -> dict[str, Any]:
    config: dict[str, Any] = {"resyncSeconds": resync}
    if workers:
        config["workers"] = workers
    return config


def py_spy(pid: int, output: Path, seconds: float | None = None) -> subprocess.Popen[bytes] | None:
    exe = Path(sys.executable).with_name("py-spy")
    if not exe.exists():
        log("--profile needs py-spy in the venv (.venv/bin/pip install py-spy); not profiling")
        return None
    args = [str(exe), "record", "--pid", str(pid), "--output", str(output), "--rate", "100", "--nonblocking"]
    if output.suffix == ".txt":
        args += ["--format", "raw"]
    if seconds:
        args += ["--duration", str(int(seconds))]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def per_tenant(counts: Counter[str], n: int) -> dict[str, float]:
    return {k: v / n for k, v in sorted(counts.items())}


async def bench(args: argparse.Namespace, cp: Any, work: Path, members: list[MemberCluster]) -> dict[str, Any]:
    api = cluster.new_api_client(cp.kubeconfig)
    own_kubeconfig = operator_kubeconfig(api, str(cp.kubeconfig), work)
    api.close()
    from tenantry.settings import Settings

    config = operator_config(args.workers, args.resync)
    workers = args.workers or Settings().workers
    process = OperatorProcess(own_kubeconfig, work, config)
    results: dict[str, Any] = {"resellers": args.resellers, "tenants_per_reseller": args.tenants,
                               "tenants": args.resellers * args.tenants, "workers": workers,
                               "resync_seconds": args.resync, "rate": args.rate}
    if members:
        results["member_clusters"] = len(members)

    def admin_client(plane: Any) -> KubeClient:
        credentials = Credentials(server=plane.server, token=plane.admin_token, ca_path=str(plane.ca_file))
        return KubeClient(credentials, max_connections=max(64, workers * 4), timeout=120)

    regions = region_names(len(members))
    client = admin_client(cp)
    control = Cluster("control", cp, OPERATOR_USER, client, "" if members else REGION)
    clusters = [control] + [Cluster(m.label, m.cp, MEMBER_OPERATOR_USER, admin_client(m.cp), region)
                            for m, region in zip(members, regions, strict=False)]
    # The clusters where tenants live: the control cluster alone, or each member.
    homes = [c for c in clusters if c.region]
    try:
        process.start()
        log(f"operator pid {process.pid}, {workers} workers; creating {args.resellers} resellers"
            + (f" over {len(members)} member clusters" if members else ""))
        await create_platform(client, args.resellers, args.tenants, args.probes, members)
        await wait_quiet(process, clusters, 2.0, 120)

        # -- the wave
        manifests = [tenant_manifest(reseller_name(r), tenant_name(t), region_of(r, regions))
                     for t in range(args.tenants) for r in range(args.resellers)]
        keys = {(m["metadata"]["namespace"], m["metadata"]["name"]) for m in manifests}
        region_by_key = {(m["metadata"]["namespace"], m["metadata"]["name"]): m["spec"]["region"] for m in manifests}
        watch = ReadyWatch(client)
        await watch.start()
        before = scrape(process)
        offset = offsets(clusters)
        cpu_before = cpu_of(clusters, process)
        profiler = py_spy(process.pid, Path(args.profile)) if args.profile and process.pid else None
        log(f"wave: creating {len(manifests)} tenants, {args.create_concurrency} at a time")
        started = time.monotonic()
        depths: list[float] = []

        async def sample_queue() -> None:
            while True:
                with contextlib.suppress(OSError):
                    depths.append(sum(metric_by(scrape(process, QUEUE_DEPTH), QUEUE_DEPTH, "").values()))
                await asyncio.sleep(1.0)

        sampler = asyncio.create_task(sample_queue())
        sent = await create_all(client, manifests, args.create_concurrency, args.rate)
        created = time.monotonic() - started
        await watch.wait_for(keys, args.timeout)
        sampler.cancel()
        queue_max = max(depths, default=0.0)
        total = max(watch.ready_at[k] for k in keys) - started
        latencies = [watch.ready_at[k] - sent[k] for k in keys]
        cpu = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_of(clusters, process).items()}
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            profiler.wait(30)
        log(f"wave: all Ready in {total:.1f}s; waiting for the operator to go quiet")
        settle = await wait_quiet(process, clusters, 3.0, 300)
        wave_by_cluster = writes_since(clusters, offset)
        wave_writes = summed(wave_by_cluster)
        after = scrape(process)
        requests_before = metric_by(before, "tenantry_operator_api_requests_total", "verb")
        requests = {verb: count - requests_before.get(verb, 0)
                    for verb, count in metric_by(after, "tenantry_operator_api_requests_total", "verb").items()}
        n = len(keys)
        reconciles_before = metric_by(before, "tenantry_operator_reconciles_total", "kind")
        reconciles = {kind: count - reconciles_before.get(kind, 0)
                      for kind, count in metric_by(after, "tenantry_operator_reconciles_total", "kind").items()}
        results["wave"] = {
            "created_s": created, "total_s": total, "settled_after_ready_s": settle,
            "latency_p50_s": percentile(latencies, 50), "latency_p99_s": percentile(latencies, 99),
            "latency_max_s": max(latencies),
            "writes_per_tenant": per_tenant(wave_writes, n),
            "writes_per_tenant_total": sum(wave_writes.values()) / n,
            "client_requests_per_tenant": {k: v / n for k, v in sorted(requests.items())},
            "cpu_seconds": cpu,
            "reconciles": reconciles,
            "tenant_reconcile_mean_s": _mean_delta(before, after, "tenantry_operator_reconcile_duration_seconds",
                                                   "Tenant"),
            "queue_depth_max": queue_max,
        }
        if members:
            # Per cluster: its writes per tenant of the whole wave (the columns add up to the total), and
            # for each member the wave of its own tenants (first create of all to its last Ready).
            results["wave"]["writes_per_tenant_by_cluster"] = {
                c.name: per_tenant(wave_by_cluster[c.name], n) for c in clusters}
            results["clusters"] = {}
            for c in homes:
                own = [k for k in keys if region_by_key[k] == c.region]
                own_latencies = [watch.ready_at[k] - sent[k] for k in own]
                results["clusters"][c.name] = {
                    "region": c.region, "server": c.cp.server, "tenants": len(own),
                    "wave_total_s": max(watch.ready_at[k] for k in own) - started,
                    "latency_p50_s": percentile(own_latencies, 50), "latency_p99_s": percentile(own_latencies, 99),
                    "latency_max_s": max(own_latencies),
                    "writes_per_own_tenant": per_tenant(wave_by_cluster[c.name], len(own)),
                    "writes_per_own_tenant_total": sum(wave_by_cluster[c.name].values()) / len(own)}
        results["rss_after_wave_mib"] = proc_status(process.pid)["VmRSS"] / 1024 if process.pid else None

        # -- idle
        log(f"idle: counting the operator's writes for {args.idle:.0f}s"
            + (f" in all {len(clusters)} clusters" if members else ""))
        offset = offsets(clusters)
        await asyncio.sleep(args.idle)
        idle_by_cluster = writes_since(clusters, offset)
        idle = summed(idle_by_cluster)
        results["idle"] = {"seconds": args.idle, "writes": dict(idle),
                           "writes_per_minute": sum(idle.values()) * 60 / args.idle}
        if members:
            results["idle"]["writes_by_cluster"] = {name: dict(w) for name, w in idle_by_cluster.items()}

        # -- single tenants on the idle operator (with members, one per member in turn)
        probe_latencies = []
        for index in range(args.probes):
            reseller = index % max(1, min(len(members), args.resellers))
            manifest = tenant_manifest(reseller_name(reseller), f"probe{index}", region_of(reseller, regions))
            key = (manifest["metadata"]["namespace"], manifest["metadata"]["name"])
            began = time.monotonic()
            await client.create(manifest)
            await watch.wait_for({key}, 60)
            probe_latencies.append(watch.ready_at[key] - began)
            await wait_quiet(process, clusters, 1.5, 60)
        results["single_tenant_s"] = probe_latencies
        await watch.stop()
        if process.pid:
            status = proc_status(process.pid)
            results["peak_rss_mib"] = status["VmHWM"] / 1024
            results["rss_mib"] = status["VmRSS"] / 1024

        # -- restart over everything that exists
        objects = (await client.list("Tenant"), await client.list("Reseller"), await client.list("Plan"),
                   await client.list("Region"))
        counts = {"Tenant": len(objects[0]), "Reseller": len(objects[1]), "Plan": len(objects[2]),
                  "Region": len(objects[3])}
        log(f"restart: stopping the operator and starting it over {counts['Tenant']} tenants")
        process.stop()
        offset = offsets(clusters)
        began = time.monotonic()
        process.start(timeout=120)
        healthy = time.monotonic() - began
        steady = None
        deadline = began + max(300.0, args.timeout)  # restart to steady grows with the tenants (10,000: minutes)
        while time.monotonic() < deadline:
            samples = scrape(process, RECONCILES, QUEUE_DEPTH)
            done = metric_by(samples, RECONCILES, "kind")
            depth = sum(metric_by(samples, QUEUE_DEPTH, "").values())
            if all(done.get(kind, 0) >= count for kind, count in counts.items()) and depth == 0:
                steady = time.monotonic() - began
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(3)  # anything written just after "steady" counts too
        restart_by_cluster = writes_since(clusters, offset)
        restart_writes = summed(restart_by_cluster)
        results["restart"] = {"tenants": counts["Tenant"], "healthy_s": healthy, "steady_s": steady,
                              "writes": dict(restart_writes),
                              "peak_rss_mib": proc_status(process.pid)["VmHWM"] / 1024 if process.pid else None}
        if members:
            results["restart"]["writes_by_cluster"] = {name: dict(w) for name, w in restart_by_cluster.items()}
        process.stop()

        # -- the floor, with the operator stopped. Its admission webhook goes too: the floor is the
        # API server alone, and a registration whose server is gone would refuse (fail closed).
        # Each tenant's objects are read back from the cluster they are in and copied there.
        for registration in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
            await client.delete(registration, WEBHOOK_CONFIGURATION)
        targets = {}
        for c in homes:
            namespaces = [f"{reseller_name(r)}--{tenant_name(t)}" for t in range(args.tenants)
                          for r in range(args.resellers) if region_of(r, regions) == c.region]
            targets[c.name] = (c.client, await read_children(c.client, namespaces))
        first = next(iter(targets.values()))[1]
        kinds = Counter(o["kind"] for o in next(iter(first.values())))
        log(f"floor: {sum(len(v) for _, ch in targets.values() for v in ch.values())} objects ({dict(kinds)} per "
            f"tenant), {workers} tenants at a time" + (f" over {len(targets)} clients" if members else ""))
        cpu_before = cpu_of(clusters, process)
        floor = await run_floor(targets, workers, by_cluster=bool(members))
        floor["cpu_seconds"] = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_of(clusters, process).items()
                                if k != "operator"}
        floor["kinds_per_tenant"] = dict(kinds)
        results["floor"] = floor
        if args.floor_apply:
            log("floor with server-side apply instead of create")
            cpu_before = cpu_of(clusters, process)
            ssa = await run_floor(targets, workers, apply=True, by_cluster=bool(members))
            ssa["cpu_seconds"] = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_of(clusters, process).items()
                                  if k != "operator"}
            results["floor_apply"] = ssa
        results["ratio_operator_to_floor"] = results["wave"]["total_s"] / floor["seconds"]
        for name, figures in results.get("clusters", {}).items():
            figures["floor_s"] = floor["clusters"][name]["seconds"]
            figures["ratio_operator_to_floor"] = figures["wave_total_s"] / figures["floor_s"]
    finally:
        process.stop()
        for c in clusters:
            await c.client.close()
        results["operator_log"] = str(process.log_path)
    return results


def meter_bench(sizes: list[int]) -> list[dict[str, Any]]:
    out = []
    for count in sizes:
        log(f"meter: hack/bench_meter.py at {count} tenants")
        text = subprocess.run([sys.executable, str(REPO / "hack" / "bench_meter.py"), "--one", str(count)],
                              check=True, capture_output=True, text=True).stdout
        out.append(json.loads(text))
    return out


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), 0)
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "memory_gib": round(mem / 2**20, 1),
            "load_before": os.getloadavg(), "python": platform.python_version(),
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")}


def fmt(value: float | None, unit: str = "s", digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f} {unit}".strip()


def report(r: dict[str, Any]) -> str:
    wave, floor, idle, restart = r["wave"], r["floor"], r["idle"], r["restart"]
    probes = r["single_tenant_s"]
    # Issue 15's targets: the ratio <= 1.5 at 1,000 tenants and <= 2.0 at 10,000; per tenant, the API server's
    # CPU <= 1.5x the floor's and <= 11 writes; RSS <= 500 MB; restart <= 60 s with no write.
    limit = 2.0 if r["tenants"] >= 10000 else 1.5
    api_wave = sum(v for k, v in wave["cpu_seconds"].items() if k.endswith("apiserver"))
    api_floor = sum(v for k, v in floor["cpu_seconds"].items() if k.endswith("apiserver"))
    api_ratio = api_wave / api_floor if api_floor else float("nan")
    rows = [
        ("tenants Ready (wave total)", fmt(wave["total_s"]), f"≤ {limit} x floor = {limit * floor['seconds']:.2f} s",
         wave["total_s"] <= limit * floor["seconds"]),
        ("floor: same objects, one client", fmt(floor["seconds"]), "", None),
        ("ratio operator / floor", f"{r['ratio_operator_to_floor']:.2f}", f"≤ {limit}",
         r["ratio_operator_to_floor"] <= limit),
        ("per-tenant latency p50 (wave)", fmt(wave["latency_p50_s"]), "", None),
        ("per-tenant latency p99 (wave)", fmt(wave["latency_p99_s"]), "", None),
        ("writes per new tenant (audit log)", f"{wave['writes_per_tenant_total']:.2f}", "≤ 11",
         wave["writes_per_tenant_total"] <= 11),
        ("API server CPU, wave / floor", f"{api_wave:.1f} s / {api_floor:.1f} s ({api_ratio:.2f}x)", "≤ 1.5x",
         api_ratio <= 1.5),
        ("floor's per-tenant latency p50 / p99 (all at once)",
         f"{floor['burst_latency_p50_s']:.2f} s / {floor['burst_latency_p99_s']:.2f} s", "", None),
        ("single tenant, idle operator (max)", fmt(max(probes) if probes else None), "< 1 s",
         bool(probes) and max(probes) < 1),
        ("operator peak RSS (VmHWM)", fmt(r.get("peak_rss_mib"), "MiB", 0), "≤ 500 MB",
         (r.get("peak_rss_mib") or 1e9) * 1.048576 <= 500),
        ("writes per minute, idle", f"{idle['writes_per_minute']:.1f}", "0", idle["writes_per_minute"] == 0),
        (f"restart to steady ({restart['tenants']} tenants)", fmt(restart["steady_s"]), "≤ 60 s",
         restart["steady_s"] is not None and restart["steady_s"] <= 60),
        ("writes during restart", str(sum(restart["writes"].values())), "0", not restart["writes"]),
    ]
    for m in r.get("meter", []):
        rows.append((f"exporter scrape, {m['tenants']:,} tenants", fmt(m["scrape_median_s"] * 1000, "ms", 0),
                     "< 250 ms" if m["tenants"] >= 10000 else "", m["scrape_median_s"] < 0.25 if m["tenants"] >= 10000
                     else None))
    lines = ["| measure | result | target | met |", "|---|---|---|---|"]
    for name, value, target, met in rows:
        lines.append(f"| {name} | {value} | {target} | {'' if met is None else ('yes' if met else '**no**')} |")
    by_cluster = wave.get("writes_per_tenant_by_cluster")
    if by_cluster:
        names = list(by_cluster)
        lines += ["", "API writes per tenant during the wave (each cluster's audit log, the operator's user there; "
                  "per tenant of the whole wave, so the columns add up to the total):", ""]
        lines += ["| verb resource | " + " | ".join(names) + " | total |", "|---|" + "---|" * (len(names) + 1)]
        lines += [f"| {k} | " + " | ".join(f"{by_cluster[c].get(k, 0):.2f}" for c in names) + f" | {v:.2f} |"
                  for k, v in wave["writes_per_tenant"].items()]
        lines.append("| **total** | " + " | ".join(f"**{sum(by_cluster[c].values()):.2f}**" for c in names)
                     + f" | **{wave['writes_per_tenant_total']:.2f}** |")
    else:
        lines += ["", "API writes per tenant during the wave (audit log, operator's user):", ""]
        lines += ["| verb resource | per tenant |", "|---|---|"]
        lines += [f"| {k} | {v:.2f} |" for k, v in wave["writes_per_tenant"].items()]
        lines.append(f"| **total** | **{wave['writes_per_tenant_total']:.2f}** |")
    lines += ["", "Requests per tenant by the operator's own client (`tenantry_operator_api_requests_total`; "
              "kopf's watches are not in it):", ""]
    lines += ["| verb | per tenant |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in wave["client_requests_per_tenant"].items()]
    lines += ["", f"Floor: {floor['objects_per_tenant']:.0f} objects per tenant "
              f"({', '.join(f'{k} {v}' for k, v in floor['kinds_per_tenant'].items())}), "
              f"{floor['objects']} creates; per-tenant p50 {floor['per_tenant_p50_s']:.3f} s, "
              f"p99 {floor['per_tenant_p99_s']:.3f} s."]
    if r.get("floor_apply"):
        ssa = r["floor_apply"]
        lines.append(f"Floor with server-side apply instead of create: {ssa['seconds']:.2f} s "
                     f"({ssa['seconds'] / floor['seconds']:.2f} x the create floor); CPU seconds: "
                     + ", ".join(f"{k} {v:.1f}" for k, v in ssa["cpu_seconds"].items()) + ".")
    paced = f" (paced at {r['rate']:g}/s)" if r.get("rate") else ""
    lines.append(f"Wave: {r['tenants']} tenants created in {wave['created_s']:.1f} s{paced}; the operator was quiet "
                 f"{wave['settled_after_ready_s']:.1f} s after the last Ready. Single tenants: "
                 f"{', '.join(f'{p:.2f} s' for p in probes)}. RSS now {fmt(r.get('rss_mib'), 'MiB', 0)}.")
    lines.append("Reconciles during the wave: " + ", ".join(f"{k} {v:.0f}" for k, v in wave["reconciles"].items())
                 + f"; a Tenant's took {wave['tenant_reconcile_mean_s']:.2f} s on average; the queue held at most "
                 f"{wave['queue_depth_max']:.0f} objects.")
    lines.append("CPU seconds during the wave: " + ", ".join(f"{k} {v:.1f}" for k, v in wave["cpu_seconds"].items())
                 + "; during the floor: " + ", ".join(f"{k} {v:.1f}" for k, v in floor["cpu_seconds"].items())
                 + " (the bench's own client is not counted).")
    if restart["writes"]:
        lines.append(f"Restart writes: {restart.get('writes_by_cluster', restart['writes'])}.")
    if idle["writes"]:
        lines.append(f"Idle writes: {idle.get('writes_by_cluster', idle['writes'])}.")
    if r.get("clusters"):
        lines += ["", per_cluster_report(r)]
    return "\n".join(lines)


def per_cluster_report(r: dict[str, Any]) -> str:
    """The section of a run with member clusters: each member's wave, floor, writes and CPU."""
    wave, floor, idle, restart = r["wave"], r["floor"], r["idle"], r["restart"]
    names = ["control", *r["clusters"]]

    def cpu(phase: dict[str, float], name: str, component: str) -> str:
        return f"{phase.get(component if name == 'control' else f'{name} {component}', float('nan')):.1f}"

    lines = [f"Per cluster ({r['member_clusters']} member clusters; reseller r sells in region r mod "
             f"{r['member_clusters']}; the control cluster holds the Tenants, the members the tenants' objects):", "",
             "| cluster | region | tenants | wave: last Ready | p50 / p99 | floor | ratio | writes per own tenant "
             "| idle writes | restart writes | apiserver CPU wave / floor | etcd CPU wave / floor |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in names:
        idle_w = sum(idle.get("writes_by_cluster", {}).get(name, {}).values())
        restart_w = sum(restart.get("writes_by_cluster", {}).get(name, {}).values())
        cpus = (f"{cpu(wave['cpu_seconds'], name, 'apiserver')} / {cpu(floor['cpu_seconds'], name, 'apiserver')} s",
                f"{cpu(wave['cpu_seconds'], name, 'etcd')} / {cpu(floor['cpu_seconds'], name, 'etcd')} s")
        if name == "control":
            lines.append(f"| control | - | - | - | - | - | - | "
                         f"{sum(wave['writes_per_tenant_by_cluster']['control'].values()):.2f} (of all) | "
                         f"{idle_w} | {restart_w} | {cpus[0]} | {cpus[1]} |")
            continue
        c = r["clusters"][name]
        lines.append(f"| {name} | {c['region']} | {c['tenants']} | {c['wave_total_s']:.2f} s | "
                     f"{c['latency_p50_s']:.2f} s / {c['latency_p99_s']:.2f} s | {c['floor_s']:.2f} s | "
                     f"{c['ratio_operator_to_floor']:.2f} | {c['writes_per_own_tenant_total']:.2f} | {idle_w} | "
                     f"{restart_w} | {cpus[0]} | {cpus[1]} |")
    lines += ["", "Floor per member (one client each, "
              + ", ".join(f"{n} {f['workers']} workers" for n, f in floor["clusters"].items()) + "): "
              + "; ".join(f"{n} {f['seconds']:.2f} s, per-tenant p50 {f['per_tenant_p50_s']:.3f} s / p99 "
                          f"{f['per_tenant_p99_s']:.3f} s" for n, f in floor["clusters"].items()) + "."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resellers", type=int, default=20)
    parser.add_argument("--clusters", type=int, default=0,
                        help="member clusters (default 0: every tenant in the control cluster); with N, N Regions "
                        "on N member control planes, reseller r selling in region r mod N")
    parser.add_argument("--tenants", type=int, default=50, help="tenants per reseller")
    parser.add_argument("--workers", type=int, default=None,
                        help="the operator's workers (default: its own default); the floor uses as many")
    parser.add_argument("--resync", type=float, default=300.0,
                        help="the operator's resyncSeconds (default 300, the operator's own default; the restart "
                        "phase reconciles every object once, which is what a resync does)")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idle write counting")
    parser.add_argument("--probes", type=int, default=3, help="single tenants created on the idle operator")
    parser.add_argument("--create-concurrency", type=int, default=16, help="tenant creates in flight")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="tenants created per second (default 0: all at once, as fast as the apiserver takes "
                        "them); a rate below the operator's throughput measures latency without queueing")
    parser.add_argument("--floor-apply", action="store_true",
                        help="also time the floor with server-side apply (PATCH) instead of create (POST)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds for the wave to be Ready")
    parser.add_argument("--meter", default="1000,10000", help="tenant counts for hack/bench_meter.py ('' = skip)")
    parser.add_argument("--json", help="also write the results as JSON here")
    parser.add_argument("--profile", help="py-spy the operator during the wave into this file (.svg or .txt)")
    parser.add_argument("--keep", action="store_true", help="leave the control plane directory (it is stopped)")
    args = parser.parse_args(argv)
    if args.clusters < 0 or (args.clusters and args.resellers < args.clusters):
        parser.error("--clusters must be 0 or at most --resellers (each reseller sells in one member's region)")

    # Stopped by SIGINT or SIGTERM (even when started in the background, where SIGINT is ignored),
    # the `finally` clauses still stop the operator and the control plane.
    def interrupted(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    controlplane = cluster.load_controlplane_module()
    info = machine()
    log(f"{info['cpus']} CPUs ({info['cpu_model']}), {info['memory_gib']} GiB, load {info['load_before']}")
    work = Path(tempfile.mkdtemp(prefix="tenantry-bench-"))
    cp = controlplane.ControlPlane(work / "control-plane")
    member_dirs = [work / f"member-{m}" for m in range(1, args.clusters + 1)]
    # Started beside the control plane (start-up is mostly waiting); start_members then finds them up.
    planes = [controlplane.ControlPlane(d) for d in member_dirs]
    members: list[MemberCluster] = []
    api = None
    try:
        log(f"starting a control plane in {cp.directory}"
            + (f" and {len(planes)} member control planes beside it" if planes else ""))
        with ThreadPoolExecutor(max_workers=1 + len(planes)) as pool:
            for started in [pool.submit(plane.start) for plane in (cp, *planes)]:
                started.result()
        cp.install_platform(cluster.CRDS_DIR)  # CRDs and the platform ClusterRoles, as the chart
        if planes:
            api = cluster.new_api_client(cp.kubeconfig)
            with contextlib.suppress(kubernetes_client.ApiException):  # 409: it exists
                kubernetes_client.CoreV1Api(api).create_namespace(
                    kubernetes_client.V1Namespace(metadata=kubernetes_client.V1ObjectMeta(name="tenantry-system")))
            members = start_members(member_dirs, api, "bench-member")  # installs each, registers its Secret
        results = asyncio.run(bench(args, cp, work, members))
    finally:
        if members and api is not None:
            try:
                stop_members(members, api)  # by pid, also when the bench failed
            except Exception as error:  # the control plane must still be stopped below
                log(f"stopping the member clusters: {error!r}")
        for plane in planes:
            plane.destroy()  # by pid; a no-op for those stop_members destroyed
        if api is not None:
            api.close()
        if args.keep:
            cp.stop()
            log(f"kept {work} (the control plane is stopped; `hack/controlplane.py up --dir` starts it again)")
        else:
            cp.destroy()
            shutil.rmtree(work, ignore_errors=True)
    results["meter"] = meter_bench([int(s) for s in args.meter.split(",") if s.strip()])
    results["machine"] = info
    results["load_after"] = os.getloadavg()
    results["command"] = "hack/bench " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.json:  # first: a run of half an hour is kept whatever the report makes of it
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(report(results))
    print(f"\nMachine: {info['cpus']} CPUs, {info['cpu_model']}, {info['memory_gib']} GiB; {info['date']}; "
          f"load average before {', '.join(f'{x:.2f}' for x in info['load_before'])}, after "
          f"{', '.join(f'{x:.2f}' for x in results['load_after'])}.")
    return 0



if __name__ == "__main__":
    sys.exit(main())
