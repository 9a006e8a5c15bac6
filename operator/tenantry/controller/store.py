"""The operator's in-memory picture of the cluster, fed by watches: the informer cache.

Reconciles read from here instead of GETting from the apiserver, and compare desired children
with what is here before writing, which is what makes an idle operator write nothing.
Objects are kept trimmed (no managedFields, no child status) and compact (each string once, however
many objects hold it; the children but Secrets as JSON text, parsed by `get`: compact.py) to keep
memory small at scale. `get` and `list` hand out the object held (Tenantry's kinds, Secrets) or a
fresh one (the children kept as text); either way, a caller must not change what it is given.

Two sources feed it: the watches (`put`), whose events for one kind arrive in the apiserver's order,
and the operator's own writes (`written`), whose results are stored at once so that the next
reconcile sees them before their watch event does. resourceVersions are opaque (the API conventions:
an etcd restore may even make them go backwards), so they are compared for equality only, never
ordered. Ordering comes from the watch stream itself: a write's result is stored only when no event
for that object arrived while the write was in flight, and then the Store waits for the write's own
event ("echo"); every event before the echo is older than the write, since the watch is ordered,
and is not news. A list starts a new stream: it is taken as it is and clears every wait.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from tenantry.controller.compact import Packed, compact, kept_as_text, pack, unpack
from tenantry.naming import (
    LABEL_MANAGED_BY,
    LABEL_RESELLER,
    LABEL_TENANT,
    MANAGED_BY,
    PLURALS,
    reseller_namespace,
    tenant_namespace,
)

ObjectKey = tuple[str, str | None, str]  # (kind, namespace, name)
Entry = dict[str, Any] | Packed  # an object as the Store holds it: compact, or as text (compact.py)

# Kinds whose status the operator never reads: dropping it saves memory and needless churn.
_DROP_STATUS = {"Namespace", "ResourceQuota", "Ingress", "Deployment", "StatefulSet"}


def resource_version(obj: Mapping[str, Any] | None) -> str | None:
    """The object's resourceVersion (an opaque string), None for no object."""
    return None if obj is None else (obj.get("metadata") or {}).get("resourceVersion")


