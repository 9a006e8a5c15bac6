"""The chart, rendered by the real Helm engine, is accepted by a real API server (server-side apply,
dryRun=All): with default values, with non-default values (Prometheus Operator objects included),
and as manifests/install.yaml. Nothing is persisted except the namespaces the objects need."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from chart_support import INSTALL_MANIFEST, REPO, render
from kubernetes import client, dynamic
from kubernetes.client import ApiException

FIELD_MANAGER = "tenantry-chart-test"


def dry_run_apply(api_client: client.ApiClient, objects: list[dict[str, Any]]) -> dict[str, str]:
    """Server-side apply every object with dryRun=All; {kind/name: the API server's refusal}."""
    dyn = dynamic.DynamicClient(api_client)  # fresh discovery: CRDs installed by a fixture are seen
    refused: dict[str, str] = {}
    for obj in objects:
        obj = _as_rendered_for(dyn, obj)
        meta = obj["metadata"]
        where = f"{obj['kind']}/{meta.get('namespace', '')}/{meta['name']}"
        try:
            resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
            dyn.server_side_apply(resource, body=obj, namespace=meta.get("namespace"), field_manager=FIELD_MANAGER,
                                  force_conflicts=True, dry_run="All")
        except (ApiException, dynamic.exceptions.DynamicApiError) as error:
            refused[where] = str(getattr(error, "body", None) or error)[:600]
        except dynamic.exceptions.ResourceNotFoundError as error:
            refused[where] = f"the API server does not serve this kind: {error}"
    return refused


def _as_rendered_for(dyn: dynamic.DynamicClient, obj: dict[str, Any]) -> dict[str, Any]:
    """The object as Helm renders it for this server. The chart's PodDisruptionBudget is policy/v1 from
    Kubernetes 1.21 and policy/v1beta1 before (templates/poddisruptionbudget.yaml, by .Capabilities); Helm
    renders offline for the newest, and the local control plane is 1.20: there the v1beta1 object, whose
    fields are the same, is what an install would send."""
    if obj["kind"] == "PodDisruptionBudget" and obj["apiVersion"] == "policy/v1":
        try:
            dyn.resources.get(api_version="policy/v1", kind="PodDisruptionBudget")
        except dynamic.exceptions.ResourceNotFoundError:
            return {**obj, "apiVersion": "policy/v1beta1"}
    if obj["kind"] == "CustomResourceDefinition" and not _has_cel(dyn):
        # Before 1.25 the apiserver refuses x-kubernetes-validations; the chart's CRDs carry them, and
        # such clusters get the top-level crds/ (the same CRDs without CEL) and `helm install --skip-crds`.
        name = obj["spec"]["names"]["plural"]
        (crd,) = [d for d in yaml.safe_load_all((REPO / "crds" / f"{obj['spec']['group']}_{name}.yaml").read_text())
                  if d]
        return crd
    return obj


def _has_cel(dyn: dynamic.DynamicClient) -> bool:
    version = client.VersionApi(dyn.client).get_code()
    return (int(version.major), int(version.minor.rstrip("+"))) >= (1, 25)


def ensure_namespace(api_client: client.ApiClient, name: str) -> None:
    try:
        client.CoreV1Api(api_client).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    except ApiException as error:
        if error.status != 409:
            raise


# Minimal copies of the Prometheus Operator's CRDs (same group, kinds and the spec structure the
# chart uses), for clusters without it; the real ones are used where installed.
def _crd(plural: str, kind: str, spec_schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.monitoring.coreos.com",
                     "labels": {"tenantry.dev/test-copy": "minimal"}},
        "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
                 "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": f"{kind}List"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                     "type": "object", "properties": {"spec": spec_schema}}}}]},
    }


