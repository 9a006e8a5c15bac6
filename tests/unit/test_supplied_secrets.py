"""Supplied TLS Secrets (tenantry.controller.supplied_secrets): who is woken by which Secret, what the
metadata-only watch keeps and reports, and what a metadata-only list asks of the apiserver."""

from __future__ import annotations

import asyncio
import gc
import json
import tracemalloc
from typing import Any

from aiohttp import web

from tenantry.admission import TenantClaim
from tenantry.controller.context import Operator
from tenantry.controller.supplied_secrets import (
    SecretReferences,
    SecretVersions,
    keys_to_wake,
    reseller_secret_refs,
    tenant_secret_refs,
)
from tenantry.kube import METADATA_LIST_ACCEPT, Credentials, KubeClient
from tenantry.models import ResellerSpec, TenantSpec
from tenantry.settings import Settings

QUOTA = {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "pods": "10"}
OURS = {"app.kubernetes.io/managed-by": "tenantry"}


def tenant_spec(*domains: dict[str, Any]) -> TenantSpec:
    return TenantSpec.model_validate({"email": "joe@bakery.example", "region": "eu", "plan": "small",
                                      "domains": list(domains)})


def reseller_body(name: str, regions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Reseller",
            "metadata": {"name": name, "uid": f"{name}-uid", "generation": 1, "resourceVersion": "1"},
            "spec": {"companyName": "ACME", "email": "a@acme.example", "regions": regions}}


def region(name: str, tls: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "domain": f"{name}.acme.example", "tls": tls, "allotment": QUOTA}


def test_specs_name_the_secrets_of_mode_secret_where_they_live() -> None:
    spec = tenant_spec({"host": "www.bakery.example", "tls": {"mode": "Secret", "secretName": "www-tls"}},
                       {"host": "shop.bakery.example", "tls": {"mode": "SelfSigned"}},
                       {"host": "api.bakery.example"})
    assert tenant_secret_refs("reseller-acme", "bakery", spec) == {("acme--bakery", "www-tls")}
    assert tenant_secret_refs("default", "bakery", spec) == set()  # not a control namespace: no tenant
    reseller = ResellerSpec.model_validate(reseller_body("acme", [
        region("eu", {"mode": "Secret", "secretName": "wildcard"}), region("us", {"mode": "SelfSigned"}),
    ])["spec"])
    assert reseller_secret_refs("acme", reseller) == {("reseller-acme", "wildcard")}


def test_references_follow_each_owner_spec() -> None:
    refs = SecretReferences()
    bakery, deli = ("Tenant", "reseller-acme", "bakery"), ("Tenant", "reseller-acme", "deli")
    refs.replace(bakery, {("acme--bakery", "www-tls"), ("acme--bakery", "shop-tls")})
    refs.replace(deli, {("acme--bakery", "www-tls")})  # a made-up second owner: the index allows several
    assert refs.owners("acme--bakery", "www-tls") == {bakery, deli}
    refs.replace(bakery, {("acme--bakery", "shop-tls")})  # the spec changed: www-tls no longer named
    assert refs.owners("acme--bakery", "www-tls") == {deli}
    assert refs.owners("acme--bakery", "shop-tls") == {bakery}
    assert refs.owners("other", "www-tls") == set()  # a Secret is (namespace, name)
    refs.replace(bakery, ())
    refs.replace(deli, ())
    assert len(refs) == 0  # nothing is kept for owners that name nothing


def test_a_reseller_secret_wakes_the_reseller_and_its_tenants_in_the_regions_that_use_it() -> None:
    op = Operator(client=None, settings=Settings())  # type: ignore[arg-type]
    body = reseller_body("acme", [region("eu", {"mode": "Secret", "secretName": "wildcard"}),
                                  region("us", {"mode": "SelfSigned"})])
    op.store.put("Reseller", body)
    op.secret_refs.replace(("Reseller", None, "acme"), {("reseller-acme", "wildcard")})
    for name, where in (("bakery", "eu"), ("deli", "us")):
        op.book.upsert_tenant(TenantClaim(reseller="acme", name=name, created="2026-01-01T00:00:00Z",
                                          email=f"{name}@x.example", region=where, plan="small", uid=name))
    assert keys_to_wake(op, "reseller-acme", "wildcard") == [("Reseller", None, "acme"),
                                                            ("Tenant", "reseller-acme", "bakery")]
    assert keys_to_wake(op, "reseller-acme", "other") == []
    assert keys_to_wake(op, "acme--bakery", "wildcard") == []


