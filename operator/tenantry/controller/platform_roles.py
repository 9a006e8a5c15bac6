"""The platform ClusterRoles the operator binds but never makes, and whether they exist.

The chart installs `tenantry-reseller`, `tenantry-reseller-support`, `tenantry-tenant-owner` and
`tenantry-meter-billing` (charts/tenantry/files/platform-clusterroles.yaml); the operator holds only
`bind` on them. The
apiserver accepts a RoleBinding to a ClusterRole that does not exist, and it grants nothing: a
reseller's admins or a tenant's owners would simply have no access, and nobody would be told.

So the names of every ClusterRole are watched (metadata only: a few dozen names and versions), and
each reconcile of a Reseller or Tenant reports the platform roles its bindings refer to but the
cluster lacks: condition `RolesBound=False`, reason `ClusterRoleMissing` (with it, a Warning Event),
and the gauge `tenantry_missing_clusterrole{clusterrole}`. When such a role appears or disappears,
every Reseller and Tenant is looked at again, so the condition follows within a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tenantry.builders.billing import METER_BILLING_ROLE
from tenantry.conditions import Condition
from tenantry.kube import KubeClient, list_then_watch
from tenantry.naming import CLUSTERROLE_RESELLER, CLUSTERROLE_RESELLER_SUPPORT, CLUSTERROLE_TENANT_OWNER
from tenantry.watch_health import WatchHealth

PLATFORM_ROLES = (CLUSTERROLE_RESELLER, CLUSTERROLE_RESELLER_SUPPORT, CLUSTERROLE_TENANT_OWNER, METER_BILLING_ROLE)
PLATFORM_ROLES_FILE = "charts/tenantry/files/platform-clusterroles.yaml"

ROLES_BOUND = "RolesBound"
CLUSTER_ROLE_MISSING = "ClusterRoleMissing"


def bound_platform_roles(children: Iterable[Mapping[str, Any]]) -> list[str]:
    """The platform ClusterRoles that these desired children's bindings refer to, sorted."""
    roles = set()
    for child in children:
        if child.get("kind") not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        ref = child.get("roleRef") or {}
        if ref.get("kind") == "ClusterRole" and ref.get("name") in PLATFORM_ROLES:
            roles.add(ref["name"])
    return sorted(roles)


def roles_bound_condition(bound: Iterable[str], present: Iterable[str]) -> Condition:
    """`RolesBound`: True when every platform ClusterRole the bindings refer to exists."""
    bound, present = sorted(set(bound)), set(present)
    missing = [role for role in bound if role not in present]
    if missing:
        what = (f"ClusterRole {missing[0]} does not exist, so its binding grants nothing" if len(missing) == 1 else
                f"ClusterRoles {', '.join(missing)} do not exist, so their bindings grant nothing")
        return Condition(ROLES_BOUND, False, CLUSTER_ROLE_MISSING,
                         f"{what}; install the chart's platform roles ({PLATFORM_ROLES_FILE}).")
    if not bound:
        return Condition(ROLES_BOUND, True, ROLES_BOUND, "Nobody is to be granted access through a platform role.")
    what = f"ClusterRole {bound[0]} exists" if len(bound) == 1 else f"ClusterRoles {', '.join(bound)} exist"
    return Condition(ROLES_BOUND, True, ROLES_BOUND, f"{what} and {'is' if len(bound) == 1 else 'are'} bound.")


class PlatformRoles:
    """Which of PLATFORM_ROLES exist, kept by a metadata-only list-and-watch of ClusterRoles.

    `on_change(role, exists)` is called when one of them appears or goes (after the first list,
    which only fills `present`; `on_synced` then reports the initial state)."""

    def __init__(self, client: KubeClient, on_change: Callable[[str, bool], None]):
        self.client = client
        self.on_change = on_change
        self.present: set[str] = set()
        self.synced = asyncio.Event()
        self.health = WatchHealth("ClusterRole")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="watch-platform-clusterroles")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _set(self, present: set[str]) -> None:
        old, self.present = self.present, present
        for role in PLATFORM_ROLES:
            if (role in old) != (role in present) or not self.synced.is_set():
                self.health.isolate(self.on_change, {"metadata": {"name": role}}, role, role in present)

    def _relisted(self, items: list[dict[str, Any]]) -> None:
        self._set({name for item in items if (name := (item.get("metadata") or {}).get("name")) in PLATFORM_ROLES})

    def _event(self, event_type: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if name not in PLATFORM_ROLES:
            return
        self._set(self.present - {name} if event_type == "DELETED" else self.present | {name})

    async def _run(self) -> None:
        await list_then_watch(self.client, "ClusterRole", on_list=self._relisted, on_event=self._event,
                              on_synced=self.synced.set, metadata_only=True, health=self.health)
