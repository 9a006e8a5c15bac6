#!/usr/bin/env python3
"""Scrape time and memory of a region's meter with N synthetic tenants (issue 5's closing note), and
how long a scrape waits while the meter ticks and closes a window (issue 15).

    .venv/bin/python hack/bench_meter.py                 # 1,000 and 10,000 tenants
    .venv/bin/python hack/bench_meter.py --tenants 50000
    .venv/bin/python hack/bench_meter.py --part ticking  # only the scrapes during ticks

Each size runs in a fresh interpreter so that resident memory is the meter's own. The picture is
what the sampler builds from watches (tenants, quotas, plans, resellers, the
region), fed through the real `Sampler.changed` -> `Integrator.set_state` path, with one hour of
integration done; then it times what the meter does on its hot paths:
- a scrape: `MeteringCollector.render_text` (what the meter's /metrics serves, what Prometheus
  waits for), with a tick (every tenant integrated 15 s further, untimed) before each scrape as the
  running meter does every sample interval, so every counter and charge has changed since the last
  scrape; the first scrape also fills the per-tenant text caches (it is in "scrape max"); and once
  `generate_latest` over the same collector (prometheus_client's generic path, "generic");
- a tick: integrating every tenant to now, and writing the window checkpoint (atomic, fsynced);
- a window close: one record per tenant and non-zero meter.
No cluster is needed; the numbers are the meter's CPU and memory cost, not the apiserver's.

"Scrapes while ticking" (issue 15: a scrape must not wait long while a window closes) runs the real
`Meter`, fed the same synthetic region, with its real /metrics on 127.0.0.1, a spool, ledger and
checkpoint in a temporary directory, a `file:` sink (its deliverer running) and a clock the bench
moves. A scraper in a process of its own (as Prometheus is) GETs /metrics over one kept-alive
connection, 50 ms after each answer, and records when each scrape started and ended. Meanwhile the
meter runs a plain tick (15 s later in the window: integrate, checkpoint) and then the tick that
closes the window (all records spooled and fsynced, the billing ledger, the checkpoint), each
awaited as the meter's ticker does. Reported: the median and worst scrape of the quiet seconds
before; each tick's duration and the worst scrape that overlapped it (what Prometheus waited; for
the close, the median too); and the worst scrape started in the seconds after the close, while the
deliverer moves the records to the sink. Then, with the scraper gone, the same two ticks again (the
next window's close) with a task that only yields on the loop: the longest gap between its turns is
the longest the tick held the loop ("held"), what a scrape arriving then waits before it is even
read; it moves less with the load of the machine than the scrape figures do. Those two ticks'
durations are reported last ("unscraped ticks").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def synthetic_region(sampler: Any, region: str, tenants: int) -> int:
    """Feeds `sampler` the picture its watches would build of a region with `tenants` tenants (and
    one reseller per 50, each with a Plan), through `Sampler.changed`; returns the resellers' count."""
    from tenantry.metering.sampler import plan_pricing, quota_info, region_info, reseller_info, tenant_info

    resellers = max(1, tenants // 50)
    sampler.changed("Region", (None, region), None, region_info({
        "metadata": {"name": region},
        "spec": {"capacity": {"cpu": "64000", "memory": "256Ti", "storage": "2Pi", "pods": "2000000"},
                 "pricing": {"currency": "USD", "cpu": "0.020", "memory": "0.0025", "storage": "0.00015"}},
        "status": {"allocated": {"cpu": "16000", "memory": "64Ti", "storage": "500Ti", "pods": "400000"}}}))
    for r in range(resellers):
        name = f"rs{r}"
        sampler.changed("Reseller", (None, name), None, reseller_info({
            "metadata": {"name": name},
            "spec": {"licenses": 60, "regions": [{"name": region, "allotment": {
                "cpu": "160", "memory": "640Gi", "storage": "5Ti", "pods": "4000"}}]},
            "status": {"licenses": {"total": 60, "used": 50, "available": 10},
                       "regions": [{"name": region, "allocated": {"cpu": "100", "memory": "200Gi",
                                                                  "storage": "1Ti", "pods": "1000"}}]}},
                                                                 region))
        sampler.changed("Plan", (f"reseller-{name}", "starter"), None, plan_pricing({"spec": {"pricing": {
            "currency": "EUR", "monthly": "19.00", "cpu": "0.05", "memory": "0.006", "storage": "0.0004"}}}))
    for t in range(tenants):
        reseller, name = f"rs{t % resellers}", f"tenant-{t}"
        sampler.changed("Tenant", (f"reseller-{reseller}", name), None, tenant_info({
            "metadata": {"name": name, "namespace": f"reseller-{reseller}", "uid": f"00000000-0000-0000-0000-{t:012d}"},
            "spec": {"plan": "starter"},
            "status": {"phase": "Active", "namespace": f"{reseller}--{name}",
                       "admission": {"plan": "starter", "region": region}}}))
        sampler.changed("ResourceQuota", (f"{reseller}--{name}", "tenantry"), None, quota_info({"status": {
            "used": {"requests.cpu": f"{(t % 8) * 250}m", "requests.memory": f"{(t % 16) * 128}Mi",
                     "requests.storage": f"{t % 20}Gi", "pods": str(t % 10)},
            "hard": {"requests.cpu": "2", "requests.memory": "4Gi", "requests.storage": "20Gi", "pods": "20"}}}))
    return resellers


def measure(tenants: int, scrapes: int) -> dict[str, float]:
    from prometheus_client import CollectorRegistry, generate_latest

    from tenantry.metering.exporter import DeliveryStats, MeteringCollector
    from tenantry.metering.integrator import Integrator
    from tenantry.metering.sampler import Sampler
    from tenantry.metering.sinks import write_atomically
    from tenantry.settings import Settings

    baseline = rss_mib()
    region, t0 = "eu-west", 1_800_000_000.0
    now = [t0]
    integrator = Integrator(region, 3600, t0)
    sampler = Sampler(region, Settings().license_tiers, "USD",
                      on_state=lambda uid, state: integrator.set_state(now[0], uid, state))
    collector = MeteringCollector(region, integrator, sampler, DeliveryStats("http"))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)

    resellers = synthetic_region(sampler, region, tenants)
    sampler.go_live()
    loaded = rss_mib()
    now[0] = t0 + 1800
    started = time.perf_counter()
    integrator.advance(now[0])
    tick_seconds = time.perf_counter() - started

    durations, size = [], 0
    step = min(15.0, 1200 / max(scrapes, 1))  # the meter's sample interval; all scrapes stay in the window
    for _ in range(scrapes):
        now[0] += step
        integrator.advance(now[0])  # a tick (untimed): counters and charges change between scrapes
        started = time.perf_counter()
        body = collector.render_text()  # what the meter's /metrics serves
        durations.append(time.perf_counter() - started)
        size = len(body)
    scraped = rss_mib()
    started = time.perf_counter()
    generate_latest(registry)  # the same samples through prometheus_client's generic path
    generic_seconds = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(2):  # the second one is a tick's: unchanged states are converted once
            now[0] += 15
            integrator.advance(now[0])
            started = time.perf_counter()
            data = integrator.checkpoint_bytes()  # what Meter.save_checkpoint writes
            write_atomically(Path(tmp) / "checkpoint.json", data)
            checkpoint_seconds = time.perf_counter() - started
    started = time.perf_counter()
    records = integrator.advance(t0 + 3600)
    close_seconds = time.perf_counter() - started
    return {
        "tenants": tenants, "resellers": resellers, "series": body.count(b"\n") - body.count(b"\n#"),
        "scrape_bytes": size, "generic_scrape_s": generic_seconds,
        "scrape_median_s": statistics.median(durations), "scrape_max_s": max(durations),
        "rss_baseline_mib": baseline, "rss_loaded_mib": loaded, "rss_after_scrapes_mib": scraped,
        "tick_s": tick_seconds, "checkpoint_s": checkpoint_seconds, "checkpoint_bytes": len(data),
        "window_close_s": close_seconds, "records": len(records),
    }


