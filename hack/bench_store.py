#!/usr/bin/env python3
"""Memory per tenant of what the running operator keeps (issue 15: operator RSS <= 500 MB at 10,000 tenants).

    PYTHONPATH=operator .venv/bin/python hack/bench_store.py                  # 2,000 tenants, 100 per reseller
    PYTHONPATH=operator .venv/bin/python hack/bench_store.py --tenants 10000 --json out.json

Fills one `Operator`'s structures (controller/context.py) the way the running operator fills them, with
no cluster: every object arrives as a JSON text (a watch line) through `json.loads` into `Store.put`, and
then into the informer's callback (controller/handlers.py: `_observe` for the Tenantry kinds, which feeds
the AdmissionBook, the tenant series, the Secret references, the parsed-spec cache and the work queue;
`_child_changed` for the children); each tenant's certificate expiry series is set as its TLS phase sets
it. The queue is left as a wave leaves it before the workers start: every tenant pending.

The objects are one tenant's as the API server returned them in the 10,000-tenant benchmark
(hack/bench_store_sample.json: the Tenant, its Namespace, 2 ResourceQuotas, LimitRange, NetworkPolicy,
2 RoleBindings, Ingress, branding ConfigMap and TLS Secret; a Reseller and its Plan per `--per-reseller`
tenants), with the managedFields kubectl hides made up from each object's fields, and with names, uids,
resourceVersions, spec hashes, timestamps and certificate data varied per tenant (the CA certificate
per reseller), so that nothing is shared between tenants that is not shared in the running operator.
Each object arrives twice, as the operator reads it: its write's response, then its watch event.

Reported, in bytes per tenant:
- tracemalloc: what each step of the fill keeps (after a gc), one step per kind (the Store and the
  callbacks together, as they run), and in total;
- the same by structure, walking each from its root (shared objects counted once, for the first
  structure that reaches them): the Store's objects by kind, the Store's indexes, the AdmissionBook, ...;
- the RSS delta of the whole fill, in a fresh interpreter without tracemalloc (the operator's own cost,
  allocator overhead included);
and the Store's CPU per tenant (`store_cpu`): taking a tenant's objects in, and reading each once.
A unit test runs it at a small size (tests/unit/test_bench_store.py).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import gc
import json
import os
import random
import re
import subprocess
import sys
import time
import tracemalloc
import types
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

SAMPLE = Path(__file__).with_name("bench_store_sample.json")
# The sample's own names, replaced per tenant.
SAMPLE_TENANT, SAMPLE_RESELLER, SAMPLE_COMPANY = "t00000", "bench000", "Bench 0"

_TOKEN = re.compile(
    r'(?P<uid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'
    r'|"resourceVersion":"(?P<rv>\d+)"'
    r'|"tenantry\.dev/spec-hash":"(?P<hash>[0-9a-f]{16})"'
    r'|(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)'
    r'|"(?P<key>ca\.crt|tls\.crt|tls\.key)":"(?P<data>[A-Za-z0-9+/=]+)"'
    r'|(?P<name>' + "|".join(map(re.escape, (SAMPLE_TENANT, SAMPLE_RESELLER, SAMPLE_COMPANY))) + ')')


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fields_v1(value: Any) -> dict[str, Any]:
    """The FieldsV1 set of a JSON value: every field it sets (list items by index, as "i:n")."""
    if isinstance(value, dict):
        return {f"f:{k}": fields_v1(v) for k, v in value.items()}
    if isinstance(value, list):
        return {f"i:{n}": fields_v1(v) for n, v in enumerate(value)}
    return {}


def with_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as a watch event or a write's response carries it (kubectl hides managedFields): the
    operator's entry for what it set, and one for the status (its own, or the controllers')."""
    meta = obj["metadata"]
    ours = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status", "metadata")}
    ours["metadata"] = {k: meta[k] for k in ("labels", "annotations", "finalizers") if k in meta}
    entry = {"apiVersion": obj["apiVersion"], "fieldsType": "FieldsV1", "manager": "tenantry", "operation": "Update",
             "time": meta["creationTimestamp"]}
    entries = [{**entry, "fieldsV1": fields_v1(ours)}]
    if obj.get("status"):
        entries.append({**entry, "fieldsV1": fields_v1({"status": obj["status"]}), "subresource": "status"})
    return {**obj, "metadata": {**meta, "managedFields": entries}}


