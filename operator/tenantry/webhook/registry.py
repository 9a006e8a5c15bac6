"""The admission rules: which API objects the webhook checks, how, and what happens when it cannot answer.

A rule is one entry of `RULES`: an API group and its resources (plurals), the operations it checks, a
validator, and its registration (failure policy, timeout, which namespaces). Each rule becomes one webhook
of the ValidatingWebhookConfiguration `tenantry` (configuration.py) and one URL path of the server
(`/validate/<rule name>`, server.py), so a request reaches exactly one validator. A rule registered with
`mutating=True` is a webhook of the MutatingWebhookConfiguration `tenantry` instead (`/mutate/<rule name>`):
its validator allows, and may return a JSON Patch of the object (`mutate(...)`, e.g. finalizer.py).

How to add a rule
-----------------
1. Write a validator: `def check_x(request: Request, view: ClusterView) -> Verdict`. It must be pure and
   fast (the API server waits for it): read the object from `request`, the platform from `view` (the
   operator's in-memory picture, e.g. `view.tenant_for_namespace(request.namespace)` for the Tenant, its
   Region and Plan), and return `allow()`, `allow("a warning")` or
   `deny("CamelCaseReason", "what is wrong and what to do")`. No API calls (an `async` validator may
   confirm a denial with one read, see tenantry_kinds.py), no clock.
2. Register it with the `rule` decorator:

       @rule("services", group="", resources=("services",), operations=(CREATE, UPDATE),
             failure_policy=FAIL, namespaces=TENANT_NAMESPACES, exempt=Exempt.OPERATOR,
             summary="Services in tenant namespaces: no externalIPs, no ExternalName")
       def check_service(request: Request, view: ClusterView) -> Verdict: ...

   - `failure_policy`: `FAIL` for a security rule (the API server refuses the request when the webhook
     cannot be reached: the rule is the only thing enforcing it); `IGNORE` for an advisory rule (something
     else enforces it later, e.g. an asynchronous status condition).
   - `namespaces`: `TENANT_NAMESPACES` (only namespaces labelled `tenantry.dev/namespace-role: tenant`) or
     `ALL_NAMESPACES`.
   - `exempt`: who is never checked. `Exempt.OPERATOR`: only the operator itself (right for objects that
     controllers make on a tenant's behalf, e.g. Pods from a Deployment). `Exempt.PLATFORM`: also cluster
     admins (group `system:masters`), Kubernetes' own components and kube-system controllers, and the
     users/groups of the setting `webhook.exemptUsers`/`exemptGroups`.
   - `timeout_seconds` (default 5, at most 30): how long the API server waits before applying the failure
     policy. Keep it small: a slow webhook slows every matching request of the cluster.
   - `mutating=True`: the rule changes the object instead of judging it (it returns `mutate(...)`). Only
     for a change the operator would make anyway, so that a webhook failing open (failure policy `IGNORE`)
     merely leaves the operator the write (finalizer.py).
3. If the module is new, add it to `RULE_MODULES` below so that it is imported (and so registered).
4. Test it: a unit test of the validator with a `Request` built by `request_for(...)`, and the rule in
   action on the local control plane (tests/integration/test_webhook.py shows how: `webhook_operator`).

The rule's name is its webhook name (`<name>.tenantry.dev`), URL path and metric label
(`tenantry_webhook_requests_total{rule=...}`); keep it short and stable.
"""

from __future__ import annotations

import enum
import importlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tenantry.admission import AdmissionBook
from tenantry.naming import ANNOTATION_TENANT_UID, LABEL_NAMESPACE_ROLE, PLAN, REGION, TENANT, reseller_namespace

CREATE, UPDATE, DELETE, CONNECT = "CREATE", "UPDATE", "DELETE", "CONNECT"
FAIL, IGNORE = "Fail", "Ignore"

# namespaceSelector of a rule: only tenant namespaces (the operator labels them), or every namespace.
TENANT_NAMESPACES: Mapping[str, Any] = {
    "matchExpressions": [{"key": LABEL_NAMESPACE_ROLE, "operator": "In", "values": ["tenant"]}]}
