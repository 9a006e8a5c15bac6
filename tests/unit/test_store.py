"""The watch cache: which objects count as whose children, and stale events never win."""

from __future__ import annotations

import json
import sys
import uuid
from typing import Any

from support.hack_scripts import REPO
from tenantry.controller.apply import apply_reason
from tenantry.controller.store import Store, owner_of

LABELS = {"app.kubernetes.io/managed-by": "tenantry", "tenantry.dev/reseller": "acme", "tenantry.dev/tenant": "shop"}


def obj(kind: str, name: str, namespace: str | None, labels: dict[str, str], rv: str = "1") -> dict:
    meta = {"name": name, "labels": labels, "resourceVersion": rv}
    if namespace:
        meta["namespace"] = namespace
    return {"kind": kind, "metadata": meta}


def test_children_are_owned_only_where_their_owner_lives() -> None:
    assert owner_of(obj("ConfigMap", "x", "acme--shop", LABELS)) == ("Tenant", "reseller-acme", "shop")
    assert owner_of(obj("Namespace", "acme--shop", None, LABELS)) == ("Tenant", "reseller-acme", "shop")
    # A tenant owner labelling an object in its own namespace as another tenant's gets nothing.
    assert owner_of(obj("ConfigMap", "x", "globex--intruder", LABELS)) is None
    reseller_labels = {k: v for k, v in LABELS.items() if k != "tenantry.dev/tenant"}
    assert owner_of(obj("RoleBinding", "b", "reseller-acme", reseller_labels)) == ("Reseller", None, "acme")
    assert owner_of(obj("RoleBinding", "b", "acme--shop", reseller_labels)) is None
    assert owner_of(obj("ConfigMap", "x", "acme--shop", {"tenantry.dev/tenant": "shop"})) is None
    assert owner_of(obj("Plan", "trial", "reseller-acme", LABELS)) is None


def test_resource_versions_are_opaque_a_restored_etcd_going_backwards_is_still_news() -> None:
    # After an etcd restore, the watch (relisted) brings versions that compare lower as numbers: they
    # are the newest objects all the same (API conventions: resourceVersion is opaque).
    store = Store()
    assert store.put("ConfigMap", obj("ConfigMap", "x", "acme--shop", LABELS, rv="500"))
    assert store.put("ConfigMap", obj("ConfigMap", "x", "acme--shop", LABELS | {"v": "restored"}, rv="40"))
    assert store.version("ConfigMap", "x", "acme--shop") == "40"
    assert store.children_of(("Tenant", "reseller-acme", "shop")) == {("ConfigMap", "acme--shop", "x")}
    store.delete("ConfigMap", "x", "acme--shop")
    assert store.children_of(("Tenant", "reseller-acme", "shop")) == set()


def test_our_own_write_is_seen_at_once_and_its_echo_is_no_news() -> None:
    store = Store()
    store.put("ConfigMap", obj("ConfigMap", "x", "acme--shop", LABELS, rv="b1"))
    based_on = store.version("ConfigMap", "x", "acme--shop")
    store.written("ConfigMap", obj("ConfigMap", "x", "acme--shop", LABELS | {"v": "2"}, rv="c7"), based_on=based_on)
    assert store.version("ConfigMap", "x", "acme--shop") == "c7"
    # An event from before the write, delivered after its result (the watch is ordered: anything
    # before the write's own event is older than the write) does not overwrite it.
    assert not store.put("ConfigMap", obj("ConfigMap", "x", "acme--shop", LABELS | {"v": "1.5"}, rv="a9"))
    assert store.version("ConfigMap", "x", "acme--shop") == "c7"
    assert not store.put("ConfigMap", obj("ConfigMap", "x", "acme--shop", LABELS | {"v": "2"}, rv="c7"))  # the echo
    # After the echo, the next event is someone else's newer change.
    assert store.put("ConfigMap", obj("ConfigMap", "x", "acme--shop", LABELS | {"v": "3"}, rv="0d"))
    assert store.version("ConfigMap", "x", "acme--shop") == "0d"


