"""Typed models of the four custom resources' specs (DESIGN.md §2).

Invalid input is stopped at the edge twice: first by the CRD schemas (the apiserver refuses the
object), then here, when the operator reads a spec. The two say the same thing because the CRDs are
generated from this module (`tenantry.crdgen`, `make manifests`): every constraint is written once
as a small value object (`Text`, `QuantityField`, `MoneyField`, integer bounds) that both validates
and can be read back, and every field's docstring is its description in `kubectl explain`.

Cross-field rules live at the bottom as pure functions that return a list of `Problem`s:
`region_problems`, `reseller_problems`, `plan_problems`, `tenant_problems`, or `spec_problems` for
any of them. Most are also stated in CEL (`cel_rules` of a model) for the CRDs of clusters >= 1.25;
the Plan's "default request within the quota" is not, because comparing quantities needs the CEL
quantity library of Kubernetes >= 1.29.

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
from typing import Annotated, Any, ClassVar, Literal, NamedTuple, TypeAlias, overload

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


# Lists that carry a CEL rule per item, or compare items with each other, are bounded: the apiserver
# (>= 1.25) estimates a rule's cost from the largest list the schema allows and refuses a CRD whose
# rules could cost too much.
MAX_LIST_ITEMS = 100


class CelRule(NamedTuple):
    """An `x-kubernetes-validations` rule (CEL over `self`, the object the model describes) of a model.

    Models list theirs in `cel_rules`; each repeats a check of a `*_problems` function below, so that
    clusters >= 1.25 refuse at `kubectl apply` what the operator would report. tenantry.crdgen writes
    them into the CRDs; tests/unit/test_cel_rules.py proves each gives the verdict the Python check gives.
    """

    rule: str
    message: str


def list_map(*keys: str) -> Any:
    """A list whose items are told apart (and merged by server-side apply) by `keys`; the CRD says so."""
    return Field(json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)})


class SpecModel(BaseModel):
    """Base of every spec model: camelCase aliases, ignore unknown fields, immutable."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True,
                              use_attribute_docstrings=True)


# --------------------------------------------------------------------------------------------------
# Shared pieces.


class Quota(SpecModel):
    """The four resources a quota speaks of: Region capacity, Reseller allotment, Plan quota."""

    cpu: Quantity
    """CPU, in cores (a Kubernetes quantity: "2", "500m"). Maps to requests.cpu."""
    memory: Quantity
    """Memory, in bytes (a Kubernetes quantity: 4Gi, 512Mi). Maps to requests.memory."""
    storage: Quantity
    """Persistent storage, in bytes (a Kubernetes quantity: 20Gi, 1Ti). Maps to requests.storage."""
    pods: Quantity
    """Number of pods (an integer, or a quantity string such as "20"). Maps to pods."""

    def as_decimals(self) -> dict[str, Decimal]:
        """Base units: cores, bytes, bytes, a count — keyed by naming.QUOTA_RESOURCES."""
        return {resource: parse_quantity(getattr(self, resource)) for resource in naming.QUOTA_RESOURCES}


class Subject(SpecModel):
    """An RBAC subject.

    Who gets access: reseller admins, tenant owners.
    """

    cel_rules: ClassVar[tuple[CelRule, ...]] = (  # subject_problems
        CelRule("self.kind != 'ServiceAccount' || has(self.namespace)", "a ServiceAccount needs its namespace"),
        CelRule("self.kind == 'ServiceAccount' || !has(self.namespace)",
                "only a ServiceAccount has a namespace; remove it or use kind ServiceAccount"),
    )

    kind: SubjectKind
    """User, Group or ServiceAccount."""
    name: SubjectName
    """Name of the user, group or service account, as your authenticator reports it. Never a Kubernetes system user
    or group (system:authenticated, system:anonymous, ...)."""
    namespace: NamespaceName | None = None
    """Namespace of a ServiceAccount (required for ServiceAccount, not allowed otherwise)."""