# Resellers' control namespaces (reseller-<name>, labelled by the operator), where Tenants and Plans live.
CONTROL_NAMESPACES: Mapping[str, Any] = {
    "matchExpressions": [{"key": LABEL_NAMESPACE_ROLE, "operator": "In", "values": ["control"]}]}
ALL_NAMESPACES: Mapping[str, Any] = {}

MAX_TIMEOUT_SECONDS = 30  # the API server's limit

# Modules whose import registers rules. Add yours here (step 3 above).
RULE_MODULES = (
    "tenantry.webhook.ingress",
    "tenantry.webhook.tenantry_kinds",
    "tenantry.webhook.isolation",
    "tenantry.webhook.finalizer",
)


class Exempt(enum.Enum):
    """Who a rule never checks (see "How to add a rule")."""

    OPERATOR = "operator"
    PLATFORM = "platform"


@dataclass(frozen=True)
class Verdict:
    """A rule's answer. `reason` is CamelCase (as a condition's), `message` a sentence saying what to change;
    `warnings` reach the client either way (kubectl prints them as `Warning:` lines). `patch`: a mutating
    rule's change of the object, JSON Patch operations (RFC 6902) applied by the API server before storing it."""

    allowed: bool
    reason: str = ""
    message: str = ""
    warnings: tuple[str, ...] = ()
    code: int = 403
    patch: tuple[Mapping[str, Any], ...] = ()


def allow(*warnings: str) -> Verdict:
    return Verdict(True, warnings=tuple(warnings))


def mutate(*operations: Mapping[str, Any]) -> Verdict:
    """Allow, with the object changed by these JSON Patch operations (none: allowed as it is)."""
    return Verdict(True, patch=tuple(operations))


def deny(reason: str, message: str, *, code: int = 403) -> Verdict:
    return Verdict(False, reason, message, code=code)


@dataclass(frozen=True)
class Request:
    """The part of an AdmissionReview request that rules read."""

    uid: str
    operation: str
    group: str
    version: str
    resource: str  # plural
    kind: str
    namespace: str
    name: str
    object: Mapping[str, Any] | None
    old_object: Mapping[str, Any] | None
    username: str
    groups: tuple[str, ...] = ()
    dry_run: bool = False
    subresource: str = ""

    @classmethod
    def from_review(cls, review: Mapping[str, Any]) -> Request:
        request = review.get("request") or {}
        resource = request.get("resource") or {}
        kind = request.get("kind") or {}
        user = request.get("userInfo") or {}
        obj, old = request.get("object"), request.get("oldObject")
        body = obj or old or {}
        return cls(
            uid=str(request.get("uid", "")),
            operation=str(request.get("operation", "")),
            group=str(resource.get("group", "")),
            version=str(resource.get("version", "")),
            resource=str(resource.get("resource", "")),
            kind=str(kind.get("kind", "")),
            namespace=str(request.get("namespace") or (body.get("metadata") or {}).get("namespace") or ""),
            name=str(request.get("name") or (body.get("metadata") or {}).get("name") or ""),
            object=obj,
            old_object=old,
            username=str(user.get("username", "")),
            groups=tuple(user.get("groups") or ()),
            dry_run=bool(request.get("dryRun")),
            subresource=str(request.get("subResource") or ""),
        )

    @property
    def body(self) -> Mapping[str, Any]:
        """The object as it will be (CREATE, UPDATE) or as it was (DELETE)."""
        return self.object or self.old_object or {}

    @property
    def labels(self) -> Mapping[str, str]:
        return (self.body.get("metadata") or {}).get("labels") or {}

    def spec_changed(self) -> bool:
        """False for an UPDATE that leaves spec alone (labels, finalizers, annotations)."""
        if self.operation != UPDATE or self.old_object is None or self.object is None:
            return True
        return self.old_object.get("spec") != self.object.get("spec")


