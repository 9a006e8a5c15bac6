"""The CRDs of crds/ in a real v1.20 apiserver: they install, accept the examples, refuse bad
objects naming the bad field (and the model refuses the same objects at the same field), apply the
contract's defaults, and keep the status the operator writes.

Every object here has a unique name; invalid objects and status writes use server-side dry-run, so
nothing here can disturb other tests (or be disturbed by an operator running in the same session).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client

from support.bodies import set_in
from tenantry import naming
from tenantry.models import SpecError, parse_spec

REPO_ROOT = Path(__file__).resolve().parents[2]
CRDS_DIR = REPO_ROOT / "crds"
EXAMPLES_DIR = REPO_ROOT / "examples"
NAMESPACED = {naming.PLAN, naming.TENANT}

QUOTA = {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "pods": "10"}
MINIMAL: dict[str, dict[str, Any]] = {
    naming.REGION: {"capacity": QUOTA, "pricing": {"currency": "USD", "cpu": "0.01", "memory": "0.001",
                                                   "storage": "0.0001"}},
    naming.RESELLER: {"companyName": "Minimal Ltd", "email": "billing@minimal.example"},
    naming.PLAN: {"quota": QUOTA, "pricing": {"currency": "EUR", "monthly": "9.00"}},
    naming.TENANT: {"email": "owner@minimal.example", "region": "eu-west", "plan": "starter"},
}


class Cluster:
    """Create/get/delete any of the four kinds through CustomObjectsApi."""

    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.api = client.CustomObjectsApi(api_client)
        self.namespace = namespace

    def body(self, kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": name}
        if kind in NAMESPACED:
            metadata["namespace"] = self.namespace
        return {"apiVersion": naming.API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}

    def create(self, body: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        kind, mode = body["kind"], "All" if dry_run else None
        if kind in NAMESPACED:
            namespace = body["metadata"]["namespace"]
            result = self.api.create_namespaced_custom_object(
                naming.GROUP, naming.VERSION, namespace, naming.PLURALS[kind], body, dry_run=mode
            )
        else:
            result = self.api.create_cluster_custom_object(
                naming.GROUP, naming.VERSION, naming.PLURALS[kind], body, dry_run=mode
            )
        return cast(dict[str, Any], result)

    def get(self, kind: str, name: str) -> dict[str, Any]:
        if kind in NAMESPACED:
            result = self.api.get_namespaced_custom_object(
                naming.GROUP, naming.VERSION, self.namespace, naming.PLURALS[kind], name
            )
        else:
            result = self.api.get_cluster_custom_object(naming.GROUP, naming.VERSION, naming.PLURALS[kind], name)
        return cast(dict[str, Any], result)

    def delete(self, kind: str, name: str) -> None:
        try:
            if kind in NAMESPACED:
                self.api.delete_namespaced_custom_object(
                    naming.GROUP, naming.VERSION, self.namespace, naming.PLURALS[kind], name
                )
            else:
                self.api.delete_cluster_custom_object(naming.GROUP, naming.VERSION, naming.PLURALS[kind], name)
        except client.ApiException as error:
            if error.status != 404:
                raise

    def patch_status_dry_run(self, kind: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        patch = {"status": status}
        if kind in NAMESPACED:
            result = self.api.patch_namespaced_custom_object_status(
                naming.GROUP, naming.VERSION, self.namespace, naming.PLURALS[kind], name, patch, dry_run="All"
            )
        else:
            result = self.api.patch_cluster_custom_object_status(
                naming.GROUP, naming.VERSION, naming.PLURALS[kind], name, patch, dry_run="All"
            )
        return cast(dict[str, Any], result)


@pytest.fixture
def cluster(control_plane: Any, api_client: client.ApiClient, namespace: str) -> Iterator[Cluster]:
    made = Cluster(api_client, namespace)
    yield made


@pytest.fixture
def name_for(unique_name: Callable[..., str]) -> Callable[[str], str]:
    """A unique object name of a kind, within the kind's length limit."""
    return lambda kind: unique_name(kind.lower()[:3], max_length=naming.MAX_NAME_LENGTH[kind])