def trim(kind: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    """A plain-dict copy without the parts nobody here reads (the Store keeps it `compact`)."""
    result = {k: v for k, v in obj.items() if not (k == "status" and kind in _DROP_STATUS)}
    meta = dict(result.get("metadata", {}))
    meta.pop("managedFields", None)
    annotations = meta.get("annotations")
    if annotations and "kubectl.kubernetes.io/last-applied-configuration" in annotations:
        meta["annotations"] = {k: v for k, v in annotations.items()
                               if k != "kubectl.kubernetes.io/last-applied-configuration"}
    result["metadata"] = meta
    result.setdefault("kind", kind)
    return result


def _version(entry: Entry | None) -> str | None:
    return entry.version if isinstance(entry, Packed) else resource_version(entry)


def _opened(entry: Entry) -> dict[str, Any]:
    """The object as `get` hands it out: the one held, or a fresh one from its text."""
    return unpack(entry) if isinstance(entry, Packed) else entry


def _same_but_version(old: Entry, new: Entry) -> bool:
    if isinstance(old, Packed) or isinstance(new, Packed):  # both are: each kind is held one way
        return isinstance(old, Packed) and isinstance(new, Packed) and old.text == new.text  # (text: no version)
    if old.keys() != new.keys():
        return False
    for field, value in new.items():
        if field != "metadata":
            if old[field] != value:
                return False
        elif ({k: v for k, v in old[field].items() if k != "resourceVersion"}
              != {k: v for k, v in value.items() if k != "resourceVersion"}):
            return False
    return True


def owner_of(obj: Mapping[str, Any]) -> ObjectKey | None:
    """The Tenant or Reseller a managed child belongs to, from its labels. Tenantry's own kinds
    are never children (a seeded Plan belongs to the reseller once made, and is never pruned)."""
    if obj.get("kind") in PLURALS:
        return None
    labels = obj.get("metadata", {}).get("labels") or {}
    if labels.get(LABEL_MANAGED_BY) != MANAGED_BY:
        return None
    reseller, tenant = labels.get(LABEL_RESELLER), labels.get(LABEL_TENANT)
    # Labels can be written by whoever may create objects in a namespace (a tenant owner, too), so
    # an object counts as a child only where its owner's children live: a label alone never lets
    # anyone make the operator touch (or prune) something of theirs on another tenant's behalf.
    namespace = obj.get("metadata", {}).get("namespace")
    if reseller and tenant:
        return ("Tenant", reseller_namespace(reseller), tenant) \
            if namespace in (None, tenant_namespace(reseller, tenant)) else None
    if reseller:
        return ("Reseller", None, reseller) if namespace in (None, reseller_namespace(reseller)) else None
    return None


class Store:
    def __init__(self) -> None:
        self._objects: dict[str, dict[tuple[str | None, str], Entry]] = {}
        self._children: dict[ObjectKey, set[ObjectKey]] = {}
        # (kind, namespace, name) -> the version of our own write whose watch event is still to come.
        self._echoes: dict[ObjectKey, str] = {}
        # Called with (kind, new, old) when one of our own writes of a Tenantry kind is stored: its watch
        # event will be no news, so whoever follows a kind's changes (the AdmissionBook follows Tenants)
        # hears it here. (The children's changes are news to their owner only, whose own write this is.)
        self.on_written: Callable[[str, dict[str, Any], dict[str, Any] | None], None] | None = None

    def put(self, kind: str, obj: Mapping[str, Any], *, listed: bool = False) -> bool:
        """Take an object from a watch event (or from a list, `listed`); True when it is news to watchers.

        The watch event of our own write carries the version the write returned, which is stored
        already (`written`): it is no news, and must not wake its owner for a reconcile that would
        find nothing to do - nine times per new tenant."""
        meta = obj["metadata"]
        key = (meta.get("namespace"), meta["name"])
        bucket = self._objects.setdefault(kind, {})
        old = bucket.get(key)
        version = meta.get("resourceVersion")
        echo = self._echoes.pop((kind, *key), None)
        if echo is not None and not listed and version != echo:
            self._echoes[(kind, *key)] = echo  # an event from before our write: the write's result is newer
            return False
        if old is not None:
            if version is not None and version == _version(old):
                return False  # our own write coming back, or the same object listed again
            self._unlink(kind, _opened(old))
        self._keep(kind, obj)
        # A change only in what is trimmed away (a quota's usage, a namespace's phase) is stored for
        # its version, but is no news: nobody here reads it.
        return old is None or not _same_but_version(old, bucket[key])

    def version(self, kind: str, name: str, namespace: str | None = None) -> str | None:
        """The resourceVersion held for an object (None when absent): what a write is based on, for `written`."""
        return _version(self._objects.get(kind, {}).get((namespace, name)))

    def written(self, kind: str, obj: Mapping[str, Any], *, based_on: str | None) -> None:
        """Store the result of the operator's own write (or fresh read), sent when this Store held
        version `based_on` of the object (None: it held none; see `version`).

        When an event for the object arrived while the write was in flight, the order of that event
        and the write is unknown: the result is not stored, and the watch brings the newest."""
        meta = obj["metadata"]
        key = (meta.get("namespace"), meta["name"])
        old = self._objects.get(kind, {}).get(key)
        version = meta.get("resourceVersion")
        if _version(old) != based_on or version is None or version == based_on:
            return  # overtaken by the watch, or a write that changed nothing
        old_obj = None if old is None else _opened(old)
        if old_obj is not None:
            self._unlink(kind, old_obj)
        self._keep(kind, obj)
        self._echoes[(kind, *key)] = version
        if self.on_written is not None and kind in PLURALS:
            self.on_written(kind, _opened(self._objects[kind][key]), old_obj)

    def _keep(self, kind: str, obj: Mapping[str, Any]) -> None:
        trimmed = trim(kind, obj)
        meta = trimmed["metadata"]
        key = (compact(meta.get("namespace")), compact(meta["name"]))  # each string once (compact.py)
        self._objects.setdefault(kind, {})[key] = pack(trimmed) if kept_as_text(kind) else compact(trimmed)
        owner = owner_of(trimmed)
        if owner is not None:
            self._children.setdefault(owner, set()).add((kind, key[0], key[1]))

    def delete(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        old = self._objects.get(kind, {}).pop((namespace, name), None)
        self._echoes.pop((kind, namespace, name), None)
        if old is None:
            return None
        old_obj = _opened(old)
        self._unlink(kind, old_obj)
        return old_obj

    def _unlink(self, kind: str, obj: Mapping[str, Any]) -> None:
        owner = owner_of(obj)
        if owner is not None and owner in self._children:
            meta = obj["metadata"]
            self._children[owner].discard((kind, meta.get("namespace"), meta["name"]))
            if not self._children[owner]:
                del self._children[owner]  # a deleted tenant's entry, which would stay for good

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        entry = self._objects.get(kind, {}).get((namespace, name))
        return None if entry is None else _opened(entry)

    def list(self, kind: str, namespace: str | None = None) -> Iterator[dict[str, Any]]:
        for (ns, _), entry in list(self._objects.get(kind, {}).items()):
            if namespace is None or ns == namespace:
                yield _opened(entry)

    def count(self, kind: str) -> int:
        return len(self._objects.get(kind, {}))

    def children_of(self, owner: ObjectKey) -> set[ObjectKey]:
        return set(self._children.get(owner, ()))