QUIET_SECONDS = 5.0  # scrapes before, between and after the ticks


def scraper(port: int) -> int:
    """The scraping process: GET /metrics until stdin closes, then print [[start, end, status, bytes]]
    (time.monotonic, the same clock in every process on Linux)."""
    import http.client
    import threading

    stop = threading.Event()

    def until_stdin_closes() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=until_stdin_closes, daemon=True).start()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    spans = []
    while not stop.is_set():
        started = time.monotonic()
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        size = len(response.read())
        spans.append((started, time.monotonic(), response.status, size))
        time.sleep(0.05)
    print(json.dumps(spans))
    return 0


async def scrapes_while_ticking(tenants: int) -> dict[str, float]:
    from tenantry.kube import Credentials, KubeClient
    from tenantry.metering.meter import Meter, MeterConfig
    from tenantry.metering.sinks import FileSink
    from tenantry.settings import Settings

    settings = Settings()
    region, t0 = "eu-west", 1_800_000_000.0  # on an hour boundary
    now = [t0]
    # (stop() gives the sink 5 s: a batch may still be written, in a thread, as the directory goes)
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        config = MeterConfig(region=region, spool_dir=Path(tmp) / "spool", interval=3600, window=3600, port=0,
                             bind_address="127.0.0.1", license_tiers=settings.license_tiers,
                             license_currency=settings.license_currency)
        # The client is never used: no reflectors run (the bench feeds the sampler) and no publisher.
        meter = Meter(config, KubeClient(Credentials(server="https://127.0.0.1:1")),
                      FileSink(Path(tmp) / "records.jsonl"), clock=lambda: now[0])
        synthetic_region(meter.sampler, region, tenants)
        meter.sampler.go_live()
        now[0] = t0 + 1800
        await meter.tick()  # the first checkpoint: tenant states are serialised once, then kept
        meter.collector.render_text()  # the first scrape fills the text caches: not what is measured
        deliverer = asyncio.create_task(meter.deliverer.run())
        await meter._serve()

        async def tick_at(moment: float) -> tuple[float, float]:
            now[0] = moment
            started = time.monotonic()
            await meter.tick()
            return started, time.monotonic()

        # With the scraper: a plain tick, then the one that closes the window.
        process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--scraper", str(meter.port), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE)
        await asyncio.sleep(QUIET_SECONDS)
        quiet_until = time.monotonic()
        plain = await tick_at(t0 + 1815)
        await asyncio.sleep(QUIET_SECONDS)
        close = await tick_at(t0 + 3600 + 15)
        await asyncio.sleep(QUIET_SECONDS)
        out, _ = await process.communicate(b"")
        spans = json.loads(out)

        # Without: how long the tick itself holds the loop at most (the longest gap between turns
        # of a task that only yields), which is what a scrape arriving then waits before its own turn.
        gaps: list[tuple[float, float]] = []

        async def heartbeat() -> None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.001)
                gaps.append((last, time.monotonic()))
                last = gaps[-1][1]

        beating = asyncio.create_task(heartbeat())
        await asyncio.sleep(0.1)
        held_plain = await tick_at(t0 + 3630)
        await asyncio.sleep(0.1)  # the heartbeat's turn that ends the gap
        held_close = await tick_at(t0 + 7200 + 15)
        await asyncio.sleep(0.1)
        beating.cancel()
        deliverer.cancel()
        spooled, delivered = meter.stats.spooled, meter.stats.counts["delivered"]
        await meter.stop()

    def overlapping(tick: tuple[float, float]) -> list[float]:
        return [e - s for s, e, _, _ in spans if s < tick[1] and e > tick[0]] or [float("nan")]  # a short tick

    def held(tick: tuple[float, float]) -> float:
        return max(e - s for s, e in gaps if s < tick[1] and e > tick[0]) - 0.001

    quiet = [e - s for s, e, _, _ in spans if e <= quiet_until]
    after_close = [e - s for s, e, _, _ in spans if close[1] <= s < close[1] + QUIET_SECONDS]
    return {
        "tenants": tenants, "scrapes": len(spans), "failed": sum(1 for *_, status, _ in spans if status != 200),
        "quiet_median_s": statistics.median(quiet), "quiet_max_s": max(quiet),
        "plain_tick_s": plain[1] - plain[0], "plain_worst_s": max(overlapping(plain)),
        "close_tick_s": close[1] - close[0], "close_median_s": statistics.median(overlapping(close)),
        "close_worst_s": max(overlapping(close)), "after_close_worst_s": max(after_close, default=float("nan")),
        "plain_held_s": held(held_plain), "close_held_s": held(held_close),
        "plain_alone_s": held_plain[1] - held_plain[0], "close_alone_s": held_close[1] - held_close[0],
        "records": spooled, "delivered": delivered,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, action="append", help="tenant counts (default 1000 and 10000)")
    parser.add_argument("--scrapes", type=int, default=5)
    parser.add_argument("--part", choices=["all", "pieces", "ticking"], default="all",
                        help="the pieces (scrape, tick, close) on their own, the scrapes while ticking, or both")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: measure one size, print JSON
    parser.add_argument("--one-ticking", type=int, help=argparse.SUPPRESS)  # internal: the same, while ticking
    parser.add_argument("--scraper", type=int, help=argparse.SUPPRESS)  # internal: the scraping process
    args = parser.parse_args()
    if args.scraper:
        return scraper(args.scraper)
    if args.one:
        print(json.dumps(measure(args.one, args.scrapes)))
        return 0
    if args.one_ticking:
        print(json.dumps(asyncio.run(scrapes_while_ticking(args.one_ticking))))
        return 0
    counts = args.tenants or [1000, 10000]
    if args.part in ("all", "pieces"):
        pieces(counts, args.scrapes)
    if args.part in ("all", "ticking"):
        ticking(counts)
    return 0


