"""Whose an existing tenant namespace is (tenantry/namespace_claim.py): only one made for this very Tenant
object is provisioned; a retained or hand-made namespace of its name is never touched."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tenantry.builders.tenant import TenantInputs, build_namespace
from tenantry.namespace_claim import NamespaceClaim, namespace_claim, namespace_taken_message

TENANT = {"metadata": {"name": "reused", "namespace": "reseller-acme", "uid": "uid-new",
                       "creationTimestamp": "2026-03-01T10:00:00Z"}}
LABELS = {"app.kubernetes.io/managed-by": "tenantry", "tenantry.dev/reseller": "acme", "tenantry.dev/tenant": "reused"}


def namespace(*, labels: dict[str, str] | None = None, uid: str | None = None,
              created: str = "2026-03-01T10:00:00Z", **meta: Any) -> dict[str, Any]:
    annotations = {"tenantry.dev/tenant-uid": uid} if uid else {}
    return {"metadata": {"name": "acme--reused", "labels": labels or {}, "annotations": annotations,
                         "creationTimestamp": created, **meta}}


def test_an_absent_namespace_is_free_and_one_with_the_tenants_uid_is_its_own() -> None:
    assert namespace_claim(None, TENANT, "acme") is NamespaceClaim.FREE
    assert namespace_claim(namespace(labels=LABELS, uid="uid-new"), TENANT, "acme") is NamespaceClaim.OURS
    # Its own even when someone stripped its labels: the next apply puts them back.
    assert namespace_claim(namespace(uid="uid-new", created="2020-01-01T00:00:00Z"), TENANT, "acme") \
        is NamespaceClaim.OURS


@pytest.mark.parametrize("live", [
    namespace(uid="uid-former", created="2026-01-01T00:00:00Z"),  # retained: labels gone, the former UID kept
    namespace(labels=LABELS, uid="uid-former"),  # another Tenant's, whatever its labels say
    namespace(),  # made outside Tenantry
    namespace(labels={"team": "someone-else"}, created="2026-03-02T00:00:00Z"),
    namespace(labels=LABELS, created="2026-03-01T09:59:59Z"),  # labelled, but older than the Tenant
    namespace(labels={**LABELS, "tenantry.dev/reseller": "other"}, created="2026-03-02T00:00:00Z"),
    namespace(labels={**LABELS, "tenantry.dev/tenant": "other"}, created="2026-03-02T00:00:00Z"),
    namespace(labels={k: v for k, v in LABELS.items() if k != "app.kubernetes.io/managed-by"},
              created="2026-03-02T00:00:00Z"),
    namespace(labels=LABELS, created=""),
], ids=["retained", "other-uid", "bare", "foreign-labels", "labelled-older", "other-reseller", "other-tenant",
        "not-managed", "no-timestamp"])
def test_a_namespace_not_made_for_this_tenant_is_taken(live: dict[str, Any]) -> None:
    assert namespace_claim(live, TENANT, "acme") is NamespaceClaim.TAKEN
    assert not namespace_claim(live, TENANT, "acme").provisionable


def test_a_tenant_without_a_uid_owns_no_stamped_namespace() -> None:
    no_uid = {"metadata": {**TENANT["metadata"], "uid": ""}}
    assert namespace_claim(namespace(uid="uid-new"), no_uid, "acme") is NamespaceClaim.TAKEN


@pytest.mark.parametrize("created", ["2026-03-01T10:00:00Z", "2026-03-01T10:00:01Z"])
def test_a_labelled_namespace_of_a_previous_version_made_for_this_tenant_is_adopted(created: str) -> None:
    """Upgrade path: made after (or in the same second as) the Tenant, with Tenantry's labels for it."""
    live = namespace(labels={**LABELS, "tenantry.dev/plan": "small"}, created=created)
    assert namespace_claim(live, TENANT, "acme") is NamespaceClaim.ADOPT
    assert namespace_claim(live, TENANT, "acme").provisionable


def test_the_message_says_what_happened_and_what_to_do() -> None:
    message = namespace_taken_message(namespace())
    assert message == ("Namespace acme--reused already exists and was not made for this tenant (it was retained "
                       "from an earlier tenant of the same name or made outside Tenantry); Tenantry will not hand "
                       "its contents to a new customer. Delete that namespace (after saving what you need) or give "
                       "the tenant another name.")
    assert namespace_taken_message(namespace(deletionTimestamp="2026-03-01T10:00:00Z")).endswith(
        "It is being deleted now: the tenant is provisioned once it is gone.")


def test_the_namespace_carries_the_tenants_uid() -> None:
    inputs = TenantInputs(reseller="acme", tenant="reused", region="eu", plan="small", namespace="acme--reused",
                          quota={"cpu": Decimal(1)}, tenant_uid="uid-new")
    built = build_namespace(inputs)
    assert built["metadata"]["annotations"]["tenantry.dev/tenant-uid"] == "uid-new"
    assert namespace_claim({**built, "metadata": {**built["metadata"], "creationTimestamp": "2020-01-01T00:00:00Z"}},
                           TENANT, "acme") is NamespaceClaim.OURS
