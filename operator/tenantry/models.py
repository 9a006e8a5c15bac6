"""Typed models of the four custom resources' specs (DESIGN.md §2).

Invalid input is stopped at the edge twice: first by the CRD schemas in `crds/` (the apiserver
refuses the object), then here, when the operator reads a spec. The two must say the same thing,
so every constraint the CRD states is written once in this module as a small value object
(`Text`, `QuantityField`, `MoneyField`, integer bounds) that both validates and can be read back;
`tests/unit/test_crd_model_sync.py` walks each CRD schema next to its model and fails on any
difference in fields, required sets, defaults, enums, patterns or bounds.

Rules the CRD cannot express (it has no CEL on the v1.20 apiserver) live at the bottom as pure
functions that return a list of `Problem`s: `region_problems`, `reseller_problems`, `plan_problems`,
`tenant_problems`, or `spec_problems` for any of them.

Conventions: field names are snake_case with camelCase aliases (either is accepted on input);
quantities stay strings (as written, validated with `tenantry.quantity`) and are converted to
`Decimal` on demand (`Quota.as_decimals()`); money is `Decimal` parsed from a string, never a
float; unknown fields are ignored so an older operator can read a newer object; models are frozen.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal, NamedTuple, TypeAlias, overload

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, StrictBool, StrictInt, ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import core_schema

from tenantry import naming
from tenantry.quantity import QUANTITY_PATTERN, QuantityError, parse_quantity

# --------------------------------------------------------------------------------------------------
# Patterns. The CRDs carry the same strings; the sync test compares them.

NAME_PATTERN = naming.NAME_PATTERN
# A DNS hostname of at least two labels, lowercase, no wildcard, each label at most 63 characters.
HOSTNAME_PATTERN = r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
# A DNS-1123 subdomain: names of Secrets, Issuers, IngressClasses.
SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A DNS-1123 label: namespace names.
LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A DNS-1035 label: Service names.
SERVICE_NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
EMAIL_PATTERN = r"^[A-Za-z0-9._%+-]+@([A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}$"
URL_PATTERN = r"^https?://[^\s/?#]+[^\s]*$"
COLOUR_PATTERN = r"^#[0-9a-fA-F]{6}$"
MONEY_PATTERN = r"^[0-9]+(\.[0-9]+)?$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
# A user, group or service account name not starting with "system:" (Kubernetes' own users and groups,
# e.g. system:authenticated). Spelt out prefix by prefix: the apiserver's regular expressions (RE2)
# have no lookahead. The operator checks the same rule, and more, in tenantry.subjects.
SUBJECT_NAME_PATTERN = (r"^([^s]|s$|s[^y]|sy$|sy[^s]|sys$|sys[^t]|syst$|syst[^e]|syste$|syste[^m]|system$"
                        r"|system[^:])")
# An image registry host (optional :port) and optional repository path, as images name them.
REGISTRY_PATTERN = (r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(:[0-9]{1,5})?"
                    r"(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$")

# A tenant's default host is <tenant>.<reseller region domain> and must stay a valid hostname (253).
MAX_HOSTNAME_LENGTH = 253
MAX_RESELLER_DOMAIN_LENGTH = MAX_HOSTNAME_LENGTH - naming.MAX_NAME_LENGTH[naming.TENANT] - 1
MAX_PORT = 65535


# --------------------------------------------------------------------------------------------------
# Constraint objects: each validates a value and records what the CRD schema says about it.


@dataclass(frozen=True)
class Text:
    """A string constraint: pattern, length bounds, and how to explain a mismatch to a person."""

    what: str  # "a Region name", used in "'x' is not a Region name: <rule> (example: ...)"
    example: str
    pattern: str | None = None
    max_length: int | None = None
    min_length: int = 1
    rule: str | None = None  # what the pattern allows, in words
    # The CRD states the pattern, but the operator reads a value that breaks it: an object stored
    # before the CRD had the rule must reach the decision that explains it (e.g. InvalidOwner, and
    # the subject left unbound), not an unreadable spec that leaves what was made untouched.
    lenient: bool = False

    def __call__(self, value: str) -> str:
        if len(value) < self.min_length:
            raise ValueError(f"must not be empty; give {self.what} (example: {self.example})")
        if self.max_length is not None and len(value) > self.max_length:
            raise ValueError(
                f"{value!r} is {len(value)} characters long; {self.what} has at most {self.max_length}"
            )
        if self.pattern is not None and not self.lenient and not re.match(self.pattern, value):
            rule = f": {self.rule}" if self.rule else ""
            raise ValueError(f"{value!r} is not {self.what}{rule} (example: {self.example})")
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self, core_schema.str_schema(strict=True))


@dataclass(frozen=True)
class QuantityField:
    """A Kubernetes quantity: an integer or a quantity string in YAML, kept as a string here.

    The CRD types it the way controller-gen types resource.Quantity (int-or-string with a pattern).
    """

    pattern: str = QUANTITY_PATTERN

    def __call__(self, value: object) -> str:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(
                f"{value!r} is not a Kubernetes quantity; write an integer or a string such as 500m, 2, 4Gi"
            )
        if isinstance(value, int):
            if value < 0:
                raise ValueError(f"{value} is negative; a quantity must be 0 or more")
            return str(value)
        if value != value.strip() or not re.match(self.pattern, value):
            raise ValueError(f"{value!r} is not a Kubernetes quantity (examples: 500m, 2, 4Gi)")
        try:
            parse_quantity(value)
        except QuantityError as exc:  # pragma: no cover - the pattern admits only parseable strings
            raise ValueError(str(exc)) from exc
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            self, serialization=core_schema.to_string_ser_schema()
        )


@dataclass(frozen=True)
class MoneyField:
    """A money amount: a decimal string in YAML, a `Decimal` here. Floats are refused, not rounded."""

    pattern: str = MONEY_PATTERN

    def __call__(self, value: object) -> Decimal:
        if isinstance(value, Decimal):
            return value
        if isinstance(value, bool | int | float):
            raise ValueError(
                f"{value!r} is a number; write money as a quoted decimal string such as \"0.05\" "
                "so that no precision is lost"
            )
        if not isinstance(value, str) or not re.match(self.pattern, value):
            raise ValueError(f"{value!r} is not an amount of money (examples: \"19.00\", \"0.0025\")")
        return Decimal(value)

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            self, serialization=core_schema.to_string_ser_schema()
        )


NAME_RULE = "use lowercase letters and digits, with single dashes between them"
RegionName = Annotated[
    str, Text("a Region name", "eu-west", NAME_PATTERN, naming.MAX_NAME_LENGTH[naming.REGION], rule=NAME_RULE)
]
PlanName = Annotated[
    str, Text("a Plan name", "starter", NAME_PATTERN, naming.MAX_NAME_LENGTH[naming.PLAN], rule=NAME_RULE)
]
Hostname = Annotated[
    str,
    Text(
        "a DNS hostname", "www.bakery.example", HOSTNAME_PATTERN, MAX_HOSTNAME_LENGTH,
        rule="lowercase, two or more dot-separated labels, no wildcard",
    ),
]
ResellerDomain = Annotated[
    str,
    Text(
        "a DNS hostname", "acme-cloud.example", HOSTNAME_PATTERN, MAX_RESELLER_DOMAIN_LENGTH,
        rule="lowercase, two or more dot-separated labels, no wildcard",
    ),
]
SubdomainName = Annotated[str, Text("a DNS-1123 subdomain name", "www-tls", SUBDOMAIN_PATTERN, 253)]
NamespaceName = Annotated[str, Text("a namespace name (DNS-1123 label)", "ingress-nginx", LABEL_PATTERN, 63)]
ServiceName = Annotated[str, Text("a Service name (DNS-1035 label)", "web", SERVICE_NAME_PATTERN, 63)]
Email = Annotated[str, Text("an e-mail address", "billing@acme.example", EMAIL_PATTERN, 254)]
Url = Annotated[str, Text("an http(s) URL", "https://acme.example/logo.svg", URL_PATTERN, 2048)]
Colour = Annotated[str, Text("a colour in #rrggbb form", "#0a7cff", COLOUR_PATTERN)]
Currency = Annotated[str, Text("an ISO 4217 currency code", "EUR", CURRENCY_PATTERN)]
DisplayName = Annotated[str, Text("a display name", "ACME Cloud", None, 100)]
CompanyName = Annotated[str, Text("a company name", "ACME Hosting", None, 200)]
SubjectName = Annotated[str, Text("a user, group or service account name", "alice@acme.example",
                                   SUBJECT_NAME_PATTERN, 253, rule="not starting with system:", lenient=True)]
TolerationText = Annotated[str, Text("a taint key or value", "pool", None, 316, min_length=0)]
PriorityClassName = Annotated[str, Text("a PriorityClass name", "tenant-batch", SUBDOMAIN_PATTERN, 253)]
StorageClassName = Annotated[str, Text("a StorageClass name", "standard", SUBDOMAIN_PATTERN, 253)]
RegistryPrefix = Annotated[
    str,
    Text(
        "an image registry prefix", "registry.acme.example/team", REGISTRY_PATTERN, 255,
        rule="a registry host with an optional :port, then optional /path segments; no scheme, tag or trailing /",
    ),
]

Quantity = Annotated[str, QuantityField()]
Money = Annotated[Decimal, MoneyField()]
Count = Annotated[StrictInt, Field(ge=0)]
Port = Annotated[StrictInt, Field(ge=1, le=MAX_PORT)]

TLSMode = Literal["SelfSigned", "Secret", "Issuer"]
IssuerKind = Literal["Issuer", "ClusterIssuer"]
SubjectKind = Literal["User", "Group", "ServiceAccount"]
DeletionPolicy = Literal["Delete", "Retain"]
DomainVerification = Literal["DNS", "None"]
TolerationOperator = Literal["Equal", "Exists"]
TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class SpecModel(BaseModel):
    """Base of every spec model: camelCase aliases, ignore unknown fields, immutable."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


