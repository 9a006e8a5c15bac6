"""Objects checked against the published schemas of newer Kubernetes (the local control plane is 1.20 and cannot
be newer here), and against the Pod Security Standards' `restricted` profile.

The schemas are those `kubernetes-validate` ships (the OpenAPI of each Kubernetes release turned into JSON
schemas), in their strict form: a field a release does not know is an error, as `kubectl apply
--validate=strict` (the default from 1.27) and server-side field validation report it. An apiVersion a release
no longer serves (policy/v1beta1, networking.k8s.io/v1beta1, ...) has no schema there: also an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import kubernetes_validate
from kubernetes_validate import utils as kv_utils
from packaging.version import Version

OLDEST_CHECKED = Version("1.28")

# Kinds the operator or the chart writes that are not Kubernetes' own: no release's OpenAPI has them.
# Everything else must have a schema in every release checked.
NOT_KUBERNETES_KINDS = frozenset({
    ("cert-manager.io/v1", "Certificate"), ("cert-manager.io/v1", "Issuer"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("tenantry.dev/v1alpha1", "Plan"),
})


def kubernetes_versions() -> list[str]:
    """Every Kubernetes minor release from 1.28 to the newest whose schemas the installed package ships."""
    versions = sorted({Version(v) for v in kv_utils.all_versions()})
    return [f"{v.major}.{v.minor}" for v in versions if v >= OLDEST_CHECKED]


def describe(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('apiVersion')} {obj.get('kind')} {where}{meta.get('name')}"


def schema_problem(obj: Mapping[str, Any], version: str) -> str | None:
    """None when `obj` is valid in Kubernetes `version` (strict), else what is wrong and where."""
    try:
        kubernetes_validate.validate(dict(obj), f"{version}.0", strict=True)
    except kubernetes_validate.ValidationError as error:
        field = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        return f"field {field}: {error.message}"
    except kv_utils.SchemaNotFoundError:
        return f"Kubernetes {version} does not serve {obj.get('apiVersion')} {obj.get('kind')}"
    return None


def schema_problems(cases: Iterable[tuple[str, Mapping[str, Any]]], versions: Sequence[str]) -> list[str]:
    """One line per (object, version) that fails: the case, the object, the Kubernetes version and the field."""
    problems = []
    for case, obj in cases:
        if (obj.get("apiVersion"), obj.get("kind")) in NOT_KUBERNETES_KINDS:
            continue
        for version in versions:
            problem = schema_problem(obj, version)
            if problem:
                problems.append(f"{case}: {describe(obj)} on Kubernetes {version}: {problem}")
    return problems


def checked_kinds(objects: Iterable[Mapping[str, Any]]) -> set[str]:
    return {f"{o['apiVersion']} {o['kind']}" for o in objects
            if (o.get("apiVersion"), o.get("kind")) not in NOT_KUBERNETES_KINDS}


# -- Pod Security Standards, `restricted` (https://kubernetes.io/docs/concepts/security/pod-security-standards/)

# Volume types the restricted profile allows (every other one, hostPath first, is refused).
RESTRICTED_VOLUME_TYPES = frozenset({"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                                     "persistentVolumeClaim", "projected", "secret"})
# sysctls the baseline profile allows.
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes"})


def restricted_violations(pod_spec: Mapping[str, Any]) -> list[str]:
    """What in a pod spec the Pod Security admission would refuse at level `restricted` (which includes
    `baseline`), each naming the field; [] when it complies."""
    problems: list[str] = []
    pod_context = pod_spec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(field):
            problems.append(f"spec.{field} is true")
    for volume in pod_spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            problems.append(f"volume {volume['name']}: type {sorted(kinds)} is not allowed")
    for sysctl in pod_context.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            problems.append(f"spec.securityContext.sysctls: {sysctl.get('name')} is not a safe sysctl")
    if pod_context.get("runAsUser") == 0:
        problems.append("spec.securityContext.runAsUser is 0")
    pod_seccomp = (pod_context.get("seccompProfile") or {}).get("type")
    if pod_seccomp not in (None, "RuntimeDefault", "Localhost"):
        problems.append(f"spec.securityContext.seccompProfile.type is {pod_seccomp}")
    containers = [(kind, c) for kind in ("initContainers", "containers", "ephemeralContainers")
                  for c in pod_spec.get(kind) or []]
    for kind, container in containers:
        where = f"spec.{kind}[{container['name']}].securityContext"
        context = container.get("securityContext") or {}
        capabilities = context.get("capabilities") or {}
        if context.get("privileged"):
            problems.append(f"{where}.privileged is true")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}.allowPrivilegeEscalation is not false")
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"{where}.capabilities.drop does not include ALL")
        if set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append(f"{where}.capabilities.add has {sorted(set(capabilities['add']) - {'NET_BIND_SERVICE'})}")
        run_as_non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
        if run_as_non_root is not True:
            problems.append(f"{where}.runAsNonRoot is not true (nor the pod's)")
        if context.get("runAsUser") == 0:
            problems.append(f"{where}.runAsUser is 0")
        seccomp = (context.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{where}.seccompProfile.type is {seccomp} (RuntimeDefault or Localhost needed)")
        if context.get("procMount", "Default") != "Default":
            problems.append(f"{where}.procMount is {context['procMount']}")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"spec.{kind}[{container['name']}].ports: hostPort {port['hostPort']}")
    return problems
