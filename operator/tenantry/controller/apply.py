"""Applying desired state: the only place that turns builder output into API writes.

`sync_children` compares each desired manifest with the cached object and applies (server-side,
field manager `tenantry`) only those that differ, then prunes the owner's children that are no
longer desired. `write_status` writes a status only when it changed. Together they make a second
reconcile of an unchanged object write nothing.

What "differs" means: every manifest carries `tenantry.dev/spec-hash`, a hash of the manifest
itself. A changed hash means our intent changed (apply, and SSA removes fields we no longer set);
an equal hash with content that is not contained in the live object means someone else edited it
(drift: apply again, and `force` takes the fields back).

A child the cache shows absent is created (POST), not applied: the apiserver's create costs about
1/1.4 of an apply (docs/benchmarks.md). A create records its fields as an Update by `tenantry`, and
fields owned through an Update are never removed by a later apply that stops setting them; so the first
apply of a changed child hands those fields to `tenantry`'s Apply entry first (`_own_by_apply`, what
kubectl's client-side-apply upgrade does), and pruning works as if the child had been applied.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tenantry.controller.store import ObjectKey, Store
from tenantry.kube import ApiError, KubeClient
from tenantry.naming import FIELD_MANAGER
from tenantry.quantity import QuantityError, parse_quantity

SPEC_HASH = "tenantry.dev/spec-hash"

log = logging.getLogger("tenantry.apply")


def with_spec_hash(manifest: Mapping[str, Any]) -> dict[str, Any]:
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
    result = dict(manifest)
    meta = dict(result["metadata"])
    meta["annotations"] = {**meta.get("annotations", {}), SPEC_HASH: digest}
    result["metadata"] = meta
    return result


def _same_scalar(actual: Any, desired: Any) -> bool:
    if actual == desired:
        return True
    if isinstance(actual, str | int) and isinstance(desired, str | int):
        # The apiserver canonicalises quantities ("0.5" comes back as "500m").
        try:
            return parse_quantity(actual) == parse_quantity(desired)
        except QuantityError:
            return False
    return False


def contains(actual: Any, desired: Any) -> bool:
    """Whether the live object holds everything the desired manifest says (server defaults aside)."""
    if isinstance(desired, Mapping):
        return isinstance(actual, Mapping) and all(k in actual and contains(actual[k], v) for k, v in desired.items())
    if isinstance(desired, list):
        return (isinstance(actual, list) and len(actual) == len(desired)
                and all(contains(a, d) for a, d in zip(actual, desired, strict=True)))
    return _same_scalar(actual, desired)


def key_of(manifest: Mapping[str, Any]) -> ObjectKey:
    meta = manifest["metadata"]
    return (manifest["kind"], meta.get("namespace"), meta["name"])


def apply_reason(store: Store, manifest: Mapping[str, Any]) -> str | None:
    """Why the manifest must be applied ("missing", "changed", "drifted"), or None when it need not."""
    kind, namespace, name = key_of(manifest)
    live = store.get(kind, name, namespace)
    if live is None:
        return "missing"
    wanted_hash = manifest["metadata"]["annotations"][SPEC_HASH]
    if (live["metadata"].get("annotations") or {}).get(SPEC_HASH) != wanted_hash:
        return "changed"
    return None if contains(live, manifest) else "drifted"


class NamespaceExists(Exception):
    """A Namespace the cache showed absent turned out to exist when it was created. With `new_namespaces`
    it is not applied over: whose it is must be read first (a tenant's: tenantry/namespace_claim.py)."""

    def __init__(self, name: str):
        super().__init__(f"namespace {name} exists already")
        self.name = name


@dataclass
class SyncResult:
    applied: int = 0
    pruned: int = 0


async def apply_one(client: KubeClient, store: Store, manifest: Mapping[str, Any], reason: str = "changed", *,
                    new_namespaces: bool = False) -> None:
    """Write one child: create it when the cache shows it `missing`, else apply it (server-side).
    `new_namespaces`: a missing Namespace that exists after all raises NamespaceExists."""
    kind, namespace, name = key_of(manifest)
    based_on = store.version(kind, name, namespace)
    result = None
    if reason == "missing":
        try:
            result = await client.create(manifest)
        except ApiError as error:
            if not error.conflict:
                raise
            if new_namespaces and kind == "Namespace":
                raise NamespaceExists(name) from error
            # AlreadyExists: the cache was behind (or another made it). Apply it, as a change.
    if result is None:
        if reason != "drifted":  # a drift leaves our intent as it was: nothing of ours to prune
            await _own_by_apply(client, manifest)
        result = await client.apply(manifest)
    store.written(kind, result, based_on=based_on)  # so that the next reconcile sees it before the watch does


async def _own_by_apply(client: KubeClient, manifest: Mapping[str, Any]) -> None:
    """Move the fields a create gave `tenantry` (an Update entry of managedFields) into `tenantry`'s Apply
    entry, so that the apply that follows removes the fields it no longer sets. A no-op (one GET) when the
    child was applied before; the write carries the resourceVersion read (a 409 retries the reconcile)."""
    kind, namespace, name = key_of(manifest)
    live = await client.get(kind, name, namespace)
    if live is None:
        return
    entries = live["metadata"].get("managedFields") or []
    created = [e for e in entries if e.get("manager") == FIELD_MANAGER and e.get("operation") == "Update"
               and not e.get("subresource")]
    if not created:
        return
    applied = next((e for e in entries if e.get("manager") == FIELD_MANAGER and e.get("operation") == "Apply"
                    and not e.get("subresource")), None)
    fields: dict[str, Any] = (applied or {}).get("fieldsV1") or {}
    for entry in created:
        fields = _union(fields, entry.get("fieldsV1") or {})
    owner = {**(applied or created[0]), "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": fields}
    kept = [e for e in entries if e is not applied and e not in created]
    await client.merge_patch(kind, name, {"metadata": {"managedFields": [*kept, owner],
                                                       "resourceVersion": live["metadata"]["resourceVersion"]}},
                             namespace=namespace)
    log.info("%s %s was created by tenantry; its fields are now owned by tenantry's apply.", kind,
             f"{namespace}/{name}" if namespace else name)


def _union(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """The union of two FieldsV1 sets (nested maps of field names)."""
    result = dict(a)
    for key, value in b.items():
        result[key] = _union(result[key], value) if key in result and isinstance(value, Mapping) else value
    return result


async def sync_children(client: KubeClient, store: Store, owner: ObjectKey,
                        desired: Sequence[Mapping[str, Any]], *, new_namespaces: bool = False) -> SyncResult:
    """Apply what differs (namespaces first: the rest live in them; roles before the bindings that
    name them, which the apiserver refuses until the role exists), then prune what is no longer wanted.

    `new_namespaces`: a Namespace the cache shows absent is only ever created, never applied over; one
    that exists after all raises NamespaceExists before anything else is written (the cache holds only
    Tenantry's labelled namespaces, so this is how a namespace made by someone else is found, without a
    read per new tenant)."""
    hashed = [with_spec_hash(m) for m in desired]
    todo = []
    reasons: dict[ObjectKey, str] = {}
    for manifest in hashed:
        reason = apply_reason(store, manifest)
        if reason is not None:
            todo.append(manifest)
            reasons[key_of(manifest)] = reason
            kind, namespace, name = key_of(manifest)
            level = {"missing": logging.DEBUG, "changed": logging.INFO, "drifted": logging.WARNING}[reason]
            log.log(level, "%s %s was %s; %s it.", kind, f"{namespace}/{name}" if namespace else name, reason,
                    "creating" if reason == "missing" else "applying")
    result = SyncResult()
    namespaces = [m for m in todo if m["kind"] == "Namespace"]
    roles = [m for m in todo if m["kind"] in ("ClusterRole", "Role")]
    others = [m for m in todo if m["kind"] not in ("Namespace", "ClusterRole", "Role")]
    for manifest in namespaces:
        await apply_one(client, store, manifest, reasons[key_of(manifest)], new_namespaces=new_namespaces)
    for batch in (roles, others):
        if batch:
            await asyncio.gather(*(apply_one(client, store, m, reasons[key_of(m)]) for m in batch))
    result.applied = len(todo)
    wanted = {key_of(m) for m in hashed}
    stale = [key for key in store.children_of(owner) if key not in wanted]
    for kind, namespace, name in stale:
        if kind == "Namespace":
            continue  # a namespace is removed only by an explicit deletion policy, never by pruning
        await client.delete(kind, name, namespace)
        store.delete(kind, name, namespace)
        result.pruned += 1
    return result


async def delete_child(client: KubeClient, store: Store, kind: str, name: str, namespace: str | None, *,
                       propagation: str = "Background") -> None:
    """Delete one object the operator made (a meter of a former shape, a meter no longer wanted).

    With `Foreground` or `Orphan` the object stays, marked for deletion, until the garbage collector
    is done with its dependents: it is left in the Store, where its watch shows it going, so that the
    caller can wait for that before it makes a successor."""
    await client.delete(kind, name, namespace, propagation=propagation)
    if propagation == "Background":
        store.delete(kind, name, namespace)


def status_patch(current: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> dict[str, Any] | None:
    """A merge patch turning the current status into the wanted one, or None when they are equal."""
    current = current or {}
    if dict(current) == dict(wanted):
        return None
    patch: dict[str, Any] = dict(wanted)
    for key in current:
        if key not in wanted:
            patch[key] = None  # merge-patch deletes keys set to null
    return patch


async def write_status(client: KubeClient, store: Store, obj: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Write the status subresource if it changed; True when a write was made."""
    patch = status_patch(obj.get("status"), wanted)
    if patch is None:
        return False
    meta = obj["metadata"]
    based_on = store.version(obj["kind"], meta["name"], meta.get("namespace"))
    result = await client.merge_patch(obj["kind"], meta["name"], {"status": patch}, namespace=meta.get("namespace"),
                                      subresource="status")
    store.written(obj["kind"], result, based_on=based_on)
    return True


async def delete_if_present(client: KubeClient, kind: str, name: str, namespace: str | None = None) -> bool:
    """Delete an object; False when it was not there."""
    try:
        await client.delete(kind, name, namespace)
    except ApiError as error:
        if error.not_found:
            return False
        raise
    return True


async def store_secret_data(client: KubeClient, namespace: str, name: str, data: Mapping[str, bytes],
                            resource_version: str | None, old_keys: set[str], *,
                            labels: Mapping[str, str]) -> bool:
    """Write a Secret the operator keeps for itself (the webhook's certificate) only if nobody wrote it since
    it was read at `resource_version` (None: it did not exist). False when someone else was first: the caller
    reads it again and decides again, so that replicas starting together agree on one certificate."""
    encoded: dict[str, str | None] = {k: base64.b64encode(v).decode() for k, v in data.items()}
    try:
        if resource_version is None:
            manifest = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)}, "data": encoded}
            try:
                await client.create(manifest)
            except ApiError as error:
                if not error.not_found:
                    raise
                # Its namespace does not exist yet (a developer's cluster): make it, then the Secret.
                await _create_unless_exists(client, {"apiVersion": "v1", "kind": "Namespace",
                                                     "metadata": {"name": namespace}})
                await client.create(manifest)
        else:
            encoded.update({k: None for k in old_keys - set(data)})  # merge patch: null removes a key
            await client.merge_patch("Secret", name, {"metadata": {"resourceVersion": resource_version},
                                                      "data": encoded}, namespace=namespace)
    except ApiError as error:
        if error.conflict:
            return False
        raise
    return True


async def _create_unless_exists(client: KubeClient, manifest: Mapping[str, Any]) -> None:
    try:
        await client.create(manifest)
    except ApiError as error:
        if not error.conflict:
            raise
