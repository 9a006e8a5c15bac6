"""Helpers of the reliability suites: figures, the ledger invariants checked after every fault, the
witnesses that each tenant was decided once, and an operator run behind the loopback fault proxy.

`ledger_problems` states, for a set of resellers, everything the admission ledger promises
(DESIGN.md §3, "Admission ledger"), and returns what is wrong in words (empty: all holds). The suites
wait until it is empty after a fault, then assert it stays so.
"""

from __future__ import annotations

import base64
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, watch

from support.events import told
from support.faultproxy import FaultProxy
from support.operator import OperatorProcess
from support.platform import GROUP, VERSION, Platform, condition
from tenantry.quantity import parse_quantity

# Filled by the suites: "faults injected", "races run", "bad inputs tried", ...
FIGURES: Counter[str] = Counter()
# Logs of operator processes other than the session's (the one behind the fault proxy): the
# secrets-hygiene check reads them too.
EXTRA_OPERATOR_LOGS: list[Path] = []

QUOTA_KEYS = {"cpu": "requests.cpu", "memory": "requests.memory", "storage": "requests.storage", "pods": "pods"}
LABEL_RESELLER, LABEL_TENANT = "tenantry.dev/reseller", "tenantry.dev/tenant"


def upstream(kubeconfig: Path, directory: Path) -> tuple[str, str | None]:
    """The real server of a kubeconfig and a file with its CA (None: not given)."""
    cluster = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]
    if cluster.get("certificate-authority-data"):
        ca_path = directory / "upstream-ca.crt"
        ca_path.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
        return cluster["server"], str(ca_path)
    return cluster["server"], cluster.get("certificate-authority")


def proxied_kubeconfig(source: Path, proxy: FaultProxy, directory: Path) -> Path:
    """A copy of `source` (same identity) whose server is the proxy, in plain HTTP on loopback."""
    config = yaml.safe_load(source.read_text())
    config["clusters"][0]["cluster"] = {"server": proxy.url}
    path = directory / "proxied.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@contextlib.contextmanager
def operator_behind_proxy(operator: OperatorProcess, directory: Path) -> Iterator[tuple[OperatorProcess, FaultProxy]]:
    """An operator with the session operator's identity whose API server is the fault proxy (no
    faults yet), not started; the session operator is stopped meanwhile (one operator at a time)
    and started again afterwards."""
    server, ca_file = upstream(operator.kubeconfig, directory)
    proxy = FaultProxy(upstream=server, ca_file=ca_file).start()
    second = OperatorProcess(proxied_kubeconfig(operator.kubeconfig, proxy, directory), directory)
    EXTRA_OPERATOR_LOGS.append(second.log_path)
    operator.stop()
    try:
        yield second, proxy
    finally:
        second.stop()
        proxy.stop()
        operator.start()


def timed_seconds(started: float) -> float:
    return round(time.monotonic() - started, 1)


def admitted(obj: Mapping[str, Any] | None) -> bool:
    found = condition(obj, "Admitted")
    return bool(found and found["status"] == "True")


def decided(obj: Mapping[str, Any] | None) -> bool:
    """The operator has looked at this generation and said yes or no."""
    if obj is None:
        return False
    found = condition(obj, "Admitted")
    if found is None or found.get("reason") == "AwaitingConcurrentRequests":
        return False
    status = obj.get("status") or {}
    return status.get("observedGeneration") == obj["metadata"].get("generation")


def tenants_of(platform: Platform, reseller: str) -> list[dict[str, Any]]:
    result = platform.objects.list_namespaced_custom_object(GROUP, VERSION, f"reseller-{reseller}", "tenants")
    return list(result["items"])


def quota_of(values: Mapping[str, str]) -> dict[str, Decimal]:
    return {k: parse_quantity(v) for k, v in values.items()}


def wait_exact_ledger(platform: Platform, resellers: Iterable[str], timeout: float, **kwargs: Any) -> None:
    """Wait until `ledger_problems` finds nothing; on timeout, fail with the problems last seen."""
    resellers = list(resellers)
    deadline = time.monotonic() + timeout
    while (problems := ledger_problems(platform, resellers, **kwargs)) and time.monotonic() < deadline:
        time.sleep(1.0)
    assert not problems, f"the ledger is not exact after {timeout:.0f}s: " + "; ".join(problems)