# ------------------------------------------------------------------------------------------ install
def test_every_crd_is_installed_and_established(control_plane: Any, api_client: client.ApiClient) -> None:
    extensions = client.ApiextensionsV1Api(api_client)
    files = sorted(CRDS_DIR.glob("*.yaml"))
    assert len(files) == 5  # regions, resellers, plans, tenants, licenseorders
    for path in files:
        (crd,) = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        live = extensions.read_custom_resource_definition(crd["metadata"]["name"])
        assert live.status is not None and live.status.accepted_names is not None
        conditions = {c.type: c.status for c in live.status.conditions or ()}
        assert conditions.get("Established") == "True", path.name
        assert conditions.get("NamesAccepted") == "True", path.name
        assert conditions.get("NonStructuralSchema") is None, path.name
        assert live.status.accepted_names.short_names == crd["spec"]["names"]["shortNames"]


# ------------------------------------------------------------------------------------------ examples
def example_objects() -> list[dict[str, Any]]:
    return [doc for path in sorted(EXAMPLES_DIR.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_examples_are_accepted(cluster: Cluster, name_for: Callable[[str], str]) -> None:
    """Every object of examples/ passes the apiserver (dry-run, renamed into this test's namespace so
    it clashes with nothing), and what the apiserver would store is read by the model unchanged."""
    objects = example_objects()
    assert objects
    for obj in objects:
        body = copy.deepcopy(obj)
        body["metadata"]["name"] = name_for(body["kind"])
        if body["kind"] in NAMESPACED:
            body["metadata"]["namespace"] = cluster.namespace
        stored = cluster.create(body, dry_run=True)
        assert parse_spec(stored["kind"], stored) == parse_spec(obj["kind"], obj), obj["metadata"]["name"]


# ------------------------------------------------------------------------------------------ refusals
def base_body(kind: str) -> dict[str, Any]:
    """A valid object of each kind with every optional part present, to break one field at a time."""
    spec = {
        naming.REGION: {
            "nodePool": {"nodeSelector": {"pool": "x"},
                         "tolerations": [{"key": "pool", "operator": "Equal", "value": "x", "effect": "NoSchedule"}]},
            "capacity": dict(QUOTA),
            "pricing": {"currency": "USD", "cpu": "0.02", "memory": "0.002", "storage": "0.0002"},
        },
        naming.RESELLER: {
            "companyName": "Refused Ltd", "email": "billing@refused.example", "licenses": 3,
            "admins": [{"kind": "User", "name": "alice"}],
            "branding": {"primaryColor": "#112233"},
            "regions": [{"name": "eu-west", "domain": "refused.example", "tls": {"mode": "SelfSigned"},
                         "allotment": dict(QUOTA)}],
        },
        naming.PLAN: {"quota": dict(QUOTA), "customDomains": 1,
                      "pricing": {"currency": "EUR", "monthly": "19.00", "cpu": "0.05"}},
        naming.TENANT: {"email": "joe@refused.example", "region": "eu-west", "plan": "starter",
                        "ingress": {"service": "web", "port": 80},
                        "domains": [{"host": "www.refused.example", "tls": {"mode": "SelfSigned"}}],
                        "deletionPolicy": "Delete"},
    }[kind]
    return {"kind": kind, "metadata": {}, "spec": copy.deepcopy(spec)}


changed = set_in  # a copy with `value` at a dotted path; `...` deletes the field


INVALID = [
    # (kind, path, value, field the apiserver names; list indexes are dropped, as the apiserver does)
    ("Reseller", "metadata.name", "a--b", "metadata.name"),
    ("Reseller", "metadata.name", "r" * 21, "metadata.name"),
    ("Tenant", "metadata.name", "t" * 41, "metadata.name"),
    ("Region", "metadata.name", "r" * 31, "metadata.name"),
    ("Plan", "metadata.name", "Starter", "metadata.name"),
    ("Tenant", "metadata.name", "-bakery", "metadata.name"),
    ("Reseller", "spec.licenses", -1, "spec.licenses"),
    ("Reseller", "spec.regions.0.tls.mode", "LetsEncrypt", "spec.regions.tls.mode"),
    ("Reseller", "spec.regions.0.tls", {"mode": "Issuer", "issuerRef": {"kind": "Vault", "name": "v"}},
     "spec.regions.tls.issuerRef.kind"),
    ("Reseller", "spec.regions.0.allotment.memory", "64GB", "spec.regions.allotment.memory"),
    ("Reseller", "spec.regions.0.allotment", {"cpu": "1"}, "spec.regions.allotment.memory"),
    ("Reseller", "spec.regions.0.domain", "*.refused.example", "spec.regions.domain"),
    ("Reseller", "spec.email", "billing-at-refused", "spec.email"),
    ("Reseller", "spec.companyName", ..., "spec.companyName"),
    ("Reseller", "spec.admins.0.kind", "Robot", "spec.admins.kind"),
    ("Reseller", "spec.branding.primaryColor", "blue", "spec.branding.primaryColor"),
    ("Region", "spec.capacity.cpu", "64 cores", "spec.capacity.cpu"),
    ("Region", "spec.capacity.pods", -1, "spec.capacity.pods"),
    ("Region", "spec.capacity", ..., "spec.capacity"),
    ("Region", "spec.pricing.cpu", "0,02", "spec.pricing.cpu"),
    ("Region", "spec.pricing.memory", 0.002, "spec.pricing.memory"),
    ("Region", "spec.pricing.currency", "usd", "spec.pricing.currency"),
    ("Region", "spec.domainVerification", "HTTP", "spec.domainVerification"),
    ("Region", "spec.nodePool.tolerations.0.operator", "In", "spec.nodePool.tolerations.operator"),
    ("Plan", "spec.pricing.monthly", "19.", "spec.pricing.monthly"),
    ("Plan", "spec.pricing.monthly", "-5", "spec.pricing.monthly"),
    ("Plan", "spec.quota.memory", "4 GiB", "spec.quota.memory"),
    ("Plan", "spec.customDomains", -1, "spec.customDomains"),
    ("Plan", "spec.quota", ..., "spec.quota"),
    ("Tenant", "spec.email", ..., "spec.email"),
    ("Tenant", "spec.email", "joe@", "spec.email"),
    ("Tenant", "spec.deletionPolicy", "Orphan", "spec.deletionPolicy"),
    ("Tenant", "spec.ingress.port", 0, "spec.ingress.port"),
    ("Tenant", "spec.ingress.port", 65536, "spec.ingress.port"),
    ("Tenant", "spec.domains.0.host", "*.refused.example", "spec.domains.host"),
    ("Tenant", "spec.domains.0.tls.mode", "Acme", "spec.domains.tls.mode"),
    ("Tenant", "spec.region", "EU-West", "spec.region"),
    ("Tenant", "spec.active", "yes", "spec.active"),
    ("Tenant", "spec.owners.0", {"kind": "Robot", "name": "r2"}, "spec.owners.kind"),
]


def _api_error(call: Callable[[], Any]) -> tuple[int, str, set[str]]:
    with pytest.raises(client.ApiException) as caught:
        call()
    body = json.loads(caught.value.body or "{}")
    fields = {cause.get("field", "") for cause in (body.get("details") or {}).get("causes", [])}
    return caught.value.status, body.get("message", ""), fields


def _without_indexes(path: str) -> str:
    return re.sub(r"\[\d+\]", "", path)


@pytest.mark.parametrize(("kind", "path", "value", "field"), INVALID, ids=lambda v: str(v)[:24])
def test_invalid_objects_are_refused_naming_the_field(
    cluster: Cluster, name_for: Callable[[str], str], kind: str, path: str, value: Any, field: str
) -> None:
    body = changed(base_body(kind), "metadata.name", name_for(kind))
    body = cluster.body(kind, body["metadata"]["name"], body["spec"])
    cluster.create(body, dry_run=True)  # the unbroken object is fine...
    if path.startswith("spec.owners.0"):
        body["spec"]["owners"] = [{"kind": "User", "name": "joe"}]
    broken = changed(body, path, value)
    status, message, fields = _api_error(lambda: cluster.create(broken, dry_run=True))  # ...the broken one not
    assert status == 422, message
    assert field in fields or field in message, f"{field} not named in: {message}"

    # The model refuses it too, at the same field: CRD and model are two gates with one rule.
    with pytest.raises(SpecError) as caught:
        parse_spec(kind, broken)
    assert field in {_without_indexes(problem.path) for problem in caught.value.problems}


@pytest.mark.parametrize(
    ("kind", "path", "value", "field"),
    [
        ("Reseller", "spec.regions", [
            {"name": "eu-west", "domain": "a.example", "allotment": QUOTA},
            {"name": "eu-west", "domain": "b.example", "allotment": QUOTA},
        ], "spec.regions[1]"),
        ("Tenant", "spec.domains", [{"host": "www.dup.example"}, {"host": "www.dup.example"}], "spec.domains[1]"),
    ],
)
def test_list_map_keys_are_unique(
    cluster: Cluster, name_for: Callable[[str], str], kind: str, path: str, value: Any, field: str
) -> None:
    body = changed(cluster.body(kind, name_for(kind), base_body(kind)["spec"]), path, value)
    status, message, fields = _api_error(lambda: cluster.create(body, dry_run=True))
    assert status == 422
    assert field in fields or field in message, message
    assert "Duplicate value" in message


# ------------------------------------------------------------------------------------------ defaults
@pytest.mark.parametrize("kind", [naming.REGION, naming.RESELLER, naming.PLAN, naming.TENANT])
def test_defaults_are_applied_and_agree_with_the_model(
    cluster: Cluster, name_for: Callable[[str], str], kind: str
) -> None:
    name = name_for(kind)
    spec = copy.deepcopy(MINIMAL[kind])
    if kind == naming.RESELLER:
        spec["email"] = f"{name}@minimal.example"  # the platform keeps e-mails unique
    cluster.create(cluster.body(kind, name, spec))
    try:
        stored = cluster.get(kind, name)["spec"]
    finally:
        cluster.delete(kind, name)

    # What the model fills in for a missing field is exactly what the apiserver stored.
    model_view = parse_spec(kind, spec).model_dump(mode="json", by_alias=True, exclude_none=True)
    model_view = {k: v for k, v in model_view.items() if v not in ((), [], {})}
    assert stored == model_view

    contract_defaults: dict[str, dict[str, Any]] = {
        naming.REGION: {"domainVerification": "DNS", "ingress": {"controllerNamespace": "ingress-nginx"}},
        naming.RESELLER: {"active": True, "licenses": 0},
        naming.PLAN: {"customDomains": 0},
        naming.TENANT: {"active": True, "ingress": {"service": "web", "port": 80}, "deletionPolicy": "Delete"},
    }
    expected = contract_defaults[kind]
    assert {k: stored[k] for k in expected} == expected
    if kind == naming.PLAN:
        assert stored["pricing"] == {"currency": "EUR", "monthly": "9.00", "cpu": "0", "memory": "0",
                                     "storage": "0"}


def test_nested_defaults_fill_partial_objects(cluster: Cluster, name_for: Callable[[str], str]) -> None:
    spec = {**MINIMAL[naming.TENANT], "ingress": {"port": 8080}, "domains": [{"host": "www.partial.example"}]}
    stored = cluster.create(cluster.body(naming.TENANT, name_for(naming.TENANT), spec), dry_run=True)["spec"]
    assert stored["ingress"] == {"service": "web", "port": 8080}
    assert stored["domains"] == [{"host": "www.partial.example", "tls": {"mode": "SelfSigned"}}]

    reseller = {**MINIMAL[naming.RESELLER], "regions": [{"name": "eu-west", "domain": "p.example", "allotment": QUOTA}]}
    stored = cluster.create(cluster.body(naming.RESELLER, name_for(naming.RESELLER), reseller), dry_run=True)["spec"]
    assert stored["regions"][0]["tls"] == {"mode": "SelfSigned"}


# ------------------------------------------------------------------------------------------ status
CONDITION = {"type": "Ready", "status": "True", "reason": "Ready", "message": "All good.",
             "lastTransitionTime": "2026-01-02T03:04:05Z", "observedGeneration": 1}
CERTIFICATE = {"notAfter": "2027-01-01T00:00:00Z", "issuer": "CN=tenantry self-signed",
               "dnsNames": ["*.acme-cloud.example"]}
STATUS = {
    naming.REGION: {"observedGeneration": 1, "conditions": [CONDITION, {**CONDITION, "type": "Overcommitted",
                                                                        "status": "False", "reason": "WithinCapacity"}],
                    "allocated": {"cpu": "24", "memory": "80Gi", "storage": "700Gi", "pods": "500"},
                    "resellers": 2, "tenants": 37},
    naming.RESELLER: {"observedGeneration": 1, "conditions": [CONDITION], "namespace": "reseller-acme",
                      "licenses": {"total": 25, "used": 7, "available": 18}, "tenants": 7,
                      "seededPlans": ["starter"],
                      "regions": [{"name": "eu-west", "domain": "acme-cloud.example",
                                   "allotment": {"cpu": "16", "memory": "64Gi", "storage": "500Gi", "pods": "400"},
                                   "allocated": {"cpu": "14", "memory": "28Gi", "storage": "140Gi", "pods": "140"},
                                   "tenants": 7, "certificate": CERTIFICATE}]},
    naming.PLAN: {"observedGeneration": 1, "conditions": [CONDITION], "tenants": 3},
    naming.TENANT: {"observedGeneration": 1, "phase": "Active", "namespace": "acme--bakery",
                    "hosts": ["bakery.acme-cloud.example", "www.bakery.example"],
                    "conditions": [CONDITION, {**CONDITION, "type": "Admitted", "reason": "Admitted"}],
                    "admission": {"plan": "starter", "region": "eu-west",
                                  "quota": {"cpu": "2", "memory": "4Gi", "storage": "20Gi", "pods": "20"},
                                  "admittedAt": "2026-01-02T03:04:05Z"},
                    "domains": [{"host": "www.bakery.example", "verified": False, "token": "tenantry-verify=abc",
                                 "message": "Add a TXT record _tenantry.www.bakery.example."}],
                    "certificates": [{"host": "bakery.acme-cloud.example", **CERTIFICATE}]},
}


@pytest.mark.parametrize("kind", [naming.REGION, naming.RESELLER, naming.PLAN, naming.TENANT])
def test_status_subresource_keeps_every_documented_field(
    cluster: Cluster, name_for: Callable[[str], str], kind: str
) -> None:
    """What the operator writes comes back unchanged (nothing pruned: a pruned field would make the
    operator write again on every reconcile), and spec cannot be changed through /status."""
    name = name_for(kind)
    spec = copy.deepcopy(MINIMAL[kind])
    if kind == naming.RESELLER:
        spec["email"] = f"{name}@status.example"
    cluster.create(cluster.body(kind, name, spec))
    try:
        result = cluster.patch_status_dry_run(kind, name, copy.deepcopy(STATUS[kind]))
        assert result["status"] == STATUS[kind]

        bad_condition = {**CONDITION, "status": "Maybe"}
        status, message, _ = _api_error(
            lambda: cluster.patch_status_dry_run(kind, name, {"conditions": [bad_condition]})
        )
        assert status == 422 and "status.conditions" in message
    finally:
        cluster.delete(kind, name)


def test_tenant_phase_is_an_enum(cluster: Cluster, name_for: Callable[[str], str]) -> None:
    name = name_for(naming.TENANT)
    cluster.create(cluster.body(naming.TENANT, name, MINIMAL[naming.TENANT]))
    try:
        status, message, _ = _api_error(lambda: cluster.patch_status_dry_run(naming.TENANT, name, {"phase": "Running"}))
        assert status == 422 and "status.phase" in message
    finally:
        cluster.delete(naming.TENANT, name)


# ------------------------------------------------------------------------------------------ printing
def test_printer_columns_show_the_ready_condition(cluster: Cluster, name_for: Callable[[str], str]) -> None:
    name = name_for(naming.TENANT)
    cluster.create(cluster.body(naming.TENANT, name, MINIMAL[naming.TENANT]))
    # The operator (if this session runs one) writes this Tenant's status too, since it is not in a
    # reseller's namespace; write ours and read the table right after, a few times if it interferes.
    try:
        for _ in range(20):
            cluster.api.patch_namespaced_custom_object_status(
                naming.GROUP, naming.VERSION, cluster.namespace, "tenants", name,
                {"status": {"phase": "Active", "namespace": f"x--{name}", "conditions": [CONDITION]}},
            )
            raw = cluster.api.get_namespaced_custom_object(
                naming.GROUP, naming.VERSION, cluster.namespace, "tenants", name,
                _headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}, _preload_content=False,
            )
            response = json.loads(raw.data)  # type: ignore[attr-defined]  # a raw urllib3 response
            columns = [column["name"] for column in response["columnDefinitions"]]
            row = dict(zip(columns, response["rows"][0]["cells"], strict=True))
            if row["Phase"] == "Active" and row["Ready"] == "True":
                break
    finally:
        cluster.delete(naming.TENANT, name)
    assert columns == ["Name", "Region", "Plan", "Phase", "Namespace", "Ready", "Age"]
    assert (row["Region"], row["Plan"], row["Phase"], row["Ready"]) == ("eu-west", "starter", "Active", "True")
