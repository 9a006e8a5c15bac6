"""The typed spec models: DESIGN.md §2 examples parse, defaults match the contract, and a bad
field is reported by its path with a message that says what to write instead."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from support.bodies import set_in
from tenantry import models, naming
from tenantry.models import (
    PlanSpec,
    RegionSpec,
    ResellerSpec,
    SpecError,
    TenantSpec,
    parse_spec,
    spec_problems,
)

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"

# DESIGN.md §2, verbatim except for the elided branding URLs.
DESIGN_REGION = yaml.safe_load("""
apiVersion: tenantry.dev/v1alpha1
kind: Region
metadata: {name: eu-west}
spec:
  displayName: EU West
  nodePool:
    nodeSelector: {pool: eu-west}
    tolerations: [{key: pool, operator: Equal, value: eu-west, effect: NoSchedule}]
  ingress: {className: nginx, controllerNamespace: ingress-nginx}
  domainVerification: DNS
  capacity: {cpu: "64", memory: 256Gi, storage: 2Ti, pods: "2000"}
  pricing: {currency: USD, cpu: "0.020", memory: "0.0025", storage: "0.00015"}
""")
DESIGN_RESELLER = yaml.safe_load("""
apiVersion: tenantry.dev/v1alpha1
kind: Reseller
metadata: {name: acme}
spec:
  companyName: ACME Hosting
  email: billing@acme.example
  active: true
  licenses: 25
  admins: [{kind: User, name: alice@acme.example}, {kind: Group, name: acme-admins}]
  platformDomain: panel.acme.example
  branding: {displayName: ACME Cloud, logoURL: "https://acme.example/logo.svg",
             faviconURL: "https://acme.example/favicon.ico", primaryColor: "#0a7cff",
             loginBackgroundURL: "https://acme.example/bg.jpg", supportEmail: support@acme.example}
  regions:
  - name: eu-west
    domain: acme-cloud.example
    tls: {mode: SelfSigned}
    allotment: {cpu: "16", memory: 64Gi, storage: 500Gi, pods: "400"}
""")
DESIGN_PLAN = yaml.safe_load("""
apiVersion: tenantry.dev/v1alpha1
kind: Plan
metadata: {name: starter, namespace: reseller-acme}
spec:
  displayName: Starter
  quota: {cpu: "2", memory: 4Gi, storage: 20Gi, pods: "20"}
  defaults: {cpu: 100m, memory: 128Mi}
  customDomains: 2
  pricing: {currency: EUR, monthly: "19.00", cpu: "0.05", memory: "0.006", storage: "0.0004"}
""")
DESIGN_TENANT = yaml.safe_load("""
apiVersion: tenantry.dev/v1alpha1
kind: Tenant
metadata: {name: bakery, namespace: reseller-acme}
spec:
  displayName: Joe's Bakery
  email: joe@bakery.example
  region: eu-west
  plan: starter
  active: true
  owners: [{kind: User, name: joe@bakery.example}]
  ingress: {service: web, port: 80}
  domains: [{host: www.bakery.example, tls: {mode: Secret, secretName: www-tls}}]
  deletionPolicy: Delete