def test_a_write_overtaken_by_the_watch_leaves_the_watch_in_charge() -> None:
    store = Store()
    store.put("ConfigMap", obj("ConfigMap", "x", "acme--shop", LABELS, rv="1"))
    based_on = store.version("ConfigMap", "x", "acme--shop")
    # While the write was in flight an event arrived: which is newer cannot be told, so the result is
    # not stored, and nothing waits for an echo.
    assert store.put("ConfigMap", obj("ConfigMap", "x", "acme--shop", LABELS | {"v": "other"}, rv="2"))
    store.written("ConfigMap", obj("ConfigMap", "x", "acme--shop", LABELS | {"v": "ours"}, rv="3"), based_on=based_on)
    assert store.version("ConfigMap", "x", "acme--shop") == "2"
    assert store.put("ConfigMap", obj("ConfigMap", "x", "acme--shop", LABELS | {"v": "ours"}, rv="3"))
    # A write that changed nothing (same version back) waits for no echo either.
    store.written("ConfigMap", obj("ConfigMap", "x", "acme--shop", LABELS | {"v": "ours"}, rv="3"), based_on="3")
    assert store.put("ConfigMap", obj("ConfigMap", "x", "acme--shop", LABELS | {"v": "next"}, rv="4"))


def test_a_list_starts_a_new_stream_and_ends_every_wait_for_an_echo() -> None:
    store = Store()
    store.written("ConfigMap", obj("ConfigMap", "x", "acme--shop", LABELS, rv="7"), based_on=None)
    # The watch broke (410) and the kind was listed again: the list is taken as it is, and the watch
    # from the list's version brings what follows; nothing waits for the lost stream's echo.
    assert store.put("ConfigMap", obj("ConfigMap", "x", "acme--shop", LABELS | {"v": "later"}, rv="9"), listed=True)
    assert store.put("ConfigMap", obj("ConfigMap", "x", "acme--shop", LABELS | {"v": "next"}, rv="10"))


# -- what the Store keeps of real objects, and how (controller/compact.py; issue 15) ---------------------

SAMPLE = json.loads((REPO / "hack" / "bench_store_sample.json").read_text())
TENANT_KEY = ("Tenant", "reseller-bench000", "t00000")
SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "generation")


