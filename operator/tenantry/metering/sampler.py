"""What the meter of one Region knows about the cluster, kept current by list+watch (no polling).

Five reflectors, each one list and then one watch stream (relisting after a 410 or a lost
connection), each keeping only the few fields metering needs:

- ResourceQuotas `tenantry` of the region's tenant namespaces, selected on the server by label
  (`app.kubernetes.io/managed-by=tenantry,tenantry.dev/region=<region>`): `status.used`/`hard`;
- Tenants (admitted to this region: `status.admission.region`): uid, phase, plan;
- Plans (retail prices), Resellers (licences, allotments, tier), Regions (capacity, tariff).

An object the meter cannot read, or whose change fails, is skipped and counted (the reflector's
`health`, tenantry.watch_health); the watch goes on.

Every change recomputes the `TenantState` of the tenants it touches (a quota: its tenant; a Plan:
the tenants on it; a Reseller: its tenants; the Region: all) and hands the ones that differ to
`on_state(uid, state | None)`: the integrator then bills the old state up to now.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from tenantry.kube import KubeClient, list_then_watch
from tenantry.metering.integrator import RESOURCES, TenantState
from tenantry.metering.pricing import license_tier_price, tenant_prices
from tenantry.models import RetailPricing, WholesalePricing
from tenantry.naming import (
    CHILD_NAME,
    LABEL_MANAGED_BY,
    LABEL_REGION,
    MANAGED_BY,
    PLAN,
    QUOTA_KEYS,
    REGION,
    RESELLER,
    TENANT,
    reseller_from_namespace,
    tenant_namespace,
)
from tenantry.quantity import QuantityError, parse_quantity
from tenantry.statuses import QuotaAmounts, RegionStatus, ResellerStatus, TenantStatus, read_status
from tenantry.watch_health import WatchHealth

log = logging.getLogger(__name__)

ZERO = Decimal(0)
LICENSED_PHASES = {"Active", "Suspended", "Terminating"}


def _quantities(raw: Mapping[str, Any] | None) -> dict[str, Decimal]:
    """ResourceQuota `used`/`hard` as Decimals keyed by resource (cpu, memory, storage, pods)."""
    result = {}
    for resource in RESOURCES:
        value = (raw or {}).get(QUOTA_KEYS[resource])
        try:
            result[resource] = parse_quantity(value) if value is not None else ZERO
        except QuantityError:
            result[resource] = ZERO
    return result


def _amounts(amounts: QuotaAmounts | None) -> dict[str, Decimal]:
    """Status quota amounts (validated quantities) as Decimals; a resource not written is zero."""
    return _quota_strings_to_decimals(amounts.as_strings() if amounts is not None else None)


def _quota_strings_to_decimals(raw: Mapping[str, Any] | None) -> dict[str, Decimal]:
    result = {}
    for resource in RESOURCES:
        try:
            result[resource] = parse_quantity((raw or {}).get(resource, 0))
        except QuantityError:
            result[resource] = ZERO
    return result


# -- the few fields kept per object -----------------------------------------------------------------


@dataclass(frozen=True)
class QuotaInfo:
    used: dict[str, Decimal]
    hard: dict[str, Decimal]


@dataclass(frozen=True)
class TenantInfo:
    uid: str
    reseller: str
    name: str
    region: str | None  # the admitted region (None: not admitted)
    plan: str
    phase: str


@dataclass(frozen=True)
class ResellerInfo:
    name: str
    licenses_spec: int
    licenses: dict[str, int]  # total, used, available (status)
    allotment: dict[str, Decimal] | None  # in this region (None: does not sell here)
    allocated: dict[str, Decimal]


@dataclass(frozen=True)
class RegionInfo:
    capacity: dict[str, Decimal]
    allocated: dict[str, Decimal]
    pricing: WholesalePricing | None


def quota_info(obj: Mapping[str, Any]) -> QuotaInfo:
    status = obj.get("status") or {}
    return QuotaInfo(used=_quantities(status.get("used")), hard=_quantities(status.get("hard")))


def tenant_info(obj: Mapping[str, Any]) -> TenantInfo:
    meta, status = obj["metadata"], read_status(TenantStatus, obj)
    admission = status.admission
    reseller = reseller_from_namespace(meta.get("namespace", "")) or ""
    return TenantInfo(uid=meta.get("uid", ""), reseller=reseller, name=meta["name"],
                      region=admission.region if admission else None,
                      plan=(admission.plan if admission else None) or (obj.get("spec") or {}).get("plan", ""),
                      phase=status.phase or "Pending")


def plan_pricing(obj: Mapping[str, Any]) -> RetailPricing | None:
    try:
        return RetailPricing.model_validate((obj.get("spec") or {}).get("pricing") or {})
    except ValidationError:
        return None


def reseller_info(obj: Mapping[str, Any], region: str) -> ResellerInfo:
    spec, status = obj.get("spec") or {}, read_status(ResellerStatus, obj)
    name = obj["metadata"]["name"]
    licenses = status.licenses
    allotment = None
    for entry in spec.get("regions") or []:
        if entry.get("name") == region:
            allotment = _quota_strings_to_decimals(entry.get("allotment"))
    allocated: dict[str, Decimal] = {}
    if (entry := status.region(region)) is not None:
        allocated = _amounts(entry.allocated)
    spec_licenses = spec.get("licenses", 0)
    return ResellerInfo(
        name=name, licenses_spec=int(spec_licenses) if isinstance(spec_licenses, int) else 0,
        licenses={k: (getattr(licenses, k) or 0) if licenses else 0 for k in ("total", "used", "available")},
        allotment=allotment, allocated=allocated)


def region_info(obj: Mapping[str, Any]) -> RegionInfo:
    spec, status = obj.get("spec") or {}, read_status(RegionStatus, obj)
    try:
        pricing: WholesalePricing | None = WholesalePricing.model_validate(spec.get("pricing") or {})
    except ValidationError:
        pricing = None
    return RegionInfo(capacity=_quota_strings_to_decimals(spec.get("capacity")),
                      allocated=_amounts(status.allocated), pricing=pricing)


# -- list + watch ---------------------------------------------------------------------------------


class Reflector:
    """One kind, listed then watched, into `items` (key -> transformed object)."""

    def __init__(self, client: KubeClient, kind: str, transform: Callable[[dict[str, Any]], Any],
                 on_change: Callable[[str, Any, Any, Any], None], *, label_selector: str | None = None,
                 keep: Callable[[dict[str, Any]], bool] | None = None):
        self.client, self.kind, self.transform = client, kind, transform
        self.on_change, self.label_selector = on_change, label_selector
        self.keep = keep or (lambda obj: True)
        self.items: dict[Any, Any] = {}
        self.synced = asyncio.Event()
        self.health = WatchHealth(kind)

    @staticmethod
    def key(obj: Mapping[str, Any]) -> tuple[str | None, str]:
        meta = obj["metadata"]
        return (meta.get("namespace"), meta["name"])

    def _put(self, obj: dict[str, Any]) -> None:
        key = self.key(obj)
        old = self.items.get(key)
        if not self.keep(obj):
            if old is not None:
                del self.items[key]
                self.on_change(self.kind, key, old, None)
            return
        try:
            new = self.transform(obj)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            self.health.skipped(obj, error)  # the meter cannot read it: logged once, counted
            return
        if new != old:
            self.items[key] = new
            self.on_change(self.kind, key, old, new)

    def _delete(self, obj: Mapping[str, Any]) -> None:
        key = self.key(obj)
        old = self.items.pop(key, None)
        if old is not None:
            self.on_change(self.kind, key, old, None)

    def _relisted(self, items: list[dict[str, Any]]) -> None:
        seen = set()

        def put(item: dict[str, Any]) -> None:
            seen.add(self.key(item))
            self._put(item)

        self.health.each(items, put)
        for key in [k for k in self.items if k not in seen]:
            old = self.items.pop(key)
            self.health.isolate(self.on_change, {"metadata": {"namespace": key[0], "name": key[1]}},
                                self.kind, key, old, None)

    def _event(self, event_type: str, obj: dict[str, Any]) -> None:
        if event_type == "DELETED":
            self._delete(obj)
        else:
            self._put(obj)

    async def run(self) -> None:
        await list_then_watch(self.client, self.kind, on_list=self._relisted, on_event=self._event,
                              label_selector=self.label_selector, on_synced=self.synced.set, health=self.health)


# -- joining them into tenant states --------------------------------------------------------------


@dataclass
class Sampler:
    """The picture of one region, and the tenant states derived from it."""

    region: str
    license_tiers: tuple[Any, ...] = ()
    license_currency: str = "USD"
    on_state: Callable[[str, TenantState | None], None] = lambda uid, state: None
    quotas: dict[str, QuotaInfo] = field(default_factory=dict)  # tenant namespace -> quota
    tenants: dict[tuple[str, str], TenantInfo] = field(default_factory=dict)  # (reseller, tenant)
    plans: dict[tuple[str, str], RetailPricing | None] = field(default_factory=dict)
    resellers: dict[str, ResellerInfo] = field(default_factory=dict)
    region_obj: RegionInfo | None = None
    states: dict[str, TenantState] = field(default_factory=dict)  # uid -> current state
    _uid_of: dict[tuple[str, str], str] = field(default_factory=dict)
    # Until every reflector has listed once, the picture is partial (a Tenant seen before its quota
    # would look idle): states are only collected, and `go_live` hands them over at one instant.
    live: bool = False

    # -- the reflectors' callback ----------------------------------------------------------------

    def changed(self, kind: str, key: tuple[str | None, str], old: Any, new: Any) -> None:
        namespace, name = key
        if kind == "ResourceQuota":
            if name != CHILD_NAME or namespace is None or "--" not in namespace:
                return
            if new is None:
                self.quotas.pop(namespace, None)
            else:
                self.quotas[namespace] = new
            reseller, tenant = namespace.split("--", 1)
            self._refresh([(reseller, tenant)])
        elif kind == TENANT:
            reseller = reseller_from_namespace(namespace or "") or ""
            if new is None:
                self.tenants.pop((reseller, name), None)
            else:
                self.tenants[(reseller, name)] = new
            self._refresh([(reseller, name)])
        elif kind == PLAN:
            reseller = reseller_from_namespace(namespace or "") or ""
            if new is None:
                # Tenants admitted on a Plan the reseller then deleted keep their quota, and keep
                # paying its last prices: a deleted Plan is no reason to bill nothing.
                return
            self.plans[(reseller, name)] = new
            self._refresh([k for k, t in self.tenants.items() if k[0] == reseller and t.plan == name])
        elif kind == RESELLER:
            if new is None:
                self.resellers.pop(name, None)
            else:
                self.resellers[name] = new
            self._refresh([k for k in self.tenants if k[0] == name])
        elif kind == REGION and name == self.region:
            self.region_obj = new
            self._refresh(list(self.tenants))

    def _refresh(self, keys: Iterable[tuple[str, str]]) -> None:
        for key in keys:
            uid = self._uid_of.get(key)
            state = self.state_of(key)
            if uid is not None and (state is None or state.uid != uid):
                self.states.pop(uid, None)
                self._uid_of.pop(key, None)
                if self.live:
                    self.on_state(uid, None)
            if state is not None and self.states.get(state.uid) != state:
                self.states[state.uid] = state
                self._uid_of[key] = state.uid
                if self.live:
                    self.on_state(state.uid, state)

    def go_live(self) -> None:
        """Every reflector has listed: hand every state over, and every change from now on."""
        self.live = True
        for uid, state in list(self.states.items()):
            self.on_state(uid, state)

    def state_of(self, key: tuple[str, str]) -> TenantState | None:
        """The tenant's billable state, or None when it is not an admitted tenant of this region."""
        info = self.tenants.get(key)
        if info is None or info.region != self.region or info.phase not in LICENSED_PHASES or not info.uid:
            return None
        reseller, tenant = key
        quota = self.quotas.get(tenant_namespace(reseller, tenant))
        reseller_obj = self.resellers.get(reseller)
        licenses = reseller_obj.licenses_spec if reseller_obj else 0
        prices = tenant_prices(self.plans.get((reseller, info.plan)),
                               self.region_obj.pricing if self.region_obj else None,
                               license_tier_price(self.license_tiers, licenses), self.license_currency)
        return TenantState(uid=info.uid, reseller=reseller, tenant=tenant, plan=info.plan,
                           active=info.phase == "Active", licensed=True,
                           used=quota.used if quota else dict.fromkeys(RESOURCES, ZERO),
                           hard=quota.hard if quota else dict.fromkeys(RESOURCES, ZERO), prices=prices)

    # -- running ---------------------------------------------------------------------------------

    def reflectors(self, client: KubeClient, usage_client: KubeClient | None = None) -> list[Reflector]:
        """The Tenantry kinds from `client` (the control cluster), the tenants' usage (their quotas)
        from `usage_client`: the region's member cluster (DESIGN.md §7), or the same cluster."""
        region = self.region
        selector = f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_REGION}={region}"
        return [
            Reflector(client, REGION, region_info, self.changed, keep=lambda o: o["metadata"]["name"] == region),
            Reflector(client, RESELLER, lambda o: reseller_info(o, region), self.changed),
            Reflector(client, PLAN, plan_pricing, self.changed),
            Reflector(client, TENANT, tenant_info, self.changed,
                      keep=lambda o: ((o.get("status") or {}).get("admission") or {}).get("region") == region),
            Reflector(usage_client or client, "ResourceQuota", quota_info, self.changed, label_selector=selector,
                      keep=lambda o: o["metadata"]["name"] == CHILD_NAME),
        ]
