"""The `tenantry` command: `run` (the operator), `meter` (a region's metering exporter), `bill` (statements).

Subcommands import their machinery lazily so that `tenantry bill` does not pay for kopf.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tenantry import __version__
from tenantry.metering import cli as metering_cli

if TYPE_CHECKING:
    from tenantry.controller.leadership import LeaderElector
    from tenantry.settings import LeaderElectionSettings


def _run(args: argparse.Namespace) -> int:
    import kopf
    from prometheus_client import start_http_server

    from tenantry.controller.probes import ProbeServer

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

    # Leader election (tenantry.controller.leadership): a standby waits here, live and ready, and
    # starts the reconciling part (kopf) only once it holds the Lease.
    elector = _elector(settings.leader_election) if settings.leader_election.enabled else None
    # kopf's liveness endpoint exists only while kopf runs: the probe server answers for the whole
    # process and relays kopf's own answers once it is up (tenantry.controller.probes).
    liveness = f"http://127.0.0.1:{_free_port()}/healthz" if health_port else None
    if health_port and liveness:
        ProbeServer(args.bind_address, health_port, liveness, elector).start()
    stop = _StopOnSignal()
    if elector is not None:
        elector.start()
        if not elector.wait_until_leading(stop.requested):
            elector.stop()
            return 0  # stopped while standing by: it never wrote anything
    loop = _SignalNotingLoop()
    kopf_stop = asyncio.Event()  # a signal that comes before kopf has installed its own handlers
    stop.on_signal = lambda: loop.call_soon_threadsafe(kopf_stop.set)
    if stop.requested.is_set():
        kopf_stop.set()
    try:
        kopf.run(loop=loop, clusterwide=True, standalone=True, liveness_endpoint=liveness, stop_flag=kopf_stop)
    finally:
        loop.close()
        if elector is not None:
            elector.stop()  # kopf has stopped writing: hand the Lease over at once
    if loop.stop_signal is None and not stop.requested.is_set():
        # kopf gave up on its own (the cause is logged above). Exit non-zero so that the Deployment
        # (or whoever runs this) restarts the operator from a fresh picture of the cluster.
        logging.getLogger("tenantry").error("The operator stopped on an error; exiting with status 1.")
        return 1
    return 0


def _elector(settings: LeaderElectionSettings) -> LeaderElector:
    from tenantry.controller.leadership import LeaderElector, PodRef
    from tenantry.credentials import ClusterLogin
    from tenantry.kube import KubeClient

    # A client of its own, on the election's own thread and event loop; one try per request: the
    # election decides when to try again (its renew deadline).
    return LeaderElector(settings, lambda: KubeClient(ClusterLogin(), max_connections=4, max_attempts=1),
                         pod=PodRef.from_environment(settings.lease_namespace()))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _StopOnSignal:
    """SIGINT/SIGTERM before kopf runs (a standby, or a leader starting): noted in `requested`, and
    passed on to `on_signal` (kopf's stop flag). kopf installs its own handlers once it runs."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.on_signal: Callable[[], object] | None = None
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._noted)

    def _noted(self, *_: object) -> None:
        self.requested.set()
        if self.on_signal is not None:
            self.on_signal()


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
