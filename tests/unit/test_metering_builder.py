"""The per-Region meter manifests (builders/meter.py)."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from tenantry.builders.meter import build_meter_children, meter_name
from tenantry.controller.region import statefulset_must_be_replaced
from tenantry.settings import Settings

REGION = {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Region", "metadata": {"name": "eu-west", "uid": "u-1"}}


def test_meter_runs_tenantry_meter_for_its_region_owned_by_the_region() -> None:
    settings = Settings.model_validate({"metering": {"sink": "https://billing.example/in", "window": "10m"}})
    children = build_meter_children(REGION, settings)
    assert [c["kind"] for c in children] == ["ConfigMap", "StatefulSet", "Service"]
    for child in children:
        assert child["metadata"]["name"] == meter_name("eu-west") == "tenantry-meter-eu-west"
        assert child["metadata"]["namespace"] == "tenantry-system"
        assert child["metadata"]["ownerReferences"][0]["uid"] == "u-1"
        assert child["metadata"]["labels"]["tenantry.dev/region"] == "eu-west"
    statefulset = children[1]
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[:2] == ["meter", "--region"] and args[2] == "eu-west"
    assert args[args.index("--sink") + 1] == "https://billing.example/in"
    assert args[args.index("--window") + 1] == "10m"
    assert statefulset["spec"]["replicas"] == 1 and statefulset["spec"]["serviceName"] == "tenantry-meter-eu-west"
    assert statefulset["spec"]["template"]["spec"]["serviceAccountName"] == "tenantry-meter"
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


def _spool(settings: Settings) -> tuple[list[dict], list[dict], dict]:
    spec = build_meter_children(REGION, settings)[1]["spec"]
    pod = spec["template"]["spec"]
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "spool")
    return spec.get("volumeClaimTemplates", []), [v for v in pod["volumes"] if v["name"] == "spool"], mount


def test_by_default_the_spool_is_a_claim_of_the_meters_own_that_outlives_its_pod() -> None:
    templates, volumes, mount = _spool(Settings())
    assert volumes == []  # no emptyDir: it would go with the pod on a node drain
    labels = build_meter_children(REGION, Settings())[1]["metadata"]["labels"]
    assert templates == [{"metadata": {"name": "spool", "labels": labels}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
    assert mount["mountPath"] == "/var/lib/tenantry"  # the spool, the checkpoint and a file: sink's records
    sized = Settings.model_validate({"metering": {"spool": {"size": "5Gi", "storageClassName": "ssd"}}})
    [template], _, _ = _spool(sized)
    assert template["spec"]["resources"] == {"requests": {"storage": "5Gi"}}
    assert template["spec"]["storageClassName"] == "ssd"
    [no_class], _, _ = _spool(Settings.model_validate({"metering": {"spool": {"storageClassName": ""}}}))
    assert no_class["spec"]["storageClassName"] == ""  # "" is no class (a pre-provisioned volume), not the default


def test_a_spool_claim_is_mounted_instead_of_a_claim_template() -> None:
    templates, volumes, _ = _spool(Settings.model_validate({"metering": {"spoolClaim": "spool-{region}"}}))
    assert templates == []
    assert volumes == [{"name": "spool", "persistentVolumeClaim": {"claimName": "spool-eu-west"}}]


def test_the_spool_size_is_checked_and_is_no_business_of_the_meters_configuration() -> None:
    with pytest.raises(ValidationError, match=r"metering\.spool\.size"):
        Settings.model_validate({"metering": {"spool": {"size": "a lot"}}})
    with pytest.raises(ValidationError, match="larger than zero"):
        Settings.model_validate({"metering": {"spool": {"size": "0"}}})
    sized = Settings.model_validate({"metering": {"spool": {"size": "5Gi"}}})
    config = yaml.safe_load(build_meter_children(REGION, sized)[0]["data"]["config.yaml"])
    assert "spool" not in config["metering"]
    # A new size changes the claim template only, not the pod: the meter is not restarted for it.
    assert (build_meter_children(REGION, sized)[1]["spec"]["template"]
            == build_meter_children(REGION, Settings())[1]["spec"]["template"])


def _served(statefulset: dict) -> dict:
    """The StatefulSet as the apiserver returns it: defaults filled in."""
    served = yaml.safe_load(yaml.safe_dump(statefulset))
    served["spec"].update(podManagementPolicy="OrderedReady", revisionHistoryLimit=10,
                          updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    for template in served["spec"].get("volumeClaimTemplates", []):
        template["spec"]["volumeMode"] = "Filesystem"
        template["status"] = {"phase": "Pending"}
    return served


def test_a_statefulset_is_replaced_only_when_its_volume_cannot_change_in_place() -> None:
    default = build_meter_children(REGION, Settings())[1]
    assert not statefulset_must_be_replaced(_served(default), default)
    bigger = build_meter_children(REGION, Settings.model_validate({"metering": {"spool": {"size": "2Gi"}}}))[1]
    claim = build_meter_children(REGION, Settings.model_validate({"metering": {"spoolClaim": "spool-{region}"}}))[1]
    assert statefulset_must_be_replaced(_served(default), bigger)
    assert statefulset_must_be_replaced(_served(default), claim)  # a claim template to drop
    assert statefulset_must_be_replaced(_served(claim), default)  # a claim template to add
    assert not statefulset_must_be_replaced(_served(claim), claim)
    # What can change in place is applied, not replaced: a new image, new tiers.
    newer = build_meter_children(REGION, Settings.model_validate({"metering": {"image": "tenantry:0.2.0"}}))[1]
    assert not statefulset_must_be_replaced(_served(default), newer)