_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
MONITORING_CRDS = [
    _crd("servicemonitors", "ServiceMonitor", {
        "type": "object", "required": ["selector"],
        "properties": {
            "selector": {"type": "object", "properties": {"matchLabels": _STRING_MAP}},
            "namespaceSelector": {"type": "object", "properties": {
                "any": {"type": "boolean"}, "matchNames": {"type": "array", "items": {"type": "string"}}}},
            "endpoints": {"type": "array", "items": {"type": "object", "properties": {
                "port": {"type": "string"}, "path": {"type": "string"},
                "interval": {"type": "string", "pattern": "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?"
                                                          "(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}}}},
        }}),
    _crd("prometheusrules", "PrometheusRule", {
        "type": "object",
        "properties": {"groups": {"type": "array", "items": {
            "type": "object", "required": ["name", "rules"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "interval": {"type": "string"},
                "rules": {"type": "array", "items": {"type": "object", "required": ["expr"], "properties": {
                    "alert": {"type": "string"}, "record": {"type": "string"},
                    "expr": {"x-kubernetes-int-or-string": True},
                    "for": {"type": "string"}, "labels": _STRING_MAP, "annotations": _STRING_MAP}}},
            }}}}}),
]


@pytest.fixture
def monitoring_crds(api_client: client.ApiClient) -> Iterator[None]:
    """The monitoring.coreos.com CRDs: the cluster's own if it has them, else minimal copies that
    are removed again afterwards (so that no other test sees a Prometheus Operator). In the usual
    order (tests/chart first) this runs before the session's operator starts, so the operator never
    notices the copies come and go."""
    extensions = client.ApiextensionsV1Api(api_client)
    created = []
    for crd in MONITORING_CRDS:
        try:
            extensions.read_custom_resource_definition(crd["metadata"]["name"])
        except ApiException as error:
            if error.status != 404:
                raise
            extensions.create_custom_resource_definition(crd)
            created.append(crd["metadata"]["name"])
    deadline = time.monotonic() + 30
    for name in created:
        while not any(c.type == "Established" and c.status == "True"
                      for c in extensions.read_custom_resource_definition(name).status.conditions or []):
            assert time.monotonic() < deadline, f"CRD {name} was not Established within 30s"
            time.sleep(0.2)
    try:
        yield
    finally:
        for name in created:
            extensions.delete_custom_resource_definition(name)


def test_default_values_are_accepted_by_the_api_server(api_client: client.ApiClient, namespace: str) -> None:
    objects = render(namespace=namespace, include_crds=True)
    assert len(objects) > 10
    assert dry_run_apply(api_client, objects) == {}


def test_non_default_values_are_accepted_by_the_api_server(api_client: client.ApiClient, namespace: str,
                                                           unique_name: Callable[..., str],
                                                           monitoring_crds: None) -> None:
    meters, grafana = unique_name("meters"), unique_name("grafana")
    for name in (meters, grafana):
        ensure_namespace(api_client, name)
    try:
        values = {
            "image": {"repository": "registry.example/tenantry", "tag": "0.2.0"},
            "serviceAccount": {"name": "tenantry-operator", "annotations": {"example.com/role": "operator"}},
            "operator": {"logFormat": "plain", "verbose": True, "priorityClassName": "",
                         "nodeSelector": {"pool": "system"},
                         "tolerations": [{"key": "pool", "operator": "Equal", "value": "system",
                                          "effect": "NoSchedule"}],
                         "podAnnotations": {"example.com/team": "platform"}},
            "config": {"workers": 4, "podSecurityLevel": "restricted", "metering": {"namespace": meters},
                       "defaultPlans": [{"name": "starter", "spec": {
                           "quota": {"cpu": "1", "memory": "1Gi", "storage": "5Gi", "pods": "10"},
                           "pricing": {"currency": "EUR", "monthly": "9.00"}}}]},
            "metrics": {"serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "prom"}}},
            "prometheusRule": {"enabled": True, "labels": {"release": "prom"}},
            "dashboards": {"namespace": grafana},
            "commonLabels": {"example.com/owner": "platform"},
        }
        objects = render(values, release="platform", namespace=namespace)
        kinds = {o["kind"] for o in objects}
        assert {"ServiceMonitor", "PrometheusRule"} <= kinds
        assert dry_run_apply(api_client, objects) == {}
    finally:
        core = client.CoreV1Api(api_client)
        for name in (meters, grafana):
            core.delete_namespace(name)


def test_install_manifest_is_accepted_by_the_api_server(api_client: client.ApiClient) -> None:
    documents = [d for d in yaml.safe_load_all(INSTALL_MANIFEST.read_text()) if d]
    # A dry-run does not create the namespace the other objects go into; the test operator uses
    # the same one, so it is made (not removed) here.
    ensure_namespace(api_client, documents[0]["metadata"]["name"])
    assert dry_run_apply(api_client, documents) == {}


def test_the_dry_run_does_refuse_what_the_api_server_would_refuse(api_client: client.ApiClient,
                                                                 namespace: str) -> None:
    """The checks above are worth something only if a broken manifest fails them."""
    objects = render(namespace=namespace)
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = 70000
    role = next(o for o in objects if o["kind"] == "ClusterRoleBinding")
    del role["roleRef"]
    refused = dry_run_apply(api_client, [deployment, role])
    assert set(refused) == {f"Deployment/{namespace}/tenantry-operator",
                            f"ClusterRoleBinding//{role['metadata']['name']}"}, refused
    assert "containerPort" in refused[f"Deployment/{namespace}/tenantry-operator"]
