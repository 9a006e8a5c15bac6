"""Tenant isolation on shared nodes: what a tenant's Services, Pods, workloads and claims may ask for.

The rules themselves are pure, in `tenantry.guardrails` (external IPs, ExternalName, NodePort and
LoadBalancer Services; host network/PID/IPC, hostPath, privileged containers, capabilities beyond the
baseline, hostPort; priority classes, registries and storage classes the Region and Plan allow). This
module applies them at admission in tenant namespaces, with the tenant's policy from the operator's
picture (its Region's guardrails and the Plan it was admitted on).

Security rules: failure policy Fail (nothing else refuses external IPs, ExternalName or host access on a
cluster whose Pod Security admission does not enforce the namespace label). Exempt.PLATFORM: cluster
admins, and Kubernetes' controllers, whose Pods come from templates this rule checked when the workload
was applied. An update is refused only for what it adds (`guardrails.check_change`): an object made before
a rule (or before a plan narrowed it) can still be scaled, relabelled or deleted, but a Service cannot be
turned into an ExternalName. Priority classes, storage classes, NodePorts and LoadBalancers are refused by
ResourceQuotas too (builders/tenant.py), so those hold even while the webhook is unreachable.
"""

from __future__ import annotations

from tenantry.guardrails import TenantPolicy, check_change, tenant_policy
from tenantry.models import PlanSpec, RegionSpec
from tenantry.naming import LABEL_PLAN, LABEL_REGION
from tenantry.webhook.registry import (
    CREATE,
    FAIL,
    TENANT_NAMESPACES,
    UPDATE,
    ClusterView,
    Exempt,
    Request,
    Verdict,
    allow,
    deny,
    rule,
)

UNKNOWN = "(unknown)"
SUMMARY = ("tenant namespaces: no external IPs, ExternalName, NodePort or LoadBalancer Services; no host "
           "network, PID, IPC, hostPath, privileged containers, extra capabilities or hostPort; only the Region's "
           "priority classes and registries and the Plan's storage classes")


def _policy(request: Request, view: ClusterView) -> TenantPolicy:
    """The policy of the request's tenant namespace: its Region's guardrails, its admitted Plan."""
    scope = view.tenant_for_namespace(request.namespace)
    if scope is not None:
        admission = (scope.tenant.get("status") or {}).get("admission") or {}
        region = str(admission.get("region") or (scope.spec.region if scope.spec is not None else ""))
        plan = str(admission.get("plan") or (scope.spec.plan if scope.spec is not None else ""))
        region_spec: RegionSpec | None = scope.region
        plan_spec: PlanSpec | None = scope.plan
        return tenant_policy(region or UNKNOWN, region_spec, plan or UNKNOWN, plan_spec)
    # A tenant namespace whose Tenant the operator does not know (yet): its labels still say where it
    # runs; the fixed rules and the safe defaults (no priority class) apply.
    namespace = view.store.get("Namespace", request.namespace) or {}
    labels = (namespace.get("metadata") or {}).get("labels") or {}
    return tenant_policy(labels.get(LABEL_REGION) or UNKNOWN, None, labels.get(LABEL_PLAN) or UNKNOWN, None)


def check_isolation(request: Request, view: ClusterView) -> Verdict:
    if request.object is None:
        return allow()
    old = request.old_object if request.operation == UPDATE else None
    denials = check_change(old, request.object, _policy(request, view))
    if not denials:
        return allow()
    return deny(denials[0].reason, "; ".join(map(str, denials)))


def _register(name: str, group: str, resources: tuple[str, ...]) -> None:
    rule(name, group=group, resources=resources, operations=(CREATE, UPDATE), failure_policy=FAIL,
         namespaces=TENANT_NAMESPACES, exempt=Exempt.PLATFORM, summary=SUMMARY)(check_isolation)


_register("isolation-core", "", ("pods", "services", "persistentvolumeclaims", "replicationcontrollers"))
_register("isolation-apps", "apps", ("deployments", "replicasets", "statefulsets", "daemonsets"))
_register("isolation-batch", "batch", ("jobs", "cronjobs"))
