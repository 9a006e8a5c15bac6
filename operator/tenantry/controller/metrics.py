"""The operator's own Prometheus metrics (the meters export the billing ones, see tenantry.metering)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter("tenantry_operator_reconciles_total", "Reconciles by kind and result", ["kind", "result"])
RECONCILE_SECONDS = Histogram(
    "tenantry_operator_reconcile_duration_seconds", "Time one reconcile took", ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
QUEUE_DEPTH = Gauge("tenantry_operator_queue_depth", "Objects waiting to be reconciled")
TENANTS_REFUSED = Gauge("tenantry_operator_tenants_refused", "Tenants currently refused admission, by reason",
                        ["reason"])
ADMISSION_REFUSALS = Counter("tenantry_operator_admission_refusals_total",
                             "Admission refusals decided, by reason (a tenant refused again counts again)", ["reason"])
WRITES = Counter("tenantry_operator_api_writes_total", "Writes the operator sent to the apiserver, by verb", ["verb"])
CERTIFICATE_EXPIRY = Gauge("tenantry_certificate_expiry_timestamp_seconds",
                           "When the certificate served for a host expires (Unix time), by TLS Secret",
                           ["namespace", "name", "host"])
