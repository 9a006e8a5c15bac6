"""Talking to the test cluster: clients, impersonation, access checks, the audit log, waiting.

Everything here is plain functions over a `kubernetes.client.ApiClient` so that tests read as what a
user would do. The fixtures in tests/conftest.py wire them to the session's control plane.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config

REPO_ROOT = Path(__file__).resolve().parents[2]
CRDS_DIR = REPO_ROOT / "crds"
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})

T = TypeVar("T")


def load_controlplane_module() -> ModuleType:
    """hack/controlplane.py as a module (hack/ is scripts, not a package)."""
    name = "tenantry_hack_controlplane"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "hack" / "controlplane.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class ExistingCluster:
    """USE_EXISTING_CLUSTER=1: a cluster we did not start and must not stop (kind, k3d, a cloud).

    Has the attributes of ControlPlane that make sense for any cluster; `audit_log` is None because
    the API server's audit log of a foreign cluster is not readable from here."""

    kubeconfig: Path
    audit_log: Path | None = None
    local: bool = False


# ---------------------------------------------------------------------------- clients
def new_api_client(kubeconfig: str | os.PathLike[str]) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    # The local API server is on 127.0.0.1: never send that through a proxy from the environment.
    if configuration.host.startswith(("https://127.0.0.1", "https://localhost")):
        configuration.proxy = None
    return client.ApiClient(configuration)


class _ImpersonatingPoolManager:
    """Wraps urllib3's pool manager to add Impersonate-* headers to every request.

    ApiClient keeps default headers in a plain dict, which can hold one Impersonate-Group; the API
    server wants one header line per group, which urllib3's HTTPHeaderDict can send."""

    def __init__(self, inner: urllib3.PoolManager, user: str, groups: Sequence[str]) -> None:
        self._inner = inner
        self._user = user
        self._groups = tuple(groups)

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        merged = urllib3.HTTPHeaderDict(kwargs.pop("headers", None) or {})
        merged["Impersonate-User"] = self._user
        merged.discard("Impersonate-Group")
        for group in self._groups:
            merged.add("Impersonate-Group", group)
        return self._inner.request(method, url, headers=merged, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def impersonating_api_client(
    kubeconfig: str | os.PathLike[str], user: str, groups: Sequence[str] = ()
) -> client.ApiClient:
    """An ApiClient acting as `user` in `groups` (the kubeconfig's identity must be allowed to impersonate,
    as the admin of the local control plane is). `system:authenticated` is added by the API server."""
    api = new_api_client(kubeconfig)
    api.rest_client.pool_manager = _ImpersonatingPoolManager(  # type: ignore[assignment]
        api.rest_client.pool_manager, user, groups
    )
    return api


# ---------------------------------------------------------------------------- access checks
def can_i(
    api_client: client.ApiClient,
    user: str,
    groups: Sequence[str],
    verb: str,
    resource: str,
    namespace: str | None,
    group: str = "",
    name: str | None = None,
    subresource: str | None = None,
) -> bool:
    """Would the API server allow `user` in `groups` to `verb` the `resource`? (SubjectAccessReview)"""
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=user,
            groups=list(groups),
            resource_attributes=client.V1ResourceAttributes(
                verb=verb,
                resource=resource,
                group=group,
                namespace=namespace,
                name=name,
                subresource=subresource,
            ),
        )
    )
    result = client.AuthorizationV1Api(api_client).create_subject_access_review(review)
    return result.status is not None and bool(result.status.allowed)


# ---------------------------------------------------------------------------- audit log
def audit_offset(audit_log: str | os.PathLike[str] | None) -> int:
    """The current end of the audit log: pass it as `since_offset` to count only what follows."""
    if audit_log is None:
        return 0
    try:
        return os.path.getsize(audit_log)
    except FileNotFoundError:
        return 0


def audit_events(audit_log: str | os.PathLike[str], since_offset: int = 0) -> Iterator[dict[str, Any]]:
    """The completed audit events (JSON lines, stage ResponseComplete) written after `since_offset`."""
    with open(audit_log, "rb") as f:
        f.seek(since_offset)
        for line in f:
            if not line.endswith(b"\n"):
                break  # the API server is writing this line right now
            event = json.loads(line)
            if event.get("stage") == "ResponseComplete":
                yield event


def is_lease(object_ref: dict[str, Any]) -> bool:
    """An audit event's objectRef names a coordination.k8s.io Lease (leader election's, not a reconcile's)."""
    return object_ref.get("apiGroup") == "coordination.k8s.io" and object_ref.get("resource") == "leases"


def count_writes(
    audit_log: str | os.PathLike[str] | None,
    since_offset: int,
    user_agent_prefix: str = "tenantry",
    user: str | None = None,
    verbs: frozenset[str] = WRITE_VERBS,
    resource: str | None = None,
    namespace: str | None = None,
) -> int:
    """How many write requests (create/update/patch/delete/deletecollection) completed since
    `since_offset` whose user agent starts with `user_agent_prefix` ("" = any) and, where given, made
    by `user` on `resource` (plural, e.g. "configmaps") in `namespace`. Refused writes count too:
    they reached the API server. Renewals of leader-election Leases (coordination.k8s.io) are not
    counted unless `resource="leases"` asks for them: a leader renews every 2 s however idle it is."""
    if audit_log is None:
        raise RuntimeError("no audit log: this cluster was not started by the test session")
    count = 0
    for event in audit_events(audit_log, since_offset):
        if event.get("verb") not in verbs:
            continue
        if not str(event.get("userAgent", "")).startswith(user_agent_prefix):
            continue
        if user is not None and event.get("user", {}).get("username") != user:
            continue
        ref = event.get("objectRef", {})
        if resource is None and is_lease(ref):
            continue
        if resource is not None and ref.get("resource") != resource:
            continue
        if namespace is not None and ref.get("namespace") != namespace:
            continue
        count += 1
    return count


# ---------------------------------------------------------------------------- waiting and names
class WaitTimeout(AssertionError):
    """A condition a test waited for did not come true; an AssertionError so pytest reports a failure."""


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 30.0,
    interval: float = 0.25,
    message: str = "condition",
) -> T:
    """Calls `predicate` until it returns something truthy, and returns that.

    Exceptions raised by `predicate` count as "not yet" (the API may be restarting); the last one
    is shown in the failure message."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    last_value: Any = None
    while True:
        try:
            last_value = predicate()
            if last_value:
                return last_value
        except Exception as e:  # "not yet"; reported below
            last_error = e
        if time.monotonic() >= deadline:
            detail = f"; last error: {last_error!r}" if last_error else f"; last value: {last_value!r}"
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {message}{detail}")
        time.sleep(interval)


_DNS1123 = re.compile(r"[^a-z0-9-]+")


_ISSUED_NAMES: set[str] = set()


def make_unique_name_factory(issued: set[str] = _ISSUED_NAMES) -> Callable[..., str]:
    """A factory of short DNS-1123 label names (`t-3fa9`), never repeated within the test process
    (the names already issued are shared by all factories unless `issued` is given)."""

    def unique_name(prefix: str = "t", max_length: int = 63, random_chars: int = 4) -> str:
        if max_length < random_chars + 2:
            raise ValueError(f"max_length {max_length} leaves no room for a prefix")
        clean = _DNS1123.sub("-", prefix.lower()).strip("-") or "t"
        if not clean[0].isalpha():
            clean = "t" + clean
        clean = clean[: max_length - random_chars - 1].rstrip("-")
        while True:
            name = f"{clean}-{secrets.token_hex(random_chars // 2 + 1)[:random_chars]}"
            if name not in issued:
                issued.add(name)
                return name

    return unique_name