def request_for(obj: Mapping[str, Any], *, operation: str = CREATE, old: Mapping[str, Any] | None = None,
                username: str = "someone", groups: tuple[str, ...] = (), group: str = "", resource: str = "",
                version: str = "v1") -> Request:
    """A Request for tests and for the self-check: `obj` as created (or changed from `old`)."""
    meta = obj.get("metadata") or {}
    return Request(uid="test", operation=operation, group=group, version=version, resource=resource,
                   kind=str(obj.get("kind", "")), namespace=str(meta.get("namespace", "")),
                   name=str(meta.get("name", "")), object=None if operation == DELETE else obj,
                   old_object=old if operation != DELETE else (old or obj), username=username, groups=groups)


# -- what validators may read ----------------------------------------------------------------------


@dataclass(frozen=True)
class TenantScope:
    """A tenant namespace as the operator knows it: its Tenant, Region and Plan (parsed specs, None when
    missing or invalid) and its routed hosts (status.hosts: the default host and verified custom domains,
    empty while suspended)."""

    reseller: str
    name: str
    namespace: str
    tenant: Mapping[str, Any]
    spec: Any  # TenantSpec | None
    region: Any  # RegionSpec | None
    plan: Any  # PlanSpec | None: the plan the tenant was admitted on
    hosts: tuple[str, ...]
    phase: str

    @property
    def active(self) -> bool:
        return self.phase == "Active"

    @property
    def ingress_class(self) -> str | None:
        return self.region.ingress.class_name if self.region is not None else None


class ObjectCache(Protocol):
    """The operator's watch-fed Store (controller/store.py), read-only."""

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None: ...


