"""The CustomResourceDefinitions, generated from the pydantic models (the one source of the API).

`tenantry.models` (specs) and `tenantry.statuses` (status) say what each field is, what it allows and
what it means (attribute docstrings); this module adds what only a CRD has (names, scope, printer
columns) and turns both into apiextensions.k8s.io/v1 structural schemas. `hack/render-crds` (run by
`make manifests`) writes them:

- `charts/tenantry/crds/` (and so `manifests/install.yaml`): with the cross-field rules of the models
  as `x-kubernetes-validations` (CEL), so that Kubernetes >= 1.25 refuses bad input at `kubectl apply`;
- `crds/`: the same without CEL, for Kubernetes 1.20 to 1.24 and the local v1.20 control plane, whose
  apiserver refuses the unknown field on server-side apply and whose kubectl refuses it on validation.

The walker reads type annotations, not pydantic's JSON schema: the CRD needs what JSON schema has no
word for (int-or-string quantities, list types, CEL), and must have nothing the apiserver refuses
($ref, anyOf with null, titles). Each Python type maps to one schema shape:

    str + Text          string with pattern, minLength, maxLength
    Literal[...]        string with enum
    Quantity            int-or-string with the quantity pattern, minimum 0
    Money               string with the money pattern
    StrictInt           integer (format int32 unless the field says otherwise), minimum/maximum
    StrictBool          boolean
    tuple[X, ...]       array of X, list type atomic unless the field says map (maxItems from max_length)
    Mapping[str, str]   object with string additionalProperties
    a model             object with its properties, required fields, defaults and CEL rules
    X | None            X, not required
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import annotated_types
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from tenantry import models, naming, statuses
from tenantry.quantity import QUANTITY_PATTERN

Schema = dict[str, Any]


# ---------------------------------------------------------------------------------------------- kinds


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    json_path: str
    description: str | None = None

    def render(self) -> Schema:
        column = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        return column | ({"description": self.description} if self.description else {})


READY = Column("Ready", "string", '.status.conditions[?(@.type=="Ready")].status', "The Ready condition.")
AGE = Column("Age", "date", ".metadata.creationTimestamp")


@dataclass(frozen=True)
class Kind:
    """What a CRD says beyond the schema of spec and status."""

    kind: str
    scope: str
    short_name: str
    description: str  # of the whole object (kubectl explain <kind>)
    spec_description: str
    columns: tuple[Column, ...]
    note: str = ""  # a line for the file's header

    @property
    def plural(self) -> str:
        return naming.PLURALS[self.kind]

    @property
    def file_name(self) -> str:
        return f"{naming.GROUP}_{self.plural}.yaml"


KINDS: tuple[Kind, ...] = (
    Kind(
        naming.REGION, "Cluster", "rgn",
        "A Region is a shared node pool that the platform sells wholesale to resellers. Cluster-scoped; managed by "
        "platform admins.",
        "A shared node pool the platform sells in: where tenants run, how much can be sold, at what wholesale price.",
        (Column("CPU-Allocated", "string", ".status.allocated.cpu", "CPU allotted to resellers."),
         Column("CPU-Capacity", "string", ".spec.capacity.cpu", "Sellable CPU."),
         Column("Resellers", "integer", ".status.resellers"), Column("Tenants", "integer", ".status.tenants"),
         READY, AGE),
    ),
    Kind(
        naming.RESELLER, "Cluster", "rsl",
        "A Reseller is a partner who sells the platform's capacity under its own brand. Cluster-scoped; managed by "
        "platform admins. Its Plans and Tenants live in its control namespace reseller-<name>.",
        "A reseller's brand, domains, licence count and wholesale allotments.",
        (Column("Company", "string", ".spec.companyName"),
         Column("Used", "integer", ".status.licenses.used", "Licences taken by admitted tenants."),
         Column("Total", "integer", ".status.licenses.total",
                "Licences the reseller has (spec.licenses + licences bought with LicenseOrders)."),
         Column("Tenants", "integer", ".status.tenants"), Column("Active", "boolean", ".spec.active"), READY, AGE),
    ),
    Kind(
        naming.PLAN, "Namespaced", "pln",
        "A Plan is a reseller's retail offer. Lives in the reseller's control namespace reseller-<name>; the "
        "reseller edits it.",
        "A retail plan: a bundle of quota at the reseller's own prices.",
        (Column("CPU", "string", ".spec.quota.cpu"), Column("Memory", "string", ".spec.quota.memory"),
         Column("Tenants", "integer", ".status.tenants"), AGE),
    ),
    Kind(
        naming.TENANT, "Namespaced", "tnt",
        "A Tenant is an end customer of a reseller, in one region, on one plan; it takes one licence. Lives in the "
        "reseller's control namespace reseller-<name>; the operator gives it the namespace <reseller>--<tenant>.",
        "An end customer: its region, plan, access, ingress and custom domains.",
        (Column("Region", "string", ".spec.region"), Column("Plan", "string", ".spec.plan"),
         Column("Phase", "string", ".status.phase"), Column("Namespace", "string", ".status.namespace"), READY, AGE),
    ),
    Kind(
        naming.LICENSE_ORDER, "Namespaced", "lo",
        "A LicenseOrder buys licences for a reseller at volume prices. Created by the reseller's admins in its "
        "control namespace reseller-<name>; decided once by the operator (Fulfilled at once within the "
        "self-service limit, else Rejected) and never edited. A platform admin deleting a fulfilled order refunds "
        "it.",
        "What is ordered.",
        (Column("Quantity", "integer", ".spec.quantity", "Licences ordered."),
         Column("Tier", "string", ".status.price.tier", "The volume tier the quantity falls in."),
         Column("Phase", "string", ".status.phase"),
         Column("Amount", "string", ".status.price.amount", "What the order costs (one-time)."),
         Column("Currency", "string", ".status.price.currency"), AGE),
        note="An order is never edited: the reseller's role has no update or patch on it, and the operator decides "
             "it once.",
    ),
)
KIND_BY_NAME = {kind.kind: kind for kind in KINDS}


# ---------------------------------------------------------------------------------------------- the walker


def _description(text: str | None) -> str | None:
    """One paragraph for kubectl explain: the first of a docstring, on one line."""
    if not text:
        return None
    first = inspect.cleandoc(text).split("\n\n")[0]
    return " ".join(first.split())


def _unwrap(annotation: Any) -> tuple[Any, list[Any], bool]:
    """(the bare type, Annotated metadata collected on the way, whether None is allowed)."""
    metadata: list[Any] = []
    optional = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation, *extra = typing.get_args(annotation)
            metadata.extend(extra)
        elif origin in (typing.Union, types.UnionType):
            args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(args) != 1:
                raise TypeError(f"a CRD has no unions other than X | None: {annotation}")
            optional = True
            annotation = args[0]
        else:
            return annotation, metadata, optional


def _flatten(metadata: list[Any]) -> tuple[list[Any], Schema, str | None]:
    """Constraint objects (FieldInfo opened up), json_schema_extra merged, and a description if one was given."""
    flat: list[Any] = []
    extra: Schema = {}
    description = None
    for item in metadata:
        if isinstance(item, FieldInfo):
            flat.extend(item.metadata)
            if isinstance(item.json_schema_extra, dict):
                extra.update(item.json_schema_extra)
            description = item.description or description
        else:
            flat.append(item)
    return flat, extra, description


def _bound(metadata: list[Any], kind: type, attribute: str) -> Any:
    return next((getattr(item, attribute) for item in metadata if isinstance(item, kind)), None)


def _json_default(field: FieldInfo) -> Any:
    """The field's default as the CRD states it, or None for none (absent optional fields, empty lists)."""
    if field.is_required():
        return None
    value = field.get_default(call_default_factory=True)
    if value is None or value == () or value == {}:
        return None
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, Decimal):
        return str(value)
    return value


