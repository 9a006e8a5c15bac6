"""Isolation matrix: for every pair of principal (platform admin, two resellers' admins, two tenants'
owners) and resource/verb, the apiserver's answer (SubjectAccessReview) is the one the README's
"Isolation matrix" table promises; a few of them are also tried as real requests. Per tenant, the
NetworkPolicy and the node-pool annotations of its namespace are checked against its region.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from kubernetes import client
from reliability_support import FIGURES

from support.cluster import REPO_ROOT
from support.platform import Platform

README = REPO_ROOT / "README.md"
VERBS = {"g": "get", "l": "list", "w": "watch", "c": "create", "u": "update", "p": "patch", "d": "delete"}
NAMED_VERBS = "gwupd"
PRINCIPALS = ["platform admin", "admin of A", "admin of B", "owner of a1", "owner of b1"]


def intended_matrix() -> list[dict[str, str]]:
    """The rows of the README's isolation matrix table."""
    text = README.read_text()
    section = text.split("## Isolation matrix", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        cells = [cell.strip().strip("`") for cell in line.strip("|").split("|")]
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


@pytest.fixture
def world(platform: Platform) -> dict[str, str]:
    names: dict[str, str] = {}
    for key, controller in (("A", "ingress-a"), ("B", "ingress-b")):
        region = platform.region(ingress={"className": "nginx", "controllerNamespace": controller})
        reseller = platform.reseller(region)
        platform.wait_namespace(f"reseller-{reseller}")
        platform.plan(reseller)
        names[key], names[f"region {key}"] = reseller, region
        names[key.lower() + "1"] = platform.tenant(reseller, region)
    for key in ("A", "B"):
        platform.wait_tenant(names[key], names[key.lower() + "1"])
    return names


def test_rbac_outcomes_match_the_intended_matrix(world: dict[str, str], can_i: Callable[..., bool]) -> None:
    a, b, a1, b1 = world["A"], world["B"], world["a1"], world["b1"]
    principals = {
        "platform admin": ("platform-admin@tenantry.example", ["system:masters"]),
        "admin of A": (f"admin@{a}.example", []),
        "admin of B": (f"admin@{b}.example", []),
        "owner of a1": (f"owner@{a1}.example", []),
        "owner of b1": (f"owner@{b1}.example", []),
    }
    places: dict[str, tuple[str | None, str | None]] = {  # where -> (namespace, name)
        "cluster": (None, None), "named A": (None, a), "named B": (None, b),
        "reseller-A": (f"reseller-{a}", None), "reseller-B": (f"reseller-{b}", None),
        "a1": (f"{a}--{a1}", None), "b1": (f"{b}--{b1}", None), "named a1": (f"{a}--{a1}", f"{a}--{a1}"),
    }
    rows = intended_matrix()
    assert len(rows) >= 20, "the README's isolation matrix is missing or cut short"
    wrong, checked = [], 0
    for row in rows:
        resource, _, subresource = row["resource"].partition("/")
        namespace, name = places[row["where"]]
        verbs = NAMED_VERBS if name else "".join(VERBS)
        for principal in PRINCIPALS:
            user, groups = principals[principal]
            intended = "" if row[principal] == "-" else row[principal]
            for letter in verbs:
                allowed = can_i(user, groups, VERBS[letter], resource, namespace, group=row["group"], name=name,
                                subresource=subresource or None)
                checked += 1
                if allowed != (letter in intended):
                    wrong.append(f"{principal} {VERBS[letter]} {row['resource']} ({row['where']}): "
                                 f"{'allowed' if allowed else 'denied'}, the matrix says otherwise")
    FIGURES["isolation: access reviews"] += checked
    assert not wrong, f"{len(wrong)} of {checked} answers differ from the README's matrix:\n" + "\n".join(wrong)


def test_real_requests_across_the_boundaries(world: dict[str, str],
                                             impersonated_client: Callable[..., client.ApiClient]) -> None:
    a, b, a1, b1 = world["A"], world["B"], world["a1"], world["b1"]
    tried = 0
    owner = client.CoreV1Api(impersonated_client(f"owner@{a1}.example"))
    for call in (lambda: owner.list_namespaced_secret(f"reseller-{a}"),  # the reseller's keys
                 lambda: owner.list_namespaced_secret(f"{b}--{b1}"),  # another tenant
                 lambda: owner.patch_namespaced_resource_quota("tenantry", f"{a}--{a1}",
                                                               {"spec": {"hard": {"pods": "1000"}}})):
        with pytest.raises(client.ApiException) as denied:
            call()
        assert denied.value.status == 403
        tried += 1
    assert owner.list_namespaced_secret(f"{a}--{a1}") is not None  # its own namespace works
    admin_b = client.CustomObjectsApi(impersonated_client(f"admin@{b}.example"))
    with pytest.raises(client.ApiException) as denied:
        admin_b.list_namespaced_custom_object("tenantry.dev", "v1alpha1", f"reseller-{a}", "tenants")
    assert denied.value.status == 403
    FIGURES["isolation: real requests refused"] += tried + 1


def test_network_policy_and_node_pool_per_tenant(world: dict[str, str], platform: Platform,
                                                 api_client: client.ApiClient) -> None:
    net = client.NetworkingV1Api(api_client)
    for key in ("A", "B"):
        reseller, tenant = world[key], world[key.lower() + "1"]
        region = platform.get("Region", world[f"region {key}"])
        assert region is not None
        namespace = f"{reseller}--{tenant}"
        policy = net.read_namespaced_network_policy("tenantry-isolation", namespace)
        assert policy.spec.pod_selector.match_labels in (None, {}), "the policy covers every pod"
        assert policy.spec.policy_types == ["Ingress"]
        assert len(policy.spec.ingress) == 1
        sources = policy.spec.ingress[0]._from
        assert len(sources) == 2
        assert sources[0].pod_selector is not None and sources[0].namespace_selector is None  # its own namespace
        assert sources[1].namespace_selector.match_labels == {
            "kubernetes.io/metadata.name": region["spec"]["ingress"]["controllerNamespace"]}
        annotations = platform.namespace(namespace).metadata.annotations  # type: ignore[union-attr]
        pool = region["spec"]["nodePool"]
        assert annotations["scheduler.alpha.kubernetes.io/node-selector"] == ",".join(
            f"{k}={v}" for k, v in sorted(pool["nodeSelector"].items()))
        assert json.loads(annotations["scheduler.alpha.kubernetes.io/defaultTolerations"]) == pool["tolerations"]
        FIGURES["isolation: tenants checked for network policy and node pool"] += 1