class Shapes:
    """The sample's objects as compact JSON texts, and their per-tenant variants."""

    def __init__(self, seed: int = 15) -> None:
        sample = json.loads(SAMPLE.read_text())

        def text(obj: dict[str, Any]) -> str:
            return json.dumps(with_managed_fields(obj), separators=(",", ":"))

        self.reseller, self.plan, self.tenant = (text(sample[k]) for k in ("reseller", "plan", "tenant"))
        self.children = [(c["kind"], text(c)) for c in sample["children"]]
        self.random = random.Random(seed)
        self.version = 1000
        self.ca_data: dict[int, str] = {}
        self.tenant_uid = sample["tenant"]["metadata"]["uid"]  # its Namespace names it too

    def new_uid(self) -> str:
        return str(uuid.UUID(int=self.random.getrandbits(128), version=4))

    def _random_base64(self, length: int) -> str:
        raw = self.random.randbytes(length * 3 // 4 + 3)
        return base64.b64encode(raw).decode()[:length - 2] + "=="

    def vary(self, text: str, tenant: int, reseller: int, tenant_uid: str = "") -> str:
        names = {SAMPLE_TENANT: f"t{tenant:05d}", SAMPLE_RESELLER: f"bench{reseller:03d}",
                 SAMPLE_COMPANY: f"Bench {reseller}"}
        shift = datetime.timedelta(seconds=tenant // 20)  # a wave makes some 20 tenants a second

        def replace(match: re.Match[str]) -> str:
            if match["uid"]:
                return tenant_uid if match["uid"] == self.tenant_uid and tenant_uid else self.new_uid()
            if match["rv"]:
                self.version += 1
                return f'"resourceVersion":"{self.version}"'
            if match["hash"]:
                return f'"tenantry.dev/spec-hash":"{self.random.getrandbits(64):016x}"'
            if match["time"]:
                when = datetime.datetime.strptime(match["time"], "%Y-%m-%dT%H:%M:%SZ") + shift
                return when.strftime("%Y-%m-%dT%H:%M:%SZ")
            if match["key"]:
                data = self.ca_data.setdefault(reseller, self._random_base64(len(match["data"]))) \
                    if match["key"] == "ca.crt" else self._random_base64(len(match["data"]))
                return f'"{match["key"]}":"{data}"'
            return names[match["name"]]

        return _TOKEN.sub(replace, text)


def deep_size(roots: Iterable[Any], seen: set[int]) -> int:
    """Bytes of everything reachable from `roots` that is not in `seen` (which it extends): data only,
    never a type, module, function or event loop (a TimerHandle counts, not the callback it holds)."""
    total = 0
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _NOT_DATA):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, asyncio.TimerHandle):
            continue
        stack.extend(gc.get_referents(obj))
    return total


_NOT_DATA = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
             types.CodeType, types.FrameType, asyncio.AbstractEventLoop, type(None))