def type_schema(annotation: Any, metadata: list[Any], *, cel: bool) -> Schema:
    """The schema of a value of type `annotation` with constraints `metadata` (no description)."""
    annotation, more, _ = _unwrap(annotation)
    flat, extra, _ = _flatten([*metadata, *more])
    schema: Schema
    texts = [item for item in flat if isinstance(item, models.Text)]
    if any(isinstance(item, models.QuantityField) for item in flat):
        schema = {"anyOf": [{"type": "integer"}, {"type": "string"}], "minimum": 0, "pattern": QUANTITY_PATTERN,
                  "x-kubernetes-int-or-string": True}
    elif money := [item for item in flat if isinstance(item, models.MoneyField)]:
        schema = {"type": "string", "pattern": money[0].pattern}
    elif typing.get_origin(annotation) is typing.Literal:
        schema = {"type": "string", "enum": list(typing.get_args(annotation))}
    elif annotation is str:
        schema = {"type": "string"}
        if texts:
            text = texts[0]
            if text.min_length:
                schema["minLength"] = text.min_length
            if text.max_length is not None:
                schema["maxLength"] = text.max_length
            if text.pattern is not None:
                schema["pattern"] = text.pattern
    elif annotation is bool:
        schema = {"type": "boolean"}
    elif annotation is int:
        schema = {"type": "integer", "format": "int32"}
        if (ge := _bound(flat, annotated_types.Ge, "ge")) is not None:
            schema["minimum"] = ge
        if (le := _bound(flat, annotated_types.Le, "le")) is not None:
            schema["maximum"] = le
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        schema = model_schema(annotation, cel=cel)
    elif typing.get_origin(annotation) is tuple:
        item_type, ellipsis = typing.get_args(annotation)
        if ellipsis is not Ellipsis:
            raise TypeError(f"lists are tuple[X, ...], not {annotation}")
        items = type_schema(item_type, [], cel=cel)
        item_model, item_metadata, _ = _unwrap(item_type)
        item_texts = [item for item in item_metadata if isinstance(item, models.Text)]
        if isinstance(item_model, type) and issubclass(item_model, BaseModel):
            items = {"description": _description(item_model.__doc__), **items}
        elif item_texts:  # "a StorageClass name" -> "A StorageClass name."
            what = item_texts[0].what
            items = {"description": f"{what[0].upper()}{what[1:]}.", **items}
        schema = {"type": "array", "x-kubernetes-list-type": "atomic", "items": items}
        if (max_items := _bound(flat, annotated_types.MaxLen, "max_length")) is not None:
            schema["maxItems"] = max_items
    elif typing.get_origin(annotation) in (Mapping, dict, typing.Mapping):
        key_type, value_type = typing.get_args(annotation)
        if key_type is not str or value_type is not str:
            raise TypeError(f"only Mapping[str, str] maps to a CRD: {annotation}")
        schema = {"type": "object", "additionalProperties": {"type": "string"}}
    else:
        raise TypeError(f"no CRD schema for {annotation!r}; teach tenantry.crdgen.type_schema")
    if not cel:
        extra = {key: value for key, value in extra.items() if key != "x-kubernetes-validations"}
    return schema | extra