def pieces(counts: list[int], scrapes: int) -> None:
    print(f"{'tenants':>8} {'series':>8} {'scrape p50':>11} {'scrape max':>11} {'generic':>9} {'body':>8} "
          f"{'RSS base':>9} "
          f"{'RSS load':>9} {'RSS scraped':>12} {'tick':>7} {'checkpoint':>16} {'window close':>20}")
    for count in counts:
        out = subprocess.run([sys.executable, __file__, "--one", str(count), "--scrapes", str(scrapes)],
                             check=True, capture_output=True, text=True, env={**os.environ}).stdout
        r = json.loads(out)
        print(f"{r['tenants']:>8} {r['series']:>8} {r['scrape_median_s'] * 1000:>9.0f}ms "
              f"{r['scrape_max_s'] * 1000:>9.0f}ms {r['generic_scrape_s'] * 1000:>7.0f}ms "
              f"{r['scrape_bytes'] / 2**20:>6.1f}Mi "
              f"{r['rss_baseline_mib']:>7.0f}Mi {r['rss_loaded_mib']:>7.0f}Mi {r['rss_after_scrapes_mib']:>10.0f}Mi "
              f"{r['tick_s'] * 1000:>5.0f}ms {r['checkpoint_s'] * 1000:>6.0f}ms "
              f"{r['checkpoint_bytes'] / 2**20:>5.1f}Mi "
              f"{r['window_close_s'] * 1000:>7.0f}ms {r['records']:>7} rec")


