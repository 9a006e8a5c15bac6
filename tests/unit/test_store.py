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


def test_a_late_event_never_overwrites_a_newer_object() -> None:
    store = Store()
    assert store.put("ConfigMap", obj("ConfigMap", "x", "acme--shop", LABELS, rv="5"))
    assert not store.put("ConfigMap", obj("ConfigMap", "x", "acme--shop", LABELS, rv="4"))
    assert store.get("ConfigMap", "x", "acme--shop")["metadata"]["resourceVersion"] == "5"  # type: ignore[index]
    assert store.children_of(("Tenant", "reseller-acme", "shop")) == {("ConfigMap", "acme--shop", "x")}
    store.delete("ConfigMap", "x", "acme--shop")
    assert store.children_of(("Tenant", "reseller-acme", "shop")) == set()