class IssuerRef(SpecModel):
    """A cert-manager issuer."""

    kind: IssuerKind
    """Issuer (in the same namespace) or ClusterIssuer."""
    name: SubdomainName
    """Name of the Issuer or ClusterIssuer."""


class TLSConfig(SpecModel):
    """Where a host's certificate comes from."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (  # tls_problems
        CelRule("!has(self.mode) || self.mode != 'Secret' || has(self.secretName)",
                "mode Secret needs secretName: the Secret with the certificate"),
        CelRule("!has(self.mode) || self.mode != 'Issuer' || has(self.issuerRef)",
                "mode Issuer needs issuerRef: {kind: Issuer|ClusterIssuer, name: ...}"),
    )

    mode: TLSMode = "SelfSigned"
    """SelfSigned: the operator generates a certificate. Secret: use the certificate in the Secret named by
    secretName (in the reseller's control namespace reseller-<name> for a Reseller's region, in the tenant namespace
    <reseller>--<tenant> for a Tenant's domain). Issuer: request one from cert-manager via issuerRef."""
    secret_name: SubdomainName | None = None
    """Name of a kubernetes.io/tls Secret (in the reseller's control namespace for a Reseller's region, in the tenant
    namespace for a Tenant's domain); required when mode is Secret."""
    issuer_ref: IssuerRef | None = None
    """The cert-manager issuer to request the certificate from; required when mode is Issuer."""


# --------------------------------------------------------------------------------------------------
# Region


class Toleration(SpecModel):
    """A toleration, as in a Pod spec."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (  # region_problems
        CelRule("!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
                "operator Exists takes no value; remove it or use Equal"),
        CelRule("(has(self.operator) && self.operator == 'Exists') || (has(self.key) && self.key != '')",
                "operator Equal needs a key"),
        CelRule("!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
                "tolerationSeconds applies only to NoExecute"),
    )

    key: TolerationText | None = None
    """Taint key to tolerate; empty with operator Exists tolerates every taint."""
    operator: TolerationOperator = "Equal"
    """Equal (key and value must match) or Exists (any value)."""
    value: TolerationText | None = None
    """Taint value to match when operator is Equal."""
    effect: TaintEffect | None = None
    """Taint effect to tolerate; empty tolerates all effects."""
    toleration_seconds: Annotated[StrictInt, Field(json_schema_extra={"format": "int64"})] | None = None
    """How long a pod stays bound after a NoExecute taint appears; unset means forever."""


class NodePool(SpecModel):
    node_selector: Mapping[str, str] = Field(default_factory=dict)
    """Node labels a tenant pod's node must have, e.g. {pool: eu-west}."""
    tolerations: Annotated[tuple[Toleration, ...], Field(max_length=MAX_LIST_ITEMS)] = ()
    """Tolerations added to every tenant pod, for taints that keep other workloads off the pool."""


class IngressClassRef(SpecModel):
    class_name: SubdomainName | None = None
    """IngressClass of tenant Ingresses; omit to use the cluster's default class."""
    controller_namespace: NamespaceName = "ingress-nginx"
    """Namespace of the ingress controller pods; tenant NetworkPolicies admit traffic from it."""


SecretKey = Annotated[str, Text("a Secret data key", "value", r"^[-._a-zA-Z0-9]+$", 253)]


class KubeconfigSecretRef(SpecModel):
    """A kubeconfig kept in a Secret of the control cluster (Cluster API's <cluster>-kubeconfig convention)."""

    namespace: NamespaceName
    """Namespace of the Secret (e.g. tenantry-system)."""
    name: SubdomainName
    """Name of the Secret."""
    key: SecretKey = "value"
    """Key of the kubeconfig in the Secret's data (Cluster API writes it under value)."""


class MemberCluster(SpecModel):
    kubeconfig_secret_ref: KubeconfigSecretRef
    """The kubeconfig the operator reaches the member cluster with: its identity needs the chart's operator
    ClusterRole there (docs/multi-cluster.md). Replacing the Secret's content rotates the credential."""


class WholesalePricing(SpecModel):
    """What the platform charges a reseller: per core-hour, GiB-hour of memory, GiB-hour of storage."""

    currency: Currency
    """ISO 4217 currency code of the prices, e.g. USD."""
    cpu: Money
    """Price per core-hour, as a decimal string, e.g. "0.020"."""
    memory: Money
    """Price per GiB-hour of memory, as a decimal string, e.g. "0.0025"."""
    storage: Money
    """Price per GiB-hour of storage, as a decimal string, e.g. "0.00015"."""


class RegionGuardrails(SpecModel):
    """What tenants of the region may ask of its shared nodes, where the platform must choose.

    The fixed rules (no host network, host paths, privileged containers, external IPs, ExternalName
    or NodePort/LoadBalancer Services) are not settings: see `tenantry.guardrails`.
    """

    # None by default: a priority class lets a tenant's pods preempt other tenants' pods.
    allowed_priority_classes: tuple[PriorityClassName, ...] = ()
    """PriorityClasses tenant pods may name (priorityClassName). None by default, since a priority class lets a
    tenant's pods preempt other tenants' pods; a ResourceQuota refuses every other class. List the cluster's
    globalDefault PriorityClass here if it has one."""
    # Empty: images from any registry. Otherwise each image must come from one of these prefixes.
    allowed_registries: tuple[RegistryPrefix, ...] = ()
    """Registries tenant images must come from, as prefixes: a host (ghcr.io, registry.example:5000) optionally with
    a path (docker.io/library). Empty: any registry. Images are compared in full form (nginx is
    docker.io/library/nginx)."""
    # Empty: any class. Otherwise the classes tenants may claim storage of; Plans may narrow it.
    storage_classes: tuple[StorageClassName, ...] = ()
    """StorageClasses tenants of this region may claim storage of; a Plan's storageClasses narrows it. Empty
    (default) any class. Each listed class a tenant's plan does not sell gets a zero quota."""


class RegionSpec(SpecModel):
    display_name: DisplayName | None = None
    """Human-readable name of the region, shown in panels and statements."""
    node_pool: NodePool | None = None
    """The nodes this region's tenants run on. The operator writes them onto each tenant namespace as the
    scheduler.alpha.kubernetes.io/node-selector and defaultTolerations annotations (the PodNodeSelector and
    PodTolerationRestriction admission plugins enforce them). Omit to let tenants run on any node."""
    ingress: IngressClassRef = Field(default_factory=IngressClassRef)
    """The ingress controller serving this region's tenants."""
    guardrails: RegionGuardrails = Field(default_factory=RegionGuardrails)
    """What tenants of this region may ask of its shared nodes, where the platform must choose. Fixed rules apply
    besides, whatever is set here: no host network, PID or IPC, no hostPath volumes, no privileged containers or
    capabilities beyond the baseline set, no hostPort, no external IPs, no ExternalName, NodePort or LoadBalancer
    Services."""
    domain_verification: DomainVerification = "DNS"
    """DNS: a tenant's custom domain is routed only after a TXT record proves ownership (the token is in the
    Tenant's status.domains). None: custom domains are routed at once."""
    capacity: Quota
    """Sellable capacity of the region. Reseller allotments may exceed it (overcommit); the Region then reports
    Overcommitted=True."""
    pricing: WholesalePricing
    """Wholesale prices charged to resellers for what their tenants' quotas reserve."""
    cluster: MemberCluster | None = None
    """The region is a cluster of its own (a member cluster): each tenant's namespace and everything in it are
    made there. Omit for a node pool of the cluster the operator runs in."""


# --------------------------------------------------------------------------------------------------
# Reseller


class Branding(SpecModel):
    display_name: DisplayName | None = None
    """Human-readable name of the reseller's brand, shown in panels and statements."""
    logo_url: Url | None = Field(default=None, alias="logoURL")
    """URL of the logo."""
    favicon_url: Url | None = Field(default=None, alias="faviconURL")
    """URL of the favicon."""
    primary_color: Colour | None = None
    """Primary brand colour, #rrggbb."""
    login_background_url: Url | None = Field(default=None, alias="loginBackgroundURL")
    """URL of the login page background image."""
    support_email: Email | None = None
    """Where tenants ask for help."""


class LicensePolicy(SpecModel):
    """What the reseller may do with licences on its own (LicenseOrders)."""

    # None: the operator's default (settings.licenseOrders.selfServiceLimit). Ge itself rather than
    # Field(ge=...): a bound inside an Optional must stay visible to the CRD sync test.
    self_service_limit: Annotated[StrictInt, annotated_types.Ge(0)] | None = None
    """Licences the reseller may buy per calendar month (UTC) with LicenseOrders; default from the operator's
    configuration (licenseOrders.selfServiceLimit)."""


class ResellerRegion(SpecModel):
    """The reseller's presence in one region."""

    name: RegionName
    """Name of a Region."""
    domain: ResellerDomain
    """The reseller's domain in this region: tenants get <tenant>.<domain>. Point a wildcard DNS record *.<domain>
    at the region's ingress."""
    tls: TLSConfig = Field(default_factory=TLSConfig)
    """Where the certificate for *.<domain> comes from. Defaults to a self-signed certificate, which browsers warn
    about: fine for testing, use Secret or Issuer in production."""
    allotment: Quota
    """Wholesale capacity bought in this region: the sum of the plan quotas of the reseller's tenants here may not
    exceed it."""


class ResellerSpec(SpecModel):
    cel_rules: ClassVar[tuple[CelRule, ...]] = (  # reseller_problems (names are told apart by the list map)
        CelRule("!has(self.regions) || self.regions.all(a, self.regions.exists_one(b, b.domain == a.domain))",
                "each region needs its own domain; two regions of the reseller use the same one"),
    )

    company_name: CompanyName
    """Legal or trading name of the reseller."""
    email: Email
    """Contact and billing e-mail. Unique on the platform across resellers and tenants."""
    active: StrictBool = True
    """false stops new tenants from being admitted; existing tenants keep running."""
    licenses: Count = 0
    """How many tenants the reseller may have: each admitted tenant takes one licence. Lowering it never evicts
    tenants; over-use is reported in status."""
    license_policy: LicensePolicy | None = None
    """What the reseller may do with licences by itself (LicenseOrders)."""
    admins: Annotated[tuple[Subject, ...], Field(max_length=MAX_LIST_ITEMS)] = ()
    """Who administers this reseller: bound to ClusterRole tenantry-reseller in the reseller's control namespace
    reseller-<name>."""
    platform_domain: Hostname | None = None
    """The reseller's own panel domain, e.g. panel.acme.example."""
    branding: Branding | None = None
    """The reseller's white label, published to its tenants as ConfigMap tenantry-branding."""
    regions: Annotated[tuple[ResellerRegion, ...], list_map("name"), Field(max_length=MAX_LIST_ITEMS)] = ()
    """The regions the reseller sells in, each with its own domain and capacity allotment."""

    def region(self, name: str) -> ResellerRegion | None:
        """The reseller's entry for a region, or None when it does not sell there."""
        return next((region for region in self.regions if region.name == name), None)


# --------------------------------------------------------------------------------------------------
# Plan


class ContainerDefaults(SpecModel):
    """Default requests for containers that state none (the LimitRange of a tenant namespace)."""

    cpu: Quantity | None = None
    """Default CPU request per container, e.g. 100m."""
    memory: Quantity | None = None
    """Default memory request per container, e.g. 128Mi."""


class RetailPricing(SpecModel):
    """What a tenant pays its reseller: a monthly fee plus optional usage prices (per hour)."""

    currency: Currency
    """ISO 4217 currency code of the prices, e.g. EUR."""
    monthly: Money
    """Base price per tenant-month, as a decimal string, e.g. "19.00"."""
    cpu: Money = Decimal("0")
    """Price per core-hour of CPU quota, as a decimal string."""
    memory: Money = Decimal("0")
    """Price per GiB-hour of memory quota, as a decimal string."""
    storage: Money = Decimal("0")
    """Price per GiB-hour of storage quota, as a decimal string."""


class PlanSpec(SpecModel):
    display_name: DisplayName | None = None
    """Human-readable name of the plan, shown in panels and statements."""
    quota: Quota
    """What a tenant on this plan may reserve; becomes the ResourceQuota of its namespace."""
    defaults: ContainerDefaults | None = None
    """Default requests for containers that state none (LimitRange of the tenant namespace)."""
    custom_domains: Count = 0
    """How many custom domains (spec.domains) a tenant on this plan may have."""
    # Empty: every class the Region allows. Otherwise only these (and those the Region allows).
    storage_classes: tuple[StorageClassName, ...] = ()
    """StorageClasses this plan sells. Empty (default) every class the tenant's Region allows; otherwise only these
    (among those the Region allows). PersistentVolumeClaims of other classes are refused."""
    pricing: RetailPricing
    """Retail prices the reseller charges its tenants."""


# --------------------------------------------------------------------------------------------------
# Tenant


class TenantIngress(SpecModel):
    service: ServiceName = "web"
    """Name of the Service."""
    port: Port = 80
    """Port of the Service."""


class TenantDomain(SpecModel):
    """A custom domain."""

    host: Hostname
    """The hostname, e.g. www.bakery.example (lowercase, no wildcard)."""
    tls: TLSConfig = Field(default_factory=TLSConfig)
    """Where the certificate for this host comes from. Defaults to a self-signed certificate, which browsers warn
    about: fine for testing, use Secret or Issuer in production."""


class TenantSpec(SpecModel):
    display_name: DisplayName | None = None
    """Human-readable name of the tenant, shown in panels and statements."""
    email: Email
    """The end customer's e-mail. Unique on the platform across resellers and tenants."""
    region: RegionName
    """The Region the tenant runs in; must be one of the reseller's spec.regions."""
    plan: PlanName
    """The Plan, in the same namespace, that sets the tenant's quota and prices."""
    active: StrictBool = True
    """false suspends the tenant: workloads scaled to zero, no ingress; the licence stays taken."""
    owners: Annotated[tuple[Subject, ...], Field(max_length=MAX_LIST_ITEMS)] = ()
    """End-customer users given kubectl access to the tenant namespace (ClusterRole tenantry-tenant-owner)."""
    ingress: TenantIngress = Field(default_factory=TenantIngress)
    """The Service in the tenant namespace that the tenant's hosts route to."""
    domains: Annotated[tuple[TenantDomain, ...], list_map("host"), Field(max_length=MAX_LIST_ITEMS)] = ()
    """Custom domains, in addition to <tenant>.<reseller domain>. At most the plan's customDomains; with
    domainVerification DNS each is routed only after its TXT record is in place."""
    deletion_policy: DeletionPolicy = "Delete"
    """What happens to the tenant namespace when the Tenant is deleted. Delete: it is deleted with everything in it.
    Retain: it is kept, with tenantry's labels and objects removed."""


# --------------------------------------------------------------------------------------------------
# LicenseOrder

# An order larger than this is a typo, not a purchase (the CRD says the same).
MAX_ORDER_QUANTITY = 100_000


class LicenseOrderSpec(SpecModel):
    """Licences a reseller buys for itself; decided once, never edited (tenantry.licensing)."""

    quantity: Annotated[StrictInt, Field(ge=1, le=MAX_ORDER_QUANTITY)]
    """How many licences to buy (1 or more). Every licence costs the unit price of the volume tier this quantity
    falls in."""


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
