"""The Helm chart, rendered offline by the real Helm engine (helm-python-sdk embeds Helm's Go SDK).

What a platform engineer relies on when installing: the chart lints, its values are validated by
values.schema.json, the operator configuration it writes is exactly the operator's settings, the
Deployment is hardened, the RBAC is the file the integration tests prove, and the shipped CRDs and
manifests/install.yaml are what the repository says they are.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml
from chart_support import (
    CHART,
    DASHBOARD_FILE,
    FILES,
    INSTALL_MANIFEST,
    OPERATOR_ROLE_FILE,
    PLATFORM_ROLES_FILE,
    REPO,
    RULES_FILE,
    find,
    hack_script,
    one,
    render,
)

from tenantry.builders.billing import METER_BILLING_ROLE
from tenantry.builders.reseller import build_reseller_children
from tenantry.naming import CLUSTERROLE_RESELLER, CLUSTERROLE_RESELLER_SUPPORT, CLUSTERROLE_TENANT_OWNER
from tenantry.settings import MeteringSettings, Settings

PLATFORM_ROLE_NAMES = {CLUSTERROLE_RESELLER, CLUSTERROLE_RESELLER_SUPPORT, CLUSTERROLE_TENANT_OWNER}


def _config_of(objects: list[dict[str, Any]], fullname: str = "tenantry") -> dict[str, Any]:
    config_map = one(objects, "ConfigMap", f"{fullname}-config")
    config: dict[str, Any] = yaml.safe_load(config_map["data"]["config.yaml"])
    return config


def _aliases(model: type[Any]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


# ------------------------------------------------------------------------------------------ lint and schema
def test_chart_lints_without_warnings() -> None:
    report = helm.lint(CHART, strict=True, kube_version="v1.20.2")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], report


def test_values_schema_accepts_the_defaults_and_rejects_mistakes() -> None:
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(None)
        mistakes = {
            "config/workers": {"config": {"workers": 0}},
            "podSecurityLevel": {"config": {"podSecurityLevel": "strict"}},
            "'resyncSecond' not allowed": {"config": {"resyncSecond": 60}},  # a typo must not pass silently
            "/config/licenseTiers/0/price": {"config": {"licenseTiers": [{"minLicenses": 1, "price": 25.0}]}},
            "/config/metering/sink": {"config": {"metering": {"sink": "s3://bucket"}}},
            "/operator/logFormat": {"operator": {"logFormat": "xml"}},
            "'replicas' not allowed": {"replicas": 2},
        }
        for expected, values in mistakes.items():
            with pytest.raises(helm.HelmValuesError) as error:
                chart.render(values, name="tenantry", namespace="tenantry-system")
            assert expected in str(error.value), (values, str(error.value))


# ------------------------------------------------------------------------------------------ configuration
def test_config_values_map_one_to_one_to_the_operator_settings() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    config_schema = schema["properties"]["config"]
    hint = "a setting changed in operator/tenantry/settings.py: document it under config: in " \
           "charts/tenantry/values.yaml and values.schema.json (and the README), then run `make manifests`"
    # `webhook` is rendered from the top-level `webhook:` values and the release (its Service, namespace and
    # certificate Secret): test_webhook_values_reach_the_operator_configuration.
    assert set(values["config"]) == _aliases(Settings) - {"webhook"}, hint
    assert set(config_schema["properties"]) == _aliases(Settings) - {"webhook"}, hint
    assert set(values["config"]["metering"]) == _aliases(MeteringSettings), hint
    assert set(config_schema["properties"]["metering"]["properties"]) == _aliases(MeteringSettings), hint
    assert config_schema["additionalProperties"] is False


def test_default_config_is_the_operators_default_with_the_image_and_namespace_filled_in() -> None:
    objects = render(namespace="platform")
    config = Settings.model_validate(_config_of(objects))
    deployment = one(objects, "Deployment", "tenantry-operator")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    expected = Settings().model_copy(update={"metering": Settings().metering.model_copy(
        update={"image": image, "namespace": "platform"}), "webhook": config.webhook})
    assert config == expected
    assert image == "tenantry:0.1.0"


def test_non_default_values_reach_the_operator_configuration_and_deployment() -> None:
    plan = {"name": "starter", "spec": {"displayName": "Starter",
                                        "quota": {"cpu": "2", "memory": "4Gi", "storage": "20Gi", "pods": "20"},
                                        "pricing": {"currency": "EUR", "monthly": "19.00"}}}
    values = {
        "image": {"repository": "registry.example/tenantry", "tag": "0.2.0", "pullPolicy": "Always"},
        "serviceAccount": {"name": "operator"},
        "operator": {"logFormat": "plain", "verbose": True, "nodeSelector": {"pool": "system"},
                     "extraEnv": [{"name": "TZ", "value": "UTC"}]},
        "config": {"workers": 4, "resyncSeconds": 120, "podSecurityLevel": "restricted", "defaultPlans": [plan],
                   "licenseTiers": [{"minLicenses": 1, "price": "30.00"}], "healthPort": 9080, "metricsPort": 9000,
                   "metering": {"sink": "https://billing.example/events", "namespace": "metering",
                                "image": "registry.example/tenantry-meter:0.2.0"}},
    }
    objects = render(values, release="platform", namespace="ops")
    settings = Settings.model_validate(_config_of(objects, "platform-tenantry"))
    assert settings.workers == 4 and settings.resync_seconds == 120
    assert settings.pod_security_level == "restricted"
    assert [p.name for p in settings.default_plans] == ["starter"]
    assert str(settings.license_tiers[0].price) == "30.00"
    assert settings.metering.sink == "https://billing.example/events"
    assert settings.metering.namespace == "metering"
    assert settings.metering.image == "registry.example/tenantry-meter:0.2.0"

    deployment = one(objects, "Deployment", "platform-tenantry-operator")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "registry.example/tenantry:0.2.0"
    assert container["imagePullPolicy"] == "Always"
    assert container["args"][-3:] == ["--log-format", "plain", "--verbose"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"health": 9080, "metrics": 9000,
                                                                          "webhook": 9443}
    assert [e["name"] for e in container["env"]] == ["POD_NAME", "POD_NAMESPACE", "TZ"]
    assert container["env"][-1] == {"name": "TZ", "value": "UTC"}
    assert pod["nodeSelector"] == {"pool": "system"}
    assert pod["serviceAccountName"] == "operator"
    assert one(objects, "ServiceAccount", "operator")["metadata"]["namespace"] == "ops"
    # The meters' account follows the meters into their namespace.
    meter_account = one(objects, "ServiceAccount", "tenantry-meter")
    assert meter_account["metadata"]["namespace"] == "metering"
    meter_binding = one(objects, "ClusterRoleBinding", "tenantry-meter")
    assert meter_binding["subjects"] == [{"kind": "ServiceAccount", "name": "tenantry-meter", "namespace": "metering"}]
    operator_binding = one(objects, "ClusterRoleBinding", "tenantry-operator")
    assert operator_binding["subjects"] == [{"kind": "ServiceAccount", "name": "operator", "namespace": "ops"}]
    service = one(objects, "Service", "platform-tenantry-operator-metrics")
    assert service["spec"]["ports"][0]["port"] == 9000


def test_a_changed_configuration_rolls_the_operator() -> None:
    def checksum(values: dict[str, Any] | None) -> str:
        deployment = one(render(values), "Deployment", "tenantry-operator")
        return str(deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    assert checksum(None) == checksum(None)
    assert checksum(None) != checksum({"config": {"workers": 3}})


# ------------------------------------------------------------------------------------------ the Deployment
def test_operator_deployment_is_hardened_and_highly_available() -> None:
    objects = render()
    deployment = one(objects, "Deployment", "tenantry-operator")
    spec = deployment["spec"]
    # Two replicas, one reconciling (leader election), rolled one at a time: a new pod is a standby
    # until the old leader hands the Lease over.
    assert spec["replicas"] == 2
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["serviceAccountName"] == one(objects, "ServiceAccount", "tenantry")["metadata"]["name"]
    assert "hostNetwork" not in pod and "hostPID" not in pod
    [container] = pod["containers"]
    security = container["securityContext"]
    assert security == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                        "capabilities": {"drop": ["ALL"]}}
    for probe in ("startupProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}, probe
    # Ready: a standby at once (so that the PodDisruptionBudget allows a drain), the leader once started.
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    # Who it is in the Lease and which pod it labels as the leader.
    assert {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]} == {
        "POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
    # Spread over nodes, a disruption takes one at a time.
    [term] = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]
    budget = one(objects, "PodDisruptionBudget", "tenantry-operator")
    assert budget["apiVersion"] == "policy/v1"  # offline Helm renders for the newest Kubernetes; 1.20 gets v1beta1
    assert budget["spec"] == {"minAvailable": 1, "selector": {"matchLabels": spec["selector"]["matchLabels"]}}
    # The webhook is served by the leader only: its Service selects the label the leader puts on its pod.
    webhook_service = one(objects, "Service", "tenantry-webhook")
    assert webhook_service["spec"]["selector"] == {**spec["selector"]["matchLabels"], "tenantry.dev/leader": "true"}
    # Leader election's Lease and the pod label: a Role in the operator's namespace, nothing cluster-wide.
    role = one(objects, "Role", "tenantry-operator-leader-election")
    assert role["metadata"]["namespace"] == "tenantry-system"
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "patch"]}]
    binding = one(objects, "RoleBinding", "tenantry-operator-leader-election")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "tenantry", "namespace": "tenantry-system"}]
    assert not any("leases" in r["resources"] for r in one(objects, "ClusterRole", "tenantry-operator")["rules"])
    assert container["resources"]["requests"] and container["resources"]["limits"]
    # The spec matches the selector, and the metrics Service selects the pod.
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    service = one(objects, "Service", "tenantry-operator-metrics")
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    # Everything the chart makes is labelled the Helm way.
    for obj in objects:
        if obj["kind"] not in ("ClusterRole",):
            assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == "tenantry", obj["metadata"]["name"]


def test_optional_monitoring_objects_are_off_by_default_and_complete_when_on() -> None:
    defaults = render()
    assert not find(defaults, "ServiceMonitor") and not find(defaults, "PrometheusRule")
    assert one(defaults, "ConfigMap", "tenantry-dashboard")

    objects = render({"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}},
                      "prometheusRule": {"enabled": True, "labels": {"release": "prom"}},
                      "dashboards": {"namespace": "grafana", "annotations": {"grafana_folder": "Tenantry"}}})
    monitor = one(objects, "ServiceMonitor", "tenantry-operator")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    service = one(objects, "Service", "tenantry-operator-metrics")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]

    rule = one(objects, "PrometheusRule", "tenantry")
    assert rule["metadata"]["labels"]["release"] == "prom"
    assert rule["spec"] == yaml.safe_load(RULES_FILE.read_text())  # the promtool-tested file, verbatim

    dashboard = one(objects, "ConfigMap", "tenantry-dashboard")
    assert dashboard["metadata"]["namespace"] == "grafana"
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["annotations"] == {"grafana_folder": "Tenantry"}
    assert json.loads(dashboard["data"]["tenantry.json"]) == json.loads(DASHBOARD_FILE.read_text())


def test_a_service_monitor_without_the_service_is_refused() -> None:
    with pytest.raises(helm.HelmError, match=r"needs metrics.service.enabled"):
        render({"metrics": {"service": {"enabled": False}, "serviceMonitor": {"enabled": True}}})


def test_rbac_and_service_accounts_can_be_left_to_the_platform() -> None:
    objects = render({"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "byo"},
                      "meter": {"serviceAccount": {"create": False}}})
    assert not find(objects, "ClusterRole") and not find(objects, "ClusterRoleBinding")
    assert not find(objects, "Role") and not find(objects, "RoleBinding")
    assert not find(objects, "ServiceAccount")
    assert one(objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "byo"
    with pytest.raises(helm.HelmError, match=r"serviceAccount\.name is required"):
        render({"serviceAccount": {"create": False}})


# ------------------------------------------------------------------------------------------ RBAC
def _rules_allow(rules: list[dict[str, Any]], group: str, resource: str, verb: str, name: str | None = None) -> bool:
    for rule in rules:
        if group in rule.get("apiGroups", []) and resource in rule.get("resources", []) \
                and verb in rule.get("verbs", []):
            names = rule.get("resourceNames")
            if not names or (name is not None and name in names):
                return True
    return False


def test_chart_ships_exactly_the_role_files_the_tests_bind() -> None:
    objects = render()
    operator_role = one(objects, "ClusterRole", "tenantry-operator")
    assert operator_role == yaml.safe_load(OPERATOR_ROLE_FILE.read_text())
    platform = [d for d in yaml.safe_load_all(PLATFORM_ROLES_FILE.read_text()) if d]
    # Also the meters' role in control namespaces: the operator holds its permissions, so binds it without `bind`.
    assert {r["metadata"]["name"] for r in platform} == PLATFORM_ROLE_NAMES | {METER_BILLING_ROLE}
    for role in platform:
        assert one(objects, "ClusterRole", role["metadata"]["name"]) == role
    binding = one(objects, "ClusterRoleBinding", "tenantry-operator")
    assert binding["roleRef"]["name"] == "tenantry-operator"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "tenantry", "namespace": "tenantry-system"}]
    # The namespaced Role (leader election) has the rules of the file the tests bind in tenantry-system.
    leader_role = yaml.safe_load((FILES / "operator-leader-election-role.yaml").read_text())
    assert one(objects, "Role", leader_role["metadata"]["name"])["rules"] == leader_role["rules"]


def test_operator_role_has_no_wildcards_no_escalate_and_binds_only_the_platform_roles() -> None:
    rules = yaml.safe_load(OPERATOR_ROLE_FILE.read_text())["rules"]
    for rule in rules:
        for key in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[key], rule
        assert "escalate" not in rule["verbs"], rule
        assert "impersonate" not in rule["verbs"], rule
        if "bind" in rule["verbs"]:
            assert rule == {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
                            "verbs": ["bind"], "resourceNames": sorted(PLATFORM_ROLE_NAMES)}
        # Nothing cluster-critical: no pods, exec, nodes, service accounts, webhooks or CRD writes. Its own
        # webhook registrations only, by name, never `create` (which would let it register any webhook).
        for forbidden in ("pods", "pods/exec", "nodes", "serviceaccounts", "serviceaccounts/token", "roles"):
            assert forbidden not in rule["resources"], rule
        for registrations in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
            if registrations in rule["resources"]:
                assert rule == {"apiGroups": ["admissionregistration.k8s.io"], "resources": [registrations],
                                "verbs": ["get", "patch", "delete"], "resourceNames": ["tenantry"]}, rule
        if "customresourcedefinitions" in rule["resources"]:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule
        if set(rule["resources"]) & {"regions", "resellers"}:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule  # specs belong to the platform admins
    for registrations in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
        assert _rules_allow(rules, "admissionregistration.k8s.io", registrations, "patch", "tenantry")
        assert not _rules_allow(rules, "admissionregistration.k8s.io", registrations, "patch", "another")
        assert not _rules_allow(rules, "admissionregistration.k8s.io", registrations, "create", "tenantry")
    for role in PLATFORM_ROLE_NAMES:
        assert _rules_allow(rules, "rbac.authorization.k8s.io", "clusterroles", "bind", role)
    assert not _rules_allow(rules, "rbac.authorization.k8s.io", "clusterroles", "bind", "cluster-admin")
    assert not _rules_allow(rules, "rbac.authorization.k8s.io", "clusterroles", "bind", "admin")


def test_operator_holds_every_permission_it_grants_reseller_admins() -> None:
    """RBAC lets the operator write ClusterRole tenantry-reseller-<name> (and bind it without `bind`)
    only if it holds each of its permissions itself."""
    rules = yaml.safe_load(OPERATOR_ROLE_FILE.read_text())["rules"]
    reseller = {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Reseller",
                "metadata": {"name": "acme", "uid": "0000-1111"}}
    children = build_reseller_children(reseller, [{"kind": "User", "name": "alice@acme.example"}], {})
    granted = [c for c in children if c["kind"] == "ClusterRole"]
    assert granted, "the reseller builder no longer makes a ClusterRole; update this test"
    for role in granted:
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        for name in rule.get("resourceNames") or [None]:
                            assert _rules_allow(rules, group, resource, verb, name), (group, resource, verb, name)


# ------------------------------------------------------------------------------------------ shipped files
def test_chart_crds_are_the_repository_crds_with_cel() -> None:
    top = {p.name: p.read_bytes() for p in sorted((REPO / "crds").glob("*.yaml"))}
    chart = {p.name: p.read_bytes() for p in sorted((CHART / "crds").glob("*.yaml"))}
    assert top, "no CRDs in crds/"
    assert chart.keys() == top.keys(), "run `make manifests`"
    # Generated from the same models: the chart's carry the CEL rules, crds/ none (tests/unit/test_crd_schema.py
    # checks that this is the only difference).
    rules = re.compile(rb"^ +x-kubernetes-validations:", re.MULTILINE)
    assert not [name for name in top if rules.search(top[name])]
    assert [name for name in chart if rules.search(chart[name])]


def test_install_manifest_is_the_chart_rendered_with_default_values() -> None:
    expected = hack_script("render-manifests").install_manifest()
    assert INSTALL_MANIFEST.read_text() == expected, "manifests/install.yaml is stale: run hack/render-manifests"
    documents = [d for d in yaml.safe_load_all(expected) if d]
    kinds = [d["kind"] for d in documents]
    # Applied in order by kubectl: the namespace first, then the CRDs, before anything that uses them.
    assert kinds[0] == "Namespace" and documents[0]["metadata"]["name"] == "tenantry-system"
    assert kinds.index("Deployment") > max(i for i, k in enumerate(kinds) if k == "CustomResourceDefinition")
    assert {d["metadata"]["name"] for d in documents if d["kind"] == "CustomResourceDefinition"} == {
        f"{plural}.tenantry.dev" for plural in ("regions", "resellers", "plans", "tenants", "licenseorders")}
    for document in documents:
        if document["kind"] not in ("Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
                                    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
            assert document["metadata"]["namespace"] == "tenantry-system", document["metadata"]["name"]


def test_render_script_check_mode_reports_a_stale_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = hack_script("render-manifests")
    stale = tmp_path / "install.yaml"
    stale.write_text("# stale\n")
    monkeypatch.setattr(script, "OUTPUT", stale)
    monkeypatch.setattr(script, "REPO", tmp_path)
    assert script.main(["--check"]) == 1
    assert script.main([]) == 0
    assert script.main(["--check"]) == 0
    assert stale.read_text() == INSTALL_MANIFEST.read_text()


def test_webhook_values_reach_the_operator_configuration() -> None:
    from tenantry.webhook.settings import WebhookCertificate, WebhookService, WebhookSettings

    config = Settings.model_validate(_config_of(render(namespace="platform"))).webhook
    assert config == WebhookSettings(listen="0.0.0.0:9443", namespace="platform",
                                     service=WebhookService(name="tenantry-webhook", namespace="platform", port=443))
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        registration = one(render(namespace="platform"), kind, "tenantry")
        assert "webhooks" not in registration  # the operator's to fill; Helm never touches them
    objects = render({"webhook": {"port": 8443, "certManager": {"enabled": True}, "exemptUsers": ["ci@example.org"],
                                  "disabledRules": ["plans"]}}, namespace="platform")
    config = Settings.model_validate(_config_of(objects)).webhook
    assert (config.listen, config.exempt_users, config.disabled_rules) == ("0.0.0.0:8443", ("ci@example.org",),
                                                                          ("plans",))
    assert config.certificate == WebhookCertificate(secret_name="tenantry-webhook-tls", issuer="CertManager")
    certificate = one(objects, "Certificate", "tenantry-webhook")
    assert certificate["spec"]["dnsNames"][0] == "tenantry-webhook.platform.svc"
    assert certificate["spec"]["secretName"] == config.certificate.secret_name
    deployment = one(objects, "Deployment", "tenantry-operator")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "webhook", "containerPort": 8443, "protocol": "TCP"} in container["ports"]
    service = one(objects, "Service", "tenantry-webhook")
    assert service["spec"]["ports"] == [{"name": "https", "port": 443, "targetPort": "webhook", "protocol": "TCP"}]


def test_without_the_webhook_tenants_may_only_read_ingresses() -> None:
    def routes_rule(objects: list[dict[str, Any]], role: str) -> dict[str, Any]:
        return next(r for r in one(objects, "ClusterRole", role)["rules"] if "ingresses" in r["resources"])

    on, off = render(), render({"webhook": {"enabled": False}})
    for role in ("tenantry-tenant-owner", "tenantry-reseller-support"):
        assert {"create", "update", "patch", "delete"} <= set(routes_rule(on, role)["verbs"])
        assert routes_rule(off, role)["verbs"] == ["get", "list", "watch"]
    assert not [o for o in off if o["metadata"]["name"] == "tenantry-webhook"]
    assert Settings.model_validate(_config_of(off)).webhook.enabled is False
    # Neither registration, validating or mutating (the operator removes both when webhook.enabled is false).
    registrations = ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
    assert {o["kind"] for o in on if o["kind"] in registrations} == set(registrations)
    assert not [o for o in off if o["kind"] in registrations]
