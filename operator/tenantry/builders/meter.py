"""Desired children of a Region for metering (DESIGN.md §4): its meter, `tenantry meter --region R`.

In the operator's namespace (`metering.namespace`): a ConfigMap with the meter's configuration
(licence tiers and currency, which the operator's configuration owns), a StatefulSet running the
meter, a Service for its /metrics, and a ServiceMonitor when the Prometheus Operator is installed.
All carry an owner reference to the Region (a cluster-scoped owner may own namespaced objects), so
deleting the Region lets the garbage collector remove its meter.

The meter is a StatefulSet of one replica because its spool (records not yet delivered) and the
checkpoint of its open window must outlive its pod: a node drain or a cluster upgrade reschedules
the pod, and a new meter on an empty volume would have lost both ("a restart or a sink outage loses
no record"). The StatefulSet's claim template gives each Region's meter a PersistentVolumeClaim of
its own (`spool-tenantry-meter-<region>-0`, `metering.spool`) that follows the pod to its next node;
`metering.spoolClaim` (with `{region}` replaced) mounts a claim the platform made instead. A
StatefulSet pod has a fixed name, so its replacement is created only once the old pod is gone: two
meters never run on one spool (they would close the same windows twice and fight over the files).
No `persistentVolumeClaimRetentionPolicy` is set: its default (Retain) is what billing data needs,
and Kubernetes before 1.23 does not know the field.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import yaml

from tenantry.builders.common import owner_reference
from tenantry.metering.sinks import AUTHORIZATION_ENV
from tenantry.naming import LABEL_REGION, managed_labels
from tenantry.settings import Settings

COMPONENT_LABEL = "app.kubernetes.io/component"
COMPONENT = "meter"
NAME_LABEL = "app.kubernetes.io/name"
CONFIG_HASH = "tenantry.dev/meter-config-hash"
STATE_PATH = "/var/lib/tenantry"  # the volume: the spool, and a file: sink's default path (billing/)
SPOOL_PATH = f"{STATE_PATH}/spool"
CONFIG_PATH = "/etc/tenantry"
MEMBER_VOLUME, MEMBER_PATH = "member-cluster", "/etc/tenantry-member"  # the member's kubeconfig (§7)
SPOOL_VOLUME = "spool"


def meter_name(region: str) -> str:
    """`tenantry-meter-<region>`: 45 characters at most (Region names have at most 30)."""
    return f"tenantry-meter-{region}"


def meter_labels(region: str) -> dict[str, str]:
    return {**managed_labels(region=region), NAME_LABEL: "tenantry", COMPONENT_LABEL: COMPONENT}


def spool_claim_name(region: str, settings: Settings) -> str:
    """The PersistentVolumeClaim a region's meter keeps its spool on: `metering.spoolClaim`, or the one
    the StatefulSet controller makes from the claim template (`<template>-<statefulset>-<ordinal>`)."""
    claim = settings.metering.spool_claim
    return claim.replace("{region}", region) if claim else f"{SPOOL_VOLUME}-{meter_name(region)}-0"


def meter_selector(region: str) -> dict[str, str]:
    return {NAME_LABEL: "tenantry", COMPONENT_LABEL: COMPONENT, LABEL_REGION: region}


def meter_config(settings: Settings) -> str:
    """The slice of the operator's configuration a meter reads (YAML, as `--config`)."""
    data = {
        "licenseCurrency": settings.license_currency,
        "licenseTiers": [{"minLicenses": t.min_licenses, "price": str(t.price)} for t in settings.license_tiers],
        # The claim's size and class are the operator's business: a meter never reads them (and an
        # older meter image, which does not know the key, would refuse the file).
        "metering": settings.metering.model_dump(by_alias=True, exclude={"spool"}),
    }
    return yaml.safe_dump(data, sort_keys=True)


