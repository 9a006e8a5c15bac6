"""Member clusters (DESIGN.md §7): a Region with `spec.cluster` is a cluster of its own.

The control cluster (where the operator runs) keeps Regions, Resellers, Plans, Tenants, LicenseOrders,
the admission ledger and the reseller CAs. A member cluster gets each of its region's tenant
namespaces and everything in them. Per member, one `MemberCluster`: a client logged in with the
kubeconfig of the Region's Secret, one Informer per child kind into a Store of its own (the same
label selector as in the control cluster, so drift there wakes the owning Tenant as fast), and a probe
that says whether the member answers (`ClusterReachable`).

`Clusters` (on the Operator) holds them: `reconcile_region` connects, reconnects when the Secret's
content changes (a rotated credential) and disconnects when `spec.cluster` goes or the Region is
deleted; a tenant's reconcile asks `for_region` where its namespace lives. While a member does not
answer, its tenants are left as they are (nothing is written there) and report it; admission goes on,
since the licences are counted in the control cluster.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from tenantry.controller.informer import Informer
from tenantry.controller.store import Store
from tenantry.credentials import KubeconfigError, kubeconfig_login
from tenantry.kube import ApiError, KubeClient
from tenantry.models import KubeconfigSecretRef

log = logging.getLogger("tenantry.clusters")

# What a member holds of a tenant: its namespace and the children in it. (The meter, cert-manager's
# Certificates and the reseller's objects stay in the control cluster.)
MEMBER_CHILD_KINDS = ("Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy", "RoleBinding", "Ingress",
                      "ConfigMap", "Secret")
PROBE_SECONDS = 5.0   # how often a member is asked whether it answers
# How often a connected member's Region is looked at again anyway: its nodes (status.nodePool) are not
# watched (a node's status changes every few seconds; the pool's capacity is a figure for people).
REFRESH_SECONDS = 30.0
PROBE_TIMEOUT = 5.0

# ClusterReachable reasons (DESIGN.md §7).
CONNECTED, UNREACHABLE, FORBIDDEN, INVALID_KUBECONFIG = "Connected", "Unreachable", "Forbidden", "InvalidKubeconfig"


@dataclass(frozen=True)
class Reachability:
    """What the last probe of a member said: `reachable` with a ClusterReachable reason and message."""

    reachable: bool
    reason: str
    message: str
    server: str = ""
    version: str = ""


@dataclass(frozen=True)
class Cluster:
    """Where a tenant's namespace lives: the control cluster (`region` None) or a member."""

    region: str | None
    client: KubeClient
    store: Store


def content_digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:16]


