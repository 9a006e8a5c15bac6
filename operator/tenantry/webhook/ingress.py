"""Tenants' own Ingresses and HTTPRoutes: only the tenant's routed hosts, only its Region's class.

Tenant owners and their reseller's support staff may create, change and delete Ingresses (and Gateway API
HTTPRoutes) in the tenant namespace (ClusterRoles `tenantry-tenant-owner`, `tenantry-reseller-support`).
These rules make that safe on a shared ingress controller (the Capsule model, `internal/webhook/ingress`):

- every host (Ingress `spec.rules[].host` and `spec.tls[].hosts`, HTTPRoute `spec.hostnames`) is one of the
  tenant's routed hosts, `status.hosts` of its Tenant: its default host and its verified custom domains.
  A rule without a host, a `defaultBackend`, or an HTTPRoute without hostnames would answer for every host
  of the controller, so they are refused too. A suspended tenant has no routed hosts.
- the Ingress class (`spec.ingressClassName`, or the older annotation `kubernetes.io/ingress.class`) is the
  Region's (`spec.ingress.className`). An Ingress naming no class is refused, not defaulted: the cluster's
  default class may be another controller, and a validating webhook must not change the object (the
  message says which class to write).
- ingress-nginx `*-snippet` annotations are refused: they inject raw controller configuration, which on a
  shared controller reads other tenants' Secrets (CVE-2021-25742).
- objects labelled `app.kubernetes.io/managed-by: tenantry` (the operator's own Ingress `tenantry`, the
  default route) cannot be created, changed or deleted by anyone but the operator.

Security rules: failure policy Fail. Cluster admins and Kubernetes' controllers are exempt (Exempt.PLATFORM).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tenantry.naming import LABEL_MANAGED_BY, MANAGED_BY
from tenantry.webhook.registry import (
    CREATE,
    DELETE,
    FAIL,
    IGNORE,
    TENANT_NAMESPACES,
    UPDATE,
    ClusterView,
    Exempt,
    Request,
    TenantScope,
    Verdict,
    allow,
    deny,
    rule,
)

MANAGED_BY_TENANTRY = "ManagedByTenantry"
TENANT_NOT_FOUND = "TenantNotFound"
TENANT_NOT_ACTIVE = "TenantNotActive"
HOST_REQUIRED = "HostRequired"
HOST_NOT_ALLOWED = "HostNotAllowed"
DEFAULT_BACKEND_NOT_ALLOWED = "DefaultBackendNotAllowed"
INGRESS_CLASS_REQUIRED = "IngressClassRequired"
INGRESS_CLASS_NOT_ALLOWED = "IngressClassNotAllowed"
SNIPPET_NOT_ALLOWED = "SnippetAnnotationNotAllowed"

CLASS_ANNOTATION = "kubernetes.io/ingress.class"
SNIPPET_PREFIX = "nginx.ingress.kubernetes.io/"


def managed_by_tenantry(request: Request) -> Verdict | None:
    """A denial when the object is (or would become) one of the operator's own: only the operator (exempt
    from every rule) may touch those. Shared with other rules of tenant namespaces."""
    labelled = [obj for obj in (request.object, request.old_object)
                if obj is not None and ((obj.get("metadata") or {}).get("labels") or {}).get(LABEL_MANAGED_BY)
                == MANAGED_BY]
    if not labelled:
        return None
    what = f"{request.kind} {request.name}"
    if request.operation == CREATE or (request.old_object is not None and request.old_object not in labelled):
        return deny(MANAGED_BY_TENANTRY, f"the label {LABEL_MANAGED_BY}: {MANAGED_BY} marks objects Tenantry makes; "
                    f"remove it from {what}.")
    verb = "deleted" if request.operation == DELETE else "changed"
    return deny(MANAGED_BY_TENANTRY, f"{what} is made by Tenantry from the Tenant and cannot be {verb} here; "
                "create an object of your own instead (the reseller changes the default route with the Tenant's "
                "spec.ingress).")


def _listed(hosts: Iterable[str]) -> str:
    return ", ".join(hosts) or "none"


def scope_problem(scope: TenantScope | None, namespace: str, what: str) -> Verdict | None:
    """Why nothing can be routed in this namespace right now, or None."""
    if scope is None:
        return deny(TENANT_NOT_FOUND, f"namespace {namespace} belongs to no Tenant the operator knows; {what} "
                    "cannot be created here.")
    if scope.phase == "Terminating":
        return deny(TENANT_NOT_ACTIVE, f"tenant {scope.name} is being deleted; {what} cannot be created or changed.")
    if not scope.hosts:
        why = ("is suspended (spec.active: false), so none of its hosts is served until it is reactivated"
               if scope.phase == "Suspended" else "has no routed host yet (it is not admitted, or its hosts are "
               "still being set up); see the Tenant's conditions")
        return deny(TENANT_NOT_ACTIVE, f"tenant {scope.name} {why}.")
    return None


def host_problem(host: str, scope: TenantScope, where: str) -> str | None:
    """Why `host` may not be routed by this tenant, in the words of its Tenant's conditions, or None."""
    if not host:
        return (f"{where} has no host, so it would answer for every host of the ingress controller; set it to one "
                f"of this tenant's hosts ({_listed(scope.hosts)})")
    if host in scope.hosts:
        return None
    pending = {d.get("host"): d for d in (scope.tenant.get("status") or {}).get("domains") or ()}
    if host in pending:
        message = pending[host].get("message") or "it is not verified yet"
        return f"host {host} ({where}) is a custom domain of this tenant that is not routed yet: {message}"
    return (f"host {host} ({where}) is not one of this tenant's hosts ({_listed(scope.hosts)}); ask your reseller "
            "to add it to the Tenant's spec.domains and prove ownership of it (DNS TXT) first")


