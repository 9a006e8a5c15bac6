"""Unit tests of the admission webhook's pure parts: the rules (with a picture built from real objects), the
registration builder, the certificate decisions, who is exempt, and the AdmissionReview answers."""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime
import itertools
import json
from typing import Any

import pytest
from cryptography import x509

from tenantry.admission import AdmissionBook
from tenantry.controller.specs import plan_terms, read_spec, reseller_terms, tenant_claim
from tenantry.controller.store import Store
from tenantry.naming import FINALIZER
from tenantry.webhook import certificate as certs
from tenantry.webhook.configuration import MUTATING, VALIDATING, ClientConfig, build_webhook_configuration
from tenantry.webhook.finalizer import finalizer_patch
from tenantry.webhook.registry import (
    CREATE,
    DELETE,
    FAIL,
    IGNORE,
    UPDATE,
    Exempt,
    Identities,
    Request,
    TenantScope,
    Verdict,
    active_rules,
    is_exempt,
    load_rules,
    request_for,
    tenant_scope,
)
from tenantry.webhook.server import decide, review_response

REGION = {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Region", "metadata": {"name": "eu", "uid": "r1",
          "generation": 1, "creationTimestamp": "2026-01-01T00:00:00Z"},
          "spec": {"ingress": {"className": "nginx"}, "capacity": {"cpu": "64", "memory": "256Gi",
                   "storage": "2Ti", "pods": "2000"},
                   "pricing": {"currency": "USD", "cpu": "0.02", "memory": "0.0025", "storage": "0.00015"}}}
RESELLER = {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Reseller", "metadata": {
            "name": "acme", "uid": "s1", "generation": 1, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"companyName": "ACME", "email": "billing@acme.example", "licenses": 1,
                     "regions": [{"name": "eu", "domain": "acme-cloud.example", "tls": {"mode": "SelfSigned"},
                                  "allotment": {"cpu": "4", "memory": "8Gi", "storage": "50Gi", "pods": "40"}}]}}
PLAN = {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Plan", "metadata": {
        "name": "small", "namespace": "reseller-acme", "uid": "p1", "generation": 1},
        "spec": {"quota": {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "pods": "10"}, "customDomains": 1,
                 "pricing": {"currency": "EUR", "monthly": "1.00"}}}


_UIDS = itertools.count()  # specs.read_spec caches parsed specs by uid and generation


def tenant(name: str, *, email: str | None = None, admitted: bool = True, hosts: tuple[str, ...] | None = None,
           phase: str = "Active", created: str = "2026-01-02T00:00:00Z", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "tenantry.dev/v1alpha1", "kind": "Tenant",
        "metadata": {"name": name, "namespace": "reseller-acme", "uid": f"u-{name}-{next(_UIDS)}", "generation": 1,
                     "creationTimestamp": created},
        "spec": {"email": email or f"{name}@example.org", "region": "eu", "plan": "small", **spec}}
    if admitted:
        body["status"] = {"phase": phase, "namespace": f"acme--{name}",
                          "hosts": list(hosts if hosts is not None else (f"{name}.acme-cloud.example",)),
                          "admission": {"plan": "small", "region": "eu",
                                        "quota": {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "pods": "10"}}}
    return body


class FakeView:
    """The operator's picture, built from real objects with the operator's own readers (specs.py)."""

    def __init__(self, *objects: dict[str, Any], live: dict[tuple[str, str], dict[str, Any]] | None = None):
        self.store = Store()
        self.book = AdmissionBook()
        self.default_plans: frozenset[str] = frozenset({"trial"})
        self.live = live or {}
        self.reads = 0
        for obj in (REGION, RESELLER, PLAN, *objects):
            self.add(obj)

    def add(self, obj: dict[str, Any]) -> None:
        self.store.put(obj["kind"], obj)
        spec, problem = read_spec(obj["kind"], obj)
        assert spec is not None, problem
        if obj["kind"] == "Region":
            self.book.set_regions([obj["metadata"]["name"]])
        elif obj["kind"] == "Reseller":
            self.book.set_reseller(reseller_terms(obj, spec))
        elif obj["kind"] == "Plan":
            self.book.set_plan("acme", obj["metadata"]["name"], plan_terms(spec))
        elif obj["kind"] == "Tenant":
            self.book.upsert_tenant(tenant_claim(obj, spec))

    def tenant_for_namespace(self, namespace: str) -> TenantScope | None:
        return tenant_scope(self.store, namespace)

    async def read(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        self.reads += 1
        return self.live.get((kind, name))


def check(rule_name: str, request: Request, view: FakeView) -> Verdict:
    verdict, _ = asyncio.run(decide(load_rules()[rule_name], request, view, Identities()))
    return verdict


def ingress(host: str | None = "bakery.acme-cloud.example", *, name: str = "shop", namespace: str = "acme--bakery",
            class_name: str | None = "nginx", **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
        "service": {"name": "web", "port": {"number": 80}}}}]}}]}
    if host is None:
        del spec["rules"][0]["host"]
    if class_name:
        spec["ingressClassName"] = class_name
    spec.update(extra)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


