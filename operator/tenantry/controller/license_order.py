"""Reconciling LicenseOrders: decide each once, add its licences to the reseller, bill it exactly once.

A reseller's admins create an order (`spec.quantity`) in their control namespace. The operator:
1. decides it at once with `tenantry.licensing.decide_order` (Fulfilled within the reseller's
   self-service limit for the calendar month, else Rejected with a reason and what to do) and
   remembers the decision in its OrderBook before anything awaits, so two orders racing for the
   last licences of the month are decided one after the other;
2. writes the decision, the price and the pending billing record in the order's status in one write
   (`status.billing.order: {id, sent: false}`): the status is the outbox;
3. wakes the reseller (its `status.licenses.total = spec.licenses + purchased`) and the tenants
   waiting for a licence;
4. `LicenseOutbox` sends every pending record to the platform's sink (the meter's `file:` or
   `http(s)` sinks) in one batch, and marks each sent (`sent: true`) once the sink took it.

Why the outbox is the order's status and not a spool on the operator's disk: the decision and its
pending record are one write, so no crash can separate them; nothing is lost when the operator's
pod is rescheduled or has no volume, and a second replica would find the same outbox; only the
operator (and platform admins) may write an order's status. A crash between the sink's 2xx and
the `sent: true` write sends the record again, with the same id, which sinks drop (as for the
meter's spool).

A platform admin deleting a Fulfilled order refunds it: behind the `tenantry.dev/finalizer`
finalizer, `finalize_license_order` writes phase Refunded with a pending refund record, and lets the
order go only once the sink has taken it. The licences leave `status.licenses.total` with that
write; admission is sticky (nobody is evicted; over-use shows as LicensesOverused). An order
whose Reseller is itself being deleted goes without a refund: the reseller's account is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tenantry import licensing
from tenantry.conditions import Condition, now_rfc3339
from tenantry.controller.context import Key, Operator, publish_status
from tenantry.controller.finalizers import add_finalizer, being_deleted, has_finalizer, remove_finalizer
from tenantry.controller.specs import INVALID_SPEC, read_spec, reseller_terms
from tenantry.kube import ApiError
from tenantry.metering.sinks import Sink, SinkError, parse_sink
from tenantry.models import ResellerSpec
from tenantry.naming import LICENSE_ORDER, RESELLER, TENANT, reseller_from_namespace, reseller_namespace
from tenantry.pacing import RetryPacer

log = logging.getLogger("tenantry.licenseorder")

ORDERS = Counter("tenantry_license_orders_total", "LicenseOrders decided or refunded, by reseller, tier and result "
                 "(fulfilled, rejected, refunded)", ["reseller", "tier", "result"])
LICENSES = Counter("tenantry_license_order_licenses_total", "Licences in LicenseOrders, by reseller, tier and result",
                   ["reseller", "tier", "result"])
REVENUE = Counter("tenantry_license_revenue_total", "Amount of fulfilled LicenseOrders (refunds not deducted; see "
                  "tenantry_license_refunds_total)", ["reseller", "tier", "currency"])
REFUNDS = Counter("tenantry_license_refunds_total", "Amount refunded for deleted LicenseOrders",
                  ["reseller", "tier", "currency"])
RECORDS = Counter("tenantry_license_billing_records_total", "Order and refund records offered to the sink, by result "
                  "(delivered, failed)", ["sink", "result"])

# Families SelfServiceCollector builds at scrape time (tests/chart check dashboards and alerts against them).
SCRAPE_TIME_METRICS = ("tenantry_reseller_self_service_licenses",)

# How long a deletion waits for its refund record to reach the sink before it is looked at again.
REFUND_WAIT = 10.0
REFUND_RETRY_SECONDS = 5.0  # a deletion whose refund record waits for the sink looks again this often


class RefundPending(Exception):
    """The refund record of a deleted order has not reached the sink yet; the deletion is retried."""


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _rfc3339(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _reseller_spec(op: Operator, reseller: str) -> ResellerSpec | None:
    body = op.store.get(RESELLER, reseller)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return None
    spec, _ = read_spec(RESELLER, body)
    return spec


def effective_limit(op: Operator, spec: ResellerSpec | None) -> int:
    policy = spec.license_policy.self_service_limit if spec is not None and spec.license_policy else None
    return licensing.self_service_limit(policy, op.settings.license_orders.self_service_limit)


def licence_fields(op: Operator, reseller: str, spec: ResellerSpec, used: int) -> dict[str, Any]:
    """`status.licenses` of a Reseller: total = the platform's grant + licences bought (not refunded)."""
    purchased = op.orders.purchased(reseller)
    total = spec.licenses + purchased
    return {"total": total, "purchased": purchased, "used": used, "available": max(total - used, 0),
            "selfServiceLimit": effective_limit(op, spec),
            "purchasedThisMonth": op.orders.fulfilled_in_month(reseller, _utcnow())}