def model_schema(model: type[BaseModel], *, cel: bool) -> Schema:
    """The object schema of a model: properties by alias, required fields, defaults, CEL rules."""
    properties: Schema = {}
    required: list[str] = []
    for name, field in model.model_fields.items():
        alias = field.alias or name
        annotation, _, optional = _unwrap(field.annotation)
        node = type_schema(field.annotation, list(field.metadata), cel=cel)
        if isinstance(field.json_schema_extra, dict):  # Field(json_schema_extra=...) of the field itself
            node |= field.json_schema_extra
        description = field.description or (
            _description(annotation.__doc__) if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None)
        if field.is_required() and not optional:
            required.append(alias)
        default = _json_default(field)
        properties[alias] = ({"description": _description(description)} if description else {}) | node | (
            {"default": default} if default is not None else {})
    schema: Schema = {"type": "object"}
    if required:
        schema["required"] = required
    schema["properties"] = properties
    rules: tuple[models.CelRule, ...] = getattr(model, "cel_rules", ())
    if cel and rules:
        schema["x-kubernetes-validations"] = [{"rule": r.rule, "message": r.message} for r in rules]
    return schema


def root_schema(kind: Kind, *, cel: bool) -> Schema:
    spec = {"description": kind.spec_description, **model_schema(models.SPEC_MODELS[kind.kind], cel=cel)}
    status_model = statuses.STATUS_MODELS[kind.kind]
    status = {"description": _description(status_model.__doc__), **model_schema(status_model, cel=cel)}
    return {
        "description": kind.description,
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"description": "APIVersion defines the versioned schema of this representation of an "
                                          "object.", "type": "string"},
            "kind": {"description": "Kind is a string value representing the REST resource this object represents.",
                     "type": "string"},
            "metadata": {"type": "object", "properties": {"name": {
                "type": "string", "maxLength": naming.MAX_NAME_LENGTH[kind.kind], "pattern": naming.NAME_PATTERN}}},
            "spec": spec,
            "status": status,
        },
    }