# --------------------------------------------------------------------------------------------------
# Shared pieces.


class Quota(SpecModel):
    """The four resources a quota speaks of: Region capacity, Reseller allotment, Plan quota."""

    cpu: Quantity
    memory: Quantity
    storage: Quantity
    pods: Quantity

    def as_decimals(self) -> dict[str, Decimal]:
        """Base units: cores, bytes, bytes, a count — keyed by naming.QUOTA_RESOURCES."""
        return {resource: parse_quantity(getattr(self, resource)) for resource in naming.QUOTA_RESOURCES}


class Subject(SpecModel):
    """An RBAC subject: who gets access (reseller admins, tenant owners)."""

    kind: SubjectKind
    name: SubjectName
    namespace: NamespaceName | None = None


class IssuerRef(SpecModel):
    """A cert-manager issuer."""

    kind: IssuerKind
    name: SubdomainName


class TLSConfig(SpecModel):
    """Where a host's certificate comes from."""

    mode: TLSMode = "SelfSigned"
    secret_name: SubdomainName | None = None
    issuer_ref: IssuerRef | None = None


# --------------------------------------------------------------------------------------------------
# Region


class Toleration(SpecModel):
    key: TolerationText | None = None
    operator: TolerationOperator = "Equal"
    value: TolerationText | None = None
    effect: TaintEffect | None = None
    toleration_seconds: StrictInt | None = None