def licenses_changed(op: Operator, reseller: str) -> None:
    """Purchased licences changed: admission sees the new total now; the reseller's status and the
    tenants waiting for a licence are looked at again."""
    body = op.store.get(RESELLER, reseller)
    spec = _reseller_spec(op, reseller)
    if body is not None and spec is not None:
        op.book.set_reseller(reseller_terms(body, spec, purchased=op.orders.purchased(reseller)))
    keys: list[Key] = [(RESELLER, None, reseller)]
    keys += [(TENANT, reseller_namespace(c.reseller), c.name) for c in op.book.waiting(reseller)]
    op.enqueue(keys)


# -- watch events ----------------------------------------------------------------------------------


def observe_order(op: Operator, event_type: str, obj: Mapping[str, Any], _old: Mapping[str, Any] | None) -> None:
    """Take one watch event of a LicenseOrder (already in the Store: its informer) into the OrderBook."""
    meta = obj["metadata"]
    namespace, name, uid = meta.get("namespace") or "", meta["name"], meta.get("uid", "")
    reseller = reseller_from_namespace(namespace) or ""
    before = op.orders.entry(uid)
    if event_type == "DELETED":
        op.orders.forget(uid)
    else:
        op.orders.observe(uid, licensing.entry_from_status(reseller, obj))
    after = op.orders.entry(uid)
    counted = {licensing.FULFILLED}
    if (before is not None and before.phase in counted) != (after is not None and after.phase in counted):
        licenses_changed(op, reseller)
    if event_type != "DELETED" and ((being_deleted(obj) and has_finalizer(obj))
                                    or (after is None and not being_deleted(obj))):
        op.enqueue([(LICENSE_ORDER, namespace, name)])  # to be decided, or refunded behind the finalizer
    if op.outbox is not None and _pending_kinds(obj):
        op.outbox.wake()


def undecided_orders(op: Operator) -> list[Key]:
    return [(LICENSE_ORDER, o["metadata"].get("namespace"), o["metadata"]["name"])
            for o in op.store.list(LICENSE_ORDER)
            if licensing.entry_from_status("", o) is None and op.orders.entry(o["metadata"].get("uid", "")) is None]


# -- deciding --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Decided:
    """A decision not yet written: what the status write needs if it must be tried again."""

    decision: licensing.Decision
    price: licensing.Quote | None
    quantity: int
    at: str


