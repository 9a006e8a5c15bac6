"""The meter's Prometheus metrics (names fixed by DESIGN.md §4), from a custom collector.

Nothing is kept in prometheus_client's own metric objects: every scrape builds the families from
the integrator's live tenants and the sampler's picture, so a tenant that is deleted (or leaves
the region) has no series from the next scrape on, and there is no label set to forget to remove.
Counters (`*_total`) are the integrals since the meter's first start, carried across restarts in
the checkpoint; `tenantry_charge_total` is the amount of closed windows plus what the open window
has cost so far at the prices in force.

Reseller licence series have no region label, so every region's meter where a reseller sells shows
the same values: aggregate them with `max by (reseller, state)`, not `sum`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tenantry.metering.integrator import RESOURCES

if TYPE_CHECKING:
    from tenantry.metering.integrator import Integrator
    from tenantry.metering.sampler import Sampler

TENANT_LABELS = ["region", "reseller", "tenant", "plan", "resource"]
TENANT_COUNTER_LABELS = ["region", "reseller", "tenant"]
COUNTERS = (
    ("tenantry_tenant_cpu_core_seconds", "cpu", "CPU requested by the tenant's pods, integrated over time"),
    ("tenantry_tenant_memory_byte_seconds", "memory", "Memory requested by the tenant's pods, integrated over time"),
    ("tenantry_tenant_storage_byte_seconds", "storage", "Storage requested by the tenant's claims, over time"),
    ("tenantry_tenant_license_seconds", "license", "Time the tenant held a licence"),
)


@dataclass
class DeliveryStats:
    """Records by sink and result (delivered, failed attempts), for tenantry_billing_records_total."""

    sink: str
    counts: dict[str, int] = field(default_factory=lambda: {"delivered": 0, "failed": 0})
    spooled: int = 0

    def record(self, result: str, count: int) -> None:
        self.counts[result] = self.counts.get(result, 0) + count


class MeteringCollector(Collector):
    def __init__(self, region: str, integrator: Integrator, sampler: Sampler, stats: DeliveryStats,
                 spool_size: Callable[[], int] | None = None):
        self.region = region
        self.integrator = integrator
        self.sampler = sampler
        self.stats = stats
        self.spool_size = spool_size or (lambda: 0)

    def collect(self) -> Iterator[Metric]:
        region = self.region
        used = GaugeMetricFamily("tenantry_tenant_resource_used",
                                 "Quota usage of the tenant's namespace (cores, bytes, bytes, pods)",
                                 labels=TENANT_LABELS)
        quota = GaugeMetricFamily("tenantry_tenant_resource_quota",
                                  "Quota of the tenant's namespace (cores, bytes, bytes, pods)", labels=TENANT_LABELS)
        counters = {meter: CounterMetricFamily(name, doc, labels=TENANT_COUNTER_LABELS)
                    for name, meter, doc in COUNTERS}
        charges = CounterMetricFamily("tenantry_charge", "Money charged for the tenant's usage, by side",
                                      labels=["region", "reseller", "tenant", "side", "currency"])
        for _uid, account in self.integrator.live():
            state = account.state
            assert state is not None
            reseller, tenant, plan = state.reseller, state.tenant, state.plan
            for resource in RESOURCES:
                labels = [region, reseller, tenant, plan, resource]
                used.add_metric(labels, float(state.used.get(resource, 0)))
                quota.add_metric(labels, float(state.hard.get(resource, 0)))
            short = [region, reseller, tenant]
            for meter, family in counters.items():
                family.add_metric(short, float(account.totals[meter]))
            for (side, currency), amount in sorted(self.integrator.charges_of(account).items()):
                charges.add_metric([region, reseller, tenant, side, currency], float(amount))
        yield used
        yield quota
        yield from counters.values()
        yield charges
        yield from self._platform()
        records = CounterMetricFamily("tenantry_billing_records", "Billing records by sink and result",
                                      labels=["region", "sink", "result"])
        for result, count in sorted(self.stats.counts.items()):
            records.add_metric([region, self.stats.sink, result], count)
        yield records
        spool = GaugeMetricFamily("tenantry_billing_spool_records", "Billing records waiting in the on-disk spool",
                                  labels=["region"])
        spool.add_metric([region], self.spool_size())
        yield spool

    def _platform(self) -> Iterator[Metric]:
        region = self.region
        licenses = GaugeMetricFamily("tenantry_reseller_licenses", "Reseller licences (same on every region's meter)",
                                     labels=["reseller", "state"])
        allotment = GaugeMetricFamily("tenantry_reseller_allotment", "Capacity a reseller bought in the region",
                                      labels=["reseller", "region", "resource"])
        allocated = GaugeMetricFamily("tenantry_reseller_allocated",
                                      "Capacity the reseller's admitted tenants hold in the region",
                                      labels=["reseller", "region", "resource"])
        certificates = GaugeMetricFamily("tenantry_certificate_expiry_timestamp_seconds",
                                         "When a served certificate expires (Unix time)",
                                         labels=["namespace", "name", "host"])
        seen_certs: set[tuple[str, str, str]] = set()
        for name, info in sorted(self.sampler.resellers.items()):
            if info.allotment is None:
                continue  # does not sell in this region
            for state in ("total", "used", "available"):
                licenses.add_metric([name, state], info.licenses.get(state, 0))
            for resource in RESOURCES:
                allotment.add_metric([name, region, resource], float(info.allotment.get(resource, 0)))
                allocated.add_metric([name, region, resource], float(info.allocated.get(resource, 0)))
            for namespace, secret, host, not_after in info.certificates:
                if (namespace, secret, host) not in seen_certs:
                    seen_certs.add((namespace, secret, host))
                    certificates.add_metric([namespace, secret, host], not_after)
        for tenant in self.sampler.tenants.values():
            for namespace, secret, host, not_after in tenant.certificates:
                if (namespace, secret, host) not in seen_certs:
                    seen_certs.add((namespace, secret, host))
                    certificates.add_metric([namespace, secret, host], not_after)
        capacity = GaugeMetricFamily("tenantry_region_capacity", "Sellable capacity of the region",
                                     labels=["region", "resource"])
        region_allocated = GaugeMetricFamily("tenantry_region_allocated", "Sum of reseller allotments in the region",
                                             labels=["region", "resource"])
        if self.sampler.region_obj is not None:
            for resource in RESOURCES:
                capacity.add_metric([region, resource], float(self.sampler.region_obj.capacity.get(resource, 0)))
                region_allocated.add_metric([region, resource],
                                            float(self.sampler.region_obj.allocated.get(resource, 0)))
        yield from (licenses, allotment, allocated, capacity, region_allocated, certificates)