class NodePool(SpecModel):
    node_selector: Mapping[str, str] = Field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()


class IngressClassRef(SpecModel):
    class_name: SubdomainName | None = None
    controller_namespace: NamespaceName = "ingress-nginx"


class WholesalePricing(SpecModel):
    """What the platform charges a reseller: per core-hour, GiB-hour of memory, GiB-hour of storage."""

    currency: Currency
    cpu: Money
    memory: Money
    storage: Money


class RegionGuardrails(SpecModel):
    """What tenants of the region may ask of its shared nodes, where the platform must choose.

    The fixed rules (no host network, host paths, privileged containers, external IPs, ExternalName
    or NodePort/LoadBalancer Services) are not settings: see `tenantry.guardrails`.
    """

    # None by default: a priority class lets a tenant's pods preempt other tenants' pods.
    allowed_priority_classes: tuple[PriorityClassName, ...] = ()
    # Empty: images from any registry. Otherwise each image must come from one of these prefixes.
    allowed_registries: tuple[RegistryPrefix, ...] = ()
    # Empty: any class. Otherwise the classes tenants may claim storage of; Plans may narrow it.
    storage_classes: tuple[StorageClassName, ...] = ()


class RegionSpec(SpecModel):
    display_name: DisplayName | None = None
    node_pool: NodePool | None = None
    ingress: IngressClassRef = Field(default_factory=IngressClassRef)
    guardrails: RegionGuardrails = Field(default_factory=RegionGuardrails)
    domain_verification: DomainVerification = "DNS"
    capacity: Quota
    pricing: WholesalePricing


# --------------------------------------------------------------------------------------------------
# Reseller


