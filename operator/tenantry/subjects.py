"""Which RBAC subjects Tenantry may bind for a reseller or a tenant. Pure logic, no I/O.

A reseller names its tenants' owners (`Tenant.spec.owners`) and the platform names a reseller's
admins (`Reseller.spec.admins`); the operator binds them to powerful ClusterRoles. A name that
stands for more than one person must never get there:
- `system:` users and groups are Kubernetes' own: `system:authenticated` is every signed-in user,
  `system:serviceaccounts` every pod of the cluster, `system:anonymous` anyone at all,
  `system:masters` the cluster admins. The CRDs refuse such names for new objects (a pattern on
  `name`); this check also covers objects stored before that rule, and the admission webhook.
- A ServiceAccount belongs to one namespace: only those of the namespace being granted (the
  tenant's own `<reseller>--<tenant>`, or the reseller's `reseller-<name>`) may be named, so a
  reseller cannot hand a tenant's namespace to a workload running elsewhere.

`subject_problems` says what is wrong, one sentence per bad subject, naming it and what to do
(callers: the Tenant and Reseller reconciles, through the AdmissionBook and `reseller_admin_problems`,
and the admission webhook). `allowed_subjects` keeps only the good ones, so that one bad entry never
withholds access from the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tenantry.admission import INVALID_OWNER
from tenantry.naming import reseller_namespace, tenant_namespace

__all__ = ["INVALID_ADMIN", "INVALID_OWNER", "allowed_subjects", "reseller_admin_problems", "subject_problems",
           "tenant_owner_problems"]

INVALID_ADMIN = "InvalidAdmin"  # Reseller.Ready=False

SYSTEM_PREFIX = "system:"
SERVICE_ACCOUNT_USER_PREFIX = "system:serviceaccount:"  # how a ServiceAccount authenticates as a User


def _fields(subject: Any) -> tuple[str, str, str | None]:
    """(kind, name, namespace) of a model Subject or of a plain dict (as the webhook receives it)."""
    if isinstance(subject, Mapping):
        return str(subject.get("kind", "")), str(subject.get("name", "")), subject.get("namespace")
    return subject.kind, subject.name, getattr(subject, "namespace", None)


def subject_problems(subjects: Iterable[Any], allowed_service_account_namespace: str, *,
                     field: str = "spec.owners") -> list[str]:
    """One sentence per subject Tenantry must not bind; empty when all may be bound.

    `subjects`: models (`tenantry.models.Subject`) or dicts with kind, name and namespace.
    `allowed_service_account_namespace`: the only namespace whose ServiceAccounts may be named.
    `field`: where the subjects are written, for the message (spec.owners, spec.admins)."""
    problems = []
    for index, subject in enumerate(subjects):
        kind, name, namespace = _fields(subject)
        where = f"{field}[{index}]"
        if kind in ("User", "Group") and name.startswith(SYSTEM_PREFIX):
            if kind == "User" and name.startswith(SERVICE_ACCOUNT_USER_PREFIX):
                sa_namespace, _, sa_name = name[len(SERVICE_ACCOUNT_USER_PREFIX):].partition(":")
                if sa_namespace == allowed_service_account_namespace and sa_name:
                    problems.append(
                        f"{where}: User {name} is a ServiceAccount written as a user name, which Tenantry does not "
                        f"bind; write it as {{kind: ServiceAccount, namespace: {sa_namespace}, name: {sa_name}}}.")
                    continue
            what = "user" if kind == "User" else "group"
            problems.append(
                f"{where}: {kind} {name} is a Kubernetes system {what} (names starting with system: stand for "
                f"Kubernetes itself or for many users and workloads at once), and Tenantry never grants access to "
                f"one; name the person's own User or Group instead, or remove it from {field}.")
        elif kind == "ServiceAccount" and namespace != allowed_service_account_namespace:
            problems.append(
                f"{where}: ServiceAccount {namespace}/{name} is outside namespace "
                f"{allowed_service_account_namespace}, and only ServiceAccounts of "
                f"{allowed_service_account_namespace} may be named here; create the ServiceAccount in "
                f"{allowed_service_account_namespace}, or remove it from {field}.")
    return problems


def allowed_subjects(subjects: Iterable[Any], allowed_service_account_namespace: str) -> list[Any]:
    """The subjects that `subject_problems` finds nothing wrong with, in their order."""
    return [s for s in subjects if not subject_problems([s], allowed_service_account_namespace)]


def tenant_owner_problems(owners: Iterable[Any], reseller: str, tenant: str) -> list[str]:
    """What is wrong with a Tenant's spec.owners: ServiceAccounts only of its own namespace."""
    return subject_problems(owners, tenant_namespace(reseller, tenant), field="spec.owners")


def reseller_admin_problems(admins: Iterable[Any], reseller: str) -> list[str]:
    """What is wrong with a Reseller's spec.admins: ServiceAccounts only of its control namespace."""
    return subject_problems(admins, reseller_namespace(reseller), field="spec.admins")
