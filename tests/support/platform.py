"""Making Regions, Resellers, Plans and Tenants in tests, with unique names and sane defaults,
and waiting for what the operator does with them. Everything goes through the real apiserver."""

from __future__ import annotations

import copy
import datetime
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from kubernetes import client

from support.cluster import wait_for

GROUP, VERSION = "tenantry.dev", "v1alpha1"
PLURALS = {"Region": "regions", "Reseller": "resellers", "Plan": "plans", "Tenant": "tenants",
           "LicenseOrder": "licenseorders"}

SMALL = {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "pods": "10"}


def merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


def condition(obj: Mapping[str, Any] | None, type_: str) -> Mapping[str, Any] | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c
    return None


class Platform:
    """A test's own slice of the platform; `cleanup()` deletes what it made (resellers first)."""

    def __init__(self, api: client.ApiClient, unique_name: Callable[..., str]):
        self.api = api
        self.objects = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.unique_name = unique_name
        self._made: list[tuple[str, str, str | None]] = []

    # -- making ------------------------------------------------------------------------------------

    def create(self, kind: str, name: str, spec: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind,
                "metadata": {"name": name, **({"namespace": namespace} if namespace else {})}, "spec": spec}
        if namespace:
            result = self.objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[kind], body)
        else:
            result = self.objects.create_cluster_custom_object(GROUP, VERSION, PLURALS[kind], body)
        self._made.append((kind, name, namespace))
        return dict(result)

    def region(self, name: str | None = None, **overrides: Any) -> str:
        name = name or self.unique_name("rg", max_length=30)
        spec = merge({
            "displayName": name.upper(),
            "nodePool": {"nodeSelector": {"pool": name},
                         "tolerations": [{"key": "pool", "operator": "Equal", "value": name, "effect": "NoSchedule"}]},
            "ingress": {"className": "nginx", "controllerNamespace": "ingress-nginx"},
            "domainVerification": "DNS",
            "capacity": {"cpu": "64", "memory": "256Gi", "storage": "2Ti", "pods": "2000"},
            "pricing": {"currency": "USD", "cpu": "0.020", "memory": "0.0025", "storage": "0.00015"},
        }, overrides)
        self.create("Region", name, spec)
        return name

    def reseller(self, region: str, name: str | None = None, *, licenses: int = 10,
                 allotment: Mapping[str, str] | None = None, admins: list[dict[str, str]] | None = None,
                 **overrides: Any) -> str:
        name = name or self.unique_name("rs", max_length=20)
        spec = merge({
            "companyName": f"{name} Hosting",
            "email": f"billing@{name}.example",
            "licenses": licenses,
            "admins": admins if admins is not None else [{"kind": "User", "name": f"admin@{name}.example"}],
            "branding": {"displayName": f"{name} Cloud", "primaryColor": "#0a7cff"},
            "regions": [{"name": region, "domain": f"{name}-cloud.example", "tls": {"mode": "SelfSigned"},
                         "allotment": dict(allotment or {"cpu": "16", "memory": "64Gi", "storage": "500Gi",
                                                         "pods": "400"})}],
        }, overrides)
        self.create("Reseller", name, spec)
        return name

    def plan(self, reseller: str, name: str = "small", *, quota: Mapping[str, str] | None = None,
             custom_domains: int = 0, **overrides: Any) -> str:
        spec = merge({
            "displayName": name.title(),
            "quota": dict(quota or SMALL),
            "defaults": {"cpu": "100m", "memory": "128Mi"},
            "customDomains": custom_domains,
            "pricing": {"currency": "EUR", "monthly": "19.00", "cpu": "0.05", "memory": "0.006", "storage": "0.0004"},
        }, overrides)
        self.create("Plan", name, spec, namespace=f"reseller-{reseller}")
        return name

    def tenant(self, reseller: str, region: str, name: str | None = None, *, plan: str = "small",
               **overrides: Any) -> str:
        name = name or self.unique_name("tn", max_length=40)
        spec = merge({"displayName": name, "email": f"{name}@{reseller}.customers.example", "region": region,
                      "plan": plan, "owners": [{"kind": "User", "name": f"owner@{name}.example"}]}, overrides)
        self.create("Tenant", name, spec, namespace=f"reseller-{reseller}")
        return name

    def setup(self, *, licenses: int = 10, allotment: Mapping[str, str] | None = None,
              plan_quota: Mapping[str, str] | None = None) -> tuple[str, str]:
        """A region and a reseller selling there, its control namespace ready, plan `small` in it."""
        region = self.region()
        reseller = self.reseller(region, licenses=licenses, allotment=allotment)
        self.wait_namespace(f"reseller-{reseller}")
        self.plan(reseller, quota=plan_quota)
        return region, reseller

    # -- reading and changing ----------------------------------------------------------------------

    def wait_younger_than(self, kind: str, name: str, namespace: str | None = None) -> None:
        """Return once an object created now is strictly younger than this one. creationTimestamp
        has a resolution of one second and equal stamps are ordered by name (the operator's "older
        first" rule), so a test that means "the later one" must not create it in the same second."""
        obj = self.get(kind, name, namespace)
        assert obj is not None, f"{kind} {name} does not exist"
        created = datetime.datetime.fromisoformat(obj["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
        wait = (created + datetime.timedelta(seconds=1.05) - datetime.datetime.now(datetime.UTC)).total_seconds()
        if wait > 0:
            time.sleep(wait)

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            if namespace:
                return dict(self.objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[kind], name))
            return dict(self.objects.get_cluster_custom_object(GROUP, VERSION, PLURALS[kind], name))
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise

    def patch(self, kind: str, name: str, patch: Mapping[str, Any], namespace: str | None = None) -> None:
        if namespace:
            self.objects.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[kind], name, patch)
        else:
            self.objects.patch_cluster_custom_object(GROUP, VERSION, PLURALS[kind], name, patch)

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        try:
            if namespace:
                self.objects.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[kind], name)
            else:
                self.objects.delete_cluster_custom_object(GROUP, VERSION, PLURALS[kind], name)
        except client.ApiException as error:
            if error.status != 404:
                raise

    def tenant_obj(self, reseller: str, name: str) -> dict[str, Any] | None:
        return self.get("Tenant", name, f"reseller-{reseller}")

    def namespace(self, name: str) -> client.V1Namespace | None:
        try:
            return self.core.read_namespace(name)
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise

    # -- waiting -----------------------------------------------------------------------------------

    def wait_namespace(self, name: str, timeout: float = 30) -> client.V1Namespace:
        return wait_for(lambda: self.namespace(name), timeout, message=f"namespace {name}")

    def wait_condition(self, kind: str, name: str, namespace: str | None, type_: str, status: str,
                       reason: str | None = None, timeout: float = 30) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            obj = self.get(kind, name, namespace)
            found = condition(obj, type_)
            if found and found["status"] == status and (reason is None or found["reason"] == reason):
                return obj
            return None

        return wait_for(check, timeout, message=f"{kind} {name}: {type_}={status} {reason or ''}")

    def wait_tenant(self, reseller: str, name: str, *, ready: bool = True, reason: str | None = None,
                    timeout: float = 30) -> dict[str, Any]:
        return self.wait_condition("Tenant", name, f"reseller-{reseller}", "Ready", "True" if ready else "False",
                                   reason, timeout)

    def wait_refused(self, reseller: str, name: str, reason: str, timeout: float = 30) -> dict[str, Any]:
        return self.wait_condition("Tenant", name, f"reseller-{reseller}", "Admitted", "False", reason, timeout)

    def wait_status(self, kind: str, name: str, namespace: str | None, predicate: Callable[[dict[str, Any]], bool],
                    message: str, timeout: float = 30) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            obj = self.get(kind, name, namespace)
            return obj if obj and predicate(obj) else None

        return wait_for(check, timeout, message=message)

    def events_for(self, namespace: str, name: str) -> list[client.CoreV1Event]:
        events = self.core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
        return list(events.items)

    def wait_event(self, namespace: str, name: str, reason: str, type_: str | None = None,
                   timeout: float = 15) -> client.CoreV1Event:
        """The Event with `reason` (and `type_`) about `name`. The operator posts an object's Events
        just after the status write that shows the transition, so a test that has seen the status
        waits for the Event rather than expecting it already there."""
        def found() -> client.CoreV1Event | None:
            return next((e for e in self.events_for(namespace, name)
                         if e.reason == reason and (type_ is None or e.type == type_)), None)

        return wait_for(found, timeout, message=f"a {reason} Event about {namespace}/{name}")

    # -- cleaning up -------------------------------------------------------------------------------

    def cleanup(self) -> None:
        """Delete resellers (their control namespaces, and so their tenants, follow) and regions."""
        for kind, name, namespace in reversed(self._made):
            if kind in ("Reseller", "Region"):
                self.delete(kind, name, namespace)


def platform_fixture(api_client: client.ApiClient, unique_name: Callable[..., str]) -> Iterator[Platform]:
    platform = Platform(api_client, unique_name)
    yield platform
    platform.cleanup()