class Branding(SpecModel):
    display_name: DisplayName | None = None
    logo_url: Url | None = Field(default=None, alias="logoURL")
    favicon_url: Url | None = Field(default=None, alias="faviconURL")
    primary_color: Colour | None = None
    login_background_url: Url | None = Field(default=None, alias="loginBackgroundURL")
    support_email: Email | None = None


class LicensePolicy(SpecModel):
    """What the reseller may do with licences on its own (LicenseOrders)."""

    # None: the operator's default (settings.licenseOrders.selfServiceLimit). Ge itself rather than
    # Field(ge=...): a bound inside an Optional must stay visible to the CRD sync test.
    self_service_limit: Annotated[StrictInt, annotated_types.Ge(0)] | None = None


class ResellerRegion(SpecModel):
    name: RegionName
    domain: ResellerDomain
    tls: TLSConfig = Field(default_factory=TLSConfig)
    allotment: Quota


class ResellerSpec(SpecModel):
    company_name: CompanyName
    email: Email
    active: StrictBool = True
    licenses: Count = 0
    license_policy: LicensePolicy | None = None
    admins: tuple[Subject, ...] = ()
    platform_domain: Hostname | None = None
    branding: Branding | None = None
    regions: tuple[ResellerRegion, ...] = ()

    def region(self, name: str) -> ResellerRegion | None:
        """The reseller's entry for a region, or None when it does not sell there."""
        return next((region for region in self.regions if region.name == name), None)


# --------------------------------------------------------------------------------------------------
# Plan


class ContainerDefaults(SpecModel):
    """Default requests for containers that state none (the LimitRange of a tenant namespace)."""

    cpu: Quantity | None = None
    memory: Quantity | None = None


class RetailPricing(SpecModel):
    """What a tenant pays its reseller: a monthly fee plus optional usage prices (per hour)."""

    currency: Currency
    monthly: Money
    cpu: Money = Decimal("0")
    memory: Money = Decimal("0")
    storage: Money = Decimal("0")


class PlanSpec(SpecModel):
    display_name: DisplayName | None = None
    quota: Quota
    defaults: ContainerDefaults | None = None
    custom_domains: Count = 0
    # Empty: every class the Region allows. Otherwise only these (and those the Region allows).
    storage_classes: tuple[StorageClassName, ...] = ()
    pricing: RetailPricing


# --------------------------------------------------------------------------------------------------
# Tenant


class TenantIngress(SpecModel):
    service: ServiceName = "web"
    port: Port = 80


class TenantDomain(SpecModel):
    host: Hostname
    tls: TLSConfig = Field(default_factory=TLSConfig)


class TenantSpec(SpecModel):
    display_name: DisplayName | None = None
    email: Email
    region: RegionName
    plan: PlanName
    active: StrictBool = True
    owners: tuple[Subject, ...] = ()
    ingress: TenantIngress = Field(default_factory=TenantIngress)
    domains: tuple[TenantDomain, ...] = ()
    deletion_policy: DeletionPolicy = "Delete"


# --------------------------------------------------------------------------------------------------
# LicenseOrder

# An order larger than this is a typo, not a purchase (the CRD says the same).
MAX_ORDER_QUANTITY = 100_000


class LicenseOrderSpec(SpecModel):
    """Licences a reseller buys for itself; decided once, never edited (tenantry.licensing)."""

    quantity: Annotated[StrictInt, Field(ge=1, le=MAX_ORDER_QUANTITY)]


AnySpec: TypeAlias = RegionSpec | ResellerSpec | PlanSpec | TenantSpec | LicenseOrderSpec

SPEC_MODELS: dict[str, type[SpecModel]] = {
    naming.REGION: RegionSpec,
    naming.RESELLER: ResellerSpec,
    naming.PLAN: PlanSpec,
    naming.TENANT: TenantSpec,
    naming.LICENSE_ORDER: LicenseOrderSpec,
}


# --------------------------------------------------------------------------------------------------
# Parsing with errors a person can act on.