async def reconcile_license_order(op: Operator, namespace: str, name: str) -> None:
    body = op.store.get(LICENSE_ORDER, name, namespace)
    if body is None:
        return
    if being_deleted(body):
        if has_finalizer(body):
            try:
                await finalize_license_order(op, body)
            except RefundPending as pending:
                log.info("%s Looking again in %.0f s.", pending, REFUND_RETRY_SECONDS)
                op.enqueue_one(LICENSE_ORDER, namespace, name, delay=REFUND_RETRY_SECONDS)
                return
            await remove_finalizer(op, LICENSE_ORDER, op.store.get(LICENSE_ORDER, name, namespace) or body)
        return
    meta = body["metadata"]
    uid = meta.get("uid", "")
    reseller = reseller_from_namespace(namespace) or namespace
    if licensing.entry_from_status(reseller, body) is not None:
        # Decided once, for good: a spec edited afterwards is not priced again. Only its billing
        # record may still be on its way (LicenseOutbox).
        return
    decided = op.orders.decisions.get(uid)
    if decided is None:
        decided = _decide(op, body, reseller)
        if decided.decision.phase in (licensing.FULFILLED, licensing.REJECTED):
            op.orders.record(licensing.OrderEntry(uid, reseller, name, decided.decision.phase, decided.quantity,
                                                  decided.at if decided.decision.phase == licensing.FULFILLED
                                                  else ""))
        op.orders.decisions[uid] = decided
    fulfilled = decided.decision.phase == licensing.FULFILLED
    if fulfilled and not has_finalizer(body):
        # The finalizer comes before the licences: a fulfilled order deleted without it would take
        # its licences away with no refund record.
        body = await add_finalizer(op, LICENSE_ORDER, body)
    fields: dict[str, Any] = {"phase": decided.decision.phase, "quantity": decided.quantity}
    if decided.price is not None:
        fields["price"] = decided.price.to_status()
    if fulfilled:
        fields["fulfilledAt"] = decided.at
        fields["billing"] = {licensing.ORDER: {"id": licensing.record_id(licensing.ORDER, uid), "sent": False}}
    await publish_status(op, body, fields, [Condition("Ready", fulfilled, decided.decision.reason,
                                                      decided.decision.message)])
    op.orders.decisions.pop(uid, None)
    tier = decided.price.tier if decided.price else ""
    result = decided.decision.phase.lower()
    ORDERS.labels(reseller=reseller, tier=tier, result=result).inc()
    LICENSES.labels(reseller=reseller, tier=tier, result=result).inc(decided.quantity)
    if fulfilled and decided.price is not None:
        REVENUE.labels(reseller=reseller, tier=tier, currency=decided.price.currency).inc(float(decided.price.amount))
    log.info("LicenseOrder %s/%s was %s: %s", namespace, name, result, decided.decision.message)
    if fulfilled:
        licenses_changed(op, reseller)
        if op.outbox is not None:
            op.outbox.wake()


def _decide(op: Operator, body: Mapping[str, Any], reseller: str) -> _Decided:
    """The decision for an undecided order: pure inputs gathered here, decided by tenantry.licensing."""
    now = _utcnow()
    at = _rfc3339(now)
    spec, problem = read_spec(LICENSE_ORDER, body)
    if spec is None:
        return _Decided(licensing.Decision(licensing.REJECTED, INVALID_SPEC, problem or "The order is invalid."),
                        None, 0, at)
    settings = op.settings.license_orders
    price = licensing.quote(spec.quantity, settings.tiers, settings.currency)
    reseller_spec = _reseller_spec(op, reseller)
    decision = licensing.decide_order(
        spec.quantity, op.orders.fulfilled_in_month(reseller, now), effective_limit(op, reseller_spec),
        reseller_spec.active if reseller_spec is not None else None, reseller=reseller, now=now, price=price)
    return _Decided(decision, price, spec.quantity, at)


# -- refunds ---------------------------------------------------------------------------------------