def ticking(counts: list[int]) -> None:
    print("\nScrapes of /metrics while the meter ticks (worst: the longest scrape that overlapped the tick; "
          "held: the longest the tick held the event loop, without scrapes)\n"
          f"{'tenants':>8} {'scrapes':>8} {'quiet p50':>10} {'quiet max':>10} {'plain tick':>11} {'worst':>8} "
          f"{'close tick':>11} {'p50':>8} {'worst':>8} {'after close':>12} {'held plain':>11} {'held close':>11} "
          f"{'records':>8} {'unscraped ticks':>16}")
    for count in counts:
        out = subprocess.run([sys.executable, __file__, "--one-ticking", str(count)],
                             check=True, capture_output=True, text=True, env={**os.environ}).stdout
        r = json.loads(out)
        ms = {k: f"{v * 1000:.0f}ms" if v == v else "-" for k, v in r.items() if k.endswith("_s")}
        print(f"{r['tenants']:>8} {r['scrapes']:>8} {ms['quiet_median_s']:>10} {ms['quiet_max_s']:>10} "
              f"{ms['plain_tick_s']:>11} {ms['plain_worst_s']:>8} {ms['close_tick_s']:>11} {ms['close_median_s']:>8} "
              f"{ms['close_worst_s']:>8} {ms['after_close_worst_s']:>12} {ms['plain_held_s']:>11} "
              f"{ms['close_held_s']:>11} {r['records']:>8} {ms['plain_alone_s']:>7} {ms['close_alone_s']:>8}"
              + (f" ({r['failed']} failed)" if r["failed"] else ""))


if __name__ == "__main__":
    sys.exit(main())