class ClusterView(Protocol):
    """What a validator may read: the operator's in-memory picture, never the API."""

    @property
    def book(self) -> AdmissionBook: ...

    @property
    def store(self) -> ObjectCache: ...

    @property
    def default_plans(self) -> frozenset[str]:
        """Names of the platform's default plans (settings `defaultPlans`), seeded in new reseller namespaces."""
        ...

    def tenant_for_namespace(self, namespace: str) -> TenantScope | None: ...

    async def read(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """One GET from the API server, for an async validator confirming a denial the cache suggests (the
        cache lags the API by the watch's delay). Never for allowing."""
        ...


def tenant_scope(store: ObjectCache, namespace: str) -> TenantScope | None:
    """The Tenant owning a tenant namespace (`<reseller>--<tenant>`), with its Region and Plan, from the
    operator's cache; None when no Tenant owns it."""
    from tenantry.controller.specs import read_spec  # parsed specs are cached per generation

    reseller, sep, name = namespace.partition("--")
    if not sep or not reseller or not name:
        return None
    tenant = store.get(TENANT, name, reseller_namespace(reseller))
    if tenant is None:
        return None
    stamped = (((store.get("Namespace", namespace) or {}).get("metadata") or {}).get("annotations") or {}).get(
        ANNOTATION_TENANT_UID)
    if stamped and stamped != (tenant.get("metadata") or {}).get("uid"):
        return None  # made for another Tenant of this name: never this one's (NamespaceTaken, namespace_claim.py)
    status = tenant.get("status") or {}
    if status.get("namespace", namespace) != namespace:
        return None
    spec, _ = read_spec(TENANT, tenant)
    region_name = ((status.get("admission") or {}).get("region") or (spec.region if spec is not None else ""))
    plan_name = ((status.get("admission") or {}).get("plan") or (spec.plan if spec is not None else ""))
    region_obj = store.get(REGION, region_name) if region_name else None
    plan_obj = store.get(PLAN, plan_name, reseller_namespace(reseller)) if plan_name else None
    region = read_spec(REGION, region_obj)[0] if region_obj is not None else None
    plan = read_spec(PLAN, plan_obj)[0] if plan_obj is not None else None
    phase = str(status.get("phase") or "Pending")
    if (tenant.get("metadata") or {}).get("deletionTimestamp"):
        phase = "Terminating"
    return TenantScope(reseller=reseller, name=name, namespace=namespace, tenant=tenant, spec=spec,
                       region=region, plan=plan, hosts=tuple(status.get("hosts") or ()), phase=phase)


# -- the rules -------------------------------------------------------------------------------------

Validator = Callable[[Request, ClusterView], "Verdict | Awaitable[Verdict]"]


@dataclass(frozen=True)
class Rule:
    name: str
    group: str
    resources: tuple[str, ...]
    operations: tuple[str, ...]
    validate: Validator
    failure_policy: str
    namespaces: Mapping[str, Any]
    exempt: Exempt
    summary: str
    versions: tuple[str, ...] = ("*",)
    timeout_seconds: int = 5
    object_selector: Mapping[str, Any] = field(default_factory=dict)
    mutating: bool = False

    @property
    def webhook_name(self) -> str:
        return f"{self.name}.tenantry.dev"

    @property
    def path(self) -> str:
        return f"/{'mutate' if self.mutating else 'validate'}/{self.name}"


RULES: dict[str, Rule] = {}


def rule(name: str, *, group: str, resources: tuple[str, ...], operations: tuple[str, ...], failure_policy: str,
         namespaces: Mapping[str, Any], exempt: Exempt, summary: str, versions: tuple[str, ...] = ("*",),
         timeout_seconds: int = 5, object_selector: Mapping[str, Any] | None = None, mutating: bool = False
         ) -> Callable[[Validator], Validator]:
    """Register a validator as a rule (see the module's docstring)."""
    if failure_policy not in (FAIL, IGNORE):
        raise ValueError(f"rule {name}: failure_policy must be {FAIL} or {IGNORE}")
    if not 1 <= timeout_seconds <= MAX_TIMEOUT_SECONDS:
        raise ValueError(f"rule {name}: timeout_seconds must be 1..{MAX_TIMEOUT_SECONDS}")

    def register(validate: Validator) -> Validator:
        if name in RULES and RULES[name].validate is not validate:
            raise ValueError(f"rule {name} is registered twice")
        RULES[name] = Rule(name=name, group=group, resources=resources, operations=operations, validate=validate,
                           failure_policy=failure_policy, namespaces=namespaces, exempt=exempt, summary=summary,
                           versions=versions, timeout_seconds=timeout_seconds,
                           object_selector=object_selector or {}, mutating=mutating)
        return validate

    return register


def load_rules() -> dict[str, Rule]:
    """Every rule, its module imported (the server and the configuration builder call this)."""
    for module in RULE_MODULES:
        importlib.import_module(module)
    return RULES


def active_rules(disabled: Iterable[str] = ()) -> dict[str, Rule]:
    """The rules the operator serves and registers: all but those the settings disable."""
    rules = load_rules()
    unknown = sorted(set(disabled) - set(rules))
    if unknown:
        raise ValueError(f"webhook.disabledRules names no rule: {', '.join(unknown)} "
                         f"(rules: {', '.join(sorted(rules))})")
    return {name: r for name, r in rules.items() if name not in set(disabled)}


def rules_for(group: str, resource: str) -> Iterator[Rule]:
    """The rules checking one resource (a unit test's way to find them)."""
    for candidate in load_rules().values():
        if candidate.group == group and resource in candidate.resources:
            yield candidate


# -- who is exempt ---------------------------------------------------------------------------------

MASTERS_GROUP = "system:masters"
KUBE_SYSTEM_ACCOUNTS = "system:serviceaccount:kube-system:"
# Kubernetes' own components, by the user names their certificates carry.
COMPONENT_USERS = frozenset({"system:kube-controller-manager", "system:kube-scheduler", "system:apiserver"})


@dataclass(frozen=True)
class Identities:
    """Who the operator is, and whom the platform exempts on top (settings `webhook.exemptUsers/Groups`)."""

    operator_users: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()


def is_exempt(request: Request, exempt: Exempt, identities: Identities) -> bool:
    """Whether a rule skips this request's user. The operator is always exempt: it writes what it decided
    from the same picture. Exempt.PLATFORM adds cluster admins, Kubernetes' own components (the
    controller-manager) and kube-system's controllers (the garbage collector and the namespace controller
    delete whatever a namespace holds), and the configured ones."""
    user = request.username
    if user in identities.operator_users:
        return True
    if exempt is Exempt.OPERATOR:
        return False
    if user in identities.users or MASTERS_GROUP in request.groups:
        return True
    if any(group in identities.groups for group in request.groups):
        return True
    return user in COMPONENT_USERS or user.startswith(KUBE_SYSTEM_ACCOUNTS)
