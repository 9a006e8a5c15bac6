"""The CRD schemas in crds/ and the pydantic models in tenantry.models must say the same thing.

`schema_mismatches` walks a CRD's spec schema and the model side by side and lists every
difference: property names (by alias) at every level, required sets, defaults, enums, types,
patterns, length and number bounds, int-or-string quantities, list-map keys. The tests at the end
break a copy of one side on purpose and check that the walker notices, so this test can fail.

Also checked here, without a cluster: the parts of the CRDs no model mirrors (names, scope,
printer columns, status conditions, descriptions for `kubectl explain`, no CEL).
"""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import annotated_types
import pytest
import yaml
from pydantic import BaseModel, create_model
from pydantic.fields import FieldInfo

from tenantry import models, naming
from tenantry.quantity import QUANTITY_PATTERN

REPO_ROOT = Path(__file__).resolve().parents[2]
CRDS_DIR = REPO_ROOT / "crds"
KINDS = (naming.REGION, naming.RESELLER, naming.PLAN, naming.TENANT, naming.LICENSE_ORDER)
MISSING = object()


def load_crd(kind: str) -> dict[str, Any]:
    path = CRDS_DIR / f"{naming.GROUP}_{naming.PLURALS[kind]}.yaml"
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    assert len(docs) == 1, f"{path.name} should hold exactly one CRD"
    return docs[0]


