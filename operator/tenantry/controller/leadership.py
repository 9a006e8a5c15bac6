"""Leader election: of the `tenantry run` processes (the chart runs two), exactly one reconciles.

The leader is the holder of a coordination.k8s.io/v1 Lease (`leaderElection.leaseName`, default
`tenantry-operator`, in the operator's namespace), as with client-go's `tools/leaderelection` and
controller-runtime, with their timings: lease 15 s, renew deadline 10 s, retry period 2 s.

- A process starts as a *standby*: it reads the Lease every retry period and writes nothing (the only
  exception: the label `tenantry.dev/leader` on its own pod, left by a process of the same pod that led
  and died, is removed before the standby reports ready). It takes the Lease when it is free (no
  Lease, or `holderIdentity` empty after a clean release), held by its own identity, or expired: not
  changed (same resourceVersion, compared for equality only, never ordered) for `leaseDurationSeconds`
  since the standby last saw it change. Taking it is an update carrying the resourceVersion it read
  (or a create): when two standbys try at once, the API server accepts one and answers the other 409.
- Only then does `tenantry run` start kopf, the reconciling part (tenantry.cli). The leader renews
  every retry period with an update carrying the resourceVersion of its last write.
- If no renewal succeeds for `renewDeadlineSeconds` (counted from the moment the last successful
  renewal was *sent*, so a slow answer cannot stretch it), or the Lease is found held by another,
  the process stops at once with exit status 1, before a standby can take over: no write of it can
  follow the new leader's first. Its Deployment restarts it, as a standby (controller-runtime does
  the same: `leader election lost` ends the process).
- On a clean stop (SIGTERM), once kopf has stopped writing, the leader releases the Lease (empty
  `holderIdentity`) so that a standby takes over at once instead of after the lease duration.

Why the takeover is safe although a standby does not wait for a full lease duration after its own
read of the new version, but after the earliest moment that version can have been written: the
leader stops at most `renewDeadline` after it sent its last renewal, and that renewal was written
before the standby's read returned it. The standby counts from the later of (a) when it sent its
previous read, which still returned the older version, and (b) that read's answer minus half the
margin `leaseDuration - renewDeadline`. Either way it takes over at least half that margin (2.5 s)
after the leader has stopped, and, reading every 2 s, within 15 s of the leader's last renewal
rather than up to 19 s as when counting from its own read.

The admission webhook starts with kopf (it answers from the picture the reconciling part loads, and
keeps its certificate and registration up to date), so standbys do not serve it: the leader puts the
label `tenantry.dev/leader: "true"` on its pod and the chart's webhook Service selects that label.
Standbys are live and ready (so that a PodDisruptionBudget lets a node drain) and export
`tenantry_leader{identity} 0`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import random
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from prometheus_client import Gauge

from tenantry.kube import ApiError, KubeClient
from tenantry.pacing import Backoff
from tenantry.settings import LeaderElectionSettings

log = logging.getLogger("tenantry.leadership")

LEASES = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
LEADER_LABEL = "tenantry.dev/leader"
# An explicit identity is used as it is, without a random suffix: for a supervisor that guarantees one
# process per identity (the tests' harness). A process restarted with the identity of the holder then
# resumes the Lease at once, as client-go allows (its holder is "already the leader").
IDENTITY_ENV = "TENANTRY_LEADER_IDENTITY"

LEADER = Gauge("tenantry_leader", "1 while this process holds the leader Lease and reconciles, 0 while it stands by",
               ["identity"])


def process_identity() -> str:
    """Who this process is in the Lease: $TENANTRY_LEADER_IDENTITY, else the pod's name (the host name
    outside a pod) and a random suffix, so that a restarted container is never taken for its predecessor."""
    explicit = os.environ.get(IDENTITY_ENV, "").strip()
    if explicit:
        return explicit
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{secrets.token_hex(4)}"


def micro_time(moment: datetime.datetime | None = None) -> str:
    """A metav1.MicroTime, as the Lease's acquireTime and renewTime are written."""
    return (moment or datetime.datetime.now(datetime.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- deciding (pure) ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeaseRecord:
    """The election record a Lease holds."""

    holder: str  # "" when free
    duration: int
    transitions: int
    acquire_time: str | None = None

    @classmethod
    def of(cls, lease: Mapping[str, Any]) -> LeaseRecord:
        spec = lease.get("spec") or {}
        return cls(holder=spec.get("holderIdentity") or "", duration=int(spec.get("leaseDurationSeconds") or 0),
                   transitions=int(spec.get("leaseTransitions") or 0), acquire_time=spec.get("acquireTime"))


@dataclass(frozen=True)
class Observation:
    """What a candidate knows of the Lease: the version last read, its record, the moment from which
    its expiry is counted (monotonic clock), and when the latest read returning it was sent."""

    version: str
    record: LeaseRecord
    since: float
    confirmed_at: float


def observe(previous: Observation | None, lease: Mapping[str, Any], sent_at: float, received_at: float,
            margin: float) -> Observation:
    """The observation after a read sent at `sent_at` and answered at `received_at` returned `lease`.

    An unchanged version keeps its `since`. A new version was written after the previous read was
    served, so its expiry counts from when that read was sent, but never from earlier than
    `received_at - margin` (reads that failed for a while leave the moment of the change unknown);
    with nothing read before, from `received_at`."""
    version = str(lease["metadata"].get("resourceVersion", ""))
    record = LeaseRecord.of(lease)
    if previous is not None and previous.version == version:
        return Observation(version, record, previous.since, sent_at)
    since = received_at if previous is None else max(previous.confirmed_at, received_at - margin)
    return Observation(version, record, since, sent_at)


def may_take(observation: Observation, identity: str, now: float) -> bool:
    """Whether a candidate may take the Lease over now: it is free, its own, or expired."""
    record = observation.record
    return not record.holder or record.holder == identity or now >= expiry(observation)


def expiry(observation: Observation) -> float:
    return observation.since + observation.record.duration


def claimed(lease: Mapping[str, Any] | None, identity: str, duration: int, namespace: str, name: str
            ) -> dict[str, Any]:
    """The Lease as written to take it (create when `lease` is None, else an update of the read object,
    carrying its resourceVersion): held by `identity`, acquired now, one transition more if it changes hands."""
    now = micro_time()
    if lease is None:
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": namespace, "labels": {
                    "app.kubernetes.io/name": "tenantry", "app.kubernetes.io/component": "operator"}},
                "spec": {"holderIdentity": identity, "leaseDurationSeconds": duration, "acquireTime": now,
                         "renewTime": now, "leaseTransitions": 0}}
    record = LeaseRecord.of(lease)
    ours = record.holder == identity
    spec = {**(lease.get("spec") or {}), "holderIdentity": identity, "leaseDurationSeconds": duration,
            "renewTime": now, "acquireTime": record.acquire_time if ours and record.acquire_time else now,
            "leaseTransitions": record.transitions + (0 if ours or not record.holder else 1)}
    return {**lease, "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "spec": spec}


def renewed(lease: Mapping[str, Any]) -> dict[str, Any]:
    return {**lease, "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "spec": {**(lease.get("spec") or {}), "renewTime": micro_time()}}


def released(lease: Mapping[str, Any]) -> dict[str, Any]:
    """The Lease handed back: no holder, so that any standby takes it at once (client-go's release)."""
    return {**lease, "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "spec": {**(lease.get("spec") or {}), "holderIdentity": "", "renewTime": micro_time()}}


# -- acting ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PodRef:
    name: str
    namespace: str

    @classmethod
    def from_environment(cls, namespace: str) -> PodRef | None:
        """This process's pod, when it runs in one ($POD_NAME from the Downward API, as the chart sets it)."""
        name = os.environ.get("POD_NAME", "").strip()
        return cls(name, os.environ.get("POD_NAMESPACE", "").strip() or namespace) if name else None


class LeaseLost(Exception):
    """The leader could not renew within the renew deadline, or found the Lease held by another."""


def exit_at_once(reason: str) -> None:
    """What a leader does when it loses the Lease: stop now, with status 1, before a standby can take over.
    No clean-up: a clean-up would write, and the Lease is no longer ours."""
    log.critical("Lost the leader Lease: %s. Stopping at once (exit status 1) so that nothing more is written; "
                 "a restarted process stands by.", reason)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


class LeaderElector:
    """One process's part in the election, on a thread and event loop of its own: renewals must not
    wait behind the reconciling event loop, and a lost Lease must stop the process even when that loop
    is busy. `client_factory` makes the API client on that loop (the process's own login)."""

    def __init__(self, settings: LeaderElectionSettings, client_factory: Callable[[], KubeClient], *,
                 identity: str | None = None, pod: PodRef | None = None,
                 on_lost: Callable[[str], None] = exit_at_once):
        self.settings = settings
        self.identity = identity or process_identity()
        self.namespace = settings.lease_namespace()
        self.name = settings.lease_name
        self.pod = pod
        self._client_factory = client_factory
        self._on_lost = on_lost
        self.leading = threading.Event()
        self.ready = threading.Event()  # a standby's readiness: no stale leader label, the Lease read once
        self.holder: str | None = None  # the holder last seen
        self.leading_since: float | None = None
        self.error: BaseException | None = None
        self._observation: Observation | None = None
        self._lease: dict[str, Any] | None = None
        self._last_renewal_sent = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        LEADER.labels(identity=self.identity).set(0)

    @property
    def description(self) -> str:
        return f"Lease {self.namespace}/{self.name}"

    @property
    def _margin(self) -> float:
        return (self.settings.lease_duration_seconds - self.settings.renew_deadline_seconds) / 2

    # -- running on the election thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self._thread_main, name="leader-election", daemon=True)
        self._thread.start()

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # reported to the main thread, which exits non-zero
            self.error = error
            log.exception("Leader election stopped on an error.")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        client = self._client_factory()
        label_task: asyncio.Task[None] | None = None
        try:
            await self._clear_stale_label(client)
            log.info("Standing by for %s as %s: only its holder reconciles.", self.description, self.identity)
            if not await self._acquire(client):
                return  # stopped while standing by: nothing to hand back
            if self.pod is not None:
                label_task = asyncio.create_task(self._label_pod(client, "true"), name="leader-label")
            try:
                await self._renew(client)
            except Exception as error:  # a leader that cannot renew any more must stop
                self._lose(f"renewing failed unexpectedly: {error!r}")
                raise
            await self._release(client)
        finally:
            if label_task is not None:
                label_task.cancel()
            await client.close()

    async def _sleep_or_stop(self, seconds: float) -> bool:
        """Wait `seconds`; True when a stop was asked for meanwhile."""
        assert self._stopping is not None
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=max(0.0, seconds))
        except TimeoutError:
            return False
        return True

    async def _read(self, client: KubeClient, timeout: float) -> dict[str, Any] | None:
        try:
            return await asyncio.wait_for(client.request("GET", self._path(self.name)), timeout)
        except ApiError as error:
            if error.not_found:
                return None
            raise

    def _path(self, name: str | None = None) -> str:
        return LEASES.format(namespace=self.namespace) + (f"/{name}" if name else "")

    async def _acquire(self, client: KubeClient) -> bool:
        """Stand by until the Lease is taken (True) or a stop is asked for (False)."""
        retry = self.settings.retry_period_seconds
        failures = 0
        while True:
            wait = retry * random.uniform(1.0, 1.1)  # a little jitter, so that standbys do not read in step
            try:
                taken = await self._try_acquire(client)
                # Ready once the Lease was read (or tried): /readyz then names the holder it saw.
                self.ready.set()
                if taken:
                    return True
                failures = 0
            except (ApiError, aiohttp.ClientError, TimeoutError, OSError) as error:
                self.ready.set()
                failures += 1
                # A standby that cannot read the Lease is no danger; it says so now and then.
                if failures == 1 or failures % 30 == 0:
                    hint = ""
                    if isinstance(error, ApiError) and error.not_found:
                        hint = (f" Namespace {self.namespace} does not exist: create it (kubectl create namespace "
                                f"{self.namespace}) or set leaderElection.namespace.")
                    elif isinstance(error, ApiError) and error.status == 403:
                        hint = (f" Bind the Role tenantry-operator-leader-election (get, create, update of leases "
                                f"in {self.namespace}) to the operator's account.")
                    log.warning("Could not read or take %s (standing by, retrying every %.0f s): %s%s",
                                self.description, retry, error or type(error).__name__, hint)
            if self._observation is not None and self._observation.record.holder:
                wait = min(wait, max(0.0, expiry(self._observation) - time.monotonic()) + 0.05)
            if await self._sleep_or_stop(wait):
                return False

    async def _try_acquire(self, client: KubeClient) -> bool:
        duration = self.settings.lease_duration_seconds
        sent = time.monotonic()
        lease = await self._read(client, timeout=duration)
        received = time.monotonic()
        if lease is None:
            attempt = claimed(None, self.identity, duration, self.namespace, self.name)
            return await self._write_claim(client, "POST", self._path(), attempt, sent, previous_holder="")
        self._observation = observe(self._observation, lease, sent, received, self._margin)
        self._note_holder(self._observation.record.holder)
        if not may_take(self._observation, self.identity, time.monotonic()):
            return False
        attempt = claimed(lease, self.identity, duration, self.namespace, self.name)
        return await self._write_claim(client, "PUT", self._path(self.name), attempt, time.monotonic(),
                                       previous_holder=self._observation.record.holder)

    async def _write_claim(self, client: KubeClient, method: str, path: str, body: dict[str, Any], sent: float,
                           previous_holder: str) -> bool:
        try:
            lease = await asyncio.wait_for(client.request(method, path, body=body),
                                           self.settings.renew_deadline_seconds)
        except ApiError as error:
            if error.status == 409:  # written since we read it (a renewal, or another standby won)
                log.info("%s changed while it was being taken; standing by.", self.description)
                return False
            raise
        self._lease = lease
        self._last_renewal_sent = sent
        self.holder = self.identity
        self.leading_since = time.monotonic()
        LEADER.labels(identity=self.identity).set(1)
        self.leading.set()
        waited = ""
        if previous_holder and previous_holder != self.identity:
            waited = f", taking over from {previous_holder}"
        elif previous_holder == self.identity:
            waited = ", which it held before this restart"
        log.info("Became the leader: %s is held by %s%s; reconciling starts.", self.description, self.identity,
                 waited)
        return True

    def _note_holder(self, holder: str) -> None:
        if holder != self.holder:
            self.holder = holder
            if holder and holder != self.identity:
                log.info("%s is held by %s; standing by.", self.description, holder)
            elif not holder:
                log.info("%s is free (released by its last holder).", self.description)

    async def _renew(self, client: KubeClient) -> None:
        """Renew every retry period until a stop is asked for; on a lost Lease, `on_lost` (exit)."""
        settings = self.settings
        next_try = self._last_renewal_sent + settings.retry_period_seconds
        while True:
            if await self._sleep_or_stop(next_try - time.monotonic()):
                return
            deadline = self._last_renewal_sent + settings.renew_deadline_seconds
            sent = time.monotonic()
            if sent >= deadline:
                self._lose(f"no renewal succeeded within {settings.renew_deadline_seconds:.0f} s")
                return
            try:
                assert self._lease is not None
                self._lease = await asyncio.wait_for(
                    client.request("PUT", self._path(self.name), body=renewed(self._lease)), deadline - sent)
                self._last_renewal_sent = sent
                next_try = sent + settings.retry_period_seconds
            except ApiError as error:
                if error.status != 409:
                    log.warning("Renewing %s failed (%.1f s left before giving up): %s", self.description,
                                deadline - time.monotonic(), error)
                    next_try = time.monotonic() + settings.retry_period_seconds
                    continue
                # Someone wrote the Lease since our last write: still ours (an edited label), or taken?
                try:
                    current = await self._read(client, timeout=max(0.01, deadline - time.monotonic()))
                except (ApiError, aiohttp.ClientError, TimeoutError, OSError) as read_error:
                    log.warning("Reading %s after a conflict failed: %s", self.description,
                                read_error or type(read_error).__name__)
                    next_try = time.monotonic() + settings.retry_period_seconds
                    continue
                holder = LeaseRecord.of(current).holder if current is not None else ""
                if holder != self.identity:
                    self._lose(f"{self.description} is now held by {holder or 'nobody (it was deleted or released)'}")
                    return
                assert current is not None
                self._lease = current  # ours still (someone edited, say, a label): renew from this version
                next_try = time.monotonic()
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                log.warning("Renewing %s failed (%.1f s left before giving up): %s", self.description,
                            deadline - time.monotonic(), error or type(error).__name__)
                next_try = time.monotonic() + settings.retry_period_seconds
            next_try = min(next_try, deadline)

    def _lose(self, reason: str) -> None:
        LEADER.labels(identity=self.identity).set(0)
        self.leading.clear()
        self._on_lost(reason)

    async def _release(self, client: KubeClient) -> None:
        """Hand the Lease back (the reconciling part has stopped): a standby takes it at once."""
        if self._lease is None or not self.leading.is_set():
            return
        self.leading.clear()
        LEADER.labels(identity=self.identity).set(0)
        try:
            await asyncio.wait_for(client.request("PUT", self._path(self.name), body=released(self._lease)),
                                   self.settings.retry_period_seconds * 2)
        except (ApiError, aiohttp.ClientError, TimeoutError, OSError) as error:
            log.warning("Could not release %s (a standby takes over once it expires): %s", self.description,
                        error or type(error).__name__)
            return
        log.info("Released %s on shutdown: a standby takes over at once.", self.description)

    # -- this pod's label, which routes the admission webhook's calls to the leader

    async def _clear_stale_label(self, client: KubeClient) -> None:
        """A standby's pod must not carry the leader label (left by a process of this pod that led and died):
        the webhook Service would send it calls it does not serve. Ready only once that is so."""
        while self.pod is not None:
            try:
                pod = await asyncio.wait_for(client.get("Pod", self.pod.name, self.pod.namespace),
                                             self.settings.lease_duration_seconds)
                if pod is not None and LEADER_LABEL in (pod["metadata"].get("labels") or {}):
                    await self._patch_label(client, None)
                    log.info("Removed the leader label a previous process left on pod %s/%s.", self.pod.namespace,
                             self.pod.name)
                break
            except ApiError as error:
                if error.status == 403:
                    log.warning("May not read or label pod %s/%s (the chart's Role "
                                "tenantry-operator-leader-election allows it): the webhook Service cannot tell "
                                "the leader.", self.pod.namespace, self.pod.name)
                    break
                log.warning("Could not check pod %s/%s for a stale leader label, retrying: %s",
                            self.pod.namespace, self.pod.name, error)
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                log.warning("Could not check pod %s/%s for a stale leader label, retrying: %s",
                            self.pod.namespace, self.pod.name, error or type(error).__name__)
            if await self._sleep_or_stop(self.settings.retry_period_seconds):
                return

    async def _patch_label(self, client: KubeClient, value: str | None) -> None:
        assert self.pod is not None
        await asyncio.wait_for(client.request(
            "PATCH", f"/api/v1/namespaces/{self.pod.namespace}/pods/{self.pod.name}",
            body={"metadata": {"labels": {LEADER_LABEL: value}}}, content_type="application/merge-patch+json"),
            self.settings.renew_deadline_seconds)

    async def _label_pod(self, client: KubeClient, value: str) -> None:
        backoff = Backoff(self.settings.retry_period_seconds, 30.0)
        while True:
            try:
                await self._patch_label(client, value)
                log.info("Labelled pod %s/%s %s=%s: the webhook Service routes to it.", *self._pod_names(),
                         LEADER_LABEL, value)
                return
            except (ApiError, aiohttp.ClientError, TimeoutError, OSError) as error:
                delay = backoff.next()
                log.error("Could not label pod %s/%s as the leader (the admission webhook is not reached until "
                          "it is), retrying in %.0f s: %s", *self._pod_names(), delay, error or type(error).__name__)
            await asyncio.sleep(delay)

    def _pod_names(self) -> tuple[str, str]:
        assert self.pod is not None
        return self.pod.namespace, self.pod.name

    # -- the main thread's side

    def wait_until_leading(self, stop: threading.Event) -> bool:
        """Block until this process leads (True) or `stop` is set (False). Raises when the election failed."""
        while not stop.is_set():
            if self.leading.wait(0.2):
                return True
            if self._thread is not None and not self._thread.is_alive():
                raise RuntimeError(f"leader election stopped: {self.error or 'without a reason'}")
        return False

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the election; a leader releases the Lease first. Call once the reconciling part has stopped."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # its loop has just ended
                loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def status(self) -> dict[str, Any]:
        return {"leader": self.leading.is_set(), "identity": self.identity, "holder": self.holder or None,
                "lease": f"{self.namespace}/{self.name}"}