def event(sample: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The sample object as a watch event or a write's response brings it: parsed from its own text (nothing
    shared with any other event), with managedFields, and the metadata `changes`."""
    obj = json.loads(json.dumps(sample))
    obj["metadata"]["managedFields"] = [{"manager": "tenantry", "operation": "Update", "fieldsV1": {"f:data": {}}}]
    obj["metadata"].update(changes)
    return obj


def manifest(sample: dict[str, Any]) -> dict[str, Any]:
    """What the operator wants of the sample object: it without what the API server adds (its spec hash
    annotation kept as the live object's, so that only `contains` decides)."""
    obj = {k: v for k, v in json.loads(json.dumps(sample)).items() if k != "status"}
    obj["metadata"] = {k: v for k, v in obj["metadata"].items() if k not in SERVER_FIELDS}
    if obj["kind"] == "Namespace":
        del obj["spec"]  # spec.finalizers is the API server's
    return obj


def filled() -> Store:
    store = Store()
    for sample in [SAMPLE["tenant"], *SAMPLE["children"]]:
        assert store.put(sample["kind"], event(sample))
    return store


def key(sample: dict[str, Any]) -> tuple[str, str, str | None]:
    return sample["kind"], sample["metadata"]["name"], sample["metadata"].get("namespace")


def test_every_object_is_kept_whole_but_what_nobody_reads() -> None:
    store = filled()
    for sample in [SAMPLE["tenant"], *SAMPLE["children"]]:
        expected = json.loads(json.dumps(sample))
        if sample["kind"] in ("Namespace", "ResourceQuota", "Ingress"):
            del expected["status"]
        assert store.get(*key(sample)) == expected, sample["kind"]
        assert store.version(*key(sample)) == sample["metadata"]["resourceVersion"]
        assert [o for o in store.list(sample["kind"], sample["metadata"].get("namespace"))
                if o["metadata"]["name"] == sample["metadata"]["name"]] == [expected]


def test_drift_is_seen_in_every_child_a_secrets_data_too() -> None:
    store = filled()
    for sample in SAMPLE["children"]:
        assert apply_reason(store, manifest(sample)) is None, sample["kind"]
    secret = next(s for s in SAMPLE["children"] if s["kind"] == "Secret")
    edited = event(secret, resourceVersion="9001")
    edited["data"]["tls.crt"] = edited["data"]["ca.crt"]  # someone put the CA in the leaf's place
    assert store.put("Secret", edited)
    assert apply_reason(store, manifest(secret)) == "drifted"
    binding = next(s for s in SAMPLE["children"] if s["kind"] == "RoleBinding")
    edited = event(binding, resourceVersion="9002")
    edited["subjects"][0]["name"] = "intruder@example.com"
    assert store.put("RoleBinding", edited)
    assert apply_reason(store, manifest(binding)) == "drifted"


def test_the_owner_of_every_child_is_found_and_follows_its_labels() -> None:
    store = filled()
    children = {(s["kind"], s["metadata"].get("namespace"), s["metadata"]["name"]) for s in SAMPLE["children"]}
    assert store.children_of(TENANT_KEY) == children
    config_map = next(s for s in SAMPLE["children"] if s["kind"] == "ConfigMap")
    moved = event(config_map, resourceVersion="9003")
    moved["metadata"]["labels"]["tenantry.dev/tenant"] = "other"  # no longer t00000's: nobody's, in its namespace
    assert store.put("ConfigMap", moved)
    assert store.children_of(TENANT_KEY) == children - {("ConfigMap", "bench000--t00000", "tenantry-branding")}
    store.delete("Namespace", "bench000--t00000")
    assert ("Namespace", None, "bench000--t00000") not in store.children_of(TENANT_KEY)


def test_a_change_only_in_what_is_not_kept_is_no_news_and_an_echo_is_none() -> None:
    store = filled()
    quota = next(s for s in SAMPLE["children"] if s["kind"] == "ResourceQuota")
    assert not store.put("ResourceQuota", event(quota))  # the same version again (an echo, a relist)
    used = event(quota, resourceVersion="9004")
    used["status"]["used"]["pods"] = "3"  # its usage, which the operator never reads
    assert not store.put("ResourceQuota", used)
    assert store.version("ResourceQuota", "tenantry", "bench000--t00000") == "9004"
    changed = event(quota, resourceVersion="9005")
    changed["spec"]["hard"]["pods"] = "50"
    assert store.put("ResourceQuota", changed)


def test_nothing_a_caller_changes_reaches_the_store() -> None:
    """The Store shares no dict or list with the event it was given (the informer's callbacks get it
    too), nor one object with another; the children kept as text are handed out fresh."""
    store = Store()
    tenants = [SAMPLE["tenant"], json.loads(json.dumps(SAMPLE["tenant"]).replace("t00000", "t00001"))]
    secrets = [next(s for s in SAMPLE["children"] if s["kind"] == "Secret")]
    secrets.append(json.loads(json.dumps(secrets[0]).replace("t00000", "t00001")))
    for sample in [*tenants, *secrets]:
        obj = event(sample)
        store.put(sample["kind"], obj)
        obj["metadata"].setdefault("labels", {})["changed"] = "by a callback"
        (obj["spec"] if "spec" in obj else obj["data"])["changed"] = "by a callback"
    first_tenant = store.get(*key(tenants[0]))
    assert first_tenant is not None
    first_tenant["spec"]["owners"].append({"kind": "User", "name": "intruder@example.com"})
    first_secret = store.get(*key(secrets[0]))
    assert first_secret is not None
    first_secret["data"]["ca.crt"] = "changed by a reader"
    assert store.get(*key(tenants[1])) == tenants[1]
    assert store.get(*key(secrets[1])) == secrets[1]
    binding = next(s for s in SAMPLE["children"] if s["kind"] == "RoleBinding")
    store.put("RoleBinding", event(binding))
    got = store.get(*key(binding))
    assert got is not None
    got["subjects"].append({"kind": "User", "name": "intruder@example.com"})
    assert store.get(*key(binding)) == binding
    assert apply_reason(store, manifest(binding)) is None


def test_each_string_is_held_once_however_many_objects_hold_it() -> None:
    """What makes the Store small (hack/bench_store.py): two tenants' objects, parsed each from its own
    text, share every equal string - keys, label values, their reseller's CA certificate."""
    store = Store()
    secrets = [next(s for s in SAMPLE["children"] if s["kind"] == "Secret")]
    secrets.append(json.loads(json.dumps(secrets[0]).replace("t00000", "t00001")))
    for sample in secrets:
        store.put("Secret", event(sample))
    a, b = (store.get(*key(s)) for s in secrets)
    assert a is not None and b is not None
    assert a["data"]["ca.crt"] == b["data"]["ca.crt"] and a["data"]["ca.crt"] is b["data"]["ca.crt"]
    assert a["metadata"]["labels"]["tenantry.dev/reseller"] is b["metadata"]["labels"]["tenantry.dev/reseller"]
    assert next(iter(a["metadata"]["labels"])) is next(iter(b["metadata"]["labels"]))


def test_our_own_writes_of_tenantry_kinds_are_told() -> None:
    store = Store()
    told: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
    store.on_written = lambda kind, new, old: told.append((kind, new, old))
    tenant = event(SAMPLE["tenant"])
    store.written("Tenant", tenant, based_on=None)
    config_map = next(s for s in SAMPLE["children"] if s["kind"] == "ConfigMap")
    store.written("ConfigMap", event(config_map), based_on=None)  # no news to anyone: its owner wrote it
    status = event(SAMPLE["tenant"], resourceVersion="9006")
    status["status"]["phase"] = "Pending"
    store.written("Tenant", status, based_on=SAMPLE["tenant"]["metadata"]["resourceVersion"])
    assert [(kind, new["status"]["phase"], old and old["status"]["phase"]) for kind, new, old in told] == [
        ("Tenant", "Active", None), ("Tenant", "Pending", "Active")]


def test_what_the_store_forgets_it_holds_no_more() -> None:
    """One copy of each string, but none of a string nobody holds any more: after a tenant is gone, the
    Store holds none of its strings (a table of strings that is never emptied would; so would sys.intern
    on Python 3.12, which makes strings immortal; so would an index entry of an owner without children)."""
    store = Store()
    token = uuid.uuid4().hex[:8]  # strings no other test has made
    for sample in [SAMPLE["tenant"], *SAMPLE["children"]]:
        obj = json.loads(json.dumps(event(sample)).replace("t00000", f"t{token}"))
        meta = obj["metadata"]
        values = [meta["name"], meta.get("labels", {}).get("tenantry.dev/tenant", ""), meta.get("namespace", ""),
                  *((obj.get("status") or {}).get("conditions") or [{}])[0].values(), *(obj.get("data") or {}).values()]
        references = [sys.getrefcount(v) for v in values]
        store.put(obj["kind"], obj)
        store.delete(obj["kind"], meta["name"], meta.get("namespace"))
        assert [sys.getrefcount(v) for v in values] == references, obj["kind"]
    assert store.children_of(("Tenant", "reseller-bench000", f"t{token}")) == set()