def _class_problem(obj: Mapping[str, Any], scope: TenantScope) -> tuple[str, str] | None:
    spec = obj.get("spec") or {}
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    named = spec.get("ingressClassName")
    annotated = annotations.get(CLASS_ANNOTATION)
    wanted = scope.ingress_class
    region = scope.spec.region if scope.spec is not None else "of the tenant"
    if named and annotated and named != annotated:
        return (INGRESS_CLASS_NOT_ALLOWED, f"spec.ingressClassName {named} and the annotation {CLASS_ANNOTATION} "
                f"{annotated} disagree; set spec.ingressClassName: {wanted or '(none)'} and drop the annotation")
    given = named or annotated
    if wanted is None:
        if given:
            return (INGRESS_CLASS_NOT_ALLOWED, f"ingress class {given} is not allowed: region {region} names no "
                    "ingress class, so leave spec.ingressClassName out")
        return None
    if not given:
        return (INGRESS_CLASS_REQUIRED, f"the Ingress names no class; set spec.ingressClassName: {wanted} "
                f"(the class of region {region})")
    if given != wanted:
        return (INGRESS_CLASS_NOT_ALLOWED, f"ingress class {given} is not this tenant's; use {wanted}, the class of "
                f"region {region}")
    return None


def ingress_problems(obj: Mapping[str, Any], scope: TenantScope) -> list[tuple[str, str]]:
    """Every (reason, sentence) wrong with a tenant's Ingress; empty when it may be served."""
    problems: list[tuple[str, str]] = []
    spec = obj.get("spec") or {}
    class_problem = _class_problem(obj, scope)
    if class_problem:
        problems.append(class_problem)
    if spec.get("defaultBackend") or spec.get("backend"):
        problems.append((DEFAULT_BACKEND_NOT_ALLOWED, "spec.defaultBackend would answer for every host of the ingress "
                         "controller; route each of this tenant's hosts with spec.rules instead"))
    for index, entry in enumerate(spec.get("rules") or ()):
        problem = host_problem(str(entry.get("host") or ""), scope, f"spec.rules[{index}]")
        if problem:
            problems.append((HOST_REQUIRED if not entry.get("host") else HOST_NOT_ALLOWED, problem))
    for index, entry in enumerate(spec.get("tls") or ()):
        hosts = entry.get("hosts") or ()
        if not hosts:
            problems.append((HOST_REQUIRED, f"spec.tls[{index}] names no hosts; list the hosts its Secret serves"))
        for host in hosts:
            problem = host_problem(str(host), scope, f"spec.tls[{index}]")
            if problem:
                problems.append((HOST_NOT_ALLOWED, problem))
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    for key in sorted(annotations):
        if key.startswith(SNIPPET_PREFIX) and key.endswith("-snippet"):
            problems.append((SNIPPET_NOT_ALLOWED, f"annotation {key} injects configuration into the shared ingress "
                             "controller (CVE-2021-25742) and is not allowed in tenant namespaces"))
    return problems


