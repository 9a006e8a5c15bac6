"""The region's meter (`tenantry.metering.meter.Meter`) run inside the test's process with a clock the
test moves, for exact amounts: the cluster changes while the clock stands still, the test waits until
the meter has seen the change, then moves the clock on (a billing hour or day passes in seconds).
Shared by the metering and licence-order tests, with the Pending pods whose requests it meters; and
`tenantry meter` as a process with the real clock (`MeterProcess`), to signal or SIGKILL."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Coroutine
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from support.cluster import REPO_ROOT, wait_for
from support.operator import free_port


class FrozenClock:
    """A clock that stands still until the test sets `now`."""

    def __init__(self, start: float):
        self.now = float(start)

    def __call__(self) -> float:
        return self.now


def token_credentials(kubeconfig: str) -> Any:
    """The admin kubeconfig (server, CA data, bearer token) as the meter's Credentials."""
    from tenantry.kube import Credentials

    config = yaml.safe_load(Path(kubeconfig).read_text())
    cluster = config["clusters"][0]["cluster"]
    return Credentials(server=cluster["server"], token=config["users"][0]["user"]["token"],
                       ca_data=base64.b64decode(cluster["certificate-authority-data"]))


class InProcessMeter:
    """A `Meter` on an event loop thread of its own; `call` runs code on that loop. `port` is its
    metrics port (0: any free one, -1: none)."""

    def __init__(self, kubeconfig: str, region: str, spool: Path, sink: str, clock: Callable[[], float],
                 port: int = 0):
        from tenantry.kube import KubeClient
        from tenantry.metering.meter import Meter, MeterConfig
        from tenantry.metering.sinks import parse_sink
        from tenantry.settings import Settings

        settings = Settings()
        credentials = token_credentials(kubeconfig)
        config = MeterConfig(region=region, spool_dir=spool, interval=3600, window=3600, port=port,
                             bind_address="127.0.0.1", license_tiers=settings.license_tiers,
                             license_currency=settings.license_currency, sync_timeout=60)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def make() -> Meter:
            meter = Meter(config, KubeClient(credentials), parse_sink(sink), clock=clock)
            await meter.start()
            return meter

        self.meter = self.run(make())

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 90) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def call(self, fn: Callable[[], Any]) -> Any:
        async def run() -> Any:
            return fn()

        return self.run(run())

    def state(self, uid: str) -> Any:
        """The meter's TenantState of a tenant, None before it sees the tenant or once it is gone."""
        return self.call(lambda: self.meter.sampler.states.get(uid))

    def sees(self, uid: str, cpu: str) -> None:
        wait_for(lambda: (s := self.state(uid)) is not None and s.used.get("cpu") == Decimal(cpu), timeout=40,
                 message=f"the meter to see {uid} use {cpu} cpu")

    def tick(self) -> int:
        return int(self.run(self.meter.tick()))

    def deliver(self) -> bool:
        return bool(self.run(self.meter.deliverer.deliver_pending()))

    def stop(self) -> None:
        self.run(self.meter.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def pending_pod(core: client.CoreV1Api, namespace: str, name: str, cpu: str, memory: str, *,
                counted: bool = False) -> None:
    """A pod with requests (it stays Pending: no scheduler); the quota controller counts it all the
    same. `counted`: return once the namespace's quota counts pods."""
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(automount_service_account_token=False, containers=[client.V1Container(
            name="main", image="registry.invalid/pause:never-pulled",
            resources=client.V1ResourceRequirements(requests={"cpu": cpu, "memory": memory},
                                                    limits={"cpu": cpu, "memory": memory}))]))
    # The ServiceAccount admission plugin waits for the namespace's `default` account: retry until then.
    wait_for(lambda: core.create_namespaced_pod(namespace, pod), timeout=30, message=f"pod {namespace}/{name}")
    if counted:
        wait_for(lambda: (core.read_namespaced_resource_quota("tenantry", namespace).status.used or {}).get("pods")
                 not in (None, "0"), timeout=40, message=f"quota of {namespace} counting its pods")


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A meter's /metrics on loopback, by sample name and its sorted labels."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


class MeterProcess:
    """`tenantry meter` as the process a meter pod runs (the real clock, short windows), stopped by its pid."""

    def __init__(self, kubeconfig: str | Path, region: str, sink: str, spool: Path, log: Path, window: str = "4s",
                 usage_kubeconfig: Path | None = None):
        self.port = free_port()
        self.args = [sys.executable, "-m", "tenantry", "meter", "--region", region, "--sink", sink,
                     "--interval", "500ms", "--window", window, "--port", str(self.port),
                     "--bind-address", "127.0.0.1", "--spool", str(spool)]
        if usage_kubeconfig is not None:  # a member cluster's region (DESIGN.md §7): its quotas are read there
            self.args += ["--usage-kubeconfig", str(usage_kubeconfig)]
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            cwd=REPO_ROOT, start_new_session=True)
        wait_for(lambda: self.alive() and scrape(self.port), timeout=60,
                 message=f"the meter to serve /metrics (log: {self.log.read_text()[-2000:]})")

    def alive(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"the meter exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
        return True

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Sends `sig` and waits for the exit (a kill after 20 s); the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return int(self.process.returncode)