def build_meter_children(region: Mapping[str, Any], settings: Settings, *,
                         service_monitor: bool = False) -> list[dict[str, Any]]:
    name = region["metadata"]["name"]
    metering = settings.metering
    namespace = metering.namespace
    labels = meter_labels(name)
    # No blockOwnerDeletion: nothing needs the Region's deletion to wait for its meter, and setting it
    # would need `update` on regions/finalizers (OwnerReferencesPermissionEnforcement).
    owners = [{**owner_reference(region), "blockOwnerDeletion": False}]
    object_name = meter_name(name)
    config = meter_config(settings)

    def metadata() -> dict[str, Any]:
        return {"name": object_name, "namespace": namespace, "labels": dict(labels), "ownerReferences": owners}

    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(), "data": {"config.yaml": config}}
    # A region on a cluster of its own (DESIGN.md §7): the meter stays here, beside the Tenantry kinds and
    # the spool, and reads the tenants' usage from the member with the region's kubeconfig (mounted, so
    # that a rotated Secret reaches it). Members hold no credential of the control cluster.
    member = ((region.get("spec") or {}).get("cluster") or {}).get("kubeconfigSecretRef")
    member_volumes = [{"name": MEMBER_VOLUME, "secret": {"secretName": member["name"], "items": [
        {"key": member.get("key", "value"), "path": "kubeconfig"}]}}] if member else []
    spool_volumes: list[dict[str, Any]] = []
    claim_templates: list[dict[str, Any]] = []
    if metering.spool_claim:
        spool_volumes.append({"name": SPOOL_VOLUME, "persistentVolumeClaim": {
            "claimName": spool_claim_name(name, settings)}})
    else:
        storage_class = metering.spool.storage_class_name
        claim_templates.append({
            "metadata": {"name": SPOOL_VOLUME, "labels": dict(labels)},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": metering.spool.size}},
                     **({"storageClassName": storage_class} if storage_class is not None else {})},
        })
    container = {
        "name": "meter",
        "image": metering.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["tenantry"],
        "args": ["meter", "--region", name, "--sink", metering.sink, "--interval", metering.interval,
                 "--window", metering.window, "--port", str(metering.port), "--spool", SPOOL_PATH,
                 "--config", f"{CONFIG_PATH}/config.yaml",
                 *(["--usage-kubeconfig", f"{MEMBER_PATH}/kubeconfig"] if member else [])],
        "ports": [{"name": "metrics", "containerPort": metering.port, "protocol": "TCP"}],
        **({"env": [{"name": AUTHORIZATION_ENV, "valueFrom": {"secretKeyRef": {
            "name": metering.sink_secret, "key": "authorization"}}}]} if metering.sink_secret else {}),
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "metrics"}, "periodSeconds": 10},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "metrics"}, "periodSeconds": 20,
                          "failureThreshold": 6},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": SPOOL_VOLUME, "mountPath": STATE_PATH},
                         {"name": "config", "mountPath": CONFIG_PATH, "readOnly": True},
                         *([{"name": MEMBER_VOLUME, "mountPath": MEMBER_PATH, "readOnly": True}] if member else [])],
    }
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(),
        "spec": {
            "replicas": 1,
            # The meter's own Service: a StatefulSet names one. Nothing resolves the pod by name, so it
            # need not be headless (and an existing Service's clusterIP cannot change).
            "serviceName": object_name,
            "selector": {"matchLabels": meter_selector(name)},
            "template": {
                "metadata": {
                    "labels": dict(labels),
                    # A new configuration (licence tiers) restarts the meter.
                    "annotations": {CONFIG_HASH: hashlib.sha256(config.encode()).hexdigest()[:16]},
                },
                "spec": {
                    "serviceAccountName": metering.service_account,
                    "automountServiceAccountToken": True,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "fsGroup": 65532,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": [*spool_volumes, {"name": "config", "configMap": {"name": object_name}},
                                *member_volumes],
                },
            },
            **({"volumeClaimTemplates": claim_templates} if claim_templates else {}),
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(),
        "spec": {"selector": meter_selector(name),
                 "ports": [{"name": "metrics", "port": metering.port, "targetPort": "metrics", "protocol": "TCP"}]},
    }
    children = [config_map, statefulset, service]
    if service_monitor:
        children.append({
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": metadata(),
            "spec": {"selector": {"matchLabels": meter_selector(name)},
                     "namespaceSelector": {"matchNames": [namespace]},
                     "endpoints": [{"port": "metrics", "path": "/metrics", "interval": metering.interval}]},
        })
    return children
