"""The CRDs generated from the models (tenantry.crdgen), checked without a cluster.

The schemas cannot drift from the models (they are generated from them; test_generated_files.py
fails when a file is stale). What is checked here is what a generator bug would break: names,
scope, printer columns pointing at fields that exist, status conditions in metav1.Condition shape,
descriptions for `kubectl explain`, structural schemas, list-map keys required, and CEL only in the
chart's variant (crds/ is for the v1.20 control plane, which refuses x-kubernetes-validations).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tenantry import naming
from tenantry.quantity import QUANTITY_PATTERN

REPO_ROOT = Path(__file__).resolve().parents[2]
CRDS_DIR = REPO_ROOT / "crds"
CHART_CRDS_DIR = REPO_ROOT / "charts" / "tenantry" / "crds"
KINDS = (naming.REGION, naming.RESELLER, naming.PLAN, naming.TENANT, naming.LICENSE_ORDER)


def load_crd(kind: str, directory: Path = CRDS_DIR) -> dict[str, Any]:
    path = directory / f"{naming.GROUP}_{naming.PLURALS[kind]}.yaml"
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    assert len(docs) == 1, f"{path.name} should hold exactly one CRD"
    return docs[0]


def root_schema(crd: Mapping[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


# ------------------------------------------------------------------------------------------ the CRDs themselves
def walk(schema: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    yield path, schema
    for name, prop in schema.get("properties", {}).items():
        yield from walk(prop, f"{path}.{name}")
    if isinstance(schema.get("items"), Mapping):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), Mapping):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


SHORT_NAMES = {naming.REGION: "rgn", naming.RESELLER: "rsl", naming.PLAN: "pln", naming.TENANT: "tnt",
               naming.LICENSE_ORDER: "lo"}
SCOPES = {naming.REGION: "Cluster", naming.RESELLER: "Cluster", naming.PLAN: "Namespaced", naming.TENANT: "Namespaced",
          naming.LICENSE_ORDER: "Namespaced"}
COLUMNS = {
    naming.REGION: ["CPU-Allocated", "CPU-Capacity", "Resellers", "Tenants", "Ready", "Age"],
    naming.RESELLER: ["Company", "Used", "Total", "Tenants", "Active", "Ready", "Age"],
    naming.PLAN: ["CPU", "Memory", "Tenants", "Age"],
    naming.TENANT: ["Region", "Plan", "Phase", "Namespace", "Ready", "Age"],
    naming.LICENSE_ORDER: ["Quantity", "Tier", "Phase", "Amount", "Currency", "Age"],
}


@pytest.mark.parametrize("kind", KINDS)
def test_crd_names_scope_and_version(kind: str) -> None:
    crd = load_crd(kind)
    plural = naming.PLURALS[kind]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["metadata"]["name"] == f"{plural}.{naming.GROUP}"
    spec = crd["spec"]
    assert spec["group"] == naming.GROUP
    assert spec["scope"] == SCOPES[kind]
    assert spec["names"] == {
        "kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower(),
        "shortNames": [SHORT_NAMES[kind]], "categories": ["tenantry"],
    }
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == (naming.VERSION, True, True)
    assert version["subresources"] == {"status": {}}


@pytest.mark.parametrize("kind", KINDS)
def test_metadata_name_is_restricted_like_naming(kind: str) -> None:
    name_schema = root_schema(load_crd(kind))["properties"]["metadata"]["properties"]["name"]
    assert name_schema == {
        "type": "string", "pattern": naming.NAME_PATTERN, "maxLength": naming.MAX_NAME_LENGTH[kind]
    }
    assert root_schema(load_crd(kind))["required"] == ["spec"]


@pytest.mark.parametrize("kind", KINDS)
def test_printer_columns_point_at_fields_that_exist(kind: str) -> None:
    (version,) = load_crd(kind)["spec"]["versions"]
    columns = version["additionalPrinterColumns"]
    assert [column["name"] for column in columns] == COLUMNS[kind]
    root = root_schema(load_crd(kind))
    for column in columns:
        json_path = column["jsonPath"]
        if json_path == ".metadata.creationTimestamp":
            assert column["type"] == "date"
            continue
        if column["name"] == "Ready":
            assert json_path == '.status.conditions[?(@.type=="Ready")].status'
            continue
        node: Mapping[str, Any] = root
        for part in json_path.lstrip(".").split("."):
            assert part in node.get("properties", {}), f"{kind} column {column['name']}: no field {json_path}"
            node = node["properties"][part]
        crd_type = node.get("type", "string")  # int-or-string quantities print as strings
        assert column["type"] == crd_type, f"{kind} column {column['name']}"


@pytest.mark.parametrize("kind", KINDS)
def test_status_has_typed_conditions_and_observed_generation(kind: str) -> None:
    status = root_schema(load_crd(kind))["properties"]["status"]
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert set(item["properties"]) == {"type", "status", "reason", "message", "lastTransitionTime",
                                       "observedGeneration"}
    assert set(item["required"]) == {"type", "status", "reason", "message", "lastTransitionTime"}
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert item["properties"]["lastTransitionTime"]["format"] == "date-time"
    assert status["properties"]["observedGeneration"]["type"] == "integer"


def test_status_fields_other_components_rely_on() -> None:
    def props(kind: str, *path: str) -> Mapping[str, Any]:
        node = root_schema(load_crd(kind))["properties"]["status"]
        for part in path:
            node = node["properties"][part] if part != "[]" else node["items"]
        return node["properties"]

    assert {"allocated", "resellers", "tenants"} <= set(props(naming.REGION))
    assert {"namespace", "licenses", "tenants", "regions", "seededPlans"} <= set(props(naming.RESELLER))
    assert set(props(naming.RESELLER, "licenses")) == {"total", "purchased", "used", "available", "selfServiceLimit",
                                                       "purchasedThisMonth"}
    assert {"name", "allotment", "allocated", "certificate"} <= set(props(naming.RESELLER, "regions", "[]"))
    assert set(props(naming.RESELLER, "regions", "[]", "certificate")) == {"notAfter", "dnsNames", "issuer"}
    assert "tenants" in props(naming.PLAN)
    tenant = props(naming.TENANT)
    assert {"phase", "namespace", "hosts", "admission", "domains", "certificates"} <= set(tenant)
    assert tenant["phase"]["enum"] == ["Pending", "Active", "Suspended", "Terminating"]
    assert set(props(naming.TENANT, "admission")) == {"plan", "region", "quota", "admittedAt"}
    assert set(props(naming.TENANT, "admission", "quota")) == set(naming.QUOTA_RESOURCES)
    assert set(props(naming.TENANT, "domains", "[]")) == {"host", "verified", "token", "message"}
    assert set(props(naming.TENANT, "certificates", "[]")) == {"host", "notAfter", "issuer", "dnsNames"}
    order = props(naming.LICENSE_ORDER)
    assert {"phase", "quantity", "price", "fulfilledAt", "refundedAt", "billing"} <= set(order)
    assert order["phase"]["enum"] == ["Pending", "Fulfilled", "Rejected", "Refunded"]
    assert set(props(naming.LICENSE_ORDER, "price")) == {"currency", "tier", "unitPrice", "amount"}
    assert set(props(naming.LICENSE_ORDER, "billing", "order")) == {"id", "sent", "sentAt"}


@pytest.mark.parametrize("kind", KINDS)
def test_every_field_is_described_for_kubectl_explain(kind: str) -> None:
    root = root_schema(load_crd(kind))
    undocumented = [
        path for path, node in walk(root)
        if path and not path.startswith(".metadata") and not path.endswith(("[]", "{}"))
        and not node.get("description", "").strip()
    ]
    assert undocumented == []


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_structural_and_free_of_cel(kind: str) -> None:
    """Every node has a type (or is an int-or-string quantity); no x-kubernetes-validations, which the
    v1.20 apiserver ignores and kubectl refuses; every int-or-string uses the project's quantity pattern."""
    for path, node in walk(root_schema(load_crd(kind))):
        assert "x-kubernetes-validations" not in node, path
        if node.get("x-kubernetes-int-or-string"):
            assert node["pattern"] == QUANTITY_PATTERN, path
            assert "type" not in node, path
        elif not node.get("x-kubernetes-preserve-unknown-fields"):
            assert node.get("type") in {"object", "array", "string", "integer", "boolean", "number"}, path


@pytest.mark.parametrize("kind", KINDS)
def test_chart_variant_differs_only_by_cel(kind: str) -> None:
    """charts/tenantry/crds/ is crds/ plus x-kubernetes-validations, nothing else; and structural too."""
    def without_cel(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: without_cel(v) for k, v in node.items() if k != "x-kubernetes-validations"}
        if isinstance(node, list):
            return [without_cel(v) for v in node]
        return node

    chart = load_crd(kind, CHART_CRDS_DIR)
    assert without_cel(chart) == load_crd(kind)
    for path, node in walk(root_schema(chart)):
        for rule in node.get("x-kubernetes-validations", []):
            assert set(rule) == {"rule", "message"}, path  # fieldPath, reason: Kubernetes >= 1.28 only
            if node.get("type") == "array":
                assert "maxItems" in node, path


@pytest.mark.parametrize("kind", KINDS)
def test_list_map_keys_are_required(kind: str) -> None:
    """A list-map key must be required (the apiserver insists); the model requires it as well."""
    for path, node in walk(root_schema(load_crd(kind))):
        if node.get("x-kubernetes-list-type") == "map":
            assert set(node["x-kubernetes-list-map-keys"]) <= set(node["items"].get("required", [])), path