class Problem(NamedTuple):
    """One thing wrong with an object: where (`spec.regions[0].tls`) and what to change."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class SpecError(ValueError):
    """An object that does not match its kind's schema.

    `field_path` and `message` describe the first problem; `problems` holds all of them.
    """

    def __init__(self, field_path: str, message: str, problems: Sequence[Problem] = ()) -> None:
        self.field_path = field_path
        self.message = message
        self.problems: tuple[Problem, ...] = tuple(problems) or (Problem(field_path, message),)
        text = f"{field_path}: {message}"
        if len(self.problems) > 1:
            text += f" (and {len(self.problems) - 1} more: " + "; ".join(map(str, self.problems[1:])) + ")"
        super().__init__(text)


_NAME_EXAMPLES = {naming.REGION: "eu-west", naming.RESELLER: "acme", naming.PLAN: "starter", naming.TENANT: "bakery",
                  naming.LICENSE_ORDER: "december"}


def _kind_of(kind: str) -> str:
    for canonical, plural in naming.PLURALS.items():
        if kind.lower() in (canonical.lower(), plural):
            return canonical
    raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(naming.PLURALS)}")


def _plain(value: Any) -> Any:
    """Deep copy into dicts and lists: kopf hands over read-only Mapping views."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _format_path(prefix: str, loc: Sequence[int | str]) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            path += f".{part}"
        else:
            path += f"[{part!r}]"
    return path


_TYPE_NAMES = {
    "string_type": "a string", "int_type": "an integer", "bool_type": "true or false",
    "model_type": "an object", "model_attributes_type": "an object", "dict_type": "a mapping",
    "tuple_type": "a list", "list_type": "a list",
}


def _describe(error: Mapping[str, Any]) -> str:
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "missing":
        return "is required but missing"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "literal_error":
        return f"{value!r} is not allowed; use {ctx.get('expected', 'one of the listed values')}"
    if kind in ("greater_than_equal", "greater_than"):
        return f"{value!r} is too small; the minimum is {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"{value!r} is too large; the maximum is {ctx.get('le', ctx.get('lt'))}"
    if kind in _TYPE_NAMES:
        return f"expected {_TYPE_NAMES[kind]}, got {value!r}"
    return str(error["msg"])


def problems_from_validation_error(exc: ValidationError, prefix: str = "spec") -> list[Problem]:
    return [Problem(_format_path(prefix, error["loc"]), _describe(error)) for error in exc.errors()]


@overload
def parse_spec(kind: Literal["Region", "regions"], body: Mapping[str, Any]) -> RegionSpec: ...
@overload
def parse_spec(kind: Literal["Reseller", "resellers"], body: Mapping[str, Any]) -> ResellerSpec: ...
@overload
def parse_spec(kind: Literal["Plan", "plans"], body: Mapping[str, Any]) -> PlanSpec: ...
@overload
def parse_spec(kind: Literal["Tenant", "tenants"], body: Mapping[str, Any]) -> TenantSpec: ...
@overload
def parse_spec(kind: Literal["LicenseOrder", "licenseorders"], body: Mapping[str, Any]) -> LicenseOrderSpec: ...
@overload
def parse_spec(kind: str, body: Mapping[str, Any]) -> AnySpec: ...


def parse_spec(kind: str, body: Mapping[str, Any]) -> AnySpec:
    """The typed spec of an object of `kind` ("Tenant" or "tenants").

    `body` is the whole object (kopf's `body`, with `spec` and `metadata`) or just its spec.
    Raises `SpecError` naming the first bad field, e.g.
    `spec.regions[0].allotment.cpu: '12x' is not a Kubernetes quantity (examples: 500m, 2, 4Gi)`.
    """
    canonical = _kind_of(kind)
    metadata = body.get("metadata")
    spec = body["spec"] if isinstance(body.get("spec"), Mapping) else body
    problems: list[Problem] = []
    if isinstance(metadata, Mapping) and isinstance(metadata.get("name"), str):
        name = metadata["name"]
        limit = naming.MAX_NAME_LENGTH[canonical]
        text = Text(f"a {canonical} name", _NAME_EXAMPLES[canonical], NAME_PATTERN, limit, rule=NAME_RULE)
        try:
            text(name)
        except ValueError as exc:
            problems.append(Problem("metadata.name", str(exc)))
    model: AnySpec | None = None
    try:
        model = SPEC_MODELS[canonical].model_validate(_plain(spec))  # type: ignore[assignment]
    except ValidationError as exc:
        problems.extend(problems_from_validation_error(exc))
    if problems or model is None:
        first = problems[0]
        raise SpecError(first.path, first.message, problems)
    return model


# --------------------------------------------------------------------------------------------------
# Cross-field rules the CRD cannot express. Pure functions: a spec in, a list of problems out.


