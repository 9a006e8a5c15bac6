"""The operator's own Prometheus metrics (the meters export the billing ones, see tenantry.metering)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tenantry import watch_health
from tenantry.statuses import TenantStatus, parse_status

RECONCILES = Counter("tenantry_operator_reconciles_total", "Reconciles by kind and result", ["kind", "result"])
RECONCILE_SECONDS = Histogram(
    "tenantry_operator_reconcile_duration_seconds", "Time one reconcile took", ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
QUEUE_DEPTH = Gauge("tenantry_operator_queue_depth", "Objects waiting to be reconciled")
TENANTS_REFUSED = Gauge("tenantry_operator_tenants_refused", "Tenants currently refused admission, by reason",
                        ["reason"])
ADMISSION_REFUSALS = Counter("tenantry_operator_admission_refusals_total",
                             "Admission refusals, by reason: counted when a tenant is refused, or refused for a new "
                             "reason", ["reason"])
WRITES = Counter("tenantry_operator_api_writes_total", "Writes the operator sent to the apiserver, by verb", ["verb"])
REQUESTS = Counter("tenantry_operator_api_requests_total",
                   "Requests Tenantry's own API client sent to the apiserver (reads and writes; kopf's watches of "
                   "the four Tenantry kinds are not counted), by HTTP verb", ["verb"])
CERTIFICATE_EXPIRY = Gauge("tenantry_certificate_expiry_timestamp_seconds",
                           "When the certificate served for a host expires (Unix time), by TLS Secret",
                           ["namespace", "name", "host"])
TENANT_READY = Gauge("tenantry_tenant_ready", "1 when the Tenant's Ready condition is True, else 0",
                     ["namespace", "reseller", "tenant"])

MISSING_CLUSTERROLE = Gauge("tenantry_missing_clusterrole",
                            "1 while a platform ClusterRole the operator binds does not exist (its bindings grant "
                            "nothing), else 0", ["clusterrole"])


class _WatchCollector(Collector):
    """tenantry_watch_* of the operator's list-and-watch loops, read at scrape time (`source`)."""

    def __init__(self) -> None:
        self.source: Callable[[], Iterable[watch_health.WatchHealth]] = lambda: ()

    def collect(self) -> Iterator[Metric]:
        errors, failures = watch_health.metric_rows(self.source())
        counter = CounterMetricFamily(watch_health.CALLBACK_ERRORS_METRIC.removesuffix("_total"),
                                      "Objects a watch's callback failed on (each skipped, the watch kept), by kind",
                                      labels=["kind"])
        gauge = GaugeMetricFamily(watch_health.CONSECUTIVE_FAILURES_METRIC,
                                  "Consecutive failures of the kind's watch, its requests included (0: it works)",
                                  labels=["kind"])
        for kind in sorted(errors):
            counter.add_metric([kind], errors[kind])
            gauge.add_metric([kind], failures[kind])
        yield counter
        yield gauge

    def describe(self) -> Iterator[Metric]:
        return iter(())


WATCHES = _WatchCollector()
REGISTRY.register(WATCHES)

_READ_VERBS = frozenset({"GET", "WATCH"})


def count_request(verb: str) -> None:
    """KubeClient.on_request: every request by verb, and the writes among them."""
    REQUESTS.labels(verb=verb).inc()
    if verb not in _READ_VERBS:
        WRITES.labels(verb=verb).inc()


class TenantSeries:
    """Follows the Tenants' watch events into their series: readiness, and whether (and why) each is
    refused. The refusal reason of each refused tenant is kept so that gauges and counters follow
    transitions; an Operator owns one (`op.tenant_series`)."""

    def __init__(self) -> None:
        self.refused: dict[tuple[str, str], str] = {}

    def observe(self, obj: Mapping[str, Any], deleted: bool = False) -> None:
        """Follow one watch event of a Tenant.

        Fed from the status the operator wrote, so the series say what `kubectl get tenants` says;
        a deleted tenant's series go away with it."""
        meta = obj.get("metadata") or {}
        namespace, name = meta.get("namespace") or "", meta.get("name") or ""
        reseller = namespace.removeprefix("reseller-")
        key = (namespace, name)
        refused = self.refused
        old_reason = refused.pop(key, None)
        if deleted:
            with contextlib.suppress(KeyError):  # never observed alive
                TENANT_READY.remove(namespace, reseller, name)
        else:
            status = parse_status(TenantStatus, obj)
            ready = status.is_true("Ready")
            TENANT_READY.labels(namespace=namespace, reseller=reseller, tenant=name).set(1 if ready else 0)
            admitted = status.condition("Admitted")
            if admitted is not None and admitted.status == "False":
                refused[key] = admitted.reason
                if admitted.reason != old_reason:
                    ADMISSION_REFUSALS.labels(reason=admitted.reason).inc()
        if old_reason != refused.get(key):
            for reason in {old_reason, refused.get(key)} - {None}:
                TENANTS_REFUSED.labels(reason=reason).set(sum(1 for r in refused.values() if r == reason))
