"""The `tenantry` command: `run` (the operator), `meter` (a region's metering exporter), `bill` (statements).

Subcommands import their machinery lazily so that `tenantry bill` does not pay for kopf.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from tenantry import __version__
from tenantry.metering import cli as metering_cli


def _run(args: argparse.Namespace) -> int:
    import kopf
    from prometheus_client import start_http_server

    if args.config:
        os.environ["TENANTRY_CONFIG"] = args.config
    from tenantry.settings import load_settings

    settings = load_settings()  # fail fast on a bad configuration, before connecting anywhere
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.JSON if args.log_format == "json"
                   else kopf.LogFormat.FULL, log_prefix=True)
    if not args.verbose:
        # kopf says "Handler ... succeeded" for every watch event; Tenantry logs what it did itself.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    import tenantry.controller.handlers  # noqa: F401  (registers the handlers)

    metrics_port = settings.metrics_port if args.metrics_port is None else args.metrics_port
    if metrics_port:
        start_http_server(metrics_port, addr=args.bind_address)
    health_port = settings.health_port if args.health_port is None else args.health_port
    liveness = f"http://{args.bind_address}:{health_port}/healthz" if health_port else None
    loop = _SignalNotingLoop()
    try:
        kopf.run(loop=loop, clusterwide=True, standalone=True, liveness_endpoint=liveness)
    finally:
        loop.close()
    if loop.stop_signal is None:
        # kopf gave up on its own (the cause is logged above). Exit non-zero so that the Deployment
        # (or whoever runs this) restarts the operator from a fresh picture of the cluster.
        logging.getLogger("tenantry").error("The operator stopped on an error; exiting with status 1.")
        return 1
    return 0


class _SignalNotingLoop(asyncio.SelectorEventLoop):
    """An event loop that remembers whether SIGINT/SIGTERM arrived (kopf installs the handlers)."""

    stop_signal: int | None = None

    def add_signal_handler(self, sig: int, callback: Any, *args: Any) -> None:  # type: ignore[override]
        def noted(*callback_args: Any) -> None:
            self.stop_signal = sig
            callback(*callback_args)

        super().add_signal_handler(sig, noted, *args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tenantry", description=__doc__)
    parser.add_argument("--version", action="version", version=f"tenantry {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the operator against $KUBECONFIG or the in-cluster config")
    run.add_argument("--config", help="operator configuration YAML (default: $TENANTRY_CONFIG, else built-in defaults)")
    run.add_argument("--bind-address", default=os.environ.get("TENANTRY_BIND_ADDRESS", "0.0.0.0"),
                     help="address for the health and metrics endpoints (default 0.0.0.0; tests use 127.0.0.1)")
    run.add_argument("--health-port", type=int, default=None, help="liveness endpoint port (0 disables)")
    run.add_argument("--metrics-port", type=int, default=None, help="Prometheus metrics port (0 disables)")
    run.add_argument("--log-format", choices=("plain", "json"), default=os.environ.get("TENANTRY_LOG_FORMAT", "json"),
                     help="json (one object a line, the default) or plain (timestamped text for a terminal)")
    run.add_argument("--verbose", action="store_true")
    run.set_defaults(func=_run)

    _add_optional_commands(commands)
    return parser


def _add_optional_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Metering and billing add their own subcommands (see tenantry.metering.cli)."""
    metering_cli.add_commands(commands)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "run":  # `run` logs through kopf's configuration (plain or JSON), once
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