def tls_problems(tls: TLSConfig, path: str) -> list[Problem]:
    problems = []
    if tls.mode == "Secret" and not tls.secret_name:
        problems.append(Problem(f"{path}.secretName", "mode Secret needs secretName: the Secret with the certificate"))
    if tls.mode == "Issuer" and tls.issuer_ref is None:
        problems.append(
            Problem(f"{path}.issuerRef", "mode Issuer needs issuerRef: {kind: Issuer|ClusterIssuer, name: ...}")
        )
    return problems


def subject_problems(subjects: Sequence[Subject], path: str) -> list[Problem]:
    problems = []
    for index, subject in enumerate(subjects):
        where = f"{path}[{index}]"
        if subject.kind == "ServiceAccount" and not subject.namespace:
            problems.append(Problem(f"{where}.namespace", f"ServiceAccount {subject.name!r} needs its namespace"))
        if subject.kind != "ServiceAccount" and subject.namespace:
            problems.append(
                Problem(f"{where}.namespace", f"a {subject.kind} has no namespace; remove it or use ServiceAccount")
            )
    return problems


def _duplicates(values: Sequence[str]) -> list[int]:
    """Indexes of values already seen earlier in the sequence."""
    seen: set[str] = set()
    repeated = []
    for index, value in enumerate(values):
        if value in seen:
            repeated.append(index)
        seen.add(value)
    return repeated


def region_problems(spec: RegionSpec) -> list[Problem]:
    problems = []
    tolerations = spec.node_pool.tolerations if spec.node_pool else ()
    for index, toleration in enumerate(tolerations):
        where = f"spec.nodePool.tolerations[{index}]"
        if toleration.operator == "Exists" and toleration.value:
            problems.append(Problem(f"{where}.value", "operator Exists takes no value; remove it or use Equal"))
        if toleration.operator == "Equal" and not toleration.key:
            problems.append(Problem(f"{where}.key", "operator Equal needs a key"))
        if toleration.toleration_seconds is not None and toleration.effect != "NoExecute":
            problems.append(Problem(f"{where}.tolerationSeconds", "tolerationSeconds applies only to NoExecute"))
    return problems


def reseller_problems(spec: ResellerSpec) -> list[Problem]:
    problems = subject_problems(spec.admins, "spec.admins")
    for index in _duplicates([region.name for region in spec.regions]):
        problems.append(Problem(f"spec.regions[{index}].name", f"region {spec.regions[index].name!r} is listed twice"))
    for index in _duplicates([region.domain for region in spec.regions]):
        problems.append(
            Problem(
                f"spec.regions[{index}].domain",
                f"domain {spec.regions[index].domain!r} is already used by another region; give each region its own",
            )
        )
    for index, region in enumerate(spec.regions):
        problems.extend(tls_problems(region.tls, f"spec.regions[{index}].tls"))
    return problems


def plan_problems(spec: PlanSpec) -> list[Problem]:
    problems = []
    if spec.defaults is not None:
        quota = spec.quota.as_decimals()
        for resource in ("cpu", "memory"):
            default = getattr(spec.defaults, resource)
            if default is not None and parse_quantity(default) > quota[resource]:
                problems.append(
                    Problem(
                        f"spec.defaults.{resource}",
                        f"default request {default} exceeds the plan's {resource} quota "
                        f"{getattr(spec.quota, resource)}; no container could start",
                    )
                )
    return problems


def tenant_problems(spec: TenantSpec) -> list[Problem]:
    problems = subject_problems(spec.owners, "spec.owners")
    for index in _duplicates([domain.host for domain in spec.domains]):
        problems.append(Problem(f"spec.domains[{index}].host", f"host {spec.domains[index].host!r} is listed twice"))
    for index, domain in enumerate(spec.domains):
        problems.extend(tls_problems(domain.tls, f"spec.domains[{index}].tls"))
    return problems


_PROBLEM_CHECKS: dict[type[SpecModel], Callable[[Any], list[Problem]]] = {
    RegionSpec: region_problems,
    ResellerSpec: reseller_problems,
    PlanSpec: plan_problems,
    TenantSpec: tenant_problems,
    LicenseOrderSpec: lambda spec: [],
}


def spec_problems(spec: AnySpec) -> list[Problem]:
    """Every cross-field problem of a parsed spec; empty when the spec is coherent."""
    return _PROBLEM_CHECKS[type(spec)](spec)