def ledger_problems(platform: Platform, resellers: Iterable[str], deleted: Iterable[tuple[str, str]] = (),
                    plans: Mapping[tuple[str, str], Mapping[str, str]] | None = None) -> list[str]:
    """Everything wrong with the ledger of these resellers, in words (empty: it is exact).

    - every tenant is decided for its current generation; none is being deleted any more;
    - status.licenses.used == admitted tenants == live tenant namespaces <= licences;
    - the admitted tenants' recorded quotas fit the allotment; each namespace's quota is its record;
    - a refused tenant has no namespace, and (with `plans`) really does not fit: nobody left out who fits;
    - nothing carries the label of a deleted tenant (`deleted`: (reseller, tenant) pairs).
    """
    problems: list[str] = []
    core = platform.core
    deleted_by_reseller: dict[str, set[str]] = {}
    for reseller, tenant in deleted:
        deleted_by_reseller.setdefault(reseller, set()).add(tenant)
    for reseller in resellers:
        rs = platform.get("Reseller", reseller)
        if rs is None:
            problems.append(f"reseller {reseller} is gone")
            continue
        spec, status = rs["spec"], rs.get("status") or {}
        tenants = tenants_of(platform, reseller)
        undecided = [t["metadata"]["name"] for t in tenants if not decided(t)]
        terminating = [t["metadata"]["name"] for t in tenants if t["metadata"].get("deletionTimestamp")]
        if undecided:
            problems.append(f"{reseller}: {len(undecided)} tenant(s) not decided yet: {sorted(undecided)[:5]}")
        if terminating:
            problems.append(f"{reseller}: {len(terminating)} tenant(s) still being deleted: {sorted(terminating)[:5]}")
        yes = {t["metadata"]["name"]: t for t in tenants if admitted(t)}
        no = {t["metadata"]["name"]: t for t in tenants if not admitted(t)}
        licenses = int(spec.get("licenses", 0))
        used = (status.get("licenses") or {}).get("used")
        if used != len(yes):
            problems.append(f"{reseller}: status.licenses.used is {used}, {len(yes)} tenants are admitted")
        if len(yes) > licenses:
            problems.append(f"{reseller}: {len(yes)} admitted beyond {licenses} licences")
        namespaces = core.list_namespace(label_selector=f"{LABEL_RESELLER}={reseller},{LABEL_TENANT}").items
        live = {n.metadata.labels[LABEL_TENANT] for n in namespaces if n.status.phase != "Terminating"}
        if live != set(yes):
            problems.append(f"{reseller}: tenant namespaces {sorted(live - set(yes))[:5]} without an admitted tenant, "
                            f"admitted tenants {sorted(set(yes) - live)[:5]} without a namespace")
        allotment = quota_of(spec["regions"][0]["allotment"])
        allocated = Counter[str]()
        for name, tenant in yes.items():
            record = quota_of(((tenant.get("status") or {}).get("admission") or {}).get("quota") or {})
            for resource, amount in record.items():
                allocated[resource] += amount  # type: ignore[assignment]
            if name in live:
                try:
                    hard = core.read_namespaced_resource_quota("tenantry", f"{reseller}--{name}").spec.hard
                except client.ApiException as error:
                    problems.append(f"{reseller}/{name}: no ResourceQuota ({error.status})")
                    continue
                for resource, amount in record.items():
                    key = QUOTA_KEYS[resource]
                    if parse_quantity(hard.get(key, "-1")) != amount:
                        problems.append(f"{reseller}/{name}: quota {key}={hard.get(key)} but the admission "
                                        f"record says {amount}")
        for resource, amount in allocated.items():
            if amount > allotment.get(resource, Decimal(0)):
                problems.append(f"{reseller}: {resource} {amount} admitted beyond the allotment {allotment[resource]}")
        if plans is not None:
            for name, tenant in no.items():
                reason = (condition(tenant, "Admitted") or {}).get("reason")
                wanted = quota_of(plans.get((reseller, tenant["spec"]["plan"]), {}))
                if reason == "LicenseLimitReached" and len(yes) < licenses:
                    problems.append(f"{reseller}/{name}: refused for licences with {len(yes)} of {licenses} used")
                if reason == "InsufficientCapacity" and wanted and len(yes) < licenses and all(
                        allocated.get(r, Decimal(0)) + wanted[r] <= allotment[r] for r in wanted):
                    problems.append(f"{reseller}/{name}: refused for capacity although its plan fits")
        gone = deleted_by_reseller.get(reseller, set())
        if gone:
            all_ns = {n.metadata.name for n in core.list_namespace().items}
            for tenant in gone:
                if f"{reseller}--{tenant}" in all_ns:
                    problems.append(f"{reseller}/{tenant}: deleted, its namespace is still there")
            selector = f"{LABEL_RESELLER}={reseller}"
            labelled = [*core.list_secret_for_all_namespaces(label_selector=selector).items,
                        *core.list_config_map_for_all_namespaces(label_selector=selector).items,
                        *client.RbacAuthorizationV1Api(platform.api)
                        .list_role_binding_for_all_namespaces(label_selector=selector).items]
            leftovers = sorted({f"{o.kind or type(o).__name__} {o.metadata.namespace}/{o.metadata.name}"
                                for o in labelled if (o.metadata.labels or {}).get(LABEL_TENANT) in gone})
            if leftovers:
                problems.append(f"{reseller}: objects labelled for deleted tenants: {leftovers[:5]}")
    return problems