OWNER = "joe@bakery.example"


def as_owner(obj: dict[str, Any], operation: str = CREATE, old: dict[str, Any] | None = None) -> Request:
    return request_for(obj, operation=operation, old=old, username=OWNER, groups=("system:authenticated",),
                       group="networking.k8s.io", resource="ingresses")


# -- Ingresses -------------------------------------------------------------------------------------


def test_an_ingress_for_the_tenants_own_hosts_is_admitted() -> None:
    view = FakeView(tenant("bakery", hosts=("bakery.acme-cloud.example", "www.bakery.example")))
    body = ingress("www.bakery.example", tls=[{"hosts": ["www.bakery.example"], "secretName": "www-tls"}])
    assert check("ingresses", as_owner(body), view).allowed


def test_a_host_of_another_tenant_is_denied_naming_the_host_and_the_tenants_hosts() -> None:
    view = FakeView(tenant("bakery", hosts=("bakery.acme-cloud.example", "www.bakery.example")), tenant("shop"))
    verdict = check("ingresses", as_owner(ingress("shop.acme-cloud.example")), view)
    assert not verdict.allowed and verdict.reason == "HostNotAllowed"
    assert "host shop.acme-cloud.example (spec.rules[0]) is not one of this tenant's hosts " \
           "(bakery.acme-cloud.example, www.bakery.example)" in verdict.message
    assert "spec.domains" in verdict.message


@pytest.mark.parametrize("host", ["acme-cloud.example", "*.acme-cloud.example", "grafana.platform.example"])
def test_the_resellers_bare_domain_a_wildcard_or_a_platform_host_is_denied(host: str) -> None:
    view = FakeView(tenant("bakery"))
    verdict = check("ingresses", as_owner(ingress(host)), view)
    assert not verdict.allowed and f"host {host} " in verdict.message


def test_tls_hosts_are_checked_too() -> None:
    view = FakeView(tenant("bakery"))
    body = ingress(tls=[{"hosts": ["bakery.acme-cloud.example", "evil.example"], "secretName": "x"}])
    verdict = check("ingresses", as_owner(body), view)
    assert not verdict.allowed and "host evil.example (spec.tls[0])" in verdict.message


def test_a_custom_domain_not_yet_verified_says_what_its_tenant_condition_says() -> None:
    body = tenant("bakery", domains=[{"host": "www.bakery.example"}])
    body["status"]["domains"] = [{"host": "www.bakery.example", "verified": False,
                                  "message": "Waiting for ownership proof: create a DNS TXT record x"}]
    verdict = check("ingresses", as_owner(ingress("www.bakery.example")), FakeView(body))
    assert not verdict.allowed
    assert "custom domain of this tenant that is not routed yet: Waiting for ownership proof" in verdict.message


def test_a_rule_without_host_and_a_default_backend_are_denied() -> None:
    view = FakeView(tenant("bakery"))
    verdict = check("ingresses", as_owner(ingress(None)), view)
    assert not verdict.allowed and verdict.reason == "HostRequired"
    body = ingress(defaultBackend={"service": {"name": "web", "port": {"number": 80}}})
    verdict = check("ingresses", as_owner(body), view)
    assert not verdict.allowed and verdict.reason == "DefaultBackendNotAllowed"


