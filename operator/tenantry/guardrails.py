"""What a tenant may create in its namespace on shared nodes: the rules, pure (issue 17).

Each `check_*` function takes an object as the API server received it (a dict) and the tenant's
effective `TenantPolicy` (its Region's guardrails and its Plan's storage classes), and returns the
denials, each naming the field, the rule (a CamelCase reason) and why in words a tenant understands,
e.g. `spec.externalIPs: a tenant's Service may not set external IPs (CVE-2020-8554: ...)`. No I/O.

The admission webhook applies them in tenant namespaces (fail closed). Where the API server can
enforce a rule by itself, a ResourceQuota does it as well (builders/tenant.py: NodePort and
LoadBalancer Services, priority classes, storage classes a plan does not sell), so those hold even
while the webhook is unreachable; the webhook only says it sooner and in clearer words.

Fixed for every tenant (no setting): no external IPs, ExternalName, NodePort or LoadBalancer
Services; no host network, PID or IPC namespace, hostPath volume, privileged container, capability
beyond Pod Security's baseline set, or hostPort. The platform chooses per Region the priority
classes and image registries tenants may use and the storage classes on offer; a Plan narrows the
storage classes to those it sells.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from tenantry.models import PlanSpec, RegionSpec

# The rules, as the reasons of denials (and of the webhook's answers).
EXTERNAL_IPS = "ExternalIPsNotAllowed"
EXTERNAL_NAME = "ExternalNameNotAllowed"
NODE_PORT = "NodePortNotAllowed"
LOAD_BALANCER = "LoadBalancerNotAllowed"
HOST_NAMESPACES = {"hostNetwork": "HostNetworkNotAllowed", "hostPID": "HostPIDNotAllowed",
                   "hostIPC": "HostIPCNotAllowed"}
HOST_PATH = "HostPathNotAllowed"
PRIVILEGED = "PrivilegedNotAllowed"
CAPABILITY = "CapabilityNotAllowed"
HOST_PORT = "HostPortNotAllowed"
PRIORITY_CLASS = "PriorityClassNotAllowed"
REGISTRY = "RegistryNotAllowed"
STORAGE_CLASS = "StorageClassNotSold"

# Capabilities Pod Security's baseline level lets a container add (the container runtimes' default
# set); anything else (NET_ADMIN, SYS_ADMIN, ALL, ...) reaches into the node or other tenants.
BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})

# Where each workload kind keeps the pod spec it stamps out. Checking the template refuses the
# Deployment at `kubectl apply`, instead of its ReplicaSet failing silently to make pods later.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}

# The beta annotation still wins over spec.storageClassName in v1.20 (the quota evaluator and the
# provisioners read it first), so it is checked like the field.
BETA_STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"

DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io"})


class Denial(NamedTuple):
    """One rule an object breaks: where (`spec.template.spec.hostNetwork`), which (`HostNetworkNotAllowed`),
    and why, with what to do instead."""

    path: str
    reason: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class TenantPolicy:
    """The choices that apply to one tenant: from its Region and the Plan it was admitted on."""

    region: str
    plan: str
    allowed_priority_classes: frozenset[str] = frozenset()
    allowed_registries: tuple[str, ...] = ()  # empty: any registry
    allowed_storage_classes: frozenset[str] | None = None  # None: any class


def allowed_storage_classes(region: RegionSpec | None, plan: PlanSpec | None) -> frozenset[str] | None:
    """The classes a tenant may claim storage of: the Plan's among the Region's; None for any."""
    offered = set(region.guardrails.storage_classes) if region else set()
    sold = set(plan.storage_classes) if plan else set()
    if offered and sold:
        return frozenset(sold & offered)
    if sold or offered:
        return frozenset(sold or offered)
    return None


def denied_storage_classes(region: RegionSpec | None, plan: PlanSpec | None) -> tuple[str, ...]:
    """Classes the platform lists for the Region that the tenant's plan does not sell: each gets a
    zero quota. A class the Region does not list is unknown here, so only the webhook refuses it."""
    allowed = allowed_storage_classes(region, plan)
    offered = region.guardrails.storage_classes if region else ()
    return tuple(sorted({c for c in offered if allowed is not None and c not in allowed}))


def tenant_policy(region_name: str, region: RegionSpec | None, plan_name: str, plan: PlanSpec | None) -> TenantPolicy:
    """The effective policy of a tenant in `region` on `plan`. A Region or Plan that is missing counts
    as one with default guardrails: no priority classes, any registry, any storage class."""
    guardrails = region.guardrails if region else None
    return TenantPolicy(
        region=region_name,
        plan=plan_name,
        allowed_priority_classes=frozenset(guardrails.allowed_priority_classes if guardrails else ()),
        allowed_registries=tuple(guardrails.allowed_registries if guardrails else ()),
        allowed_storage_classes=allowed_storage_classes(region, plan),
    )


# ------------------------------------------------------------------------------------------ images


def normalize_image(image: str) -> str:
    """The repository an image is pulled from, in full, as the container runtime resolves it:
    `nginx:1.25` -> `docker.io/library/nginx`, `ghcr.io/acme/app@sha256:...` -> `ghcr.io/acme/app`."""
    name = image.strip().split("@", 1)[0]
    colon, slash = name.rfind(":"), name.rfind("/")
    if colon > slash:  # a tag (a colon before the last slash belongs to a registry's port)
        name = name[:colon]
    parts = name.split("/")
    # As in Docker's reference grammar: the first part names a registry only if it looks like a host.
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        host, path = parts[0].lower(), parts[1:]
    else:
        host, path = DOCKER_HUB, parts
    if host in _DOCKER_HUB_ALIASES:
        host = DOCKER_HUB
        if len(path) == 1:
            path = ["library", *path]
    return "/".join([host, *path])


def normalize_registry(prefix: str) -> str:
    """A registry prefix of `allowedRegistries` in the form `normalize_image` compares with."""
    host, _, rest = prefix.strip().rstrip("/").partition("/")
    host = host.lower()
    if host in _DOCKER_HUB_ALIASES:
        host = DOCKER_HUB
    return f"{host}/{rest}" if rest else host


def registry_allows(image: str, registries: Sequence[str]) -> bool:
    """Whether `image` comes from one of `registries` (prefixes ending at a `/`); any when empty."""
    if not registries:
        return True
    if not image.strip():
        return False
    repository = normalize_image(image)
    return any(repository == prefix or repository.startswith(prefix + "/")
               for prefix in map(normalize_registry, registries))


# ------------------------------------------------------------------------------------------ Services


def check_service(service: Mapping[str, Any], policy: TenantPolicy) -> list[Denial]:
    """External IPs, ExternalName, NodePort and LoadBalancer are refused for every tenant."""
    spec = service.get("spec") or {}
    problems = []
    kind = spec.get("type") or "ClusterIP"
    if kind == "ExternalName":
        problems.append(Denial("spec.type", EXTERNAL_NAME, (
            f"a tenant's Service may not be of type ExternalName (pointing at {spec.get('externalName')!r}) "
            "(CVE-2021-25740: the shared ingress controller would serve whatever that name reaches, such as "
            "another tenant's or the platform's services, on your host); use a ClusterIP Service that selects "
            "your own pods")))
    elif kind == "NodePort":
        problems.append(Denial("spec.type", NODE_PORT, (
            "a tenant's Service may not be of type NodePort: node ports are opened on every node, shared by "
            "all tenants; use a ClusterIP Service and reach it through your Tenant's ingress")))
    elif kind == "LoadBalancer":
        problems.append(Denial("spec.type", LOAD_BALANCER, (
            "a tenant's Service may not be of type LoadBalancer: load balancers open node ports on the shared "
            "nodes and are not part of any plan; use a ClusterIP Service and reach it through your Tenant's "
            "ingress")))
    if spec.get("externalIPs"):
        problems.append(Denial("spec.externalIPs", EXTERNAL_IPS, (
            f"a tenant's Service may not set external IPs ({', '.join(map(str, spec['externalIPs']))}) "
            "(CVE-2020-8554: every pod in the cluster sending to those addresses would reach your pods "
            "instead, other tenants' traffic included); remove spec.externalIPs")))
    return problems


# ------------------------------------------------------------------------------------------ Pods


def _dig(obj: Any, path: Iterable[str]) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _items(value: Any) -> list[tuple[int, Mapping[str, Any]]]:
    return [(i, item) for i, item in enumerate(value or []) if isinstance(item, Mapping)]


def _one_of(allowed: Iterable[str]) -> str:
    names = sorted(allowed)
    return f"allowed: {', '.join(names)}" if names else "none is allowed"


def _capability(name: str) -> str:
    upper = str(name).upper()
    return upper[len("CAP_"):] if upper.startswith("CAP_") else upper


def _container_problems(container: Mapping[str, Any], where: str, policy: TenantPolicy) -> list[Denial]:
    problems = []
    who = f"container {container.get('name', '?')!r}"
    image = str(container.get("image") or "")
    if not registry_allows(image, policy.allowed_registries):
        problems.append(Denial(f"{where}.image", REGISTRY, (
            f"{who}: image {image!r} ({normalize_image(image) if image.strip() else 'no image'}) is not from a "
            f"registry region {policy.region} allows; use an image from one of: "
            f"{', '.join(policy.allowed_registries)}")))
    security = container.get("securityContext") or {}
    if security.get("privileged") is True:
        problems.append(Denial(f"{where}.securityContext.privileged", PRIVILEGED, (
            f"{who}: a tenant's container may not be privileged: it would control the shared node and every "
            "tenant's pods on it")))
    added = (security.get("capabilities") or {}).get("add") or []
    beyond = [name for name in added if _capability(name) not in BASELINE_CAPABILITIES]
    if beyond:
        problems.append(Denial(f"{where}.securityContext.capabilities.add", CAPABILITY, (
            f"{who}: capabilities {', '.join(map(str, beyond))} reach beyond the container into the shared "
            f"node; a tenant's container may add only {', '.join(sorted(BASELINE_CAPABILITIES))}")))
    for index, port in _items(container.get("ports")):
        if port.get("hostPort"):
            problems.append(Denial(f"{where}.ports[{index}].hostPort", HOST_PORT, (
                f"{who}: a tenant's container may not take port {port['hostPort']} of the node (hostPort): "
                "node ports are shared by every tenant on the node; expose it with a ClusterIP Service")))
    return problems


def _storage_class_problem(storage_class: str | None, where: str, policy: TenantPolicy) -> list[Denial]:
    allowed = policy.allowed_storage_classes
    if not storage_class or allowed is None or storage_class in allowed:
        return []
    # The class may have been filled in by the DefaultStorageClass admission plugin, so the hint names
    # what to write rather than suggesting to leave the class out.
    hint = (f"name one of: {', '.join(sorted(allowed))}" if allowed
            else "this plan sells no storage class; ask your reseller for a plan that does")
    return [Denial(where, STORAGE_CLASS, f"storage class {storage_class!r} is not sold on plan {policy.plan!r} "
                                         f"in region {policy.region}; {hint}")]


def _claim_template_problems(claim: Mapping[str, Any], where: str, policy: TenantPolicy) -> list[Denial]:
    """A PersistentVolumeClaim, or a claim template inside a StatefulSet or an ephemeral volume."""
    annotated = ((claim.get("metadata") or {}).get("annotations") or {}).get(BETA_STORAGE_CLASS_ANNOTATION)
    if annotated:
        return _storage_class_problem(str(annotated),
                                      f"{where}metadata.annotations[{BETA_STORAGE_CLASS_ANNOTATION}]", policy)
    return _storage_class_problem((claim.get("spec") or {}).get("storageClassName"),
                                  f"{where}spec.storageClassName", policy)


def _pod_spec_problems(spec: Mapping[str, Any], where: str, policy: TenantPolicy) -> list[Denial]:
    problems = []
    shared = {
        "hostNetwork": "the node's network: it would see and take other tenants' traffic on the node",
        "hostPID": "the node's process namespace: it would see and signal other tenants' processes",
        "hostIPC": "the node's IPC namespace: it would read other tenants' shared memory",
    }
    for field, why in shared.items():
        if spec.get(field) is True:
            problems.append(Denial(f"{where}.{field}", HOST_NAMESPACES[field],
                                   f"a tenant's pod may not use {why}; remove {field}"))
    priority = spec.get("priorityClassName")
    if priority and priority not in policy.allowed_priority_classes:
        problems.append(Denial(f"{where}.priorityClassName", PRIORITY_CLASS, (
            f"priority class {priority!r} is not allowed in region {policy.region}: it would let your pods "
            f"preempt other tenants' pods on the shared nodes ({_one_of(policy.allowed_priority_classes)}; "
            "omit priorityClassName)")))
    for index, volume in _items(spec.get("volumes")):
        name = volume.get("name", "?")
        if volume.get("hostPath") is not None:
            problems.append(Denial(f"{where}.volumes[{index}].hostPath", HOST_PATH, (
                f"volume {name!r}: a tenant's pod may not mount a directory of the node (hostPath): the node's "
                "files and other tenants' data live there; use an emptyDir or a PersistentVolumeClaim")))
        template = _dig(volume, ("ephemeral", "volumeClaimTemplate"))
        if isinstance(template, Mapping):
            problems.extend(_claim_template_problems(
                template, f"{where}.volumes[{index}].ephemeral.volumeClaimTemplate.", policy))
    for group in ("initContainers", "containers", "ephemeralContainers"):
        for index, container in _items(spec.get(group)):
            problems.extend(_container_problems(container, f"{where}.{group}[{index}]", policy))
    return problems


def check_pod(obj: Mapping[str, Any], policy: TenantPolicy) -> list[Denial]:
    """A Pod, or the pod template of a workload (Deployment, StatefulSet, DaemonSet, ReplicaSet,
    ReplicationController, Job, CronJob); a StatefulSet's volume claim templates as PVCs."""
    path = POD_SPEC_PATHS.get(str(obj.get("kind") or "Pod"))
    if path is None:
        return []
    problems = []
    spec = _dig(obj, path)
    if isinstance(spec, Mapping):
        problems.extend(_pod_spec_problems(spec, ".".join(path), policy))
    if obj.get("kind") == "StatefulSet":
        for index, claim in _items(_dig(obj, ("spec", "volumeClaimTemplates"))):
            problems.extend(_claim_template_problems(claim, f"spec.volumeClaimTemplates[{index}].", policy))
    return problems