async def finalize_license_order(op: Operator, body: Mapping[str, Any]) -> None:
    """Behind the finalizer: refund a fulfilled order, and let it go once its records reached the sink."""
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    # This runs as the order's own reconcile, which the work queue never runs twice at once: no
    # decision of this order is in flight. Its latest status, not the cached one: a refund is money.
    based_on = op.store.version(LICENSE_ORDER, name, namespace)
    live = await op.client.get(LICENSE_ORDER, name, namespace)
    if live is None or live["metadata"].get("uid") != meta.get("uid"):
        return
    op.store.written(LICENSE_ORDER, live, based_on=based_on)
    reseller = reseller_from_namespace(namespace) or namespace
    status = live.get("status") or {}
    if status.get("phase") == licensing.FULFILLED:
        if _reseller_spec(op, reseller) is None:
            log.info("LicenseOrder %s/%s went with its reseller %s, without a refund: the account is closed.",
                     namespace, name, reseller)
        else:
            live = await _refund(op, live, reseller)
    if _pending_kinds(live):
        if op.outbox is not None:
            op.outbox.wake()
        if not await _wait_sent(op, namespace, name):
            raise RefundPending(f"The billing records of LicenseOrder {namespace}/{name} wait for the sink; "
                                "the order goes once they are delivered.")


async def _refund(op: Operator, live: dict[str, Any], reseller: str) -> dict[str, Any]:
    meta, status = live["metadata"], dict(live.get("status") or {})
    uid = meta["uid"]
    entry = licensing.entry_from_status(reseller, live)
    if entry is not None:
        op.orders.record(replace(entry, phase=licensing.REFUNDED))  # its licences leave the total now
    quantity, price = status.get("quantity", 0), status.get("price") or {}
    fields = {k: v for k, v in status.items() if k not in ("conditions", "observedGeneration")}
    fields["phase"] = licensing.REFUNDED
    fields["refundedAt"] = now_rfc3339()
    fields["billing"] = {**(status.get("billing") or {}),
                         licensing.REFUND: {"id": licensing.record_id(licensing.REFUND, uid), "sent": False}}
    message = (f"Refunded on deletion: {quantity} licences left reseller {reseller}'s total, and "
               f"{price.get('amount', '0')} {price.get('currency', '')} is credited.")
    await publish_status(op, live, fields, [Condition("Ready", True, licensing.REFUNDED, message)])
    tier = price.get("tier", "")
    ORDERS.labels(reseller=reseller, tier=tier, result="refunded").inc()
    LICENSES.labels(reseller=reseller, tier=tier, result="refunded").inc(quantity)
    with contextlib.suppress(ValueError, ArithmeticError):
        REFUNDS.labels(reseller=reseller, tier=tier, currency=price.get("currency", "")).inc(
            float(price.get("amount", "0")))
    log.info("LicenseOrder %s/%s was refunded: %s", meta["namespace"], meta["name"], message)
    licenses_changed(op, reseller)
    return op.store.get(LICENSE_ORDER, meta["name"], meta["namespace"]) or live


async def _wait_sent(op: Operator, namespace: str, name: str) -> bool:
    deadline = asyncio.get_running_loop().time() + REFUND_WAIT
    while asyncio.get_running_loop().time() < deadline:
        current = op.store.get(LICENSE_ORDER, name, namespace)
        if current is None or not _pending_kinds(current):
            return True
        await asyncio.sleep(0.1)
    return False


# -- the outbox ------------------------------------------------------------------------------------


def _pending_kinds(obj: Mapping[str, Any]) -> list[str]:
    billing = (obj.get("status") or {}).get("billing") or {}
    return [kind for kind in (licensing.ORDER, licensing.REFUND)
            if isinstance(billing.get(kind), Mapping) and billing[kind].get("sent") is False]


@dataclass(frozen=True)
class _Pending:
    kind: str
    namespace: str
    name: str
    record: dict[str, Any]