def test_the_class_must_be_the_regions_and_must_be_named() -> None:
    view = FakeView(tenant("bakery"))
    wrong = check("ingresses", as_owner(ingress(class_name="internal")), view)
    assert not wrong.allowed and wrong.reason == "IngressClassNotAllowed"
    assert "ingress class internal is not this tenant's; use nginx, the class of region eu" in wrong.message
    missing = check("ingresses", as_owner(ingress(class_name=None)), view)
    assert not missing.allowed and missing.reason == "IngressClassRequired"
    assert "set spec.ingressClassName: nginx" in missing.message
    annotated = ingress(class_name=None)
    annotated["metadata"]["annotations"] = {"kubernetes.io/ingress.class": "internal"}
    assert check("ingresses", as_owner(annotated), view).reason == "IngressClassNotAllowed"


def test_nginx_snippets_are_denied() -> None:
    body = ingress()
    body["metadata"]["annotations"] = {"nginx.ingress.kubernetes.io/server-snippet": "location / {}"}
    verdict = check("ingresses", as_owner(body), FakeView(tenant("bakery")))
    assert not verdict.allowed and "CVE-2021-25742" in verdict.message


def test_a_suspended_tenant_routes_nothing() -> None:
    view = FakeView(tenant("bakery", hosts=(), phase="Suspended"))
    verdict = check("ingresses", as_owner(ingress()), view)
    assert not verdict.allowed and verdict.reason == "TenantNotActive" and "suspended" in verdict.message


def test_a_namespace_of_no_tenant_is_denied() -> None:
    verdict = check("ingresses", as_owner(ingress(namespace="acme--ghost")), FakeView())
    assert not verdict.allowed and verdict.reason == "TenantNotFound"


def test_tenantrys_own_ingress_cannot_be_changed_or_deleted_by_the_owner_but_by_the_operator() -> None:
    view = FakeView(tenant("bakery"))
    own = ingress(name="tenantry")
    own["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "tenantry"}
    changed = copy.deepcopy(own)
    changed["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = "other"
    verdict = check("ingresses", as_owner(changed, UPDATE, old=own), view)
    assert not verdict.allowed and verdict.reason == "ManagedByTenantry"
    unlabelled = copy.deepcopy(changed)
    del unlabelled["metadata"]["labels"]
    assert check("ingresses", as_owner(unlabelled, UPDATE, old=own), view).reason == "ManagedByTenantry"
    assert check("ingresses", as_owner(own, CREATE), view).reason == "ManagedByTenantry"
    assert check("ingresses-delete", as_owner(own, DELETE), view).reason == "ManagedByTenantry"
    operator = Identities(operator_users=frozenset({"system:serviceaccount:tenantry-system:tenantry"}))
    request = request_for(changed, operation=UPDATE, old=own, username="system:serviceaccount:tenantry-system:tenantry")
    verdict, result = asyncio.run(decide(load_rules()["ingresses"], request, view, operator))
    assert verdict.allowed and result == "exempt"


def test_httproute_hostnames() -> None:
    view = FakeView(tenant("bakery"))
    route = {"kind": "HTTPRoute", "metadata": {"name": "r", "namespace": "acme--bakery"},
             "spec": {"hostnames": ["bakery.acme-cloud.example"]}}
    assert check("httproutes", as_owner(route), view).allowed
    route["spec"]["hostnames"].append("shop.acme-cloud.example")
    assert check("httproutes", as_owner(route), view).reason == "HostNotAllowed"
    route["spec"]["hostnames"] = []
    assert check("httproutes", as_owner(route), view).reason == "HostRequired"


# -- who is exempt ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("user", "groups", "platform", "operator_only"), [
    ("system:serviceaccount:tenantry-system:tenantry", (), True, True),
    ("admin", ("system:masters",), True, False),
    ("system:serviceaccount:kube-system:namespace-controller", (), True, False),
    ("system:kube-controller-manager", (), True, False),
    ("joe@bakery.example", ("system:authenticated",), False, False),
    ("system:anonymous", ("system:unauthenticated",), False, False),
    ("system:serviceaccount:acme--bakery:deployer", (), False, False),
])
def test_exemptions(user: str, groups: tuple[str, ...], platform: bool, operator_only: bool) -> None:
    identities = Identities(operator_users=frozenset({"system:serviceaccount:tenantry-system:tenantry"}))
    request = request_for(ingress(), username=user, groups=groups)
    assert is_exempt(request, Exempt.PLATFORM, identities) is platform
    assert is_exempt(request, Exempt.OPERATOR, identities) is operator_only


# -- Tenantry objects ------------------------------------------------------------------------------


def tenant_request(body: dict[str, Any], operation: str = CREATE, old: dict[str, Any] | None = None) -> Request:
    return request_for(body, operation=operation, old=old, username="admin@acme.example", group="tenantry.dev",
                       resource="tenants")


