"""A Region's meter keeps its spool and window checkpoint on a volume that outlives its pod (issue 11,
finding 5; DESIGN.md §4 "a restart or a sink outage loses no record").

By default the operator runs each meter as a StatefulSet of one replica with a volumeClaimTemplate,
so a rescheduled meter pod (a node drain, a cluster upgrade) comes back to the same
PersistentVolumeClaim; with `metering.spoolClaim` it mounts that claim instead. A meter Deployment of
the previous version is removed first, and its replacement starts only once it is gone, so that two
meters never share one spool. (That a meter process replaced by another on the same spool directory
mid-window loses nothing is proven with real processes in test_metering.py,
`test_outage_and_crash_lose_no_record_and_replays_keep_ids`.)

The local control plane has no kubelet and no StatefulSet controller: these tests see the objects the
operator makes (what `kubectl get statefulset,deployment -n tenantry-system` shows), not pods.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client import ApiException

from support.cluster import wait_for
from support.operator import TEST_CONFIG, OperatorProcess
from support.platform import Platform

METERS = "tenantry-system"
HOLD = "tests.tenantry.dev/pod-still-stopping"  # stands in for a meter pod that takes its time to stop


def read_or_none(read: Any, name: str) -> Any:
    try:
        return read(name, METERS)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def previous_version_deployment(region: dict[str, Any], spool_volume: dict[str, Any]) -> dict[str, Any]:
    """The meter Deployment as the previous version of the operator applied it (builders/meter.py
    before the StatefulSet): same name, labels and owner as the meter it is replaced by."""
    name = region["metadata"]["name"]
    labels = {"app.kubernetes.io/managed-by": "tenantry", "tenantry.dev/region": name,
              "app.kubernetes.io/name": "tenantry", "app.kubernetes.io/component": "meter"}
    selector = {k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/component", "tenantry.dev/region")}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": f"tenantry-meter-{name}", "namespace": METERS, "labels": labels,
                     "finalizers": [HOLD],
                     "ownerReferences": [{"apiVersion": "tenantry.dev/v1alpha1", "kind": "Region", "name": name,
                                          "uid": region["metadata"]["uid"], "controller": True,
                                          "blockOwnerDeletion": False}]},
        "spec": {"replicas": 1, "strategy": {"type": "Recreate"}, "selector": {"matchLabels": selector},
                 "template": {"metadata": {"labels": labels}, "spec": {
                     "containers": [{"name": "meter", "image": "tenantry:0.0.9",
                                     "args": ["meter", "--region", name, "--spool", "/var/lib/tenantry/spool"],
                                     "volumeMounts": [{"name": "spool", "mountPath": "/var/lib/tenantry"}]}],
                     "volumes": [{"name": "spool", **spool_volume}]}}},
    }


def release(apps: client.AppsV1Api, name: str) -> None:
    """The old meter pod has stopped: the Deployment may go."""
    apps.patch_namespaced_deployment(name, METERS, {"metadata": {"finalizers": None}})


def test_a_regions_meter_keeps_its_spool_on_a_volume_of_its_own_by_default(
        platform: Platform, api_client: client.ApiClient) -> None:
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    region = platform.region()
    name = f"tenantry-meter-{region}"

    found = wait_for(lambda: read_or_none(apps.read_namespaced_stateful_set, name), timeout=60,
                     message=f"StatefulSet {METERS}/{name}")
    spec = found.spec
    assert spec.replicas == 1
    owner = found.metadata.owner_references[0]
    assert (owner.kind, owner.name) == ("Region", region)
    # The volume is the claim template's: spool-tenantry-meter-<region>-0, 1Gi, ReadWriteOnce, the
    # cluster's default storage class; no emptyDir is left in the pod.
    [claim] = spec.volume_claim_templates
    assert claim.metadata.name == "spool"
    assert claim.spec.access_modes == ["ReadWriteOnce"]
    assert claim.spec.resources.requests == {"storage": "1Gi"}
    assert claim.spec.storage_class_name is None
    pod = spec.template.spec
    assert [v.name for v in pod.volumes or []] == ["config"]
    container = pod.containers[0]
    assert container.args[:3] == ["meter", "--region", region]
    assert container.args[container.args.index("--spool") + 1] == "/var/lib/tenantry/spool"
    assert {m.name: m.mount_path for m in container.volume_mounts}["spool"] == "/var/lib/tenantry"
    service = core.read_namespaced_service(name, METERS)
    assert service.spec.selector == spec.selector.match_labels and service.spec.ports[0].port == 9100
    config = yaml.safe_load(core.read_namespaced_config_map(name, METERS).data["config.yaml"])
    assert config["licenseTiers"][0]["minLicenses"] == 1
    assert read_or_none(apps.read_namespaced_deployment, name) is None
    body = platform.wait_condition("Region", region, None, "Metering", "True", "MeterDeployed")
    message = next(c["message"] for c in body["status"]["conditions"] if c["type"] == "Metering")
    assert f"StatefulSet {METERS}/{name}" in message and f"spool-{name}-0" in message

    # Drift: an edit is taken back, a deletion undone.
    apps.patch_namespaced_stateful_set(name, METERS, {"spec": {"replicas": 2}})
    wait_for(lambda: apps.read_namespaced_stateful_set(name, METERS).spec.replicas == 1, timeout=30,
             message="the operator to restore the meter's single replica")
    apps.delete_namespaced_stateful_set(name, METERS)
    wait_for(lambda: (s := read_or_none(apps.read_namespaced_stateful_set, name)) is not None
             and s.metadata.uid != found.metadata.uid, timeout=30,
             message="the operator to recreate the deleted meter StatefulSet")


def test_the_previous_versions_meter_deployment_goes_before_its_statefulset_starts(
        platform: Platform, operator: OperatorProcess, api_client: client.ApiClient) -> None:
    apps = client.AppsV1Api(api_client)
    region = platform.region()
    name = f"tenantry-meter-{region}"
    wait_for(lambda: read_or_none(apps.read_namespaced_stateful_set, name), timeout=60,
             message=f"StatefulSet {METERS}/{name}")

    # The cluster as the previous version left it: a meter Deployment on an emptyDir, no StatefulSet.
    operator.stop()
    try:
        apps.delete_namespaced_stateful_set(name, METERS)
        wait_for(lambda: read_or_none(apps.read_namespaced_stateful_set, name) is None, timeout=30,
                 message="the StatefulSet gone")
        apps.create_namespaced_deployment(METERS, previous_version_deployment(
            platform.get("Region", region) or {}, {"emptyDir": {}}))
    finally:
        operator.start()  # the upgraded operator

    # It removes the Deployment and waits while the old meter pod stops (HOLD keeps the Deployment):
    # a new meter beside the old one would close the same windows from a second spool.
    wait_for(lambda: (d := read_or_none(apps.read_namespaced_deployment, name)) is not None
             and d.metadata.deletion_timestamp is not None, timeout=60,
             message="the operator to delete the previous version's meter Deployment")
    platform.wait_condition("Region", region, None, "Metering", "Unknown", "PreviousMeterStopping", timeout=60)
    assert read_or_none(apps.read_namespaced_stateful_set, name) is None, \
        "the StatefulSet started while the previous meter was still stopping"

    release(apps, name)
    wait_for(lambda: read_or_none(apps.read_namespaced_stateful_set, name), timeout=60,
             message="the StatefulSet once the previous meter is gone")
    assert read_or_none(apps.read_namespaced_deployment, name) is None
    platform.wait_condition("Region", region, None, "Metering", "True", "MeterDeployed", timeout=60)


def test_a_spool_claim_is_kept_across_the_upgrade_and_the_default_takes_over_when_it_is_unset(
        platform: Platform, operator: OperatorProcess, api_client: client.ApiClient, tmp_path: Path) -> None:
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    claim_config = {**TEST_CONFIG, "metering": {"spoolClaim": "spool-{region}"}}
    with_claim = OperatorProcess(operator.kubeconfig, tmp_path, config=claim_config)
    operator.stop()  # one operator at a time
    try:
        # The previous version with `spoolClaim`: the platform's claim, mounted by a meter Deployment.
        region = platform.region()
        name = f"tenantry-meter-{region}"
        pvc = core.create_namespaced_persistent_volume_claim(METERS, {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": f"spool-{region}"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
        apps.create_namespaced_deployment(METERS, previous_version_deployment(
            wait_for(lambda: platform.get("Region", region), message="the Region"),
            {"persistentVolumeClaim": {"claimName": f"spool-{region}"}}))

        with_claim.start()
        wait_for(lambda: (d := read_or_none(apps.read_namespaced_deployment, name)) is not None
                 and d.metadata.deletion_timestamp is not None, timeout=60,
                 message="the operator to delete the previous version's meter Deployment")
        assert read_or_none(apps.read_namespaced_stateful_set, name) is None
        release(apps, name)
        found = wait_for(lambda: read_or_none(apps.read_namespaced_stateful_set, name), timeout=60,
                         message="the StatefulSet once the previous meter is gone")
        # Same claim, same data: no claim template, the platform's claim mounted as the spool.
        assert not found.spec.volume_claim_templates
        volumes = {v.name: v for v in found.spec.template.spec.volumes}
        assert volumes["spool"].persistent_volume_claim.claim_name == f"spool-{region}"
        assert core.read_namespaced_persistent_volume_claim(f"spool-{region}", METERS).metadata.uid == pvc.metadata.uid
        platform.wait_condition("Region", region, None, "Metering", "True", "MeterDeployed", timeout=60)
    finally:
        with_claim.stop()
        operator.start()

    # Back on the default (spoolClaim unset): claim templates cannot be edited in place, so the
    # StatefulSet is replaced (its pod orphaned, then adopted and rolled by the new one).
    replaced = wait_for(lambda: (s := read_or_none(apps.read_namespaced_stateful_set, name)) is not None
                        and s.metadata.uid != found.metadata.uid and s, timeout=60,
                        message="the StatefulSet replaced with the default claim template")
    assert [t.metadata.name for t in replaced.spec.volume_claim_templates] == ["spool"]
    assert "spool" not in {v.name for v in replaced.spec.template.spec.volumes}
    platform.wait_condition("Region", region, None, "Metering", "True", "MeterDeployed", timeout=60)
    core.delete_namespaced_persistent_volume_claim(f"spool-{region}", METERS)
