"""The watch cache: which objects count as whose children, and stale events never win."""

from __future__ import annotations

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