def meta(namespace: str, name: str, rv: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"kind": "Secret", "metadata": {"namespace": namespace, "name": name, "resourceVersion": rv,
                                           **({"labels": labels} if labels else {})}}


def test_the_watch_keeps_versions_only_and_reports_changes_once() -> None:
    seen: list[tuple[str, str, str]] = []
    watch = SecretVersions(None, lambda *change: seen.append(change))  # type: ignore[arg-type]
    # The first list reports nothing (everything is reconciled at start-up) and skips our own Secrets.
    watch._relisted([meta("a", "www-tls", "1"), meta("a", "tenantry-tls-x", "2", OURS), meta("b", "db", "3")])
    watch.synced.set()
    assert seen == [] and watch.versions == {("a", "www-tls"): "1", ("b", "db"): "3"}

    watch._event("MODIFIED", meta("a", "www-tls", "4"))
    watch._event("MODIFIED", meta("a", "www-tls", "4"))  # the same version again: no news
    watch._event("ADDED", meta("a", "tenantry-tls-y", "5", OURS))  # ours: the Secret informer's
    watch._event("DELETED", meta("b", "db", "6"))
    assert seen == [("MODIFIED", "a", "www-tls"), ("DELETED", "b", "db")]
    assert watch.versions == {("a", "www-tls"): "4"}

    # After a lost watch, a new list is compared with what was held: what changed meanwhile is news.
    seen.clear()
    watch._relisted([meta("a", "www-tls", "9"), meta("c", "new", "8")])
    assert sorted(seen) == [("ADDED", "c", "new"), ("MODIFIED", "a", "www-tls")]
    seen.clear()
    watch._relisted([meta("c", "new", "8")])
    assert seen == [("DELETED", "a", "www-tls")]
    # A Secret that gains our label leaves the map (the Secret informer sees it from now on).
    watch._event("MODIFIED", meta("c", "new", "10", OURS))
    assert watch.versions == {}


def test_memory_per_watched_secret_stays_small() -> None:
    """About 200 bytes per Secret: namespace (shared), name and resourceVersion strings, a tuple and a
    dict slot. 20,000 Secrets in 200 namespaces, parsed from JSON as a real list would be."""
    count = 20_000
    raw = json.dumps({"items": [meta(f"acme--tenant-{i % 200:04d}", f"default-token-{i:05d}x", str(10_000_000 + i))
                                for i in range(count)]})
    watch = SecretVersions(None, lambda *change: None)  # type: ignore[arg-type]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        items = json.loads(raw)["items"]
        watch._relisted(items)
        del items
        gc.collect()
        per_secret = (tracemalloc.get_traced_memory()[0] - before) / count
    finally:
        tracemalloc.stop()
    assert len(watch.versions) == count
    assert per_secret < 300, per_secret


def test_a_metadata_only_list_asks_for_partial_metadata_in_pages() -> None:
    """Against a stand-in apiserver on loopback: the Accept header, limit/continue paging, and items
    cut down to identity, version and labels (no managedFields, no annotations)."""
    requests: list[tuple[str, dict[str, str]]] = []
    pages = {"": ("p2", ["a", "b"]), "p2": ("", ["c"])}

    async def secrets(request: web.Request) -> web.Response:
        requests.append((request.headers.get("Accept", ""), dict(request.query)))
        following, names = pages[request.query.get("continue", "")]
        return web.json_response({
            "kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": "42", **({"continue": following} if following else {})},
            "items": [{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": {
                "name": n, "namespace": "ns", "resourceVersion": "7", "labels": {"x": "y"},
                "annotations": {"big": "z" * 100}, "managedFields": [{"manager": "kubectl"}]}} for n in names]})

    async def main() -> tuple[list[dict[str, Any]], str]:
        app = web.Application()
        app.router.add_get("/api/v1/secrets", secrets)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        client = KubeClient(Credentials(server=f"http://127.0.0.1:{port}"))
        try:
            return await client.list_with_version("Secret", metadata_only=True)
        finally:
            await client.close()
            await runner.cleanup()

    items, version = asyncio.run(main())
    assert version == "42"
    assert items == [{"kind": "Secret", "metadata": {"name": n, "namespace": "ns", "resourceVersion": "7",
                                                     "labels": {"x": "y"}}} for n in "abc"]
    assert [accept for accept, _ in requests] == [METADATA_LIST_ACCEPT] * 2
    assert [query.get("continue") for _, query in requests] == [None, "p2"]
    assert all(query["limit"] == "500" for _, query in requests)