def _verdict(problems: list[tuple[str, str]]) -> Verdict:
    if not problems:
        return allow()
    # One message with every problem, so that a person fixes them all at once; the first one's reason.
    return deny(problems[0][0], "; ".join(message for _, message in problems) + ".")


def _being_deleted(request: Request) -> bool:
    return bool(((request.object or {}).get("metadata") or {}).get("deletionTimestamp"))


def _check_route(request: Request, view: ClusterView, what: str,
                 problems_of: Callable[[Mapping[str, Any], TenantScope], list[tuple[str, str]]]) -> Verdict:
    """The verdict on an Ingress or HTTPRoute (`what`) in a tenant namespace, whose problems `problems_of` lists."""
    guarded = managed_by_tenantry(request)
    if guarded is not None:
        return guarded
    if _being_deleted(request):
        return allow()
    scope = view.tenant_for_namespace(request.namespace)
    problem = scope_problem(scope, request.namespace, what)
    if problem is not None or scope is None:
        return problem or allow()
    return _verdict(problems_of(request.body, scope))


@rule("ingresses", group="networking.k8s.io", resources=("ingresses",), operations=(CREATE, UPDATE),
      failure_policy=FAIL, namespaces=TENANT_NAMESPACES, exempt=Exempt.PLATFORM,
      summary="Ingresses in tenant namespaces: only the tenant's routed hosts (status.hosts) and its Region's "
              "class; no host-less rule, default backend or nginx snippet; Tenantry's own Ingress unchangeable")
def check_ingress(request: Request, view: ClusterView) -> Verdict:
    return _check_route(request, view, "an Ingress", ingress_problems)


def httproute_problems(obj: Mapping[str, Any], scope: TenantScope) -> list[tuple[str, str]]:
    hostnames = (obj.get("spec") or {}).get("hostnames") or ()
    if not hostnames:
        return [(HOST_REQUIRED, "spec.hostnames is empty, so the route would answer for every host of the Gateway; "
                 f"list this tenant's hosts it serves ({_listed(scope.hosts)})")]
    problems = []
    for index, host in enumerate(hostnames):
        problem = host_problem(str(host), scope, f"spec.hostnames[{index}]")
        if problem:
            problems.append((HOST_NOT_ALLOWED, problem))
    return problems


@rule("httproutes", group="gateway.networking.k8s.io", resources=("httproutes",),
      operations=(CREATE, UPDATE), failure_policy=FAIL, namespaces=TENANT_NAMESPACES, exempt=Exempt.PLATFORM,
      summary="Gateway API HTTPRoutes in tenant namespaces: hostnames only the tenant's routed hosts, never empty "
              "(takes effect wherever the Gateway API CRDs are installed)")
def check_httproute(request: Request, view: ClusterView) -> Verdict:
    return _check_route(request, view, "an HTTPRoute", httproute_problems)


@rule("ingresses-delete", group="networking.k8s.io", resources=("ingresses",), operations=(DELETE,),
      failure_policy=IGNORE, namespaces=TENANT_NAMESPACES, exempt=Exempt.PLATFORM,
      object_selector={"matchLabels": {LABEL_MANAGED_BY: MANAGED_BY}},
      summary="Tenantry's own Ingress cannot be deleted by tenants (fails open: the operator makes it again within "
              "seconds, and a namespace being deleted never waits for the webhook)")
def check_ingress_delete(request: Request, view: ClusterView) -> Verdict:
    return managed_by_tenantry(request) or allow()
