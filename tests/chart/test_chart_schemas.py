"""Every object the chart renders (real Helm engine), and manifests/install.yaml, valid in every Kubernetes release
from 1.28 to the newest whose schemas `kubernetes-validate` ships (strict: an unknown field is an error); the
operator's pod meets the Pod Security Standard `restricted`.

The value sets are the defaults and the non-default values the other chart tests use (test_chart_render.py,
test_chart_dry_run.py), so that every branch of the templates is rendered at least once. The local control
plane (1.20) takes them by dry run in test_chart_dry_run.py; newer releases are checked by their schemas here.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
import yaml
from chart_support import INSTALL_MANIFEST, find, render

from support.k8s_schemas import checked_kinds, kubernetes_versions, restricted_violations, schema_problems

VERSIONS = kubernetes_versions()

PLAN = {"name": "starter", "spec": {"displayName": "Starter",
                                    "quota": {"cpu": "2", "memory": "4Gi", "storage": "20Gi", "pods": "20"},
                                    "pricing": {"currency": "EUR", "monthly": "19.00"}}}

# name -> (values, release, namespace)
VALUE_SETS: dict[str, tuple[dict[str, Any] | None, str, str]] = {
    "defaults": (None, "tenantry", "tenantry-system"),
    "non-default operator, config and metering": ({
        "image": {"repository": "registry.example/tenantry", "tag": "0.2.0", "pullPolicy": "Always"},
        "imagePullSecrets": [{"name": "regcred"}],
        "serviceAccount": {"name": "operator", "annotations": {"example.com/role": "operator"}},
        "operator": {"logFormat": "plain", "verbose": True, "nodeSelector": {"pool": "system"},
                     "tolerations": [{"key": "pool", "operator": "Equal", "value": "system", "effect": "NoSchedule"}],
                     "podAnnotations": {"example.com/team": "platform"}, "podLabels": {"example.com/tier": "ops"},
                     "priorityClassName": "platform-critical", "extraEnv": [{"name": "TZ", "value": "UTC"}],
                     "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                         "nodeSelectorTerms": [{"matchExpressions": [
                             {"key": "pool", "operator": "In", "values": ["system"]}]}]}}}},
        "config": {"workers": 4, "resyncSeconds": 120, "podSecurityLevel": "restricted", "defaultPlans": [PLAN],
                   "licenseTiers": [{"minLicenses": 1, "price": "30.00"}], "healthPort": 9080, "metricsPort": 9000,
                   "metering": {"sink": "https://billing.example/events", "namespace": "metering",
                                "image": "registry.example/tenantry-meter:0.2.0"}},
        "commonLabels": {"example.com/owner": "platform"},
    }, "platform", "ops"),
    "monitoring on": ({
        "metrics": {"serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "prom"}}},
        "prometheusRule": {"enabled": True, "labels": {"release": "prom"}},
        "dashboards": {"namespace": "grafana", "annotations": {"grafana_folder": "Tenantry"}},
    }, "tenantry", "tenantry-system"),
    "RBAC and accounts left to the platform": ({
        "rbac": {"create": False}, "serviceAccount": {"create": False, "name": "byo"},
        "meter": {"serviceAccount": {"create": False}},
    }, "tenantry", "tenantry-system"),
    "webhook by cert-manager": ({
        "webhook": {"port": 8443, "certManager": {"enabled": True}, "exemptUsers": ["ci@example.org"],
                    "disabledRules": ["plans"]},
    }, "tenantry", "platform"),
    "webhook off, one replica without leader election, no budget": ({
        "webhook": {"enabled": False}, "replicaCount": 1, "podDisruptionBudget": {"enabled": False},
        "config": {"leaderElection": {"enabled": False}}, "metrics": {"service": {"enabled": False}},
        "dashboards": {"enabled": False},
    }, "tenantry", "tenantry-system"),
}


@cache
def rendered(name: str) -> list[dict[str, Any]]:
    values, release, namespace = VALUE_SETS[name]
    return render(values, release=release, namespace=namespace, include_crds=True)


def install_manifest() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(INSTALL_MANIFEST.read_text()) if d]


@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_object_the_chart_renders_is_valid(name: str) -> None:
    objects = rendered(name)
    problems = schema_problems([(f"chart with {name}", o) for o in objects], VERSIONS)
    assert not problems, "\n".join(problems)


def test_the_value_sets_render_every_kind_of_the_chart() -> None:
    kinds = set().union(*(checked_kinds(rendered(name)) for name in VALUE_SETS))
    assert kinds == {
        "apiextensions.k8s.io/v1 CustomResourceDefinition", "v1 ServiceAccount", "v1 ConfigMap", "v1 Service",
        "rbac.authorization.k8s.io/v1 ClusterRole", "rbac.authorization.k8s.io/v1 ClusterRoleBinding",
        "rbac.authorization.k8s.io/v1 Role", "rbac.authorization.k8s.io/v1 RoleBinding", "apps/v1 Deployment",
        "policy/v1 PodDisruptionBudget", "admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration",
        "admissionregistration.k8s.io/v1 MutatingWebhookConfiguration"}


def test_install_manifest_is_valid() -> None:
    objects = install_manifest()
    assert {o["kind"] for o in objects} >= {"Namespace", "CustomResourceDefinition", "Deployment"}
    problems = schema_problems([("manifests/install.yaml", o) for o in objects], VERSIONS)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", VALUE_SETS)
def test_the_operator_pod_meets_the_restricted_pod_security_standard(name: str) -> None:
    [deployment] = find(rendered(name), "Deployment")
    assert restricted_violations(deployment["spec"]["template"]["spec"]) == []


def test_the_operator_namespace_of_install_manifest_enforces_restricted() -> None:
    """Its pods (the operator, the meters) meet `restricted`, so the namespace says so: on 1.23+ the API server
    refuses anything less there; on older clusters the labels are inert."""
    [namespace] = [o for o in install_manifest() if o["kind"] == "Namespace"]
    labels = namespace["metadata"]["labels"]
    assert {labels.get(f"pod-security.kubernetes.io/{mode}") for mode in ("enforce", "audit", "warn")} == {"restricted"}
