"""The region's meter (`tenantry.metering.meter.Meter`) on its event loop, without a cluster: its sampler
is fed what its watches would bring, /metrics is served on loopback, the spool, billing ledger and
checkpoint are real files and the clock is the test's.

Issue 15: closing a window at thousands of tenants is seconds of work; a scrape that comes meanwhile
is answered before the close is done, and counters read right at any moment of it. Whatever the tick
does between scrapes, state changes are billed at their times, and a crash between the spool write
and the checkpoint closes the same window again with the same ids, counted once.
(How long a scrape waits at 10,000 tenants is measured by hack/bench_meter.py, not tested here.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest

from support.meter import FrozenClock
from tenantry.kube import Credentials, KubeClient
from tenantry.metering.ledger import BillingLedger
from tenantry.metering.meter import Meter, MeterConfig
from tenantry.metering.pricing import quantity_of
from tenantry.metering.sampler import Sampler, plan_pricing, quota_info, region_info, reseller_info, tenant_info
from tenantry.metering.sinks import FileSink, Spool
from tenantry.settings import Settings

REGION = "eu-west"
T0 = 1_800_000_000  # on an hour boundary (2027-01-15T08:00:00Z)
HOUR = 3600


def new_meter(spool: Path, clock: Callable[[], float]) -> Meter:
    settings = Settings()
    config = MeterConfig(region=REGION, spool_dir=spool, window=HOUR, port=0, bind_address="127.0.0.1",
                         license_tiers=settings.license_tiers, license_currency=settings.license_currency)
    # No reflector runs (the test feeds the sampler) and no publisher: the client is never called.
    return Meter(config, KubeClient(Credentials(server="https://127.0.0.1:1")),
                 FileSink(spool.parent / "records.jsonl"), clock=clock)


def reseller_of(t: int) -> str:
    return f"rs{t // 50}"


def set_cpu(sampler: Sampler, t: int, cpu: str) -> None:
    """Tenant t's quota usage, as its ResourceQuota's watch event brings it."""
    sampler.changed("ResourceQuota", (f"{reseller_of(t)}--tenant-{t}", "tenantry"), None, quota_info({"status": {
        "used": {"requests.cpu": cpu, "requests.memory": "512Mi", "requests.storage": "1Gi", "pods": "1"},
        "hard": {"requests.cpu": "4", "requests.memory": "4Gi", "requests.storage": "20Gi", "pods": "20"}}}))


def feed(sampler: Sampler, tenants: int) -> None:
    """A region with `tenants` Active tenants using half a core each, 50 per reseller, then live."""
    sampler.changed("Region", (None, REGION), None, region_info({
        "metadata": {"name": REGION},
        "spec": {"capacity": {"cpu": "64000", "memory": "256Ti", "storage": "2Pi", "pods": "2000000"},
                 "pricing": {"currency": "USD", "cpu": "0.020", "memory": "0.0025", "storage": "0.00015"}}}))
    for name in sorted({reseller_of(t) for t in range(tenants)}):
        sampler.changed("Reseller", (None, name), None, reseller_info({
            "metadata": {"name": name}, "spec": {"licenses": 60, "regions": [{"name": REGION}]}}, REGION))
        sampler.changed("Plan", (f"reseller-{name}", "starter"), None, plan_pricing({"spec": {"pricing": {
            "currency": "EUR", "monthly": "19.00", "cpu": "0.05", "memory": "0.006", "storage": "0.0004"}}}))
    for t in range(tenants):
        reseller, name = reseller_of(t), f"tenant-{t}"
        sampler.changed("Tenant", (f"reseller-{reseller}", name), None, tenant_info({
            "metadata": {"name": name, "namespace": f"reseller-{reseller}", "uid": f"uid-{t}"},
            "spec": {"plan": "starter"},
            "status": {"phase": "Active", "namespace": f"{reseller}--{name}",
                       "admission": {"plan": "starter", "region": REGION}}}))
        set_cpu(sampler, t, "500m")
    sampler.go_live()


def counters(text: str) -> dict[str, float]:
    """The per-tenant counters (`*_total`) of a scrape, by series (name and labels as written).
    (The lines are split by hand: prometheus_client's parser takes seconds for 2,000 tenants.)"""
    series = (line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    return {key: float(value) for key, value in series if "_total{" in key and 'tenant="' in key}


async def deliver_and_stop(meter: Meter) -> None:
    assert await meter.deliverer.deliver_pending()  # every batch taken by the file: sink
    await meter.stop()


def delivered(spool: Path) -> list[dict]:
    """What the meter's `file:` sink holds."""
    return [json.loads(line) for line in (spool.parent / "records.jsonl").read_text().splitlines()]


def test_a_scrape_during_a_window_close_is_answered_before_the_close_is_done(tmp_path: Path) -> None:
    clock = FrozenClock(T0)
    tenants = 2000

    async def scenario() -> tuple[str, str, str, bool, int]:
        meter = new_meter(tmp_path / "spool", clock)
        feed(meter.sampler, tenants)
        await meter.tick()
        clock.now = T0 + HOUR - 10
        await meter.tick()  # the last tick in the window
        await meter._serve()
        url = f"http://127.0.0.1:{meter.port}/metrics"
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as response:
                before = await response.text()
            clock.now = T0 + HOUR + 15
            tick = asyncio.create_task(meter.tick())  # closes the window: ~10,000 records
            await asyncio.sleep(0)  # the tick is under way
            async with http.get(url) as response:
                assert response.status == 200
                during = await response.text()
            answered_first = not tick.done()
            added = await tick
            async with http.get(url) as response:
                after = await response.text()
        await deliver_and_stop(meter)
        return before, during, after, answered_first, added

    before, during, after, answered_first, added = asyncio.run(scenario())
    assert answered_first, "the scrape waited for the whole window close"
    assert added >= 4 * tenants  # cpu, memory, storage, base and licence of each tenant (some round to 0)
    # Every tenant's series at every moment, and no counter goes back (Prometheus would see a reset):
    # a tenant is either still in the open window or closed into its charges, never half-way.
    first, middle, last = counters(before), counters(during), counters(after)
    assert first.keys() == middle.keys() == last.keys() and len(first) >= 6 * tenants
    for key, value in middle.items():
        # closed amounts are rounded to 0.000001 a record, 5 records a tenant
        assert first[key] - 1e-5 <= value <= last[key] + 1e-5, key


def test_state_changes_while_the_meter_is_busy_are_billed_at_their_times(tmp_path: Path) -> None:
    clock = FrozenClock(T0)
    spool = tmp_path / "spool"
    meter = new_meter(spool, clock)

    async def scenario() -> list[int]:
        feed(meter.sampler, 2000)
        await meter.tick()
        # After the window's end, before the tick: the change waits (applying it would close the
        # window at once, for every tenant, inside a watch event).
        clock.now = T0 + HOUR + 10
        set_cpu(meter.sampler, 0, "3")
        assert meter.integrator.window_start == T0 and not meter.outbox and len(meter.held) == 1
        # While the tick closes the window, at the same moment of the clock, more changes.
        clock.now = T0 + HOUR + 20
        tick = asyncio.create_task(meter.tick())
        changed: list[int] = []
        while not tick.done():
            if len(changed) < 1000:
                changed.append(len(changed) + 1)
                set_cpu(meter.sampler, changed[-1], "3")
            await asyncio.sleep(0)
        await tick
        clock.now = T0 + 2 * HOUR + 5
        await meter.tick()  # closes the second window
        await deliver_and_stop(meter)
        return changed

    changed = asyncio.run(scenario())
    assert len(changed) > 1, "the tick never let a watch event in"
    cpu = {(r["data"]["tenantUID"], r["data"]["windowStart"]): r["data"]["quantity"]
           for r in delivered(spool) if r["data"]["meter"] == "cpu"}
    first, second = "2027-01-15T08:00:00Z", "2027-01-15T09:00:00Z"
    half, three = Decimal("0.5"), Decimal(3)

    def expected(seconds_at_half: int) -> str:
        return str(quantity_of("cpu", half * seconds_at_half + three * (HOUR - seconds_at_half)))

    assert cpu[("uid-0", first)] == str(quantity_of("cpu", half * HOUR))  # the change came after the window
    assert cpu[("uid-0", second)] == expected(10)
    for tenant in changed:
        assert cpu[(f"uid-{tenant}", first)] == "0.500000000"
        assert cpu[(f"uid-{tenant}", second)] == expected(20), tenant
    assert cpu[("uid-1999", second)] == "0.500000000"  # never changed


def test_a_crash_between_the_spool_and_the_checkpoint_closes_the_same_window_once_more(tmp_path: Path) -> None:
    clock = FrozenClock(T0 + 1800)
    spool = tmp_path / "spool"
    blocker = spool / ".checkpoint.json.tmp"  # where the checkpoint is written before its rename

    async def crash() -> None:
        meter = new_meter(spool, clock)
        feed(meter.sampler, 120)
        await meter.tick()
        blocker.mkdir()  # the checkpoint cannot be written: the meter dies right there
        clock.now = T0 + HOUR + 15
        with pytest.raises(OSError):
            await meter.tick()
        await meter.client.close()  # no stop(): a dead process writes nothing more

    asyncio.run(crash())
    spooled = {r["id"]: r for path in Spool(spool).batches() for r in Spool.read(path)}
    assert len(spooled) >= 4 * 120  # durably in the spool before the checkpoint
    assert json.loads((spool / "checkpoint.json").read_text())["windowStart"] == T0  # which did not move
    assert BillingLedger.load(spool, REGION).through == T0 + HOUR  # nor did it wait for the checkpoint
    blocker.rmdir()

    restarted = new_meter(spool, clock)  # from the last checkpoint: the window is open again

    async def restart() -> int:
        feed(restarted.sampler, 120)
        added = await restarted.tick()
        await deliver_and_stop(restarted)
        return added

    assert asyncio.run(restart()) == 0  # closed again: every record is the same, already waiting
    assert json.loads((spool / "checkpoint.json").read_text())["windowStart"] == T0 + HOUR
    records = delivered(spool)
    assert sorted(r["id"] for r in records) == sorted(spooled) and {r["id"]: r for r in records} == spooled
    once = BillingLedger(REGION)
    once.absorb(spooled.values())
    assert BillingLedger.load(spool, REGION).months == once.months  # the second close was not counted