def test_no_licence_free_is_a_warning_and_the_tenant_is_stored() -> None:
    view = FakeView(tenant("bakery"))  # the reseller's one licence is taken
    verdict = check("tenants", tenant_request(tenant("late", admitted=False)), view)
    assert verdict.allowed
    assert verdict.warnings[0].startswith("no licence is free now; the tenant will wait (Admitted=False, "
                                          "LicenseLimitReached)")


def test_an_unknown_plan_is_denied_once_a_read_confirms_it() -> None:
    view = FakeView()
    verdict = check("tenants", tenant_request(tenant("new", admitted=False, plan="gold")), view)
    assert not verdict.allowed and verdict.reason == "UnknownPlan" and view.reads == 1
    assert "Plan gold does not exist in reseller-acme" in verdict.message
    # Created a moment ago (the operator has not seen it yet): allowed.
    view = FakeView(live={("Plan", "gold"): {"metadata": {"name": "gold"}}})
    assert check("tenants", tenant_request(tenant("new", admitted=False, plan="gold")), view).allowed
    # A default plan the operator has not seeded yet: a warning.
    verdict = check("tenants", tenant_request(tenant("new", admitted=False, plan="trial")), FakeView())
    assert verdict.allowed and "default plans" in verdict.warnings[0]


def test_an_unknown_region_too_many_domains_and_a_bad_owner_are_denied() -> None:
    view = FakeView()
    assert check("tenants", tenant_request(tenant("a", admitted=False, region="mars")), view).reason == "UnknownRegion"
    many = tenant("b", admitted=False, domains=[{"host": "a.example"}, {"host": "b.example"}])
    assert check("tenants", tenant_request(many), view).reason == "TooManyDomains"
    bad = tenant("c", admitted=False, owners=[{"kind": "Group", "name": "system:authenticated"}])
    verdict = check("tenants", tenant_request(bad), view)
    assert not verdict.allowed and verdict.reason == "InvalidOwner"


def test_a_duplicate_email_of_an_admitted_tenant_is_denied_of_a_waiting_one_warned() -> None:
    live = {("Tenant", "bakery"): {"metadata": {"name": "bakery"}}}
    view = FakeView(tenant("bakery", email="joe@x.example"), live=live)
    verdict = check("tenants", tenant_request(tenant("copy", admitted=False, email="joe@x.example")), view)
    assert not verdict.allowed and verdict.reason == "DuplicateEmail"
    waiting = FakeView(tenant("early", admitted=False, email="joe@x.example", created="2026-01-01T00:00:00Z"))
    verdict = check("tenants", tenant_request(tenant("copy", admitted=False, email="joe@x.example")), waiting)
    assert verdict.allowed and "DuplicateEmail" in verdict.warnings[0]


def test_a_region_change_of_an_admitted_tenant_is_denied_metadata_changes_pass() -> None:
    old = tenant("bakery")
    view = FakeView(old)
    moved = copy.deepcopy(old)
    moved["spec"]["region"] = "us"
    verdict = check("tenants", tenant_request(moved, UPDATE, old), view)
    assert not verdict.allowed and verdict.reason == "RegionChangeRefused"
    relabelled = copy.deepcopy(old)
    relabelled["metadata"]["finalizers"] = ["tenantry.dev/finalizer"]
    assert check("tenants", tenant_request(relabelled, UPDATE, old), view).allowed


def test_preview_leaves_the_book_as_it_was() -> None:
    view = FakeView(tenant("bakery"))
    before = (list(view.book.all_tenants()), view.book.usage("acme"))
    check("tenants", tenant_request(tenant("bakery", email="other@x.example"), UPDATE, tenant("bakery")), view)
    check("tenants", tenant_request(tenant("late", admitted=False)), view)
    assert (list(view.book.all_tenants()), view.book.usage("acme")) == before


def test_a_plan_larger_than_every_allotment_is_warned() -> None:
    big = copy.deepcopy(PLAN)
    big["metadata"]["name"] = "huge"
    big["spec"]["quota"]["cpu"] = "32"
    verdict = check("plans", request_for(big, username="admin@acme.example"), FakeView())
    assert verdict.allowed and "larger than reseller acme's allotment in every region" in verdict.warnings[0]
    assert "eu: cpu 32 > 4" in verdict.warnings[0]