def root_schema(crd: Mapping[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


# ------------------------------------------------------------------------------------------ the walker
def _unwrap(annotation: Any, metadata: list[Any]) -> Any:
    """Strips Optional[...] and Annotated[...], collecting the Annotated metadata on the way."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            base, *extra = typing.get_args(annotation)
            metadata.extend(extra)
            annotation = base
        elif origin in (typing.Union, types.UnionType):
            args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            assert len(args) == 1, f"unions other than Optional are not mirrored in CRDs: {annotation}"
            annotation = args[0]
        else:
            return annotation


def _jsonable_default(field: FieldInfo) -> Any:
    """The model's default as it would appear in a CRD `default`, or MISSING for 'no default'."""
    if field.is_required():
        return MISSING
    value = field.get_default(call_default_factory=True)
    if value is None or value == () or value == {}:
        return MISSING  # an absent optional field: the CRD states no default either
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, Decimal):
        return str(value)
    return value


def _type_mismatches(schema: Mapping[str, Any], annotation: Any, metadata: list[Any], path: str) -> list[str]:
    annotation = _unwrap(annotation, metadata)
    found: list[str] = []

    def expect(key: str, model_value: Any, crd_default: Any = MISSING) -> None:
        crd_value = schema.get(key, crd_default)
        if crd_value != model_value:
            found.append(f"{path}: CRD {key}={crd_value!r}, model says {model_value!r}")

    texts = [item for item in metadata if isinstance(item, models.Text)]
    quantity = any(isinstance(item, models.QuantityField) for item in metadata)
    money = [item for item in metadata if isinstance(item, models.MoneyField)]
    ge = [item.ge for item in metadata if isinstance(item, annotated_types.Ge)]
    le = [item.le for item in metadata if isinstance(item, annotated_types.Le)]

    if quantity:
        expect("x-kubernetes-int-or-string", True)
        expect("anyOf", [{"type": "integer"}, {"type": "string"}])
        expect("pattern", QUANTITY_PATTERN)
        expect("minimum", 0)
        expect("type", MISSING)
    elif money:
        expect("type", "string")
        expect("pattern", money[0].pattern)
    elif typing.get_origin(annotation) is typing.Literal:
        expect("type", "string")
        crd_enum = schema.get("enum")
        if crd_enum is None or set(crd_enum) != set(typing.get_args(annotation)):
            found.append(f"{path}: CRD enum={crd_enum!r}, model Literal={list(typing.get_args(annotation))!r}")
    elif annotation is str:
        expect("type", "string")
        if not texts:
            found.append(f"{path}: model string without a Text constraint; say what the CRD checks")
        else:
            text = texts[0]
            expect("pattern", text.pattern, None)
            expect("maxLength", text.max_length, None)
            expect("minLength", text.min_length, 0)
    elif annotation is bool:
        expect("type", "boolean")
    elif annotation is int:
        expect("type", "integer")
        expect("minimum", ge[0] if ge else MISSING)
        expect("maximum", le[0] if le else MISSING)
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        expect("type", "object")
        found.extend(schema_mismatches(schema, annotation, path))
    elif typing.get_origin(annotation) is tuple:
        item_type, ellipsis = typing.get_args(annotation)
        assert ellipsis is Ellipsis, f"{path}: use tuple[X, ...] for lists"
        expect("type", "array")
        if "items" not in schema:
            found.append(f"{path}: CRD array without items")
        else:
            found.extend(_type_mismatches(schema["items"], item_type, [], f"{path}[]"))
    elif typing.get_origin(annotation) in (Mapping, dict, typing.Mapping):
        key_type, value_type = typing.get_args(annotation)
        assert key_type is str and value_type is str, f"{path}: only Mapping[str, str] is mirrored"
        expect("type", "object")
        expect("additionalProperties", {"type": "string"})
        expect("properties", MISSING)
    else:
        found.append(f"{path}: the walker does not know model type {annotation!r}; teach it")
    return found


def schema_mismatches(schema: Mapping[str, Any], model: type[BaseModel], path: str = "spec") -> list[str]:
    """Every difference between an object schema of a CRD and a pydantic model."""
    found: list[str] = []
    crd_properties: Mapping[str, Any] = schema.get("properties", {})
    fields = {(field.alias or name): field for name, field in model.model_fields.items()}

    for name in sorted(set(crd_properties) - set(fields)):
        found.append(f"{path}.{name}: in the CRD but not in {model.__name__}")
    for name in sorted(set(fields) - set(crd_properties)):
        found.append(f"{path}.{name}: in {model.__name__} but not in the CRD")

    crd_required = set(schema.get("required", []))
    model_required = {alias for alias, field in fields.items() if field.is_required()}
    if crd_required != model_required:
        found.append(
            f"{path}: required differs: only CRD {sorted(crd_required - model_required)}, "
            f"only {model.__name__} {sorted(model_required - crd_required)}"
        )

    for alias in sorted(set(crd_properties) & set(fields)):
        field, prop, where = fields[alias], crd_properties[alias], f"{path}.{alias}"
        crd_default, model_default = prop.get("default", MISSING), _jsonable_default(field)
        if crd_default != model_default:
            show = {id(MISSING): "<none>"}
            found.append(
                f"{where}: CRD default {show.get(id(crd_default), crd_default)!r}, "
                f"model default {show.get(id(model_default), model_default)!r}"
            )
        found.extend(_type_mismatches(prop, field.annotation, list(field.metadata), where))
    return found


# ------------------------------------------------------------------------------------------ the sync test
@pytest.mark.parametrize("kind", KINDS)
def test_crd_spec_schema_matches_the_model(kind: str) -> None:
    spec_schema = root_schema(load_crd(kind))["properties"]["spec"]
    assert schema_mismatches(spec_schema, models.SPEC_MODELS[kind]) == []


@pytest.mark.parametrize("kind", KINDS)
def test_list_map_keys_are_required_in_crd_and_model(kind: str) -> None:
    """A list-map key must be required (the apiserver insists); the model must require it too."""
    spec_schema = root_schema(load_crd(kind))["properties"]["spec"]
    model_fields = models.SPEC_MODELS[kind].model_fields
    for path, node in walk(spec_schema):
        if node.get("x-kubernetes-list-type") == "map":
            keys = node["x-kubernetes-list-map-keys"]
            assert set(keys) <= set(node["items"].get("required", [])), path
    expected = {
        naming.RESELLER: {"regions": ["name"]},
        naming.TENANT: {"domains": ["host"]},
    }.get(kind, {})
    for field, keys in expected.items():
        assert spec_schema["properties"][field]["x-kubernetes-list-map-keys"] == keys
        item_model = typing.get_args(_unwrap(model_fields[_field_name(kind, field)].annotation, []))[0]
        for key in keys:
            assert item_model.model_fields[key].is_required()


def _field_name(kind: str, alias: str) -> str:
    for name, field in models.SPEC_MODELS[kind].model_fields.items():
        if (field.alias or name) == alias:
            return name
    raise KeyError(alias)


# ------------------------------------------------------------------------------------------ the walker can fail
def _spec_schema_copy(kind: str) -> dict[str, Any]:
    return copy.deepcopy(root_schema(load_crd(kind))["properties"]["spec"])


def _break_add_crd_field(schema: dict[str, Any]) -> None:
    schema["properties"]["nickname"] = {"type": "string", "description": "x"}


def _break_add_nested_crd_field(schema: dict[str, Any]) -> None:
    schema["properties"]["ingress"]["properties"]["path"] = {"type": "string", "description": "x"}


def _break_required(schema: dict[str, Any]) -> None:
    schema["required"].remove("plan")


def _break_nested_required(schema: dict[str, Any]) -> None:
    schema["properties"]["domains"]["items"]["required"] = []


def _break_default(schema: dict[str, Any]) -> None:
    schema["properties"]["deletionPolicy"]["default"] = "Retain"


def _break_object_default(schema: dict[str, Any]) -> None:
    schema["properties"]["ingress"]["default"] = {"service": "web", "port": 8080}


def _break_enum(schema: dict[str, Any]) -> None:
    schema["properties"]["deletionPolicy"]["enum"].append("Orphan")


def _break_nested_enum(schema: dict[str, Any]) -> None:
    schema["properties"]["domains"]["items"]["properties"]["tls"]["properties"]["mode"]["enum"].remove("Issuer")


def _break_pattern(schema: dict[str, Any]) -> None:
    schema["properties"]["email"]["pattern"] = "^.+@.+$"


def _break_max_length(schema: dict[str, Any]) -> None:
    schema["properties"]["region"]["maxLength"] = 63


def _break_bound(schema: dict[str, Any]) -> None:
    schema["properties"]["ingress"]["properties"]["port"]["maximum"] = 99999


def _break_type(schema: dict[str, Any]) -> None:
    schema["properties"]["active"]["type"] = "string"


def _break_owner_items(schema: dict[str, Any]) -> None:
    del schema["properties"]["owners"]["items"]["properties"]["namespace"]


@pytest.mark.parametrize(
    "breakage",
    [
        _break_add_crd_field, _break_add_nested_crd_field, _break_required, _break_nested_required,
        _break_default, _break_object_default, _break_enum, _break_nested_enum, _break_pattern,
        _break_max_length, _break_bound, _break_type, _break_owner_items,
    ],
)
def test_walker_notices_a_broken_crd(breakage: Any) -> None:
    schema = _spec_schema_copy(naming.TENANT)
    assert schema_mismatches(schema, models.TenantSpec) == []
    breakage(schema)
    assert schema_mismatches(schema, models.TenantSpec) != []


def test_walker_notices_a_field_added_to_the_model_only() -> None:
    schema = _spec_schema_copy(naming.RESELLER)
    broken = create_model(
        "ResellerSpecWithPhone", __base__=models.ResellerSpec, phone=(models.DisplayName | None, None)
    )
    assert [m for m in schema_mismatches(schema, broken) if "phone" in m]


def test_walker_notices_a_nested_model_change() -> None:
    schema = _spec_schema_copy(naming.RESELLER)
    region_with_weight = create_model(
        "ResellerRegionWithWeight", __base__=models.ResellerRegion, weight=(models.Count, 1)
    )
    broken = create_model(
        "ResellerSpecBroken", __base__=models.ResellerSpec, regions=(tuple[region_with_weight, ...], ())
    )
    assert [m for m in schema_mismatches(schema, broken) if "spec.regions[].weight" in m]


def test_walker_notices_a_changed_model_default() -> None:
    schema = _spec_schema_copy(naming.PLAN)
    broken = create_model("PlanSpecBroken", __base__=models.PlanSpec, custom_domains=(models.Count, 1))
    assert [m for m in schema_mismatches(schema, broken) if "customDomains" in m]


def test_walker_notices_a_quantity_that_lost_int_or_string() -> None:
    schema = _spec_schema_copy(naming.PLAN)
    schema["properties"]["quota"]["properties"]["cpu"] = {"type": "string", "description": "x"}
    assert [m for m in schema_mismatches(schema, models.PlanSpec) if "spec.quota.cpu" in m]


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
