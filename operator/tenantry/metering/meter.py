"""The running meter of one Region: sampler -> integrator -> spool -> sink, plus /metrics.

One asyncio loop does everything, so the collector reads the integrator without locks. The order
of a tick is what makes a crash harmless: (1) integrate up to now, closing windows; (2) put the
closed windows' records durably in the spool; (3) only then write the checkpoint of the open
window. A crash before (3) restarts from the previous checkpoint and closes the same windows again,
with the same record ids; the spool and the receivers drop the duplicates by id.

The loop also answers /metrics, so a tick must never hold it for long (issue 15: a window close
at 10,000 tenants is ~47,600 records and seconds of work; a checkpoint is ~10 MiB, every tick).
So a tick does its work on the loop in slices of at most `SLICE` seconds, letting scrapes and
watch events in between, and writes and fsyncs files in a thread, with bytes encoded on the loop
(the thread waits for the disk without the GIL; Python work in a thread would still take the
loop's CPU, and one big `json.dumps` holds the GIL from start to end). Two ticks never overlap: a
tick slower than the interval delays the next. While a tick works on the integrator, state
changes wait, with their time, and are integrated right after at that time: billing is exact, and
(1)-(3) keep their order. A change that comes after the open window's end waits for the tick as
well, which closes the window in slices (applying it would close the window at once).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from tenantry import watch_health
from tenantry.kube import KubeClient
from tenantry.metering.billing import BillingPublisher
from tenantry.metering.exporter import DeliveryStats, MeteringCollector
from tenantry.metering.integrator import Integrator, TenantState
from tenantry.metering.ledger import BillingLedger, Tally
from tenantry.metering.sampler import Reflector, Sampler
from tenantry.metering.sinks import Deliverer, Sink, Spool, write_atomically

log = logging.getLogger("tenantry.meter")

CHECKPOINT = "checkpoint.json"
# Longest stretch of a tick's work on the event loop before it lets a scrape or a watch event in.
SLICE = 0.02


@dataclass(frozen=True)
class MeterConfig:
    region: str
    spool_dir: Path
    interval: float = 15.0
    window: int = 3600
    port: int = 9100
    bind_address: str = "0.0.0.0"
    license_tiers: Sequence[Any] = ()
    license_currency: str = "USD"
    sync_timeout: float = 120.0


class Meter:
    def __init__(self, config: MeterConfig, client: KubeClient, sink: Sink, *,
                 clock: Callable[[], float] = time.time, usage_client: KubeClient | None = None):
        self.config, self.client, self.sink, self.clock = config, client, sink, clock
        self.usage_client = usage_client  # the region's member cluster, when it is one (DESIGN.md §7)
        config.spool_dir.mkdir(parents=True, exist_ok=True)
        self.spool = Spool(config.spool_dir)
        self.checkpoint_path = config.spool_dir / CHECKPOINT
        self.integrator = self._restore()
        self.sampler = Sampler(region=config.region, license_tiers=tuple(config.license_tiers),
                               license_currency=config.license_currency, on_state=self._on_state)
        self.stats = DeliveryStats(sink=sink.label)
        self.deliverer = Deliverer(self.spool, sink, on_result=self.stats.record)
        self.reflectors: list[Reflector] = []
        self.collector = MeteringCollector(config.region, self.integrator, self.sampler, self.stats,
                                           spool_size=lambda: len(self.spool),
                                           watches=lambda: [r.health for r in self.reflectors])
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        self.outbox: list[dict[str, Any]] = []  # records of closed windows, not yet spooled
        # State changes waiting for the integrator, with their time (see the module's docstring).
        self.held: collections.deque[tuple[float, str, TenantState | None]] = collections.deque()
        self._holding = False  # a tick is working on the integrator
        self._ticking = asyncio.Lock()
        # What resellers may read of their own billing (metering/ledger.py), published by the publisher.
        self.ledger = BillingLedger.load(config.spool_dir, config.region)
        self.publisher = BillingPublisher(client, self.ledger)
        self.ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # -- state -----------------------------------------------------------------------------------

    def _restore(self) -> Integrator:
        if self.checkpoint_path.exists():
            data = json.loads(self.checkpoint_path.read_text())
            if data.get("region") != self.config.region:
                raise RuntimeError(f"{self.checkpoint_path} is the checkpoint of region {data.get('region')!r}, "
                                   f"not {self.config.region!r}: give each region's meter its own --spool")
            integrator = Integrator.from_json(data, window_seconds=self.config.window)
            log.info("Meter of region %s resumed window %d with %d tenants from %s.", self.config.region,
                     integrator.window_start, len(integrator.accounts), self.checkpoint_path)
            return integrator
        return Integrator(self.config.region, self.config.window, self.clock())

    def _on_state(self, uid: str, state: TenantState | None) -> None:
        self.held.append((self.clock(), uid, state))
        if not self._holding:
            self._apply_held()

    def _apply_held(self) -> None:
        """Integrates the waiting state changes, in order, up to the first that comes after the open
        window's end: the tick closes that window first."""
        while self.held and not self.integrator.crosses(self.held[0][0]):
            at, uid, state = self.held.popleft()
            self.outbox.extend(self.integrator.set_state(at, uid, state))

    async def tick(self) -> int:
        """Integrate to now, spool closed windows, checkpoint the open one; returns records spooled."""
        async with self._ticking:
            with _no_collection():  # the tick's records are freed on its return, before this ends
                return await self._tick()

    async def _tick(self) -> int:
        pause = _Pause(SLICE)
        records, window_start, checkpoint = await self._integrate(pause)
        try:
            added = await self.spool.add(records)
        except BaseException:
            self.outbox[:0] = records  # the next tick spools them again; no checkpoint moves past them
            raise
        self.stats.spooled += added
        if added:
            self.deliverer.wake()
        # Before the checkpoint: a crash in between closes the window again, which the ledger skips.
        await self._take_in(records, window_start, pause)
        await asyncio.to_thread(write_atomically, self.checkpoint_path, checkpoint)
        return added

    async def _integrate(self, pause: _Pause) -> tuple[list[dict[str, Any]], int, bytes]:
        """Integrates up to now, with the waiting state changes at their times; returns, of one
        moment, the records of the windows closed (taken out of the outbox), the open window's
        start, and the integrator's checkpoint."""
        now = self.clock()
        self._holding = True
        try:
            while True:
                self._apply_held()
                closing = bool(self.held) or self.integrator.crosses(now)  # a change waits after the window end
                for step in self.integrator.advancing(self.integrator.window_end if closing else now):
                    self.outbox.extend(step)
                    await pause()
                if not closing:
                    break
            parts = []
            for part in self.integrator.checkpoint_parts():
                parts.append(part)
                await pause()
            records, self.outbox = self.outbox, []
            return records, self.integrator.window_start, "".join(parts).encode()
        finally:
            self._holding = False
            self._apply_held()

    async def _take_in(self, records: list[dict[str, Any]], window_start: int, pause: _Pause) -> None:
        """The records into the billing ledger, which then runs to `window_start`; saved if changed."""
        closed = self.ledger.through
        tally = Tally(closed)
        for record in records:
            tally.add(record)
            await pause()
        for _ in self.ledger.taking(tally):
            await pause()
        self.ledger.advance(window_start)
        if self.ledger.through != closed:
            self.publisher.wake()
        if self.ledger.unsaved and self.ledger.path is not None:
            self.ledger.unsaved = False  # what changes from here on is saved next time
            parts = []
            for part in self.ledger.json_parts():  # of this moment, whatever the publisher does meanwhile
                parts.append(part)
                await pause()
            try:
                await asyncio.to_thread(write_atomically, self.ledger.path, "".join(parts).encode())
            except BaseException:
                self.ledger.unsaved = True
                raise

    # -- running ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self.reflectors = reflectors = self.sampler.reflectors(self.client, self.usage_client)
        self._tasks = [asyncio.create_task(r.run(), name=f"reflector-{r.kind}") for r in reflectors]
        await asyncio.wait_for(asyncio.gather(*(r.synced.wait() for r in reflectors)),
                               timeout=self.config.sync_timeout)
        # The whole picture at once: a restored window is billed at its last states up to here.
        # Tenants in the checkpoint that are no longer here went away while the meter was down.
        self.sampler.go_live()
        for uid, _account in self.integrator.live():
            if uid not in self.sampler.states:
                self._on_state(uid, None)
        await self.tick()
        self._tasks.append(asyncio.create_task(self.deliverer.run(), name="deliverer"))
        self._tasks.append(asyncio.create_task(self.publisher.run(), name="billing-publisher"))
        self._tasks.append(asyncio.create_task(self._tick_forever(), name="ticker"))
        if self.config.port >= 0:
            await self._serve()
        self.ready.set()
        log.info("Meter of region %s is running: %d tenants, window %ds, sink %s, metrics on %s:%s.",
                 self.config.region, len(self.sampler.states), self.config.window, self.sink.label,
                 self.config.bind_address, self.port)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.interval)  # after the tick: a slow tick delays the next
            try:
                await self.tick()
            except OSError as error:  # a full disk must not stop metering; the next tick tries again
                log.error("Meter tick could not write the spool or checkpoint: %s", error)

    async def _serve(self) -> None:
        async def metrics(_request: web.Request) -> web.Response:
            body = self.collector.render_text()  # the same samples as generate_latest(self.registry), faster
            return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

        async def healthz(_request: web.Request) -> web.Response:
            # A meter whose watches keep failing bills a frozen picture: its probes must see that.
            problems = watch_health.problems(r.health for r in self.reflectors)
            if problems:
                return web.Response(status=503, text="; ".join(problems) + "\n")
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/healthz", healthz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.bind_address, self.config.port)
        await site.start()
        addresses = self._runner.addresses  # the bound (host, port): --port 0 picks a free one
        self.port = int(addresses[0][1]) if addresses else self.config.port

    async def stop(self) -> None:
        """Graceful stop: integrate to now and checkpoint, so a planned restart loses nothing either."""
        async with self._ticking:  # a tick under way ends first: none is cancelled half-way
            for task in self._tasks:
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(OSError):
            await self.tick()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.deliverer.deliver_pending(), timeout=5)
        if self._runner is not None:
            await self._runner.cleanup()
        await self.sink.close()
        await self.client.close()
        if self.usage_client is not None:
            await self.usage_client.close()

    async def run_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block. A window close at 10,000 tenants makes
    ~47,600 records (~190,000 dicts) that live until they are spooled: enough new objects to set off
    full collections, each going through every object of the process (the tenants' states and
    caches as well): 0.3-0.9 s, with the event loop stopped (hack/bench_meter.py). The records hold
    no reference cycles; they are freed by their reference counts at the end of the tick all the
    same. What cyclic garbage the loop makes meanwhile waits for the tick's end."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Pause:
    """`await pause()` after each small step of a long piece of work on the event loop: it lets the
    loop serve (scrapes, watch events) once the work has held it for `slice_seconds`.

    It sleeps a millisecond rather than `sleep(0)`: a task resumed by `sleep(0)` is first in line at
    the loop's next turn, ahead of the request that has just come in, so a scrape waited two or
    three slices (aiohttp takes a few turns to start a handler); a timer puts the work behind them."""

    def __init__(self, slice_seconds: float):
        self.slice_seconds = slice_seconds
        self.until = time.perf_counter() + slice_seconds

    async def __call__(self) -> None:
        if time.perf_counter() >= self.until:
            await asyncio.sleep(0.001)
            self.until = time.perf_counter() + self.slice_seconds
