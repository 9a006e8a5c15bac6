"""The one door to the Kubernetes API for everything Tenantry writes and reads outside kopf's watches.

A thin asyncio client over aiohttp (kopf's own HTTP stack, so there is one), working on plain
dicts: builders produce manifests as dicts and this module sends them. It knows the handful of
resource kinds the operator touches, speaks server-side apply under the field manager `tenantry`,
reuses one connection pool, and turns HTTP failures into `ApiError` with the status and the
apiserver's message, so that callers can tell "not found" from "conflict" from "try again".
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import datetime
import json
import logging
import ssl
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from tenantry import __version__
from tenantry.naming import FIELD_MANAGER, GROUP, PLURALS, VERSION

log = logging.getLogger(__name__)

USER_AGENT = f"tenantry/{__version__}"

# kind -> (api prefix, plural, namespaced). Only the kinds the operator and meter touch.
_KINDS: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("api/v1", "namespaces", False),
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
    """Where the apiserver is and how to prove who we are. Built from kopf's ConnectionInfo."""

    server: str
    token: str | None = None
    scheme: str | None = None
    ca_path: str | None = None
    ca_data: bytes | None = None
    cert_path: str | None = None
    key_path: str | None = None
    insecure: bool = False

    @classmethod
    def from_connection_info(cls, info: Any) -> Credentials:
        ca_data = info.ca_data
        if isinstance(ca_data, str):
            # kubeconfig carries CA data base64-encoded; kopf passes it through as given.
            ca_data = base64.b64decode(ca_data) if not ca_data.startswith("-----") else ca_data.encode()
        return cls(
            server=info.server.rstrip("/"),
            token=info.token,
            scheme=info.scheme,
            ca_path=str(info.ca_path) if info.ca_path else None,
            ca_data=ca_data,
            cert_path=str(info.certificate_path) if info.certificate_path else None,
            key_path=str(info.private_key_path) if info.private_key_path else None,
            insecure=bool(info.insecure),
        )

    def ssl_context(self) -> ssl.SSLContext | bool:
        if self.insecure:
            return False
        context = ssl.create_default_context(cafile=self.ca_path)
        if self.ca_data:
            context.load_verify_locations(cadata=self.ca_data.decode())
        if self.cert_path and self.key_path:
            context.load_cert_chain(self.cert_path, self.key_path)
        return context


def load_credentials() -> Credentials:
    """Credentials the way kubectl finds them: in-cluster service account, else $KUBECONFIG."""
    import kopf

    settings = kopf.OperatorSettings()
    info = kopf.login_via_client(logger=log, settings=settings)
    if info is None:  # pragma: no cover - login_via_client raises when it cannot log in
        raise RuntimeError("no Kubernetes credentials found (in-cluster or $KUBECONFIG)")
    return Credentials.from_connection_info(info)