def namespace_children_versions(api: client.ApiClient, namespace: str) -> dict[str, str]:
    """resourceVersion of every object Tenantry keeps in a tenant namespace (the bystander check)."""
    core, net = client.CoreV1Api(api), client.NetworkingV1Api(api)
    rbac = client.RbacAuthorizationV1Api(api)
    versions = {f"Namespace/{namespace}": core.read_namespace(namespace).metadata.resource_version}
    for kind, items in (("ResourceQuota", core.list_namespaced_resource_quota(namespace).items),
                        ("LimitRange", core.list_namespaced_limit_range(namespace).items),
                        ("Secret", core.list_namespaced_secret(namespace, label_selector=LABEL_TENANT).items),
                        ("ConfigMap", core.list_namespaced_config_map(namespace, label_selector=LABEL_TENANT).items),
                        ("NetworkPolicy", net.list_namespaced_network_policy(namespace).items),
                        ("Ingress", net.list_namespaced_ingress(namespace).items),
                        ("RoleBinding", rbac.list_namespaced_role_binding(namespace).items)):
        for obj in items:
            versions[f"{kind}/{obj.metadata.name}"] = obj.metadata.resource_version
    return versions




# ---------------------------------------------------------------------------- each tenant decided once
class AdmissionTimes:
    """Every `status.admission.admittedAt` each Tenant of a control namespace showed, seen by a watch
    from a thread of its own (listing again whenever the stream breaks: an apiserver restarting).

    The operator records a decision once and keeps its admittedAt ever after (a plan change too): a
    tenant that showed two was decided again, its first decision lost or ignored (`decided_again`)."""

    def __init__(self, platform: Platform, namespace: str):
        self._api = client.ApiClient(platform.api.configuration)  # its own connections, for its own thread
        self._namespace = namespace
        self._seen: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name=f"admission-times-{namespace}", daemon=True)

    def start(self) -> AdmissionTimes:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        self._api.close()

    def _note(self, obj: Mapping[str, Any]) -> None:
        at = ((obj.get("status") or {}).get("admission") or {}).get("admittedAt")
        if at:
            with self._lock:
                times = self._seen.setdefault(obj["metadata"]["name"], [])
                if at not in times:
                    times.append(at)

    def _follow(self) -> None:
        objects = client.CustomObjectsApi(self._api)
        while not self._stop.is_set():
            try:
                listed = objects.list_namespaced_custom_object(GROUP, VERSION, self._namespace, "tenants",
                                                             _request_timeout=15)
                for obj in listed["items"]:
                    self._note(obj)
                stream = watch.Watch().stream(objects.list_namespaced_custom_object, GROUP, VERSION,
                                              self._namespace, "tenants", timeout_seconds=5, _request_timeout=15,
                                              resource_version=listed["metadata"]["resourceVersion"])
                for event in stream:
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._note(event["object"])
                    if event["type"] == "ERROR" or self._stop.is_set():
                        break
            except Exception:  # the API is away (a restart): list again shortly
                self._stop.wait(0.5)

    def decided_again(self) -> dict[str, list[str]]:
        """The tenants that showed more than one admittedAt, with them in the order seen."""
        with self._lock:
            return {name: list(times) for name, times in self._seen.items() if len(times) > 1}

    def seen(self, name: str) -> list[str]:
        with self._lock:
            return list(self._seen.get(name, []))


def admissions_told(platform: Platform, namespace: str, name: str) -> int:
    """How many Normal Events told the tenant's Admitted transition. The status write that turns Admitted
    True tells it in its one Normal summary (DESIGN §2), so a tenant decided once is told once at most
    (none if that write's answer was lost and the Event with it)."""
    return sum(e.count or 1 for e in platform.events_for(namespace, name)
               if e.type == "Normal" and "Admitted" in told(e.message or ""))


def decided_twice(platform: Platform, namespace: str, names: Iterable[str], times: AdmissionTimes) -> dict[str, str]:
    """The tenants with evidence of a second decision, in words (empty: each was decided once at most)."""
    found: dict[str, str] = {}
    again = times.decided_again()
    for name in names:
        problems = []
        if name in again:
            problems.append(f"admittedAt changed: {' -> '.join(again[name])}")
        if (count := admissions_told(platform, namespace, name)) > 1:
            problems.append(f"Admitted told {count} times")
        if problems:
            found[name] = "; ".join(problems)
    return found
