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

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import attrgetter, concat, itemgetter
from typing import TYPE_CHECKING, cast

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from tenantry.metering.integrator import RESOURCES
from tenantry.watch_health import CALLBACK_ERRORS_METRIC, CONSECUTIVE_FAILURES_METRIC, WatchHealth, metric_rows

if TYPE_CHECKING:
    from tenantry.metering.integrator import Account, Integrator, TenantState
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


_INF = float("inf")
# Go's exponent of a positive float whose repr has its point at index 7..16 (1e6 <= value < 1e16)
_EXPONENTS = ("",) * 7 + tuple(f"e+{dot - 1:02d}" for dot in range(7, 17))


def go_float(value: float) -> str:
    """`prometheus_client.utils.floatToGoString(value)` for a float, faster (the scrape formats
    six per tenant; tests/unit/test_metering_exporter.py checks it against floatToGoString).

    Below 1e6 floatToGoString returns `repr` itself: such a repr has at most 6 digits before its
    point (or is in exponent form), so its Go-style rewrite (`dot > 6`) never applies. From 1e6
    below 1e16 a repr is positional with its point at index 7 to 16, and the rewrite is
    floatToGoString's own; from 1e16 on a repr is in exponent form already. Infinities and NaN
    are left to floatToGoString."""
    if -1e6 < value < 1e6:  # False for NaN
        return repr(value)
    if 1e6 <= value < 1e16:
        text = repr(value)
        dot = text.find(".")
        return f"{text[0]}.{text[1:dot]}{text[dot + 1:]}".rstrip("0.") + _EXPONENTS[dot]
    if -_INF < value < _INF:
        return repr(value)  # negative, or 1e16 and more: no point before index 7
    return floatToGoString(value)


class _TenantText:
    """The text of one tenant state that does not change until the state does: its usage and
    quota lines (as bytes), and the start (name and labels) of its counter and charge lines."""

    __slots__ = ("charge_heads", "counter_heads", "prefix", "quota", "state", "used")

    def __init__(self, region: str, state: TenantState):
        self.state = state
        prefix = (f'region="{_escape(region)}",reseller="{_escape(state.reseller)}",'
                  f'tenant="{_escape(state.tenant)}"')
        full = f'{prefix},plan="{_escape(state.plan)}",resource="'
        self.prefix = prefix
        self.used = "".join(f'tenantry_tenant_resource_used{{{full}{r}"}} '
                            f"{floatToGoString(float(state.used.get(r, 0)))}\n" for r in RESOURCES).encode()
        self.quota = "".join(f'tenantry_tenant_resource_quota{{{full}{r}"}} '
                             f"{floatToGoString(float(state.hard.get(r, 0)))}\n" for r in RESOURCES).encode()
        self.counter_heads = tuple(f"{name}_total{{{prefix}}} " for name, _, _ in COUNTERS)
        self.charge_heads: dict[tuple[str, str], str] = {}

    def charge_head(self, key: tuple[str, str]) -> str:
        head = self.charge_heads.get(key)
        if head is None:
            side, currency = key
            head = f'tenantry_charge_total{{{self.prefix},side="{side}",currency="{_escape(currency)}"}} '
            self.charge_heads[key] = head
        return head


def _lines(lines: Iterable[str]) -> list[bytes]:
    """Sample lines (without their newlines) as one block of text."""
    text = "\n".join(lines)
    return [text.encode(), b"\n"] if text else []


_concat = cast(Callable[[str, str], str], concat)  # str + str, called from C by map (twice str.__add__'s speed)
_USED = attrgetter("used")
_QUOTA = attrgetter("quota")
_COUNTER_HEADS = attrgetter("counter_heads")
_TOTALS = attrgetter("totals")


def _header(sample: str, kind: str, doc: str) -> bytes:
    return f"# HELP {sample} {doc}\n# TYPE {sample} {kind}\n".encode()


def _family_text(families: list[Family]) -> bytes:
    out = []
    for name, kind, doc, label_names, rows in families:
        sample = f"{name}_total" if kind == "counter" else name
        out.append(_header(sample, kind, doc))
        line = sample + "{{" + ",".join(f'{n}="{{}}"' for n in label_names) + "}} {}\n"
        out += [line.format(*map(_escape, values), go_float(value)).encode() for values, value in rows]
    return b"".join(out)