# ------------------------------------------------------------------------------------------ PVCs


def check_pvc(claim: Mapping[str, Any], policy: TenantPolicy) -> list[Denial]:
    """A PersistentVolumeClaim of a storage class the tenant's plan does not sell is refused. A claim
    naming no class gets the cluster's default (DefaultStorageClass fills it in before this check)."""
    return _claim_template_problems(claim, "", policy)


# ------------------------------------------------------------------------------------------ any object

CHECKS: dict[str, Callable[[Mapping[str, Any], TenantPolicy], list[Denial]]] = {
    "Service": check_service,
    "PersistentVolumeClaim": check_pvc,
    **{kind: check_pod for kind in POD_SPEC_PATHS},
}


def check_object(obj: Mapping[str, Any], policy: TenantPolicy) -> list[Denial]:
    """Every guardrail `obj` breaks; empty for kinds without guardrails."""
    check = CHECKS.get(str(obj.get("kind") or ""))
    return check(obj, policy) if check else []


def check_change(old: Mapping[str, Any] | None, new: Mapping[str, Any], policy: TenantPolicy) -> list[Denial]:
    """What a create or an update adds to the denials: an update is refused only for what it brings.
    An object that already broke a rule (made before the rule, or before a plan narrowed it) can still
    be scaled, relabelled or garbage-collected, while turning a Service into ExternalName is refused."""
    found = check_object(new, policy)
    if old is None:
        return found
    before = set(check_object(old, policy))
    return [problem for problem in found if problem not in before]