class KubeClient:
    """Async access to the apiserver with one pooled connection set. Create once, close at exit."""

    def __init__(self, credentials: Credentials, *, max_connections: int = 32, timeout: float = 30.0,
                 impersonate: str | None = None):
        self.credentials = credentials
        self._max_connections = max_connections
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._impersonate = impersonate
        # Counted per verb so that benchmarks and tests can see what a reconcile cost; the operator
        # also hooks `on_request` to export the counts as a metric.
        self.requests: dict[str, int] = {}
        self.on_request: Callable[[str], None] | None = None

    def _count(self, verb: str) -> None:
        self.requests[verb] = self.requests.get(verb, 0) + 1
        if self.on_request is not None:
            self.on_request(verb)

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
            if self.credentials.token:
                headers["Authorization"] = f"{self.credentials.scheme or 'Bearer'} {self.credentials.token}"
            if self._impersonate:
                headers["Impersonate-User"] = self._impersonate
            connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=self.credentials.ssl_context())
            self._session = aiohttp.ClientSession(connector=connector, headers=headers, timeout=self._timeout)
        return self._session

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
        session = await self._get_session()
        url = self.credentials.server + path + (f"?{urlencode(params)}" if params else "")
        data = json.dumps(body) if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else {}
        if accept:
            headers["Accept"] = accept
        self._count(method)
        async with session.request(method, url, data=data, headers=headers) as response:
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

    async def list_with_version(self, kind: str, label_selector: str | None = None, *, metadata_only: bool = False
                                ) -> tuple[builtins.list[dict[str, Any]], str]:
        """Items and the list's resourceVersion, the starting point of a watch.

        `metadata_only`: each item is only {kind, metadata: {name, namespace, resourceVersion, labels}},
        read as PartialObjectMetadata in pages of METADATA_PAGE (one consistent snapshot: every page
        is served at the first page's resourceVersion; an expired continue token is a 410)."""
        if not metadata_only:
            params = {"labelSelector": label_selector} if label_selector else None
            result = await self.request("GET", resource_path(kind), params=params)
            return _list_items(result, kind), result.get("metadata", {}).get("resourceVersion", "")
        items: builtins.list[dict[str, Any]] = []
        page = {"limit": str(METADATA_PAGE), **({"labelSelector": label_selector} if label_selector else {})}
        while True:
            result = await self.request("GET", resource_path(kind), params=page, accept=METADATA_LIST_ACCEPT)
            items.extend(_identity(item, kind) for item in result.get("items", []))
            meta = result.get("metadata", {})
            if not meta.get("continue"):
                return items, meta.get("resourceVersion", "")
            page["continue"] = meta["continue"]

    async def watch(self, kind: str, *, resource_version: str, label_selector: str | None = None,
                    timeout_seconds: int = 300, metadata_only: bool = False
                    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Watch events (type, object) from a resourceVersion until the server ends the stream.
        Raises ApiError(410) when the version is too old: the caller lists again.
        `metadata_only`: objects are PartialObjectMetadata (metadata, no data or spec)."""
        session = await self._get_session()
        params = {"watch": "1", "resourceVersion": resource_version, "allowWatchBookmarks": "true",
                  "timeoutSeconds": str(timeout_seconds)}
        if label_selector:
            params["labelSelector"] = label_selector
        url = self.credentials.server + resource_path(kind) + "?" + urlencode(params)
        self._count("WATCH")
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=timeout_seconds + 30)
        headers = {"Accept": METADATA_ACCEPT} if metadata_only else None
        async with session.get(url, timeout=timeout, headers=headers) as response:
            if response.status >= 400:
                raise ApiError(response.status, response.reason or "", await response.text(), "WATCH", url)
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
        namespace = meta.get("namespace") or "default"
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}", "namespace": namespace},
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
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self.request("POST", resource_path("Event", namespace), body=event)
        except (TimeoutError, ApiError, aiohttp.ClientError) as error:
            log.warning("Could not post event %s on %s/%s: %s", reason, involved.get("kind"), meta["name"], error)


async def list_then_watch(
    client: KubeClient,
    kind: str,
    *,
    on_list: Callable[[list[dict[str, Any]]], None],
    on_event: Callable[[str, dict[str, Any]], None],
    label_selector: str | None = None,
    on_synced: Callable[[], None] | None = None,
    metadata_only: bool = False,
) -> None:
    """Keep a picture of one kind current, forever: list (`on_list` gets every item), then watch from
    the list's resourceVersion (`on_event` gets ADDED/MODIFIED/DELETED). When the watch expires (410)
    or the connection is lost, list again, with back-off while the apiserver is unreachable. The
    operator's informers and the meter's reflectors both run on this loop. `metadata_only`: items
    and objects are identity, version and labels only (see KubeClient.list_with_version)."""
    delay = 0.5
    while True:
        try:
            items, version = await client.list_with_version(kind, label_selector, metadata_only=metadata_only)
            on_list(items)
            if on_synced is not None:
                on_synced()
            delay = 0.5
            while True:
                async for event_type, obj in client.watch(kind, resource_version=version,
                                                          label_selector=label_selector,
                                                          metadata_only=metadata_only):
                    version = obj.get("metadata", {}).get("resourceVersion", version)
                    if event_type != "BOOKMARK":
                        on_event(event_type, obj)
        except asyncio.CancelledError:
            raise
        except ApiError as error:
            if error.status == 410:
                continue  # the version is too old: list again at once
            log.warning("Watch of %s failed, listing again in %.1fs: %s", kind, delay, error)
        except (TimeoutError, aiohttp.ClientError, ConnectionError, ValueError) as error:
            log.warning("Watch of %s lost its connection, listing again in %.1fs: %s", kind, delay, error)
        except Exception:
            # An object a callback could not handle must not end this picture for good (the task
            # would die unnoticed while the rest of the process keeps serving a frozen view).
            log.exception("Watch of %s failed on an object it could not handle; listing again in %.1fs",
                          kind, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30)