# -- registration, answers, certificates -----------------------------------------------------------


def test_the_configuration_has_one_webhook_per_rule_with_its_policy_timeout_and_selectors() -> None:
    config = build_webhook_configuration(active_rules().values(), ClientConfig(b"CA", url="https://127.0.0.1:9443"))
    hooks = {w["name"]: w for w in config["webhooks"]}
    assert hooks["ingresses.tenantry.dev"]["failurePolicy"] == FAIL
    assert hooks["ingresses.tenantry.dev"]["clientConfig"]["url"] == "https://127.0.0.1:9443/validate/ingresses"
    assert hooks["ingresses.tenantry.dev"]["namespaceSelector"]["matchExpressions"][0]["key"] == \
        "tenantry.dev/namespace-role"
    assert hooks["tenants.tenantry.dev"]["failurePolicy"] == IGNORE
    assert all(w["timeoutSeconds"] <= 10 and w["sideEffects"] == "None" for w in hooks.values())
    service = build_webhook_configuration(active_rules(("plans",)).values(), ClientConfig(
        b"CA", service_namespace="tenantry-system", service_name="tenantry-webhook"))
    assert "plans.tenantry.dev" not in {w["name"] for w in service["webhooks"]}
    assert service["webhooks"][0]["clientConfig"]["service"]["name"] == "tenantry-webhook"
    with pytest.raises(ValueError, match="names no rule"):
        active_rules(("ingress",))


def test_the_mutating_rule_is_registered_apart_failing_open_quickly_and_never_reinvoked() -> None:
    client = ClientConfig(b"CA", url="https://127.0.0.1:9443")
    validating = build_webhook_configuration(active_rules().values(), client, kind=VALIDATING)
    mutating = build_webhook_configuration(active_rules().values(), client, kind=MUTATING)
    assert (validating["kind"], mutating["kind"]) == ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
    assert mutating["metadata"] == validating["metadata"]
    assert "tenant-finalizer.tenantry.dev" not in {w["name"] for w in validating["webhooks"]}
    [hook] = mutating["webhooks"]
    assert hook["name"] == "tenant-finalizer.tenantry.dev"
    assert hook["clientConfig"] == {"caBundle": "Q0E=", "url": "https://127.0.0.1:9443/mutate/tenant-finalizer"}
    assert hook["rules"] == [{"apiGroups": ["tenantry.dev"], "apiVersions": ["*"], "resources": ["tenants"],
                              "operations": ["CREATE"], "scope": "*"}]
    assert (hook["failurePolicy"], hook["sideEffects"], hook["reinvocationPolicy"]) == (IGNORE, "None", "Never")
    assert hook["timeoutSeconds"] <= 5
    assert hook["namespaceSelector"] == {"matchExpressions": [
        {"key": "tenantry.dev/namespace-role", "operator": "In", "values": ["control"]}]}
    assert all("reinvocationPolicy" not in w for w in validating["webhooks"])
    # Switched off like any rule: the configuration stays, empty (the chart ships it; the operator keeps it).
    assert build_webhook_configuration(active_rules(("tenant-finalizer",)).values(), client,
                                       kind=MUTATING)["webhooks"] == []