class MemberCluster:
    """One member cluster: its client, its Store and watches, and its probe."""

    def __init__(self, region: str, content: bytes, on_child: Callable[[str, dict[str, Any], dict[str, Any] | None],
                                                                       None],
                 on_reachability: Callable[[str, Reachability], None], on_refresh: Callable[[str], None]):
        self.region = region
        self.digest = content_digest(content)
        self.store = Store()
        self.state = Reachability(False, UNREACHABLE, "Not connected yet.")
        self._on_child, self._on_reachability, self._on_refresh = on_child, on_reachability, on_refresh
        self._content = content
        self.client: KubeClient | None = None
        self.server = ""  # the API server's URL, from the kubeconfig
        self._informers: list[Informer] = []
        self._probe: asyncio.Task[None] | None = None

    @property
    def cluster(self) -> Cluster | None:
        return Cluster(self.region, self.client, self.store) if self.client is not None else None

    async def start(self) -> None:
        """Log in and ask the member once, so that the Region's first status after a (re)connection
        says how it is; then keep asking in the background."""
        try:
            login = kubeconfig_login(lambda: self._content)
            self.server = (await asyncio.to_thread(login.login)).server  # an exec plugin may run here
        except KubeconfigError as error:
            self._set(Reachability(False, INVALID_KUBECONFIG, f"The kubeconfig is not usable: {error}."))
            return
        # Two tries per request: a member that does not answer must not hold a worker through the
        # client's retries; the probe says when it is back, and the queue retries what failed.
        self.client = KubeClient(login, max_connections=64, max_attempts=2, timeout=30.0)
        await self._check()
        self._probe = asyncio.create_task(self._probe_forever(), name=f"member-{self.region}-probe")

    async def stop(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
        for informer in self._informers:
            await informer.stop()
        if self.client is not None:
            await self.client.close()

    def _set(self, state: Reachability) -> None:
        changed = (state.reachable, state.reason) != (self.state.reachable, self.state.reason)
        self.state = state
        if changed:
            level = logging.INFO if state.reachable else logging.WARNING
            log.log(level, "Member cluster of region %s: %s (%s).", self.region, state.reason, state.message)
            self._on_reachability(self.region, state)

    async def _probe_forever(self) -> None:
        refreshed = time.monotonic()
        while True:
            await asyncio.sleep(PROBE_SECONDS)
            await self._check()
            if self.state.reachable and time.monotonic() - refreshed >= REFRESH_SECONDS:
                refreshed = time.monotonic()
                self._on_refresh(self.region)

    async def _check(self) -> None:
        state = await self.probe()
        if state.reachable and not self._informers:
            await self._watch()
        self._set(state)

    async def _watch(self) -> None:
        """The children's watches, started once the member first answers (a member down from the start
        must not fill the log with failing lists); in sync before the region reports it Connected."""
        assert self.client is not None
        self._informers = [Informer(self.client, self.store, kind, self._on_child) for kind in MEMBER_CHILD_KINDS]
        for informer in self._informers:
            informer.start()
        await asyncio.gather(*(i.synced.wait() for i in self._informers))

    async def probe(self) -> Reachability:
        """Ask the member who it is and whether the operator may see its namespaces."""
        assert self.client is not None
        server = self.server
        try:
            version = await asyncio.wait_for(self.client.request("GET", "/version"), PROBE_TIMEOUT)
            # A cheap request the operator's ClusterRole allows: one namespace of Tenantry's, if any.
            await asyncio.wait_for(self.client.request(
                "GET", "/api/v1/namespaces", params={"labelSelector": "app.kubernetes.io/managed-by=tenantry",
                                                     "limit": "1"}), PROBE_TIMEOUT)
        except ApiError as error:
            if error.status in (401, 403):
                return Reachability(False, FORBIDDEN, f"{server} refused the operator's identity "
                                    f"({error.status}): bind the operator's ClusterRole to it there "
                                    "(docs/multi-cluster.md).", server)
            return Reachability(False, UNREACHABLE, f"{server} answered {error.status}: {error}.", server)
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            return Reachability(False, UNREACHABLE, f"{server} does not answer: {error or type(error).__name__}.",
                                server)
        return Reachability(True, CONNECTED, f"{server} answers (Kubernetes {version.get('gitVersion', '?')}).",
                            server, str(version.get("gitVersion", "")))


class Clusters:
    """The control cluster and the members, by region."""

    def __init__(self, local: Cluster):
        self.local = local
        self.members: dict[str, MemberCluster] = {}
        # What the operator does with a member's watch events and probe results (controller/handlers.py).
        self.on_child: Callable[[str, dict[str, Any], dict[str, Any] | None], None] = lambda *_: None
        self.on_reachability: Callable[[str, Reachability], None] = lambda *_: None
        self.on_refresh: Callable[[str], None] = lambda *_: None
        # Regions whose spec.cluster is set, with the Secret it names (those without a member yet too).
        self.refs: dict[str, KubeconfigSecretRef] = {}

    def declare(self, region: str, ref: KubeconfigSecretRef | None) -> None:
        """Which regions are member clusters, from their specs as the watch delivers them: known before
        any reconcile, so that no tenant of a member region is ever provisioned here meanwhile."""
        if ref is None:
            self.refs.pop(region, None)
        else:
            self.refs[region] = ref

    def is_member_region(self, region: str | None) -> bool:
        return region is not None and region in self.refs

    def for_region(self, region: str | None) -> Cluster | None:
        """Where the region's tenant namespaces live; None for a member that is not connected (nothing
        may be read or written for its tenants now)."""
        if not self.is_member_region(region):
            return self.local
        assert region is not None
        member = self.members.get(region)
        if member is None or not member.state.reachable:
            return None
        return member.cluster

    def reachability(self, region: str) -> Reachability:
        member = self.members.get(region)
        return member.state if member is not None else Reachability(False, UNREACHABLE, "Not connected yet.")

    async def connect(self, region: str, ref: KubeconfigSecretRef, content: bytes | None) -> MemberCluster | None:
        """Connect the region to the member in `content` (None: the Secret or its key is missing: no
        connection); a connection with the same content is kept as it is."""
        self.refs[region] = ref
        current = self.members.get(region)
        if content is not None and current is not None and current.digest == content_digest(content):
            return current
        if current is not None:
            log.info("The kubeconfig of region %s changed or went: connecting again.", region)
            await self.disconnect(region, keep_ref=True)
        if content is None:
            return None
        member = MemberCluster(region, content, lambda *event: self.on_child(*event),
                               lambda *change: self.on_reachability(*change), lambda r: self.on_refresh(r))
        self.members[region] = member
        await member.start()
        return member

    async def disconnect(self, region: str, *, keep_ref: bool = False) -> None:
        if not keep_ref:
            self.refs.pop(region, None)
        member = self.members.pop(region, None)
        if member is not None:
            await member.stop()

    async def stop(self) -> None:
        for region in list(self.members):
            await self.disconnect(region)
