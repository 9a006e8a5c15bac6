"""The meter's Prometheus metrics (names fixed by DESIGN.md §4), from a custom collector.

Nothing is kept in prometheus_client's own metric objects: every scrape builds the families from
the integrator's live tenants and the sampler's picture, so a tenant that is deleted (or leaves
the region) has no series from the next scrape on, and there is no label set to forget to remove.
Counters (`*_total`) are the integrals since the meter's first start, carried across restarts in
the checkpoint; `tenantry_charge_total` is the amount of closed windows plus what the open window
has cost so far at the prices in force.

`tenantry_certificate_expiry_timestamp_seconds` is exported by the operator, which holds the
certificates (controller/tls.py); the meters do not repeat it.

Reseller licence series have no region label, so every region's meter where a reseller sells shows
the same values: aggregate them with `max by (reseller, state)`, not `sum`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

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


_DOCS = {
    "used": "Quota usage of the tenant's namespace (cores, bytes, bytes, pods)",
    "quota": "Quota of the tenant's namespace (cores, bytes, bytes, pods)",
    "charge": "Money charged for the tenant's usage, by side",
}
Family = tuple[str, str, str, Sequence[str], list[tuple[tuple[str, ...], float]]]  # name, type, help, labels, rows


def _escape(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


class MeteringCollector(Collector):
    """Builds every family from the current picture. `collect()` serves any prometheus_client
    registry; `render_text()` writes the same samples in the text format without building a
    Sample object per series and validating constant label names 140,000 times at 10,000 tenants
    (hack/bench_meter.py): the meter's /metrics uses it."""

    def __init__(self, region: str, integrator: Integrator, sampler: Sampler, stats: DeliveryStats,
                 spool_size: Callable[[], int] | None = None):
        self.region = region
        self.integrator = integrator
        self.sampler = sampler
        self.stats = stats
        self.spool_size = spool_size or (lambda: 0)
        self._text_cache: dict[str, tuple[object, str, str, str]] = {}

    def collect(self) -> Iterator[Metric]:
        for name, kind, doc, label_names, rows in self.families():
            family: Metric
            if kind == "counter":
                family = CounterMetricFamily(name, doc, labels=list(label_names))
            else:
                family = GaugeMetricFamily(name, doc, labels=list(label_names))
            for values, value in rows:
                family.add_metric(list(values), value)
            yield family

    def render_text(self) -> bytes:
        """The Prometheus text format (0.0.4) of the same samples as `collect()`.

        Per-tenant text that only changes with the tenant's state (its usage and quota lines, its
        label prefix) is kept per state object and reused until the state changes."""
        region = self.region
        used: list[str] = []
        quota: list[str] = []
        counters: dict[str, list[str]] = {meter: [] for _, meter, _ in COUNTERS}
        charges: list[str] = []
        cache: dict[str, tuple[object, str, str, str]] = {}
        counter_names = {meter: f"{name}_total" for name, meter, _ in COUNTERS}
        for uid, account in self.integrator.live():
            state = account.state
            assert state is not None
            entry = self._text_cache.get(uid)
            if entry is None or entry[0] is not state:
                prefix = (f'region="{_escape(region)}",reseller="{_escape(state.reseller)}",'
                          f'tenant="{_escape(state.tenant)}"')
                full = f'{prefix},plan="{_escape(state.plan)}",resource="'
                used_text = "".join(f'tenantry_tenant_resource_used{{{full}{r}"}} '
                                    f"{floatToGoString(float(state.used.get(r, 0)))}\n" for r in RESOURCES)
                quota_text = "".join(f'tenantry_tenant_resource_quota{{{full}{r}"}} '
                                     f"{floatToGoString(float(state.hard.get(r, 0)))}\n" for r in RESOURCES)
                entry = (state, prefix, used_text, quota_text)
            cache[uid] = entry
            _, prefix, used_text, quota_text = entry
            used.append(used_text)
            quota.append(quota_text)
            for meter, lines in counters.items():
                lines.append(f"{counter_names[meter]}{{{prefix}}} {floatToGoString(float(account.totals[meter]))}\n")
            for (side, currency), amount in sorted(self.integrator.charges_for_metrics(account).items()):
                charges.append(f'tenantry_charge_total{{{prefix},side="{side}",currency="{_escape(currency)}"}} '
                               f"{floatToGoString(amount)}\n")
        self._text_cache = cache  # tenants gone since the last scrape are dropped here

        out: list[str] = []
        tenant_families = [
            ("tenantry_tenant_resource_used", "gauge", _DOCS["used"], used),
            ("tenantry_tenant_resource_quota", "gauge", _DOCS["quota"], quota),
            *((name, "counter", doc, counters[meter]) for name, meter, doc in COUNTERS),
            ("tenantry_charge", "counter", _DOCS["charge"], charges),
        ]
        for name, kind, doc, lines in tenant_families:
            sample = f"{name}_total" if kind == "counter" else name
            out.append(f"# HELP {sample} {doc}\n# TYPE {sample} {kind}\n")
            out.extend(lines)
        for name, kind, doc, label_names, rows in self._other_families():
            sample = f"{name}_total" if kind == "counter" else name
            out.append(f"# HELP {sample} {doc}\n# TYPE {sample} {kind}\n")
            for values, value in rows:
                labels = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(label_names, values, strict=True))
                out.append(f"{sample}{{{labels}}} {floatToGoString(value)}\n")
        return "".join(out).encode()

    def families(self) -> list[Family]:
        region = self.region
        used: list[tuple[tuple[str, ...], float]] = []
        quota: list[tuple[tuple[str, ...], float]] = []
        counters: dict[str, list[tuple[tuple[str, ...], float]]] = {meter: [] for _, meter, _ in COUNTERS}
        charges: list[tuple[tuple[str, ...], float]] = []
        for _uid, account in self.integrator.live():
            state = account.state
            assert state is not None
            reseller, tenant, plan = state.reseller, state.tenant, state.plan
            for resource in RESOURCES:
                labels = (region, reseller, tenant, plan, resource)
                used.append((labels, float(state.used.get(resource, 0))))
                quota.append((labels, float(state.hard.get(resource, 0))))
            short = (region, reseller, tenant)
            for meter, rows in counters.items():
                rows.append((short, float(account.totals[meter])))
            for (side, currency), amount in sorted(self.integrator.charges_for_metrics(account).items()):
                charges.append(((region, reseller, tenant, side, currency), amount))
        families: list[Family] = [
            ("tenantry_tenant_resource_used", "gauge", _DOCS["used"], TENANT_LABELS, used),
            ("tenantry_tenant_resource_quota", "gauge", _DOCS["quota"], TENANT_LABELS, quota),
        ]
        families += [(name, "counter", doc, TENANT_COUNTER_LABELS, counters[meter]) for name, meter, doc in COUNTERS]
        families.append(("tenantry_charge", "counter", _DOCS["charge"],
                         ["region", "reseller", "tenant", "side", "currency"], charges))
        return families + self._other_families()

    def _other_families(self) -> list[Family]:
        region = self.region
        return [*self._platform(),
                ("tenantry_billing_records", "counter", "Billing records by sink and result",
                 ["region", "sink", "result"],
                 [((region, self.stats.sink, result), float(count))
                  for result, count in sorted(self.stats.counts.items())]),
                ("tenantry_billing_spool_records", "gauge", "Billing records waiting in the on-disk spool",
                 ["region"], [((region,), float(self.spool_size()))])]

    def _platform(self) -> list[Family]:
        region = self.region
        licenses: list[tuple[tuple[str, ...], float]] = []
        allotment: list[tuple[tuple[str, ...], float]] = []
        allocated: list[tuple[tuple[str, ...], float]] = []
        for name, info in sorted(self.sampler.resellers.items()):
            if info.allotment is None:
                continue  # does not sell in this region
            for state in ("total", "used", "available"):
                licenses.append(((name, state), float(info.licenses.get(state, 0))))
            for resource in RESOURCES:
                allotment.append(((name, region, resource), float(info.allotment.get(resource, 0))))
                allocated.append(((name, region, resource), float(info.allocated.get(resource, 0))))
        capacity: list[tuple[tuple[str, ...], float]] = []
        region_allocated: list[tuple[tuple[str, ...], float]] = []
        if self.sampler.region_obj is not None:
            for resource in RESOURCES:
                capacity.append(((region, resource), float(self.sampler.region_obj.capacity.get(resource, 0))))
                region_allocated.append(((region, resource),
                                         float(self.sampler.region_obj.allocated.get(resource, 0))))
        return [
            ("tenantry_reseller_licenses", "gauge", "Reseller licences (same on every region's meter)",
             ["reseller", "state"], licenses),
            ("tenantry_reseller_allotment", "gauge", "Capacity a reseller bought in the region",
             ["reseller", "region", "resource"], allotment),
            ("tenantry_reseller_allocated", "gauge", "Capacity the reseller's admitted tenants hold in the region",
             ["reseller", "region", "resource"], allocated),
            ("tenantry_region_capacity", "gauge", "Sellable capacity of the region", ["region", "resource"], capacity),
            ("tenantry_region_allocated", "gauge", "Sum of reseller allotments in the region",
             ["region", "resource"], region_allocated),
        ]
