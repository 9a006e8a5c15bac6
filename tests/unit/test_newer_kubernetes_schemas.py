"""Every object the operator builds, valid in every Kubernetes release from 1.28 to the newest whose schemas
`kubernetes-validate` ships (strict: an unknown field is an error), and the meter's pod `restricted`.

The local control plane is 1.20, so these releases are checked against their published schemas, not a
running API server (docs/kubernetes-versions.md). The inputs are realistic and cover each variant the
builders have: tenant children active and suspended, with and without owners, routes with TLS Secrets
(Tenantry's CA, a supplied Secret) and cert-manager's (pending and issued), each NetworkPolicy and quota
variant; reseller children with and without admins; meters with a claim template (with and without a
storage class), with a claim of the platform's, with a sink Secret; the webhook registrations (validating and
mutating) by URL and by Service; the leader-election Lease as taken, renewed and released; the Events the
operator posts; the meters' usage and bill ConfigMaps.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest

from support.k8s_schemas import (
    checked_kinds,
    kubernetes_versions,
    restricted_violations,
    schema_problem,
    schema_problems,
)
from tenantry.builders.billing import build_meter_billing_binding
from tenantry.builders.meter import build_meter_children
from tenantry.builders.reseller import build_default_plan, build_reseller_children, reseller_branding
from tenantry.builders.tenant import HostRoute, TenantInputs, build_tenant_children
from tenantry.builders.tls import build_certificate, build_tls_secret, tls_secret_name
from tenantry.controller.leadership import claimed, released, renewed
from tenantry.kube import event_manifest
from tenantry.metering.billing import build_bill_config_map, build_usage_config_map
from tenantry.models import ResellerSpec
from tenantry.naming import managed_labels
from tenantry.settings import Settings
from tenantry.webhook.configuration import MUTATING, ClientConfig, build_webhook_configuration
from tenantry.webhook.registry import active_rules

VERSIONS = kubernetes_versions()
GiB = Decimal(2**30)

RESELLER = {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Reseller",
            "metadata": {"name": "acme", "uid": "6f1c1d0e-7d4c-4d43-9f55-1d2f0b1a2c3d", "resourceVersion": "4711"}}
REGION = {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Region",
          "metadata": {"name": "eu-west", "uid": "0b7e9a52-38a4-4f7e-a3c1-8e1f6e2d4c5b", "resourceVersion": "12"}}
TENANT = {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Tenant",
          "metadata": {"name": "bakery", "namespace": "reseller-acme", "uid": "9a8b7c6d-1234-4e5f-8a9b-0c1d2e3f4a5b",
                       "resourceVersion": "815"}}
OWNERS = ({"kind": "User", "name": "alice@bakery.example"}, {"kind": "Group", "name": "bakery-devs"},
          {"kind": "ServiceAccount", "name": "deployer", "namespace": "acme--bakery"})
ADMINS = ({"kind": "User", "name": "ops@acme.example"},
          {"kind": "ServiceAccount", "name": "automation", "namespace": "reseller-acme"})
CERTIFICATE = {"tls.crt": b"-----BEGIN CERTIFICATE-----\n...", "tls.key": b"-----BEGIN EC PRIVATE KEY-----\n..."}


def tenant_inputs(**overrides: Any) -> TenantInputs:
    """A tenant as controller/tenant.py builds its inputs from a Region with a node pool, a Plan with defaults."""
    base: dict[str, Any] = dict(
        reseller="acme", tenant="bakery", region="eu-west", plan="starter", namespace="acme--bakery",
        quota={"cpu": Decimal(2), "memory": 4 * GiB, "storage": 20 * GiB, "pods": Decimal(20)},
        default_requests={"cpu": "100m", "memory": "128Mi"},
        node_selector={"tenantry.dev/pool": "eu-west"},
        tolerations=[{"key": "tenantry.dev/pool", "operator": "Equal", "value": "eu-west", "effect": "NoSchedule"}],
        ingress_class="nginx", ingress_controller_namespace="ingress-nginx",
        owners=OWNERS, reseller_admins=ADMINS,
        routes=(HostRoute("bakery.acme-cloud.example", tls_secret_name("bakery.acme-cloud.example")),),
        branding={"companyName": "ACME Cloud", "displayName": "ACME", "primaryColor": "#336699"},
        tenant_uid=TENANT["metadata"]["uid"])
    base.update(overrides)
    return TenantInputs(**base)


def tenant_cases() -> list[tuple[str, dict[str, Any]]]:
    hosts = ("bakery.acme-cloud.example", "www.bakery.example")
    variants = {
        "tenant (defaults, TLS by Tenantry's CA)": tenant_inputs(),
        "tenant suspended": tenant_inputs(active=False),
        "tenant restricted, no owners, no admins": tenant_inputs(pod_security_level="restricted", owners=(),
                                                                 reseller_admins=()),
        "tenant without ingress class, controller namespace, node pool": tenant_inputs(
            ingress_class=None, ingress_controller_namespace=None, node_selector={}, tolerations=(),
            default_requests={}),
        "tenant with guardrails (priority and storage classes)": tenant_inputs(
            allowed_priority_classes=("tenant-low", "tenant-batch"), denied_storage_classes=("premium-ssd",)),
        "tenant with a custom domain from a supplied Secret": tenant_inputs(routes=(
            HostRoute(hosts[0], tls_secret_name(hosts[0])), HostRoute(hosts[1], "tenantry-copy-www-bakery"))),
        "tenant with cert-manager, certificate pending": tenant_inputs(routes=tuple(HostRoute(h) for h in hosts)),
        "tenant with cert-manager, certificate issued": tenant_inputs(
            routes=tuple(HostRoute(h, tls_secret_name(h)) for h in hosts)),
    }
    cases = [(case, child) for case, inputs in variants.items() for child in build_tenant_children(inputs)]
    labels = tenant_inputs().labels
    cases.append(("tenant TLS Secret issued by Tenantry's CA", build_tls_secret(
        tls_secret_name(hosts[0]), "acme--bakery", labels, CERTIFICATE, host=hosts[0])))
    cases.append(("tenant TLS Secret copied from a supplied one", build_tls_secret(
        "tenantry-copy-www-bakery", "acme--bakery", labels, CERTIFICATE, host=hosts[1],
        source="acme--bakery/www-cert")))
    cases.append(("tenant cert-manager Certificate", build_certificate(
        hosts[1], "acme--bakery", labels, "ClusterIssuer", "letsencrypt")))
    return cases


def reseller_cases() -> list[tuple[str, dict[str, Any]]]:
    spec = ResellerSpec.model_validate({
        "companyName": "ACME Cloud", "email": "billing@acme.example", "licenses": 10,
        "branding": {"displayName": "ACME", "logoURL": "https://acme.example/logo.svg", "primaryColor": "#336699",
                     "supportEmail": "help@acme.example"}})
    branding = reseller_branding(spec)
    cases = [(f"reseller {what}", child) for what, admins in (("with admins", ADMINS), ("without admins", ()))
             for child in build_reseller_children(RESELLER, admins, branding)]
    cases.append(("reseller CA Secret", build_tls_secret("tenantry-ca", "reseller-acme",
                                                         managed_labels(reseller="acme"), CERTIFICATE, owner=RESELLER)))
    cases.append(("reseller default Plan", build_default_plan("acme", "starter", {
        "quota": {"cpu": "2", "memory": "4Gi", "storage": "20Gi", "pods": "20"}})))
    cases.append(("meter billing RoleBinding",
                  build_meter_billing_binding("acme", "tenantry-meter", "tenantry-system")))
    return cases


METER_SETTINGS = {
    "meter (defaults: claim template, the cluster's default class)": {},
    "meter with a storage class and an http sink Secret": {"metering": {
        "spool": {"size": "5Gi", "storageClassName": "ssd"}, "sink": "https://billing.example/in",
        "sinkSecret": "billing-token"}},
    "meter on a pre-provisioned volume (class \"\")": {"metering": {"spool": {"storageClassName": ""}}},
    "meter on a claim of the platform's": {"metering": {"spoolClaim": "spool-{region}", "namespace": "metering"}},
}


def meter_cases() -> list[tuple[str, dict[str, Any]]]:
    return [(case, child) for case, settings in METER_SETTINGS.items()
            for child in build_meter_children(REGION, Settings.model_validate(settings), service_monitor=True)]


def meter_billing_cases() -> list[tuple[str, dict[str, Any]]]:
    document = {"reseller": "acme", "region": "eu-west", "day": "2026-12-01", "currency": "USD", "tenants": []}
    return [("meter usage ConfigMap", build_usage_config_map(document)),
            ("meter bill ConfigMap", build_bill_config_map(document))]


def webhook_cases() -> list[tuple[str, dict[str, Any]]]:
    ca = b"-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n"
    by_url = build_webhook_configuration(active_rules().values(), ClientConfig(ca, url="https://127.0.0.1:9443"))
    by_service = build_webhook_configuration(
        active_rules(("plans",)).values(),
        ClientConfig(ca, service_namespace="tenantry-system", service_name="tenantry-webhook"),
        owner={"name": "tenantry-operator", "uid": "3c2b1a09-8f7e-4d6c-b5a4-392817263544"})
    mutating_by_url = build_webhook_configuration(active_rules().values(), ClientConfig(
        ca, url="https://127.0.0.1:9443"), kind=MUTATING)
    mutating_by_service = build_webhook_configuration(
        active_rules().values(), ClientConfig(ca, service_namespace="tenantry-system", service_name="tenantry-webhook"),
        owner={"name": "tenantry-operator", "uid": "3c2b1a09-8f7e-4d6c-b5a4-392817263544"}, kind=MUTATING)
    assert mutating_by_url["webhooks"], "no mutating rule: the case checks nothing"
    return [("webhook registration by URL", by_url), ("webhook registration by Service, owned", by_service),
            ("mutating webhook registration by URL", mutating_by_url),
            ("mutating webhook registration by Service, owned", mutating_by_service)]


def lease_cases() -> list[tuple[str, dict[str, Any]]]:
    identity, duration = "tenantry-operator-5d9c7b8f4-x2x7k_3f2a", 15
    created = claimed(None, identity, duration, "tenantry-system", "tenantry-operator")
    stored = {**created, "metadata": {**created["metadata"], "resourceVersion": "901",
                                      "uid": "7e6d5c4b-3a29-4180-9f8e-7d6c5b4a3928"}}
    taken_over = claimed({**stored, "spec": {**stored["spec"], "holderIdentity": "the-other-replica"}}, identity,
                         duration, "tenantry-system", "tenantry-operator")
    return [("Lease created", created), ("Lease taken over", taken_over), ("Lease renewed", renewed(stored)),
            ("Lease released", released(stored))]


def event_cases() -> list[tuple[str, dict[str, Any]]]:
    now = datetime.datetime(2026, 12, 1, 22, 57, tzinfo=datetime.UTC)
    return [(f"Event about a {obj['kind']}", event_manifest(obj, reason=reason, message=message, type_=type_,
                                                            now=now, suffix="0123456789abcdef"))
            for obj, reason, message, type_ in (
                (TENANT, "LicenseLimitReached", "Admitted: no licence is free. " * 60, "Warning"),
                (RESELLER, "Ready", "Ready: control namespace reseller-acme is ready.", "Normal"),
                (REGION, "Overcommitted", "Overcommitted: 12 cores sold of 10.", "Warning"))]


def every_case() -> list[tuple[str, dict[str, Any]]]:
    return [*tenant_cases(), *reseller_cases(), *meter_cases(), *meter_billing_cases(), *webhook_cases(),
            *lease_cases(), *event_cases()]


def test_the_schemas_cover_1_28_to_a_newer_release() -> None:
    assert VERSIONS[0] == "1.28"
    assert len(VERSIONS) >= 2, VERSIONS  # 1.28 .. 1.37 with kubernetes-validate 1.37


def test_the_cases_cover_every_kind_the_operator_writes() -> None:
    assert checked_kinds(o for _, o in every_case()) == {
        "v1 Namespace", "v1 ResourceQuota", "v1 LimitRange", "networking.k8s.io/v1 NetworkPolicy", "v1 ConfigMap",
        "rbac.authorization.k8s.io/v1 RoleBinding", "rbac.authorization.k8s.io/v1 ClusterRoleBinding",
        "rbac.authorization.k8s.io/v1 ClusterRole", "networking.k8s.io/v1 Ingress", "v1 Secret", "apps/v1 StatefulSet",
        "v1 Service", "admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration",
        "admissionregistration.k8s.io/v1 MutatingWebhookConfiguration", "coordination.k8s.io/v1 Lease", "v1 Event"}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_object_the_operator_builds_is_valid(version: str) -> None:
    problems = schema_problems(every_case(), [version])
    assert not problems, "\n".join(problems)


def test_a_wrong_field_is_reported_with_the_object_the_version_and_the_field() -> None:
    """The check can fail: a field no release knows, and a removed apiVersion, are named."""
    [statefulset] = [o for _, o in meter_cases()[:4] if o["kind"] == "StatefulSet"]
    statefulset["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonroot"] = True
    [problem] = schema_problems([("a typo", statefulset)], ["1.30"])
    assert problem.startswith("a typo: apps/v1 StatefulSet tenantry-system/tenantry-meter-eu-west on Kubernetes 1.30:")
    assert "spec.template.spec.containers.0.securityContext" in problem and "'runAsNonroot' was unexpected" in problem
    budget = {"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget", "metadata": {"name": "x"},
              "spec": {"minAvailable": 1}}
    assert schema_problem(budget, "1.28") == "Kubernetes 1.28 does not serve policy/v1beta1 PodDisruptionBudget"


@pytest.mark.parametrize("case", METER_SETTINGS)
def test_the_meter_pod_meets_the_restricted_pod_security_standard(case: str) -> None:
    [statefulset] = [o for c, o in meter_cases() if c == case and o["kind"] == "StatefulSet"]
    assert restricted_violations(statefulset["spec"]["template"]["spec"]) == []


def test_the_restricted_check_names_what_breaks_it() -> None:
    [statefulset] = [o for _, o in meter_cases()[:4] if o["kind"] == "StatefulSet"]
    pod = statefulset["spec"]["template"]["spec"]
    del pod["securityContext"]["seccompProfile"]
    pod["containers"][0]["securityContext"]["capabilities"] = {"add": ["NET_ADMIN"]}
    pod["volumes"].append({"name": "host", "hostPath": {"path": "/var/run"}})
    assert restricted_violations(pod) == [
        "volume host: type ['hostPath'] is not allowed",
        "spec.containers[meter].securityContext.capabilities.drop does not include ALL",
        "spec.containers[meter].securityContext.capabilities.add has ['NET_ADMIN']",
        "spec.containers[meter].securityContext.seccompProfile.type is None (RuntimeDefault or Localhost needed)"]