class LicenseOutbox:
    """Sends the order and refund records waiting in LicenseOrder statuses, oldest first, in one batch
    per round, with back-off while the sink fails; marks each sent once the sink took it."""

    def __init__(self, op: Operator, sink: Sink, *, max_backoff: float = 60.0, initial_backoff: float = 1.0):
        self.op, self.sink = op, sink
        self.pacer = RetryPacer(initial_backoff, max_backoff)
        # Records the sink took whose `sent: true` is not written yet: not sent again meanwhile.
        self._delivered: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, op: Operator) -> LicenseOutbox:
        settings = op.settings.license_orders
        return cls(op, parse_sink(settings.sink or op.settings.metering.sink), max_backoff=settings.retry_max_seconds)

    def wake(self) -> None:
        self.pacer.wake()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="license-outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.sink.close()

    def pending(self) -> list[_Pending]:
        found = []
        for obj in self.op.store.list(LICENSE_ORDER):
            meta = obj["metadata"]
            reseller = reseller_from_namespace(meta.get("namespace") or "") or ""
            for kind in _pending_kinds(obj):
                try:
                    record = licensing.billing_record(kind, reseller, obj)
                except (KeyError, TypeError, ArithmeticError) as error:
                    log.error("LicenseOrder %s/%s has a %s record that cannot be built: %s", meta.get("namespace"),
                              meta["name"], kind, error)
                    continue
                found.append(_Pending(kind, meta["namespace"], meta["name"], record))
        # Oldest first; an order before its own refund.
        return sorted(found, key=lambda p: (p.record["time"] or "", p.kind != licensing.ORDER, p.record["id"]))

    async def deliver_pending(self) -> bool:
        """One round: send what waits (one batch), then mark it sent. False when something failed."""
        waiting = self.pending()
        fresh = [p for p in waiting if p.record["id"] not in self._delivered]
        if fresh:
            try:
                await self.sink.send([p.record for p in fresh])
            except SinkError as error:
                RECORDS.labels(sink=self.sink.label, result="failed").inc(len(fresh))
                log.warning("Sink %s refused %d licence order records; they wait in the orders' status: %s",
                            self.sink.label, len(fresh), error)
                return False
            RECORDS.labels(sink=self.sink.label, result="delivered").inc(len(fresh))
            self._delivered.update(p.record["id"] for p in fresh)
        ok = True
        for item in waiting:
            try:
                based_on = self.op.store.version(LICENSE_ORDER, item.name, item.namespace)
                result = await self.op.client.merge_patch(
                    LICENSE_ORDER, item.name, {"status": {"billing": {item.kind: {"sent": True,
                                                                                  "sentAt": now_rfc3339()}}}},
                    namespace=item.namespace, subresource="status")
                self.op.store.written(LICENSE_ORDER, result, based_on=based_on)
            except ApiError as error:
                if not error.not_found:
                    log.warning("Could not mark the %s record of LicenseOrder %s/%s as sent: %s", item.kind,
                                item.namespace, item.name, error)
                    ok = False
                    continue
            self._delivered.discard(item.record["id"])
        return ok

    async def _run(self) -> None:
        while True:
            try:
                ok = await self.deliver_pending()
            except asyncio.CancelledError:
                raise
            except Exception:  # the outbox must outlive any one bad round
                log.exception("Delivering licence order records failed; trying again.")
                ok = False
            await self.pacer.pause(ok)


# -- metrics read at scrape time ---------------------------------------------------------------------


class SelfServiceCollector(Collector):
    """`tenantry_reseller_self_service_licenses{reseller,state=limit|purchased}`: each reseller's
    self-service limit and the licences it bought this calendar month (UTC), read when scraped, so
    that a new month starts at zero without anything happening."""

    def __init__(self, op: Operator):
        self.op = op

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("tenantry_reseller_self_service_licenses",
                                   "A reseller's self-service licence limit per calendar month, and the licences it "
                                   "bought this month", labels=["reseller", "state"])
        now = _utcnow()
        for body in list(self.op.store.list(RESELLER)):
            name = body["metadata"]["name"]
            spec = _reseller_spec(self.op, name)
            if spec is None:
                continue
            family.add_metric([name, "limit"], effective_limit(self.op, spec))
            family.add_metric([name, "purchased"], self.op.orders.fulfilled_in_month(name, now))
        yield family


def register_collector(op: Operator) -> SelfServiceCollector:
    collector = SelfServiceCollector(op)
    REGISTRY.register(collector)
    return collector


def unregister_collector(collector: SelfServiceCollector) -> None:
    with contextlib.suppress(KeyError):
        REGISTRY.unregister(collector)

