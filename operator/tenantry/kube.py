"""The one door to the Kubernetes API for everything Tenantry writes and reads outside kopf's watches.

A thin asyncio client over aiohttp (kopf's own HTTP stack, so there is one), working on plain
dicts: builders produce manifests as dicts and this module sends them. It knows the handful of
resource kinds the operator touches, speaks server-side apply under the field manager `tenantry`,
reuses one connection pool, and turns HTTP failures into `ApiError` with the status and the
apiserver's message, so that callers can tell "not found" from "conflict" from "try again".

Like client-go's transport, every request asks its credential source for the current credentials
(tenantry.credentials.ClusterLogin re-reads rotated token files and re-runs exec plugins), answers
a 401 with one fresh login and a retry, and retries 429 and 5xx answers a bounded number of times,
after the server's Retry-After or an exponential back-off with jitter.
"""

from __future__ import annotations

import asyncio
import builtins
import datetime
import email.utils
import json
import logging
import random
import ssl
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import aiohttp

from tenantry import __version__
from tenantry.naming import FIELD_MANAGER, GROUP, PLURALS, VERSION
from tenantry.pacing import Backoff
from tenantry.watch_health import WatchHealth

log = logging.getLogger(__name__)

USER_AGENT = f"tenantry/{__version__}"

# kind -> (api prefix, plural, namespaced). Only the kinds the operator and meter touch.
_KINDS: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("api/v1", "namespaces", False),
    "Node": ("api/v1", "nodes", False),
    "ConfigMap": ("api/v1", "configmaps", True),
    "Secret": ("api/v1", "secrets", True),
    "Service": ("api/v1", "services", True),
    "ServiceAccount": ("api/v1", "serviceaccounts", True),
    "ResourceQuota": ("api/v1", "resourcequotas", True),
    "LimitRange": ("api/v1", "limitranges", True),
    "Event": ("api/v1", "events", True),
    "Pod": ("api/v1", "pods", True),
    "Deployment": ("apis/apps/v1", "deployments", True),
    "StatefulSet": ("apis/apps/v1", "statefulsets", True),
    "NetworkPolicy": ("apis/networking.k8s.io/v1", "networkpolicies", True),
    "Ingress": ("apis/networking.k8s.io/v1", "ingresses", True),
    "Role": ("apis/rbac.authorization.k8s.io/v1", "roles", True),
    "RoleBinding": ("apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    "ClusterRole": ("apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    "ClusterRoleBinding": ("apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    "CustomResourceDefinition": ("apis/apiextensions.k8s.io/v1", "customresourcedefinitions", False),
    "Certificate": ("apis/cert-manager.io/v1", "certificates", True),
    "ServiceMonitor": ("apis/monitoring.coreos.com/v1", "servicemonitors", True),
    "ValidatingWebhookConfiguration": ("apis/admissionregistration.k8s.io/v1", "validatingwebhookconfigurations",
                                       False),
    "MutatingWebhookConfiguration": ("apis/admissionregistration.k8s.io/v1", "mutatingwebhookconfigurations",
                                     False),
}
for _kind, _plural in PLURALS.items():
    _KINDS[_kind] = (f"apis/{GROUP}/{VERSION}", _plural, _kind in ("Plan", "Tenant", "LicenseOrder"))


# Metadata-only reads (the apiserver's PartialObjectMetadata, meta.k8s.io/v1, served since 1.15): the
# object's metadata and nothing else, so that a Secret's data never crosses the wire. No fallback to
# plain JSON in the Accept header: a server that cannot serve metadata only would send whole objects.
METADATA_LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
METADATA_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
# A metadata-only list is read in pages, each cut down to identity, version and labels as it arrives:
# a relist of every Secret of a large cluster must not hold all their managedFields at once.
METADATA_PAGE = 500


def _identity(item: Mapping[str, Any], kind: str) -> dict[str, Any]:
    meta = item.get("metadata") or {}
    return {"kind": kind, "metadata": {k: meta[k] for k in ("name", "namespace", "resourceVersion", "labels")
                                       if k in meta}}


def _list_items(result: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    """The items of a list response. Items carry no apiVersion and kind; restore both, so that an
    item looks exactly like the object a GET or a watch returns."""
    items: list[dict[str, Any]] = result.get("items", [])
    for item in items:
        item.setdefault("apiVersion", result.get("apiVersion"))
        item.setdefault("kind", kind)
    return items


class ApiError(Exception):
    """An HTTP error from the apiserver, with its status code and message."""

    def __init__(self, status: int, reason: str, message: str, method: str = "", path: str = ""):
        super().__init__(f"{method} {path}: {status} {reason}: {message}")
        self.status, self.reason, self.message = status, reason, message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def retryable(self) -> bool:
        return self.status in (409, 429) or self.status >= 500


def resource_path(kind: str, namespace: str | None = None, name: str | None = None, subresource: str = "") -> str:
    """The URL path of a kind's collection, or of one object (and its subresource)."""
    prefix, plural, namespaced = _KINDS[kind]
    path = f"/{prefix}"
    if namespaced and namespace:
        path += f"/namespaces/{namespace}"
    path += f"/{plural}"
    if name:
        path += f"/{quote(name)}"
    if subresource:
        path += f"/{subresource}"
    return path


def object_path(obj: Mapping[str, Any], subresource: str = "") -> str:
    meta = obj["metadata"]
    return resource_path(obj["kind"], meta.get("namespace"), meta["name"], subresource)


@dataclass(frozen=True)
class Credentials:
    """Where the apiserver is and how to prove who we are, at one moment (a token may rotate: see
    CredentialSource). Fixed credentials (tests, benchmarks) are their own source."""

    server: str
    token: str | None = None
    scheme: str | None = None
    ca_path: str | None = None
    ca_data: bytes | None = None
    cert_path: str | None = None
    key_path: str | None = None
    insecure: bool = False

    @property
    def authorization(self) -> str | None:
        return f"{self.scheme or 'Bearer'} {self.token}" if self.token else None

    @property
    def transport(self) -> tuple[Any, ...]:
        """What the connection pool is built from (a change needs a new pool); the token is not."""
        return (self.server, self.ca_path, self.ca_data, self.cert_path, self.key_path, self.insecure)

    async def current(self) -> Credentials:
        return self

    async def rejected(self, credentials: Credentials) -> Credentials:
        return self  # nothing to refresh: a 401 stays a 401

    def ssl_context(self) -> ssl.SSLContext | bool:
        if self.insecure:
            return False
        # With a CA given, only that CA is trusted (the system's roots are loaded only when none is).
        context = ssl.create_default_context(cafile=self.ca_path,
                                             cadata=self.ca_data.decode() if self.ca_data else None)
        if self.cert_path and self.key_path:
            context.load_cert_chain(self.cert_path, self.key_path)
        return context


class CredentialSource(Protocol):
    """Where KubeClient gets its credentials: `current()` before each request (cheap; may re-read a
    rotated token), `rejected(credentials)` after a 401 with them (a fresh login, once for many
    concurrent 401s). `Credentials` (fixed) and tenantry.credentials.ClusterLogin implement it."""

    async def current(self) -> Credentials: ...

    async def rejected(self, credentials: Credentials) -> Credentials: ...


# Answers worth another try: the apiserver is overloaded (429, its max-in-flight limit; 503) or a
# hop failed (500, 502, 504). 501 and other 5xx are not going to change.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_BASE = 0.2       # s, first back-off without Retry-After
RETRY_CAP = 5.0        # s, longest back-off without Retry-After
RETRY_AFTER_CAP = 10.0  # s, the longest Retry-After honoured: a reconcile worker waits no longer


def retry_delay(attempt: int, retry_after: str | None, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry `attempt + 1` (attempt 0 is the first retry).

    The server's Retry-After (delta-seconds or an HTTP date) when given, capped at RETRY_AFTER_CAP,
    plus up to 25% jitter; otherwise exponential back-off from RETRY_BASE, capped at RETRY_CAP, with
    "equal jitter" (half fixed, half random), so that clients failed by one outage do not all come
    back in the same instant."""
    backoff = min(RETRY_CAP, RETRY_BASE * 2 ** attempt)
    after = _parse_retry_after(retry_after)
    if after is not None:
        after = min(after, RETRY_AFTER_CAP)
        return after + after * 0.25 * rand()
    return backoff / 2 + backoff / 2 * rand()


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds())


class KubeClient:
    """Async access to the apiserver with one pooled connection set. Create once, close at exit.

    `credentials`: fixed `Credentials`, or a `CredentialSource` that keeps them fresh (the operator
    and the meter use tenantry.credentials.ClusterLogin). `max_attempts`: tries of one request while
    the server answers 429/5xx (a 401 is retried once more, after a fresh login)."""

    def __init__(self, credentials: Credentials | CredentialSource, *, max_connections: int = 32,
                 timeout: float = 30.0, impersonate: str | None = None, max_attempts: int = 4):
        self._source: CredentialSource = credentials
        self.credentials: Credentials | None = credentials if isinstance(credentials, Credentials) else None
        self._max_connections = max_connections
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._session_transport: tuple[Any, ...] | None = None
        self._impersonate = impersonate
        self.max_attempts = max(1, max_attempts)
        # Retries and fresh logins, by cause (`429`, `503`, `401`...), for tests and benchmarks.
        self.retries: dict[str, int] = {}
        # Counted per verb so that benchmarks and tests can see what a reconcile cost; the operator
        # also hooks `on_request` to export the counts as a metric.
        self.requests: dict[str, int] = {}
        self.on_request: Callable[[str], None] | None = None

    def _count(self, verb: str) -> None:
        self.requests[verb] = self.requests.get(verb, 0) + 1
        if self.on_request is not None:
            self.on_request(verb)

    async def _get_session(self, credentials: Credentials) -> aiohttp.ClientSession:
        """The pool for these credentials' server and TLS identity. The token is sent per request
        (it rotates); a new CA or client certificate (an exec plugin may hand out certificates)
        needs a new pool, and the old one is closed: its requests fail and are retried by their callers."""
        if self._session is not None and not self._session.closed and self._session_transport != credentials.transport:
            log.info("The API server's address or TLS identity changed after a login; reconnecting.")
            old, self._session = self._session, None
            await old.close()
        if self._session is None or self._session.closed:
            headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
            if self._impersonate:
                headers["Impersonate-User"] = self._impersonate
            connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=credentials.ssl_context())
            self._session = aiohttp.ClientSession(connector=connector, headers=headers, timeout=self._timeout)
            self._session_transport = credentials.transport
        return self._session

    async def _send(self, verb: str, method: str, path: str, *, params: Mapping[str, str] | None = None,
                    data: str | None = None, headers: Mapping[str, str] | None = None,
                    timeout: aiohttp.ClientTimeout | None = None) -> aiohttp.ClientResponse:
        """One request, as many times as it takes within the limits: a 401 once more after a fresh
        login; 429/5xx up to `max_attempts` in all, after `retry_delay`. Returns the last response,
        unread: the caller reads it and releases it."""
        credentials = await self._source.current()
        logged_in_again = False
        attempt = 0
        while True:
            self.credentials = credentials
            session = await self._get_session(credentials)
            url = credentials.server + path + (f"?{urlencode(params)}" if params else "")
            request_headers = dict(headers or {})
            if credentials.authorization:
                request_headers["Authorization"] = credentials.authorization
            self._count(verb)
            response = await session.request(method, url, data=data, headers=request_headers,
                                             timeout=timeout or self._timeout)
            if response.status == 401 and not logged_in_again:
                logged_in_again = True
                fresh = await self._source.rejected(credentials)
                if fresh.authorization != credentials.authorization or fresh.transport != credentials.transport:
                    response.release()
                    self.retries["401"] = self.retries.get("401", 0) + 1
                    log.info("The API server refused the credentials (401) for %s %s; logged in again and "
                             "retrying.", verb, path)
                    credentials = fresh
                    continue
            if response.status in RETRY_STATUSES and attempt + 1 < self.max_attempts:
                delay = retry_delay(attempt, response.headers.get("Retry-After"))
                response.release()
                attempt += 1
                self.retries[str(response.status)] = self.retries.get(str(response.status), 0) + 1
                log.debug("%s %s answered %d; retry %d in %.2fs.", verb, path, response.status, attempt, delay)
                await asyncio.sleep(delay)
                continue
            return response

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str | None = None,
    ) -> dict[str, Any]:
        data = json.dumps(body) if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else {}
        if accept:
            headers["Accept"] = accept
        response = await self._send(method, method, path, params=params, data=data, headers=headers)
        async with response:
            text = await response.text()
            if response.status >= 400:
                try:
                    status = json.loads(text)
                    reason, message = status.get("reason", ""), status.get("message", text)
                except ValueError:
                    reason, message = response.reason or "", text[:500]
                raise ApiError(response.status, reason, message, method, path)
            return json.loads(text) if text else {}

    # -- reading ---------------------------------------------------------------------------------

    async def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            return await self.request("GET", resource_path(kind, namespace, name))
        except ApiError as error:
            if error.not_found:
                return None
            raise

    async def list(self, kind: str, namespace: str | None = None, label_selector: str | None = None
                   ) -> list[dict[str, Any]]:
        params = {"labelSelector": label_selector} if label_selector else None
        result = await self.request("GET", resource_path(kind, namespace), params=params)
        return _list_items(result, kind)

    async def list_with_version(self, kind: str, label_selector: str | None = None, *, metadata_only: bool = False,
                                from_cache: bool = False) -> tuple[builtins.list[dict[str, Any]], str]:
        """Items and the list's resourceVersion, the starting point of a watch.

        `metadata_only`: each item is only {kind, metadata: {name, namespace, resourceVersion, labels}},
        read as PartialObjectMetadata in pages of METADATA_PAGE (one consistent snapshot: every page
        is served at the first page's resourceVersion; an expired continue token is a 410).
        `from_cache`: served from the API server's watch cache (`resourceVersion=0`, what client-go's
        reflectors list with first): no read of etcd, whole (the cache ignores `limit`), possibly a
        moment old - the watch from its resourceVersion brings the rest. At 10,000 tenants the
        operator's start-up lists some 100,000 objects; from etcd that is most of the API server's work."""
        cache = {"resourceVersion": "0"} if from_cache else {}
        if not metadata_only:
            params = {**cache, **({"labelSelector": label_selector} if label_selector else {})} or None
            result = await self.request("GET", resource_path(kind), params=params)
            return _list_items(result, kind), result.get("metadata", {}).get("resourceVersion", "")
        items: builtins.list[dict[str, Any]] = []
        page = {"limit": str(METADATA_PAGE), **cache, **({"labelSelector": label_selector} if label_selector else {})}
        while True:
            result = await self.request("GET", resource_path(kind), params=page, accept=METADATA_LIST_ACCEPT)
            items.extend(_identity(item, kind) for item in result.get("items", []))
            meta = result.get("metadata", {})
            if not meta.get("continue"):
                return items, meta.get("resourceVersion", "")
            page.pop("resourceVersion", None)  # a server without a watch cache pages; a continue names its version
            page["continue"] = meta["continue"]

    async def watch(self, kind: str, *, resource_version: str, label_selector: str | None = None,
                    timeout_seconds: int = 300, metadata_only: bool = False,
                    on_open: Callable[[], None] | None = None) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Watch events (type, object) from a resourceVersion until the server ends the stream.
        Raises ApiError(410) when the version is too old: the caller lists again.
        `metadata_only`: objects are PartialObjectMetadata (metadata, no data or spec).
        `on_open`: called once the server has accepted the watch."""
        params = {"watch": "1", "resourceVersion": resource_version, "allowWatchBookmarks": "true",
                  "timeoutSeconds": str(timeout_seconds)}
        if label_selector:
            params["labelSelector"] = label_selector
        url = resource_path(kind) + "?" + urlencode(params)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=timeout_seconds + 30)
        headers = {"Accept": METADATA_ACCEPT} if metadata_only else None
        response = await self._send("WATCH", "GET", resource_path(kind), params=params, headers=headers,
                                    timeout=timeout)
        async with response:
            if response.status >= 400:
                raise ApiError(response.status, response.reason or "", await response.text(), "WATCH", url)
            if on_open is not None:
                on_open()  # the server accepted the watch (a quiet kind may send no event for minutes)
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event.get("object", {})
                if event.get("type") == "ERROR":
                    raise ApiError(int(obj.get("code", 500)), obj.get("reason", ""), obj.get("message", ""),
                                   "WATCH", url)
                if metadata_only:
                    obj = _identity(obj, kind)  # nothing but what a metadata-only list returns
                obj.setdefault("kind", kind)
                yield event["type"], obj

    async def kind_exists(self, kind: str) -> bool:
        """Whether the apiserver serves this kind (e.g. cert-manager's Certificate)."""
        prefix, plural, _ = _KINDS[kind]
        try:
            result = await self.request("GET", f"/{prefix}")
        except ApiError as error:
            if error.not_found:
                return False
            raise
        return any(r.get("name") == plural for r in result.get("resources", []))

    # -- writing ---------------------------------------------------------------------------------

    async def apply(self, manifest: Mapping[str, Any], *, subresource: str = "") -> dict[str, Any]:
        """Server-side apply under the field manager `tenantry`, taking over conflicting fields:
        the operator is the authority on what it makes, which is how drift is corrected."""
        params = {"fieldManager": FIELD_MANAGER, "force": "true"}
        return await self.request("PATCH", object_path(manifest, subresource), params=params, body=manifest,
                                  content_type="application/apply-patch+yaml")

    async def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        meta = manifest["metadata"]
        path = resource_path(manifest["kind"], meta.get("namespace"))
        return await self.request("POST", path, params={"fieldManager": FIELD_MANAGER}, body=manifest)

    async def merge_patch(self, kind: str, name: str, patch: Mapping[str, Any], *, namespace: str | None = None,
                          subresource: str = "") -> dict[str, Any]:
        path = resource_path(kind, namespace, name, subresource)
        return await self.request("PATCH", path, params={"fieldManager": FIELD_MANAGER}, body=patch,
                                  content_type="application/merge-patch+json")

    async def delete(self, kind: str, name: str, namespace: str | None = None, *,
                     propagation: str = "Background") -> bool:
        """Delete an object; False when it was already gone."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        try:
            await self.request("DELETE", resource_path(kind, namespace, name), body=body)
        except ApiError as error:
            if error.not_found:
                return False
            raise
        return True

    async def post_event(self, involved: Mapping[str, Any], *, reason: str, message: str,
                         type_: str = "Normal") -> None:
        """Post a core/v1 Event about an object. Failures are logged, never raised: an event is
        a courtesy to the reader and must not fail a reconcile."""
        meta = involved["metadata"]
        event = event_manifest(involved, reason=reason, message=message, type_=type_,
                               now=datetime.datetime.now(datetime.UTC), suffix=uuid.uuid4().hex[:16])
        namespace = event["metadata"]["namespace"]
        try:
            await self.request("POST", resource_path("Event", namespace), body=event)
        except (TimeoutError, ApiError, aiohttp.ClientError) as error:
            log.warning("Could not post event %s on %s/%s: %s", reason, involved.get("kind"), meta["name"], error)


def event_manifest(involved: Mapping[str, Any], *, reason: str, message: str, type_: str,
                   now: datetime.datetime, suffix: str) -> dict[str, Any]:
    """The core/v1 Event `post_event` posts about `involved` (pure: the clock and the name's suffix are given).
    Events about a cluster-scoped object (a Reseller, a Region) go to the namespace `default`."""
    meta = involved["metadata"]
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{suffix}", "namespace": meta.get("namespace") or "default"},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion"), "kind": involved.get("kind"),
            "name": meta["name"], "namespace": meta.get("namespace"), "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "reason": reason,
        "message": message[:1024],
        "type": type_,
        "source": {"component": "tenantry"},
        "reportingComponent": "tenantry",
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


async def list_then_watch(
    client: KubeClient,
    kind: str,
    *,
    on_list: Callable[[list[dict[str, Any]]], None],
    on_event: Callable[[str, dict[str, Any]], None],
    label_selector: str | None = None,
    on_synced: Callable[[], None] | None = None,
    metadata_only: bool = False,
    health: WatchHealth | None = None,
) -> None:
    """Keep a picture of one kind current, forever: list (`on_list` gets every item), then watch from
    the list's resourceVersion (`on_event` gets ADDED/MODIFIED/DELETED). When the watch expires (410)
    or the connection is lost, list again, with back-off while the apiserver is unreachable. The
    operator's informers and the meter's reflectors both run on this loop. `metadata_only`: items
    and objects are identity, version and labels only (see KubeClient.list_with_version).

    An object a callback fails on is that object's problem, not the loop's (`health`, see
    tenantry.watch_health): each event is isolated (logged once per version, counted, skipped) and
    the watch goes on; `on_list` isolates each item itself (`WatchHealth.each`). Relisting would
    meet the same object again, every back-off, forever. Failures of the list or watch themselves
    are counted in `health` until a watch works again."""
    health = health if health is not None else WatchHealth(kind)
    backoff = Backoff(0.5, 30.0)

    def working() -> None:  # the watch was accepted, or delivered, or ran its course
        health.working()
        backoff.reset()

    first = True
    while True:
        try:
            # The first list fills an empty picture, from the API server's cache; a list again (the watch
            # expired or broke) reads etcd, so that it is never older than what the picture already holds.
            items, version = await client.list_with_version(kind, label_selector, metadata_only=metadata_only,
                                                            from_cache=first)
            first = False
            try:
                on_list(items)
            except Exception as error:  # the callback should have isolated its items; never relist for it
                health.skipped({"metadata": {"name": f"(list of {len(items)})"}}, error)
            # Not kept for as long as the watch runs: the picture keeps what it needs of them (a Store,
            # trimmed and compact), and a start-up list of every tenant's objects is the biggest thing read.
            del items
            if on_synced is not None:
                on_synced()
            while True:
                async for event_type, obj in client.watch(kind, resource_version=version,
                                                          label_selector=label_selector,
                                                          metadata_only=metadata_only, on_open=working):
                    version = obj.get("metadata", {}).get("resourceVersion", version)
                    if event_type != "BOOKMARK":
                        health.isolate(on_event, obj, event_type, obj)
                working()  # the server ended the watch after timeoutSeconds
        except asyncio.CancelledError:
            raise
        except ApiError as error:
            if error.status == 410:
                continue  # the version is too old: list again at once
            health.failed(error)
            delay = backoff.next()
            log.warning("Watch of %s failed, listing again in %.1fs: %s", kind, delay, error)
        except (TimeoutError, aiohttp.ClientError, ConnectionError, ValueError) as error:
            health.failed(error)
            delay = backoff.next()
            log.warning("Watch of %s lost its connection, listing again in %.1fs: %s", kind, delay, error)
        except Exception as error:
            # Not an object's fault (those are isolated above): still, the picture must not end for
            # good (the task would die unnoticed while the rest of the process serves a frozen view).
            health.failed(error)
            delay = backoff.next()
            log.exception("Watch of %s failed unexpectedly; listing again in %.1fs", kind, delay)
        await asyncio.sleep(delay)