""")
DESIGN = {
    naming.REGION: DESIGN_REGION, naming.RESELLER: DESIGN_RESELLER,
    naming.PLAN: DESIGN_PLAN, naming.TENANT: DESIGN_TENANT,
}


def example_objects() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(EXAMPLES_DIR.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


# ------------------------------------------------------------------------------------------ examples
def test_design_region_parses() -> None:
    spec = parse_spec("Region", DESIGN_REGION)
    assert isinstance(spec, RegionSpec)
    assert spec.display_name == "EU West"
    assert spec.node_pool is not None
    assert dict(spec.node_pool.node_selector) == {"pool": "eu-west"}
    assert spec.node_pool.tolerations[0].effect == "NoSchedule"
    assert (spec.ingress.class_name, spec.ingress.controller_namespace) == ("nginx", "ingress-nginx")
    assert spec.capacity.as_decimals() == {
        "cpu": Decimal(64), "memory": Decimal(256 * 2**30), "storage": Decimal(2 * 2**40), "pods": Decimal(2000),
    }
    assert spec.pricing.cpu == Decimal("0.020")
    assert spec_problems(spec) == []


def test_design_reseller_parses() -> None:
    spec = parse_spec("Reseller", DESIGN_RESELLER)
    assert isinstance(spec, ResellerSpec)
    assert (spec.company_name, spec.licenses, spec.active) == ("ACME Hosting", 25, True)
    assert [(a.kind, a.name) for a in spec.admins] == [("User", "alice@acme.example"), ("Group", "acme-admins")]
    assert spec.branding is not None and spec.branding.logo_url == "https://acme.example/logo.svg"
    region = spec.region("eu-west")
    assert region is not None and region.domain == "acme-cloud.example" and region.tls.mode == "SelfSigned"
    assert spec.region("us-east") is None
    assert spec_problems(spec) == []


def test_design_plan_parses() -> None:
    spec = parse_spec("Plan", DESIGN_PLAN)
    assert isinstance(spec, PlanSpec)
    assert spec.quota.as_decimals()["memory"] == Decimal(4 * 2**30)
    assert spec.defaults is not None and spec.defaults.cpu == "100m"
    assert spec.pricing.monthly == Decimal("19.00")
    assert spec.custom_domains == 2
    assert spec_problems(spec) == []


def test_design_tenant_parses() -> None:
    spec = parse_spec("Tenant", DESIGN_TENANT)
    assert isinstance(spec, TenantSpec)
    assert (spec.region, spec.plan, spec.deletion_policy) == ("eu-west", "starter", "Delete")
    assert spec.domains[0].tls.mode == "Secret" and spec.domains[0].tls.secret_name == "www-tls"
    assert spec_problems(spec) == []


def test_examples_directory_parses_without_problems() -> None:
    objects = example_objects()
    kinds = [obj["kind"] for obj in objects]
    # Two node-pool regions (10-regions.yaml) and one member-cluster region (15-member-cluster-region.yaml).
    assert kinds.count("Region") == 3 and kinds.count("Reseller") == 2
    assert sum(1 for o in objects if o["kind"] == "Region" and "cluster" in o["spec"]) == 1
    assert kinds.count("Plan") >= 3 and 5 <= kinds.count("Tenant") <= 6
    for obj in objects:
        spec = parse_spec(obj["kind"], obj)
        assert spec_problems(spec) == [], obj["metadata"]["name"]


def test_examples_have_one_tenant_beyond_the_licences() -> None:
    """The demo shows LicenseLimitReached: one reseller has one tenant more than licences."""
    objects = example_objects()
    licences = {o["metadata"]["name"]: o["spec"].get("licenses", 0) for o in objects if o["kind"] == "Reseller"}
    tenants: dict[str, int] = {}
    for obj in objects:
        if obj["kind"] == "Tenant":
            reseller = naming.reseller_from_namespace(obj["metadata"]["namespace"])
            assert reseller is not None
            tenants[reseller] = tenants.get(reseller, 0) + 1
    assert sorted(tenants[r] - licences[r] for r in licences if tenants.get(r, 0) > licences[r]) == [1]


def test_examples_refer_to_regions_plans_and_namespaces_that_exist() -> None:
    objects = example_objects()
    regions = {o["metadata"]["name"] for o in objects if o["kind"] == "Region"}
    resellers = {o["metadata"]["name"]: parse_spec("Reseller", o) for o in objects if o["kind"] == "Reseller"}
    plans = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects if o["kind"] == "Plan"}
    for reseller in resellers.values():
        assert {r.name for r in reseller.regions} <= regions
    for obj in objects:
        if obj["kind"] in ("Plan", "Tenant"):
            reseller_name = naming.reseller_from_namespace(obj["metadata"]["namespace"])
            assert reseller_name in resellers
        if obj["kind"] == "Tenant":
            tenant = parse_spec("Tenant", obj)
            assert (obj["metadata"]["namespace"], tenant.plan) in plans
            assert resellers[reseller_name].region(tenant.region) is not None


# ------------------------------------------------------------------------------------------ defaults
def test_tenant_defaults() -> None:
    spec = parse_spec("Tenant", {"email": "a@b.example", "region": "eu-west", "plan": "starter"})
    assert spec.active is True
    assert (spec.ingress.service, spec.ingress.port) == ("web", 80)
    assert spec.deletion_policy == "Delete"
    assert spec.owners == () and spec.domains == ()
    partial = parse_spec("Tenant", {"email": "a@b.example", "region": "r", "plan": "p", "ingress": {"port": 8080}})
    assert (partial.ingress.service, partial.ingress.port) == ("web", 8080)
    domain = parse_spec("Tenant", {"email": "a@b.example", "region": "r", "plan": "p",
                                   "domains": [{"host": "www.b.example"}]}).domains[0]
    assert domain.tls.mode == "SelfSigned"


def test_reseller_defaults() -> None:
    spec = parse_spec("Reseller", {
        "companyName": "X", "email": "x@x.example",
        "regions": [{"name": "eu-west", "domain": "x.example", "allotment": {"cpu": 1, "memory": "1Gi",
                                                                              "storage": "1Gi", "pods": 10}}],
    })
    assert (spec.active, spec.licenses, spec.admins, spec.branding) == (True, 0, (), None)
    assert spec.regions[0].tls.mode == "SelfSigned"


def test_plan_defaults() -> None:
    spec = parse_spec("Plan", {"quota": {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "pods": "1"},
                               "pricing": {"currency": "EUR", "monthly": "5"}})
    assert spec.custom_domains == 0
    assert (spec.pricing.cpu, spec.pricing.memory, spec.pricing.storage) == (Decimal(0), Decimal(0), Decimal(0))
    assert spec.defaults is None


def test_region_defaults() -> None:
    spec = parse_spec("Region", {"capacity": {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "pods": "1"},
                                 "pricing": {"currency": "USD", "cpu": "0", "memory": "0", "storage": "0"}})
    assert spec.domain_verification == "DNS"
    assert (spec.ingress.class_name, spec.ingress.controller_namespace) == (None, "ingress-nginx")
    assert spec.node_pool is None


def test_dump_by_alias_round_trips_and_keeps_money_exact() -> None:
    spec = parse_spec("Plan", DESIGN_PLAN)
    dumped = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert dumped["pricing"] == {"currency": "EUR", "monthly": "19.00", "cpu": "0.05", "memory": "0.006",
                                 "storage": "0.0004"}
    assert dumped["customDomains"] == 2
    assert PlanSpec.model_validate(dumped) == spec


# ------------------------------------------------------------------------------------------ input forms
def test_accepts_the_whole_object_or_just_the_spec_and_plural_kinds() -> None:
    assert parse_spec("tenants", DESIGN_TENANT["spec"]) == parse_spec("Tenant", DESIGN_TENANT)
    with pytest.raises(ValueError, match="unknown kind"):
        parse_spec("Widget", {})


def test_snake_case_names_are_accepted_too() -> None:
    spec = TenantSpec(email="a@b.example", region="eu-west", plan="starter", deletion_policy="Retain")
    assert spec.deletion_policy == "Retain"


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    body = copy.deepcopy(DESIGN_TENANT)
    body["spec"]["futureField"] = {"x": 1}
    body["spec"]["ingress"]["futurePath"] = "/"
    assert parse_spec("Tenant", body) == parse_spec("Tenant", DESIGN_TENANT)


def test_models_are_frozen() -> None:
    spec = parse_spec("Tenant", DESIGN_TENANT)
    with pytest.raises(ValidationError):
        spec.plan = "business"  # type: ignore[misc]


def test_quantities_are_kept_as_strings_and_integers_become_strings() -> None:
    spec = parse_spec("Plan", {"quota": {"cpu": 2, "memory": "4Gi", "storage": "1.5Ti", "pods": 20},
                               "pricing": {"currency": "EUR", "monthly": "1"}})
    assert (spec.quota.cpu, spec.quota.pods, spec.quota.storage) == ("2", "20", "1.5Ti")
    assert spec.quota.as_decimals()["storage"] == Decimal("1.5") * 2**40


def test_read_only_mappings_from_kopf_are_accepted() -> None:
    from types import MappingProxyType

    spec = MappingProxyType({**DESIGN_TENANT["spec"], "ingress": MappingProxyType({"service": "api"})})
    assert parse_spec("Tenant", spec).ingress.service == "api"


# ------------------------------------------------------------------------------------------ errors
def reseller_with(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(DESIGN_RESELLER)
    body["spec"].update(changes)
    return body




@pytest.mark.parametrize(
    ("kind", "path", "value", "field", "message"),
    [
        ("Reseller", "spec.regions.0.allotment.cpu", "12x", "spec.regions[0].allotment.cpu",
         "'12x' is not a Kubernetes quantity (examples: 500m, 2, 4Gi)"),
        ("Reseller", "spec.licenses", -1, "spec.licenses", "-1 is too small; the minimum is 0"),
        ("Reseller", "spec.licenses", "25", "spec.licenses", "expected an integer"),
        ("Reseller", "spec.email", "billing-at-acme", "spec.email", "is not an e-mail address"),
        ("Reseller", "spec.companyName", ..., "spec.companyName", "is required but missing"),
        ("Reseller", "spec.regions.0.tls.mode", "LetsEncrypt", "spec.regions[0].tls.mode",
         "'LetsEncrypt' is not allowed; use 'SelfSigned', 'Secret' or 'Issuer'"),
        ("Reseller", "spec.regions.0.domain", "*.acme.example", "spec.regions[0].domain",
         "is not a DNS hostname: lowercase, two or more dot-separated labels, no wildcard"),
        ("Reseller", "spec.regions.0.name", "EU-West", "spec.regions[0].name", "is not a Region name"),
        ("Reseller", "spec.branding.primaryColor", "blue", "spec.branding.primaryColor", "#rrggbb"),
        ("Reseller", "spec.admins.0.kind", "Robot", "spec.admins[0].kind", "use 'User', 'Group' or 'ServiceAccount'"),
        ("Reseller", "spec.active", "yes", "spec.active", "expected true or false"),
        ("Region", "spec.pricing.currency", "usd", "spec.pricing.currency", "not an ISO 4217 currency code"),
        ("Region", "spec.domainVerification", "HTTP", "spec.domainVerification", "use 'DNS' or 'None'"),
        ("Region", "spec.capacity", ..., "spec.capacity", "is required but missing"),
        ("Region", "spec.capacity.memory", "256GB", "spec.capacity.memory", "is not a Kubernetes quantity"),
        ("Region", "spec.capacity.pods", -5, "spec.capacity.pods", "negative"),
        ("Region", "spec.capacity.cpu", 1.5, "spec.capacity.cpu", "is not a Kubernetes quantity"),
        ("Region", "spec.capacity.cpu", True, "spec.capacity.cpu", "is not a Kubernetes quantity"),
        ("Region", "spec.nodePool.tolerations.0.effect", "Never", "spec.nodePool.tolerations[0].effect",
         "is not allowed"),
        ("Plan", "spec.pricing.monthly", "19,00", "spec.pricing.monthly", "'19,00' is not an amount of money"),
        ("Plan", "spec.pricing.cpu", 0.05, "spec.pricing.cpu", "write money as a quoted decimal string"),
        ("Plan", "spec.pricing.cpu", 5, "spec.pricing.cpu", "write money as a quoted decimal string"),
        ("Plan", "spec.customDomains", -1, "spec.customDomains", "the minimum is 0"),
        ("Plan", "spec.quota", "2 cores", "spec.quota", "expected an object"),
        ("Tenant", "spec.deletionPolicy", "Orphan", "spec.deletionPolicy", "use 'Delete' or 'Retain'"),
        ("Tenant", "spec.email", ..., "spec.email", "is required but missing"),
        ("Tenant", "spec.ingress.port", 0, "spec.ingress.port", "the minimum is 1"),
        ("Tenant", "spec.ingress.port", 70000, "spec.ingress.port", "the maximum is 65535"),
        ("Tenant", "spec.domains.0.host", "*.bakery.example", "spec.domains[0].host", "is not a DNS hostname"),
        ("Tenant", "spec.domains.0.host", "WWW.bakery.example", "spec.domains[0].host",
         "is not a DNS hostname: lowercase"),
        ("Tenant", "spec.plan", "x" * 64, "spec.plan", "64 characters long; a Plan name"),
        ("Tenant", "spec.owners", {"kind": "User"}, "spec.owners", "expected a list"),
        ("Tenant", "metadata.name", "a--b", "metadata.name",
         "'a--b' is not a Tenant name: use lowercase letters and digits, with single dashes between them "
         "(example: bakery)"),
        ("Tenant", "metadata.name", "t" * 41, "metadata.name", "41 characters long; a Tenant name has at most 40"),
        ("Reseller", "metadata.name", "r" * 21, "metadata.name", "has at most 20"),
        ("Region", "metadata.name", "-eu", "metadata.name", "is not a Region name"),
    ],
)
def test_errors_name_the_field_and_say_what_is_wrong(
    kind: str, path: str, value: Any, field: str, message: str
) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(kind, set_in(DESIGN[kind], path, value))
    assert caught.value.field_path == field
    assert message in caught.value.message
    assert str(caught.value).startswith(f"{field}: ")


def test_all_problems_are_reported_not_just_the_first() -> None:
    body = reseller_with(licenses=-1, email="nope")
    with pytest.raises(SpecError) as caught:
        parse_spec("Reseller", body)
    paths = {problem.path for problem in caught.value.problems}
    assert paths == {"spec.licenses", "spec.email"}
    assert "and 1 more" in str(caught.value)


def test_spec_error_is_a_value_error_with_the_path_in_its_text() -> None:
    error = SpecError("spec.plan", "is required but missing")
    assert isinstance(error, ValueError)
    assert str(error) == "spec.plan: is required but missing"
    assert error.problems == (models.Problem("spec.plan", "is required but missing"),)


# ------------------------------------------------------------------------------------------ cross-field rules
def reseller_spec(**changes: Any) -> ResellerSpec:
    return parse_spec("Reseller", reseller_with(**changes))


def tenant_spec(**changes: Any) -> TenantSpec:
    body = copy.deepcopy(DESIGN_TENANT)
    body["spec"].update(changes)
    return parse_spec("Tenant", body)


ALLOTMENT = {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "pods": "1"}


def test_reseller_regions_must_be_unique_by_name_and_domain() -> None:
    spec = reseller_spec(regions=[
        {"name": "eu-west", "domain": "a.example", "allotment": ALLOTMENT},
        {"name": "eu-west", "domain": "b.example", "allotment": ALLOTMENT},
        {"name": "us-east", "domain": "a.example", "allotment": ALLOTMENT},
    ])
    assert [p.path for p in spec_problems(spec)] == ["spec.regions[1].name", "spec.regions[2].domain"]


def test_tls_secret_mode_needs_secret_name_and_issuer_mode_needs_issuer_ref() -> None:
    spec = reseller_spec(regions=[
        {"name": "eu-west", "domain": "a.example", "allotment": ALLOTMENT, "tls": {"mode": "Secret"}},
        {"name": "us-east", "domain": "b.example", "allotment": ALLOTMENT, "tls": {"mode": "Issuer"}},
        {"name": "ap-south", "domain": "c.example", "allotment": ALLOTMENT,
         "tls": {"mode": "Issuer", "issuerRef": {"kind": "ClusterIssuer", "name": "letsencrypt"}}},
    ])
    problems = spec_problems(spec)
    assert [p.path for p in problems] == ["spec.regions[0].tls.secretName", "spec.regions[1].tls.issuerRef"]
    assert "mode Secret needs secretName" in problems[0].message


def test_service_account_subjects_need_a_namespace_and_others_must_not_have_one() -> None:
    spec = reseller_spec(admins=[
        {"kind": "ServiceAccount", "name": "ci"},
        {"kind": "ServiceAccount", "name": "ci", "namespace": "acme-ci"},
        {"kind": "User", "name": "alice", "namespace": "x"},
    ])
    assert [p.path for p in spec_problems(spec)] == ["spec.admins[0].namespace", "spec.admins[2].namespace"]


def test_tenant_domains_unique_by_host_and_tls_checked() -> None:
    spec = tenant_spec(
        domains=[{"host": "a.bakery.example"}, {"host": "a.bakery.example"},
                 {"host": "b.bakery.example", "tls": {"mode": "Secret"}}],
        owners=[{"kind": "ServiceAccount", "name": "deployer"}],
    )
    assert [p.path for p in spec_problems(spec)] == [
        "spec.owners[0].namespace", "spec.domains[1].host", "spec.domains[2].tls.secretName",
    ]


def test_plan_default_requests_must_fit_in_the_quota() -> None:
    body = set_in(DESIGN_PLAN, "spec.defaults", {"cpu": "3", "memory": "128Mi"})
    problems = spec_problems(parse_spec("Plan", body))
    assert [p.path for p in problems] == ["spec.defaults.cpu"]
    assert "exceeds the plan's cpu quota 2" in problems[0].message


def test_region_toleration_rules() -> None:
    body = set_in(DESIGN_REGION, "spec.nodePool.tolerations", [
        {"key": "pool", "operator": "Exists", "value": "eu-west"},
        {"operator": "Equal", "value": "x"},
        {"key": "pool", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 30},
        {"operator": "Exists"},
    ])
    problems = spec_problems(parse_spec("Region", body))
    assert [p.path for p in problems] == [
        "spec.nodePool.tolerations[0].value", "spec.nodePool.tolerations[1].key",
        "spec.nodePool.tolerations[2].tolerationSeconds",
    ]


# ------------------------------------------------------------------------------------------ properties
@given(st.decimals(min_value=0, max_value=10**9, allow_nan=False, allow_infinity=False, places=6))
def test_money_strings_become_exact_decimals(amount: Decimal) -> None:
    text = f"{amount:f}"
    spec = parse_spec("Plan", set_in(DESIGN_PLAN, "spec.pricing.monthly", text))
    assert spec.pricing.monthly == Decimal(text)
    assert spec.model_dump(mode="json", by_alias=True)["pricing"]["monthly"] == text


@given(st.integers(min_value=0, max_value=10**12))
def test_integer_quantities_equal_their_string_form(value: int) -> None:
    as_int = parse_spec("Plan", set_in(DESIGN_PLAN, "spec.quota.pods", value)).quota
    as_str = parse_spec("Plan", set_in(DESIGN_PLAN, "spec.quota.pods", str(value))).quota
    assert as_int == as_str
    assert as_int.as_decimals()["pods"] == Decimal(value)


@given(st.from_regex(naming.NAME_PATTERN, fullmatch=True))
def test_valid_names_pass_the_model_exactly_when_naming_says_so(name: str) -> None:
    body = set_in(DESIGN_TENANT, "metadata.name", name)
    if naming.is_valid_name(naming.TENANT, name):
        parse_spec("Tenant", body)
    else:
        with pytest.raises(SpecError):
            parse_spec("Tenant", body)
