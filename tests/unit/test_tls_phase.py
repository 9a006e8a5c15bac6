"""The TLS phase's decisions (tenantry.controller.tls) with an in-memory apiserver stand-in: reuse
instead of re-issue, and the key-custody rule for a reseller's own certificate."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from typing import Any

from support.dns import TEST_DNS
from support.pki import new_pki
from tenantry.admission import AdmissionBook, TenantClaim
from tenantry.builders.tls import ANNOTATION_SOURCE, CA_SECRET, decode_data, tls_secret_name
from tenantry.controller.apply import with_spec_hash
from tenantry.controller.context import Operator
from tenantry.controller.tls import cert_manager_available, tenant_tls
from tenantry.models import RegionSpec, ResellerSpec, TenantSpec
from tenantry.settings import Settings

RESELLER, TENANT = "acme", "bakery"
NAMESPACE = f"{RESELLER}--{TENANT}"
QUOTA = {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "pods": "10"}


class FakeClient:
    """What the TLS phase asks of the API: Secrets someone supplied, applies, deletes."""

    def __init__(self) -> None:
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}
        self.applied: list[Mapping[str, Any]] = []
        self.deleted: list[tuple[str, str, str | None]] = []
        self.kinds_asked: list[str] = []  # discovery look-ups (cert-manager's Certificate kind)

    async def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        assert kind == "Secret"
        return self.secrets.get((namespace or "", name))

    async def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        self.applied.append(manifest)
        return {**manifest, "metadata": {**manifest["metadata"], "resourceVersion": str(len(self.applied))}}

    async def delete(self, kind: str, name: str, namespace: str | None = None, *, propagation: str = "") -> bool:
        self.deleted.append((kind, name, namespace))
        return True

    async def kind_exists(self, kind: str) -> bool:
        self.kinds_asked.append(kind)
        return False


def secret(data: Mapping[str, bytes]) -> dict[str, Any]:
    return {"data": {k: base64.b64encode(v).decode() for k, v in data.items()}}


def make_operator() -> tuple[Operator, FakeClient]:
    fake = FakeClient()
    op = Operator(client=fake, settings=Settings(dnsResolver=TEST_DNS.address), book=AdmissionBook())  # type: ignore[arg-type]
    op.store.put("Reseller", {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Reseller",
                              "metadata": {"name": RESELLER, "uid": "r-uid", "resourceVersion": "1"},
                              "spec": {"companyName": "ACME", "email": "a@acme.example"}})
    op.store.put("Namespace", {"kind": "Namespace", "metadata": {"name": f"reseller-{RESELLER}"}})
    op.book.upsert_tenant(TenantClaim(reseller=RESELLER, name=TENANT, created="2026-01-01T00:00:00Z",
                                      email="joe@bakery.example", region="eu", plan="small",
                                      domains=("www.bakery.example",), uid="t-uid"))
    return op, fake


def specs(tls: dict[str, Any], owners: bool, verification: str = "None") -> tuple[ResellerSpec, RegionSpec,
                                                                                   TenantSpec]:
    reseller = ResellerSpec.model_validate({"companyName": "ACME", "email": "a@acme.example", "regions": [
        {"name": "eu", "domain": "acme.example", "tls": tls, "allotment": QUOTA}]})
    region = RegionSpec.model_validate({"domainVerification": verification, "capacity": QUOTA, "pricing": {
        "currency": "USD", "cpu": "1", "memory": "1", "storage": "1"}})
    tenant = TenantSpec.model_validate({"email": "joe@bakery.example", "region": "eu", "plan": "small",
                                        "owners": [{"kind": "User", "name": "joe"}] if owners else [],
                                        "domains": [{"host": "www.bakery.example"}]})
    return reseller, region, tenant


def run(op: Operator, tls: dict[str, Any], owners: bool, verification: str = "None",
        status: dict[str, Any] | None = None) -> Any:
    reseller, region, tenant = specs(tls, owners, verification)
    body = {"metadata": {"name": TENANT, "namespace": f"reseller-{RESELLER}", "uid": "t-uid"},
            "status": status or {}}
    return asyncio.run(tenant_tls(op, op.clusters.local, body, tenant, RESELLER, reseller, region, 1, NAMESPACE,
                                  {"app.kubernetes.io/managed-by": "tenantry", "tenantry.dev/reseller": RESELLER,
                                   "tenantry.dev/tenant": TENANT}))


def applied_as_live(op: Operator, manifests: list[Mapping[str, Any]]) -> None:
    """What the apply module would leave in the Store."""
    for index, manifest in enumerate(manifests):
        hashed = with_spec_hash(manifest)
        op.store.put(manifest["kind"], {**hashed, "metadata": {**hashed["metadata"], "resourceVersion": str(index)}})


def test_self_signed_certificates_are_issued_once_and_then_reused() -> None:
    op, fake = make_operator()
    first = run(op, {"mode": "SelfSigned"}, owners=True)
    assert [r.host for r in first.routes] == ["bakery.acme.example", "www.bakery.example"]
    assert all(r.tls_secret == tls_secret_name(r.host) for r in first.routes)
    assert [m["metadata"]["name"] for m in fake.applied] == [CA_SECRET]  # the CA, applied at once
    assert first.condition.status is True and len(first.certificates) == 2
    applied_as_live(op, first.children)

    second = run(op, {"mode": "SelfSigned"}, owners=True)
    assert second.children == first.children  # same manifests: the apply module writes nothing
    assert second.certificates == first.certificates
    assert [m["metadata"]["name"] for m in fake.applied] == [CA_SECRET]


def test_a_reseller_wildcard_is_copied_only_where_no_owner_can_read_it() -> None:
    pki = new_pki()
    wildcard = pki.leaf("*.acme.example")
    op, fake = make_operator()
    fake.secrets[(f"reseller-{RESELLER}", "wild")] = secret(pki.bundle(wildcard))
    tls = {"mode": "Secret", "secretName": "wild"}

    hosted = run(op, tls, owners=False)
    copy = next(c for c in hosted.children if c["metadata"]["name"] == tls_secret_name("bakery.acme.example"))
    assert decode_data(copy)["tls.key"] == wildcard.key_pem
    assert copy["metadata"]["annotations"][ANNOTATION_SOURCE] == f"reseller-{RESELLER}/wild"
    applied_as_live(op, hosted.children)

    owned = run(op, tls, owners=True)
    assert owned.condition.status is False and owned.condition.reason == "ResellerKeyWithheld"
    assert all(wildcard.key_pem not in (decode_data(c) or {}).values() for c in owned.children)
    assert owned.routes[0].tls_secret is None  # routed, without the reseller's certificate
    # The copy made while there were no owners is deleted at once, not left to pruning.
    assert ("Secret", tls_secret_name("bakery.acme.example"), NAMESPACE) in fake.deleted
    assert "PRIVATE KEY" not in owned.condition.message


def test_a_reseller_ca_issues_a_leaf_per_tenant() -> None:
    pki = new_pki()
    op, fake = make_operator()
    fake.secrets[(f"reseller-{RESELLER}", "ca")] = secret({"tls.crt": pki.intermediate.cert_pem + pki.root.cert_pem,
                                                           "tls.key": pki.intermediate.key_pem})
    result = run(op, {"mode": "Secret", "secretName": "ca"}, owners=True)
    assert result.condition.status is True
    leaf = next(c for c in result.children if c["metadata"]["name"] == tls_secret_name("bakery.acme.example"))
    data = decode_data(leaf) or {}
    assert data["tls.key"] != pki.intermediate.key_pem and pki.intermediate.cert_pem in data["tls.crt"]


def test_custom_domains_wait_for_their_dns_proof() -> None:
    mode = "SelfSigned"
    op, _ = make_operator()
    pending = run(op, {"mode": mode}, owners=True, verification="DNS")
    domain = pending.domains[0]
    assert domain["verified"] is False and pending.recheck
    assert pending.domains_condition is not None and pending.domains_condition.reason == "VerificationPending"
    assert domain["token"] in pending.domains_condition.message
    assert [r.host for r in pending.routes] == ["bakery.acme.example"]
    TEST_DNS.set_txt(f"_tenantry-challenge.{domain['host']}", domain["token"])
    try:
        proven = run(op, {"mode": mode}, owners=True, verification="DNS")
    finally:
        TEST_DNS.remove(f"_tenantry-challenge.{domain['host']}")
    assert proven.domains[0]["verified"] is True and not proven.recheck
    assert proven.domains_condition is not None and proven.domains_condition.status is True
    # Sticky: once proven (status remembers it), removing the record does not unroute the site.
    again = run(op, {"mode": mode}, owners=True, verification="DNS", status={"domains": proven.domains})
    assert [r.host for r in again.routes] == ["bakery.acme.example", "www.bakery.example"]


def test_two_operators_in_one_process_look_up_cert_manager_each_for_itself() -> None:
    """What one Operator found out (cert-manager is not installed, as its cluster says) is not
    another's answer: each asks its own API server, and keeps its own answer for domainRecheckSeconds."""
    first, first_client = make_operator()
    second, second_client = make_operator()
    assert asyncio.run(cert_manager_available(first)) is False
    assert asyncio.run(cert_manager_available(second)) is False
    assert asyncio.run(cert_manager_available(first)) is False  # within domainRecheckSeconds: not asked again
    assert first_client.kinds_asked == ["Certificate"] and second_client.kinds_asked == ["Certificate"]
