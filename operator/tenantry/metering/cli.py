"""`tenantry meter` (a region's metering exporter) and `tenantry bill` (statements from records)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import logging
import os
import re
import signal
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(text: str) -> float:
    """`15s`, `1m`, `1h`, `500ms`, or plain seconds."""
    match = _DURATION_RE.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (examples: 15s, 1m, 1h)")
    value = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be longer than zero")
    return value


def default_spool(region: str) -> str:
    base = os.environ.get("TENANTRY_SPOOL") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "tenantry", "meter")
    return os.path.join(base, region)


def _meter(args: argparse.Namespace) -> int:
    from tenantry.credentials import ClusterLogin, kubeconfig_login
    from tenantry.kube import KubeClient
    from tenantry.metering.meter import Meter, MeterConfig
    from tenantry.metering.sinks import parse_sink
    from tenantry.settings import load_settings

    settings = load_settings(args.config)
    metering = settings.metering
    window = args.window if args.window is not None else parse_duration(metering.window)
    interval = args.interval if args.interval is not None else parse_duration(metering.interval)
    if window < 1 or window != int(window):
        raise SystemExit("--window must be a whole number of seconds (e.g. 1h, 10s)")
    config = MeterConfig(
        region=args.region, spool_dir=Path(args.spool or default_spool(args.region)), interval=interval,
        window=int(window), port=metering.port if args.port is None else args.port, bind_address=args.bind_address,
        license_tiers=settings.license_tiers, license_currency=settings.license_currency)
    sink = parse_sink(args.sink or metering.sink)

    async def main() -> None:
        # Credentials kept fresh (rotated tokens; a member's kubeconfig Secret replaced in its volume).
        usage = KubeClient(kubeconfig_login(Path(args.usage_kubeconfig).read_bytes)) if args.usage_kubeconfig else None
        meter = Meter(config, KubeClient(ClusterLogin()), sink, usage_client=usage)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await meter.start()
        try:
            await stop.wait()
        finally:
            await meter.stop()
            logging.getLogger("tenantry.meter").info("Meter of region %s stopped; window checkpointed.", args.region)

    asyncio.run(main())
    return 0


def _parse_date(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from error


def _parse_rate(text: str) -> tuple[str, Decimal]:
    currency, _, rate = text.partition("=")
    try:
        value = Decimal(rate)
    except InvalidOperation as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not CUR=RATE (e.g. EUR=1.08)") from error
    if not re.match(r"^[A-Z]{3}$", currency) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not CUR=RATE (e.g. EUR=1.08)")
    return currency, value


def _bill(args: argparse.Namespace) -> int:
    from tenantry.metering.statements import build_statement, iter_records, resellers_in, write_statement

    start: datetime.date = args.start
    end: datetime.date = args.end or (start.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
    if end <= start:
        raise SystemExit("--to must be after --from")
    # Record files are streamed, once to find the resellers and once per statement, so a month of a
    # large region never has to fit in memory.
    resellers = args.reseller or resellers_in(iter_records(args.records), start, end)
    if not resellers:
        print(f"No records between {start} and {end}.")
        return 0
    out = Path(args.out)
    for reseller in resellers:
        statement = build_statement(iter_records(args.records), reseller, start, end, currency=args.currency,
                                    rates=dict(args.rate))
        paths = write_statement(statement, out, formats=args.format)
        print(f"{reseller}: {statement.summary_line()} -> {', '.join(str(p) for p in paths)}")
    return 0


def add_commands(commands: Any) -> None:
    meter = commands.add_parser("meter", help="run the metering exporter of one Region (metrics + billing records)")
    meter.add_argument("--region", required=True, help="the Region to meter")
    meter.add_argument("--sink", help="file:PATH or http(s)://URL (default: metering.sink of the configuration)")
    meter.add_argument("--interval", type=parse_duration, default=None,
                       help="how often to integrate and checkpoint (default 15s)")
    meter.add_argument("--window", type=parse_duration, default=None, help="billing window (default 1h)")
    meter.add_argument("--port", type=int, default=None, help="metrics port (default 9100; 0 picks a free port)")
    meter.add_argument("--bind-address", default=os.environ.get("TENANTRY_BIND_ADDRESS", "0.0.0.0"),
                       help="address of the metrics endpoint (default 0.0.0.0; tests use 127.0.0.1)")
    meter.add_argument("--spool", help="directory of the record spool and window checkpoint "
                                       "(default $TENANTRY_SPOOL/<region> or ~/.local/state/tenantry/meter/<region>)")
    meter.add_argument("--config", help="operator configuration YAML (licence tiers, defaults)")
    meter.add_argument("--usage-kubeconfig", default=os.environ.get("TENANTRY_USAGE_KUBECONFIG"),
                       help="kubeconfig of the region's member cluster, where the tenants' usage is read "
                            "(default: the cluster of the Tenantry kinds)")
    meter.set_defaults(func=_meter)

    bill = commands.add_parser("bill", help="render HTML and CSV statements per reseller from billing records")
    bill.add_argument("records", nargs="+", help="JSON-lines record files (a file: sink's output); duplicates "
                                                 "by id are counted once")
    bill.add_argument("--reseller", action="append", help="reseller to bill (repeatable; default: every one found)")
    bill.add_argument("--from", dest="start", type=_parse_date, required=True, help="first day (YYYY-MM-DD, UTC)")
    bill.add_argument("--to", dest="end", type=_parse_date, help="day after the last (default: next month's first)")
    bill.add_argument("--out", default="statements", help="output directory (default ./statements)")
    bill.add_argument("--format", action="append", choices=("html", "csv"),
                      help="html and/or csv (default both)")
    bill.add_argument("--currency", help="statement currency for the margin; other currencies need --rate")
    bill.add_argument("--rate", action="append", type=_parse_rate, default=[],
                      help="CUR=RATE: 1 CUR is RATE of --currency (e.g. EUR=1.08)")
    bill.set_defaults(func=_bill)