_USED_HEADER = _header("tenantry_tenant_resource_used", "gauge", _DOCS["used"])
_QUOTA_HEADER = _header("tenantry_tenant_resource_quota", "gauge", _DOCS["quota"])
_COUNTER_HEADERS = tuple(_header(f"{name}_total", "counter", doc) for name, _, doc in COUNTERS)
_CHARGE_HEADER = _header("tenantry_charge_total", "counter", _DOCS["charge"])


class MeteringCollector(Collector):
    """Builds every family from the current picture. `collect()` serves any prometheus_client
    registry; `render_text()` writes the same samples in the text format without building a
    Sample object per series and validating constant label names 140,000 times at 10,000 tenants
    (hack/bench_meter.py): the meter's /metrics uses it."""

    def __init__(self, region: str, integrator: Integrator, sampler: Sampler, stats: DeliveryStats,
                 spool_size: Callable[[], int] | None = None,
                 watches: Callable[[], Iterable[WatchHealth]] | None = None):
        self.region = region
        self.integrator = integrator
        self.sampler = sampler
        self.stats = stats
        self.spool_size = spool_size or (lambda: 0)
        self.watches = watches or (lambda: ())
        self._text_cache: dict[str, _TenantText] = {}
        self._platform_text: tuple[object, bytes] | None = None

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
        """The Prometheus text format (0.0.4) of the same samples as `collect()`: what
        `generate_latest` writes, byte for byte, but for the order of labels (the collector's here,
        sorted there).

        What only changes with a tenant's state (its usage and quota lines, the names and labels
        of its counter and charge lines) is kept per state object until the state changes. The
        counters and charges change with every tick (every sample interval), so their values are
        formatted on every scrape: a family at a time where the values are columns, and the text
        is encoded a family at a time rather than line by line or the whole body at once."""
        old_cache = self._text_cache
        cache: dict[str, _TenantText] = {}
        texts: list[_TenantText] = []
        accounts: list[Account] = []
        charges: list[str] = []
        charges_for_metrics = self.integrator.charges_for_metrics
        for uid, account in self.integrator.live():
            state = account.state
            assert state is not None
            text = old_cache.get(uid)
            if text is None or text.state is not state:
                text = _TenantText(self.region, state)
            cache[uid] = text
            texts.append(text)
            accounts.append(account)
            heads = text.charge_heads
            for key, amount in charges_for_metrics(account):
                charges.append((heads.get(key) or text.charge_head(key))
                               + (repr(amount) if -1e6 < amount < 1e6 else go_float(amount)))
        self._text_cache = cache  # tenants gone since the last scrape are dropped here

        body = [_USED_HEADER, *map(_USED, texts), _QUOTA_HEADER, *map(_QUOTA, texts)]
        all_totals = list(map(_TOTALS, accounts))
        all_heads = list(map(_COUNTER_HEADS, texts))
        for index, (_, meter, _) in enumerate(COUNTERS):
            # go_float, with its first line inlined: this is 4 values per tenant
            values = [repr(v) if -1e6 < v < 1e6 else go_float(v)
                      for v in map(float, map(itemgetter(meter), all_totals))]
            body.append(_COUNTER_HEADERS[index])
            body += _lines(map(_concat, map(itemgetter(index), all_heads), values))
        body.append(_CHARGE_HEADER)
        body += _lines(charges)
        # The platform's series change only with the Region and Resellers, which the sampler
        # replaces (never edits) on a change: their text is kept until one of them is replaced.
        platform = (self.sampler.region_obj, list(self.sampler.resellers.items()))
        if self._platform_text is None or self._platform_text[0] != platform:
            self._platform_text = (platform, _family_text(self._platform()))
        body.append(self._platform_text[1])
        body.append(_family_text(self._delivery() + self._watches()))
        return b"".join(body)

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
            for (side, currency), amount in self.integrator.charges_for_metrics(account):
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
        return [*self._platform(), *self._delivery(), *self._watches()]

    def _watches(self) -> list[Family]:
        errors, failures = metric_rows(self.watches())
        return [(CALLBACK_ERRORS_METRIC.removesuffix("_total"), "counter",
                 "Objects a watch's callback failed on (each skipped, the watch kept), by kind", ["kind"],
                 [((kind,), float(count)) for kind, count in sorted(errors.items())]),
                (CONSECUTIVE_FAILURES_METRIC, "gauge",
                 "Consecutive failures of the kind's watch, its requests included (0: it works)", ["kind"],
                 [((kind,), float(count)) for kind, count in sorted(failures.items())])]

    def _delivery(self) -> list[Family]:
        region = self.region
        return [("tenantry_billing_records", "counter", "Billing records by sink and result",
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