def test_a_new_tenant_is_stored_with_the_finalizer_by_a_json_patch() -> None:
    new = tenant("bakery", admitted=False)
    assert finalizer_patch(new) == [{"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}]
    new["metadata"]["finalizers"] = ["example.org/keep"]
    assert finalizer_patch(new) == [{"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER}]
    new["metadata"]["finalizers"] = ["example.org/keep", FINALIZER]
    assert finalizer_patch(new) == []

    admin = "alice@acme.example"
    request = request_for(tenant("bakery", admitted=False), username=admin, group="tenantry.dev", resource="tenants")
    verdict, result = asyncio.run(decide(load_rules()["tenant-finalizer"], request, FakeView(), Identities()))
    assert verdict.allowed and result == "mutated"
    answer = review_response({"apiVersion": "admission.k8s.io/v1", "request": {"uid": "7"}}, verdict)["response"]
    assert answer["uid"] == "7" and answer["allowed"] and answer["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(answer["patch"])) == [
        {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}]
    # Nothing to add: allowed as it is, no patch in the answer.
    request = request_for(new, username=admin, group="tenantry.dev", resource="tenants")
    verdict, result = asyncio.run(decide(load_rules()["tenant-finalizer"], request, FakeView(), Identities()))
    assert result == "allowed"
    assert "patch" not in review_response({"request": {"uid": "8"}}, verdict)["response"]


def test_a_denial_carries_reason_code_and_warnings_reach_the_answer() -> None:
    review = {"apiVersion": "admission.k8s.io/v1", "request": {"uid": "42"}}
    denied = review_response(review, Verdict(False, "HostNotAllowed", "host x is not yours"))
    assert denied["response"] == {"uid": "42", "allowed": False, "status": {
        "status": "Failure", "code": 403, "message": "HostNotAllowed: host x is not yours", "reason": "Forbidden"}}
    warned = review_response(review, Verdict(True, warnings=("no licence is free now",)))
    assert warned["response"] == {"uid": "42", "allowed": True, "warnings": ["no licence is free now"]}


def test_a_failing_validator_follows_its_failure_policy() -> None:
    def broken(request: Request, view: Any) -> Verdict:
        raise RuntimeError("boom")

    rules = load_rules()
    fail_rule = rules["ingresses"].__class__(**{**rules["ingresses"].__dict__, "validate": broken})
    ignore_rule = rules["plans"].__class__(**{**rules["plans"].__dict__, "validate": broken})
    request = as_owner(ingress())
    verdict, result = asyncio.run(decide(fail_rule, request, FakeView(), Identities()))
    assert not verdict.allowed and result == "error"
    verdict, result = asyncio.run(decide(ignore_rule, request, FakeView(), Identities()))
    assert verdict.allowed and result == "error"


def test_the_certificate_is_issued_once_renewed_when_due_and_the_old_ca_stays_trusted() -> None:
    now = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    names = ["127.0.0.1"]
    data, serving = certs.plan_certificate(None, names, now)
    assert data is not None
    leaf = x509.load_pem_x509_certificates(serving.cert_pem)[0]
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(i) for i in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert certs.plan_certificate(data, names, now)[0] is None  # nothing to write: replicas agree
    renewed, _ = certs.plan_certificate(data, names, serving.renew_at + datetime.timedelta(days=1))
    assert renewed is not None and renewed["ca.crt"] == data["ca.crt"] and renewed["tls.crt"] != data["tls.crt"]
    other, _ = certs.plan_certificate(data, ["tenantry-webhook.tenantry-system.svc"], now)
    assert other is not None and other["ca.crt"] == data["ca.crt"]
    late = now + certs.CA_VALIDITY - datetime.timedelta(days=100)
    rotated, serving = certs.plan_certificate(data, names, late)
    assert rotated is not None and rotated["ca.crt"] != data["ca.crt"]
    assert serving.ca_bundle == rotated["ca.crt"] + data["ca.crt"]  # the old CA until it expires
    assert base64.b64encode(serving.ca_bundle)


# -- hosts leaving a tenant: its own Ingresses -------------------------------------------------------


def test_a_host_that_left_is_removed_from_the_tenants_ingress_the_rest_kept() -> None:
    from tenantry.controller.tenant_routes import withdrawal

    body = ingress("www.bakery.example", tls=[{"hosts": ["www.bakery.example", "bakery.acme-cloud.example"],
                                               "secretName": "both"}])
    body["spec"]["rules"].append(ingress("bakery.acme-cloud.example")["spec"]["rules"][0])
    body["metadata"]["resourceVersion"] = "7"
    action, patch, hosts = withdrawal(body, {"bakery.acme-cloud.example"})  # type: ignore[misc]
    assert action == "patch" and hosts == ["www.bakery.example"] and patch is not None
    assert [r["host"] for r in patch["spec"]["rules"]] == ["bakery.acme-cloud.example"]
    assert patch["spec"]["tls"] == [{"hosts": ["bakery.acme-cloud.example"], "secretName": "both"}]
    assert patch["metadata"] == {"resourceVersion": "7",
                                 "annotations": {"tenantry.dev/unrouted-hosts": "www.bakery.example"}}
    assert withdrawal(body, {"bakery.acme-cloud.example", "www.bakery.example"}) is None
    only = ingress("www.bakery.example")
    assert withdrawal(only, {"bakery.acme-cloud.example"}) == ("delete", None, ["www.bakery.example"])


def test_suspension_parks_the_class_and_reactivation_restores_it() -> None:
    from tenantry.controller.tenant_routes import parking

    body = ingress()
    body["metadata"]["resourceVersion"] = "3"
    parked = parking(body, active=False)
    assert parked == {"metadata": {"resourceVersion": "3", "annotations": {
        "tenantry.dev/suspended-ingress-class": "nginx"}}, "spec": {"ingressClassName": "tenantry-suspended"}}
    body["metadata"]["annotations"] = parked["metadata"]["annotations"]
    body["spec"]["ingressClassName"] = "tenantry-suspended"
    assert parking(body, active=False) is None  # parked once
    assert parking(body, active=True) == {"metadata": {"resourceVersion": "3", "annotations": {
        "tenantry.dev/suspended-ingress-class": None}}, "spec": {"ingressClassName": "nginx"}}


@pytest.mark.parametrize(("server", "url", "refused"), [
    ("https://127.0.0.1:6443", None, False),  # make dev-up: the API server reaches this machine's loopback
    ("https://10.0.0.5:6443", None, True),  # kind, a cloud: it cannot, and the security rules fail closed
    ("https://10.0.0.5:6443", "https://192.168.1.2:9443", False),  # an address it can reach, given
])
def test_tenantry_run_registers_loopback_only_for_an_api_server_on_this_machine(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch, server: str, url: str | None, refused: bool) -> None:
    import yaml

    from tenantry.controller.webhook import loopback_unreachable
    from tenantry.webhook.settings import WebhookSettings

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "current-context": "c", "contexts": [{"name": "c", "context": {"cluster": "x", "user": "u"}}],
        "clusters": [{"name": "x", "cluster": {"server": server}}], "users": [{"name": "u", "user": {"token": "t"}}]}))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    reason = loopback_unreachable(WebhookSettings(url=url))
    assert (reason is not None) is refused
    if refused:
        assert "set webhook.url to an address it can reach" in str(reason)


# -- a namespace of the tenant's name not made for it (tenantry/namespace_claim.py) ------------------


def test_a_new_tenant_whose_namespace_name_is_taken_is_warned_at_apply() -> None:
    retained = {"metadata": {"name": "acme--reused", "creationTimestamp": "2026-01-01T00:00:00Z",
                             "annotations": {"tenantry.dev/tenant-uid": "uid-of-a-former-customer"}}}
    view = FakeView(REGION, RESELLER, PLAN, live={("Namespace", "acme--reused"): retained})
    verdict = check("tenants", tenant_request(tenant("reused", admitted=False)), view)
    assert verdict.allowed
    assert verdict.warnings == ("Namespace acme--reused already exists and was not made for this tenant (it was "
                                "retained from an earlier tenant of the same name or made outside Tenantry); "
                                "Tenantry will not hand its contents to a new customer. Delete that namespace (after "
                                "saving what you need) or give the tenant another name. (Ready=False, "
                                "NamespaceTaken)",)
    # Without such a namespace, nothing to say; on an update, no read at all.
    view = FakeView(REGION, RESELLER, PLAN)
    assert check("tenants", tenant_request(tenant("fresh", admitted=False)), view).warnings == ()
    reads = view.reads
    old = tenant("fresh", admitted=False)
    changed = copy.deepcopy(old)
    changed["spec"]["displayName"] = "Fresh"
    assert check("tenants", tenant_request(changed, UPDATE, old), view).allowed and view.reads == reads


def test_ingresses_in_a_namespace_not_made_for_the_tenant_are_in_no_tenants_scope() -> None:
    bakery = tenant("bakery")
    labels = {"app.kubernetes.io/managed-by": "tenantry", "tenantry.dev/reseller": "acme",
              "tenantry.dev/tenant": "bakery"}
    view = FakeView(REGION, RESELLER, PLAN, bakery)
    view.store.put("Namespace", {"metadata": {"name": "acme--bakery", "labels": labels, "resourceVersion": "1",
                                              "annotations": {"tenantry.dev/tenant-uid": "someone-else"}}})
    assert tenant_scope(view.store, "acme--bakery") is None
    verdict = check("ingresses", as_owner(ingress()), view)
    assert not verdict.allowed and verdict.reason == "TenantNotFound"
    view.store.put("Namespace", {"metadata": {"name": "acme--bakery", "labels": labels, "resourceVersion": "2",
                                              "annotations": {"tenantry.dev/tenant-uid": bakery["metadata"]["uid"]}}})
    assert check("ingresses", as_owner(ingress()), view).allowed