async def fill(tenants: int, per_reseller: int, step: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """An Operator filled with `tenants` tenants' objects; `step(name)` after each step of the fill.
    Returns the Operator and what refers to its per-tenant state outside it, by name."""
    from tenantry.controller import handlers, specs
    from tenantry.controller.context import Operator
    from tenantry.controller.queue import WorkQueue
    from tenantry.naming import PLAN, RESELLER, TENANT
    from tenantry.settings import Settings

    async def never(_key: Any) -> None:  # the workers never start: the queue stays as the wave left it
        raise AssertionError("not started")

    op = Operator(client=None, settings=Settings())  # type: ignore[arg-type]  # no cluster: nothing is sent
    op.queue = WorkQueue(never, workers=1)
    shapes = Shapes()
    resellers = range((tenants + per_reseller - 1) // per_reseller)
    uids = [shapes.new_uid() for _ in range(tenants)]

    def arrive(kind: str, text: str, on_change: Callable[[str, dict[str, Any], dict[str, Any] | None], None]) -> None:
        # Twice, as the operator reads it: the response to its write, then the write's watch event (no news).
        for _ in range(2):
            obj = json.loads(text)  # as a watch line is read: a fresh object, nothing shared with another
            meta = obj["metadata"]
            old = op.store.get(kind, meta["name"], meta.get("namespace"))
            if op.store.put(kind, obj):  # what the Informer does with each event (controller/informer.py)
                on_change("ADDED", obj, old)

    def observe(kind: str) -> Callable[[str, dict[str, Any], dict[str, Any] | None], None]:
        return lambda event, obj, old: handlers._observe(op, kind, event, obj, old)

    def child_changed(event: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        handlers._child_changed(op, event, obj, old)

    step("start")
    for r in resellers:
        arrive(RESELLER, shapes.vary(shapes.reseller, r * per_reseller, r), observe(RESELLER))
        arrive(PLAN, shapes.vary(shapes.plan, r * per_reseller, r), observe(PLAN))
    step("Reseller, Plan")
    for i in range(tenants):
        arrive(TENANT, shapes.vary(shapes.tenant, i, i // per_reseller, uids[i]), observe(TENANT))
    step(TENANT)
    kinds = list(dict.fromkeys(kind for kind, _ in shapes.children))
    for kind in kinds:
        for i in range(tenants):
            for _, text in (c for c in shapes.children if c[0] == kind):
                arrive(kind, shapes.vary(text, i, i // per_reseller, uids[i]), child_changed)
        step(kind)
    for tenant in op.store.list(TENANT):  # what each tenant's TLS phase leaves (controller/tls.py)
        meta, status = tenant["metadata"], tenant["status"]
        op.tls.set_expiry((meta["namespace"], meta["name"]), [
            (status["namespace"], f"tenantry-tls-{c['host']}", c["host"], c["notAfter"])
            for c in status["certificates"]])
    step("certificate expiry series")
    return {"operator": op, "parsed specs": specs._parsed}


def structures(filled: dict[str, Any]) -> Iterator[tuple[str, int]]:
    """(structure, bytes) of an Operator's per-tenant state, each object counted once."""
    op = filled["operator"]
    seen: set[int] = set()
    kinds = list(dict.fromkeys(k for k in ("Reseller", "Plan", "Tenant", *(c[0] for c in Shapes().children))))
    for kind in kinds:
        # What the Store holds, not what it hands out (a fresh dict, for a kind it keeps as text).
        yield f"Store: {kind}", deep_size(op.store._objects.get(kind, {}).values(), seen)
    yield "Store: indexes (buckets, keys, children)", deep_size([op.store], seen)
    yield "AdmissionBook (claims, host index)", deep_size([op.book], seen)
    yield "tenant_series", deep_size([op.tenant_series], seen)
    yield "secret_refs", deep_size([op.secret_refs], seen)
    yield "work queue (every tenant pending)", deep_size([op.queue], seen)
    yield "TLS state (expiry series)", deep_size([op.tls], seen)
    yield "parsed specs (controller/specs.py)", deep_size([filled["parsed specs"]], seen)


def measure(tenants: int, per_reseller: int = 100) -> dict[str, Any]:
    """Bytes per tenant by step (tracemalloc) and by structure (deep size); run in a fresh interpreter
    for figures that do not depend on what ran before (`measure_rss` does)."""
    asyncio.run(fill(10, 10))  # the imports, and the first use of everything, are no tenant's cost
    gc.collect()
    tracemalloc.start()
    steps: dict[str, int] = {}
    last = [0]

    def step(name: str) -> None:
        gc.collect()
        current = tracemalloc.get_traced_memory()[0]
        if name != "start":
            steps[name] = current - last[0]
        last[0] = current

    filled = asyncio.run(fill(tenants, per_reseller, step))
    tracemalloc.stop()
    return {
        "tenants": tenants,
        "steps": {name: size / tenants for name, size in steps.items()},
        "total": sum(steps.values()) / tenants,
        "structures": {name: size / tenants for name, size in structures(filled)},
    }


def store_cpu(tenants: int, per_reseller: int = 100) -> dict[str, float]:
    """CPU microseconds per tenant of the Store itself: taking each object in (`put` of a parsed event, and
    its echo), and reading each of a tenant's objects once (`get`, what one reconcile of it reads)."""
    from tenantry.controller.store import Store

    shapes = Shapes()
    events = [(kind, json.loads(shapes.vary(text, i, i // per_reseller)))
              for i in range(tenants) for kind, text in [("Tenant", shapes.tenant), *shapes.children]]
    echoes = [(kind, json.loads(json.dumps(obj))) for kind, obj in events]
    keys = [(kind, obj["metadata"]["name"], obj["metadata"].get("namespace")) for kind, obj in events]
    store = Store()
    started = time.process_time()
    for kind, obj in events:
        store.put(kind, obj)
    for kind, obj in echoes:
        store.put(kind, obj)
    put = time.process_time() - started
    started = time.process_time()
    for kind, name, namespace in keys:
        store.get(kind, name, namespace)
    get = time.process_time() - started
    return {"put": put * 1e6 / tenants, "get": get * 1e6 / tenants}


def measure_rss(tenants: int, per_reseller: int = 100) -> dict[str, Any]:
    """RSS growth per tenant, in bytes, of a fill in a fresh interpreter (no tracemalloc), and `store_cpu`."""
    # A small fill first: the imports, and the first use of everything, are no tenant's cost.
    code = ("import asyncio, gc, json, sys; sys.path.insert(0, sys.argv[3]); import bench_store as b; "
            "asyncio.run(b.fill(10, 10)); gc.collect(); before = b.rss_kib(); "
            "kept = asyncio.run(b.fill(int(sys.argv[1]), int(sys.argv[2]))); gc.collect(); "
            "rss = (b.rss_kib() - before) * 1024 / int(sys.argv[1]); del kept; "
            "print(json.dumps({'rss': rss, 'cpu': b.store_cpu(int(sys.argv[1]), int(sys.argv[2]))}))")
    out = subprocess.run([sys.executable, "-c", code, str(tenants), str(per_reseller), str(Path(__file__).parent)],
                         check=True, capture_output=True, text=True, env=os.environ)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=2000)
    parser.add_argument("--per-reseller", type=int, default=100, help="tenants per reseller (the bench's)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--no-rss", action="store_true", help="skip the RSS run (a second fill)")
    args = parser.parse_args()
    fresh = None if args.no_rss else measure_rss(args.tenants, args.per_reseller)
    results = measure(args.tenants, args.per_reseller)
    results |= fresh or {}
    print(f"{args.tenants} tenants, {args.per_reseller} per reseller: bytes per tenant")
    print("\nby step of the fill (tracemalloc, the Store and the callbacks together):")
    for name, size in results["steps"].items():
        print(f"  {name:<45} {size:>9,.0f}")
    print(f"  {'total':<45} {results['total']:>9,.0f}")
    print("\nby structure (deep size, each object counted once):")
    for name, size in results["structures"].items():
        print(f"  {name:<45} {size:>9,.0f}")
    if fresh is not None:
        print(f"\nRSS growth of the fill (fresh interpreter, no tracemalloc): {fresh['rss']:,.0f} bytes per tenant")
        print(f"Store CPU per tenant: put (each object and its echo) {fresh['cpu']['put']:,.0f} us, "
              f"get (each object once) {fresh['cpu']['get']:,.0f} us")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