def crd(kind: Kind, *, cel: bool) -> Schema:
    """The CustomResourceDefinition of one kind, as a dict."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{kind.plural}.{naming.GROUP}",
                     "labels": {"app.kubernetes.io/name": "tenantry", "app.kubernetes.io/part-of": "tenantry"}},
        "spec": {
            "group": naming.GROUP,
            "scope": kind.scope,
            "names": {"kind": kind.kind, "listKind": f"{kind.kind}List", "plural": kind.plural,
                      "singular": kind.kind.lower(), "shortNames": [kind.short_name], "categories": ["tenantry"]},
            "versions": [{
                "name": naming.VERSION, "served": True, "storage": True, "subresources": {"status": {}},
                "additionalPrinterColumns": [column.render() for column in kind.columns],
                "schema": {"openAPIV3Schema": root_schema(kind, cel=cel)},
            }],
        },
    }


# ---------------------------------------------------------------------------------------------- the files

HEADER = """\
# CustomResourceDefinition of {kind} (DESIGN.md §2), generated from operator/tenantry/models.py and
# statuses.py by hack/render-crds (`make manifests`). Do not edit: change the models and regenerate.
# {variant}
"""
WITH_CEL = ("With the models' cross-field rules as x-kubernetes-validations (CEL): Kubernetes >= 1.25 refuses\n"
            "# bad input at kubectl apply. For 1.20 to 1.24 use crds/ (the same without CEL).")
WITHOUT_CEL = ("Without x-kubernetes-validations (CEL), for Kubernetes 1.20 to 1.24 and the local control plane,\n"
               "# whose apiserver refuses the field; the operator reports the cross-field rules as conditions.")


class _Dumper(yaml.SafeDumper):
    """Lists indented under their key, as kubectl prints them."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def render(kind: Kind, *, cel: bool) -> str:
    """The text of one CRD file."""
    header = HEADER.format(kind=kind.kind, variant=WITH_CEL if cel else WITHOUT_CEL)
    if kind.note:
        header += f"# {kind.note}\n"
    return header + "---\n" + yaml.dump(crd(kind, cel=cel), Dumper=_Dumper, sort_keys=False, width=120,
                                       allow_unicode=True)


def rendered_files(*, cel: bool) -> dict[str, str]:
    """{file name: text} of every CRD."""
    return {kind.file_name: render(kind, cel=cel) for kind in KINDS}
