"""The per-Region meter manifests (builders/meter.py)."""

from __future__ import annotations

import yaml

from tenantry.builders.meter import build_meter_children, meter_name
from tenantry.settings import Settings

REGION = {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Region", "metadata": {"name": "eu-west", "uid": "u-1"}}


def test_meter_runs_tenantry_meter_for_its_region_owned_by_the_region() -> None:
    settings = Settings.model_validate({"metering": {"sink": "https://billing.example/in", "window": "10m"}})
    children = build_meter_children(REGION, settings)
    assert [c["kind"] for c in children] == ["ConfigMap", "Deployment", "Service"]
    for child in children:
        assert child["metadata"]["name"] == meter_name("eu-west") == "tenantry-meter-eu-west"
        assert child["metadata"]["namespace"] == "tenantry-system"
        assert child["metadata"]["ownerReferences"][0]["uid"] == "u-1"
        assert child["metadata"]["labels"]["tenantry.dev/region"] == "eu-west"
    deployment = children[1]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[:2] == ["meter", "--region"] and args[2] == "eu-west"
    assert args[args.index("--sink") + 1] == "https://billing.example/in"
    assert args[args.index("--window") + 1] == "10m"
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "tenantry-meter"
    config = yaml.safe_load(children[0]["data"]["config.yaml"])
    assert Settings.model_validate(config).license_tiers == settings.license_tiers  # the meter reads it back


def test_service_monitor_only_when_asked_and_new_tiers_restart_the_meter() -> None:
    children = build_meter_children(REGION, Settings(), service_monitor=True)
    assert children[-1]["kind"] == "ServiceMonitor"
    assert children[-1]["spec"]["endpoints"][0]["port"] == "metrics"
    cheaper = Settings.model_validate({"licenseTiers": [{"minLicenses": 1, "price": "1.00"}]})
    annotations = [build_meter_children(REGION, s)[1]["spec"]["template"]["metadata"]["annotations"]
                   for s in (Settings(), cheaper)]
    assert annotations[0] != annotations[1]


def test_an_http_sink_secret_becomes_the_authorization_env_from_the_secret() -> None:
    children = build_meter_children(REGION, Settings.model_validate({"metering": {"sinkSecret": "billing-token"}}))
    container = children[1]["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [{"name": "TENANTRY_SINK_AUTHORIZATION", "valueFrom": {
        "secretKeyRef": {"name": "billing-token", "key": "authorization"}}}]
    assert "env" not in build_meter_children(REGION, Settings())[1]["spec"]["template"]["spec"]["containers"][0]
