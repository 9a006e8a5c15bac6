"""hack/kind-cluster.yaml gives the node pools the example Regions select, and an ingress-ready node."""

from __future__ import annotations

import yaml
from chart_support import REPO


def test_kind_node_pools_match_the_example_regions() -> None:
    config = yaml.safe_load((REPO / "hack" / "kind-cluster.yaml").read_text())
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    control_plane = [n for n in config["nodes"] if n["role"] == "control-plane"]
    assert len(control_plane) == 1
    assert "ingress-ready=true" in "".join(control_plane[0]["kubeadmConfigPatches"])
    assert {m["containerPort"] for m in control_plane[0]["extraPortMappings"]} == {80, 443}

    workers = {}
    for node in config["nodes"]:
        if node["role"] == "worker":
            taints = yaml.safe_load(node["kubeadmConfigPatches"][0])["nodeRegistration"]["taints"]
            workers[node["labels"]["pool"]] = (node["labels"], taints)
    regions = [d for d in yaml.safe_load_all((REPO / "examples" / "10-regions.yaml").read_text())
               if d and d.get("kind") == "Region"]
    assert regions
    for region in regions:
        pool = region["spec"]["nodePool"]
        selector = pool["nodeSelector"]
        matching = [labels for labels, _ in workers.values() if selector.items() <= labels.items()]
        assert matching, f"no kind node for Region {region['metadata']['name']} ({selector})"
        # The region's tenants tolerate the taints that keep everyone else off its nodes.
        _, taints = workers[selector["pool"]]
        for taint in taints:
            assert any(t.get("key") == taint["key"] and t.get("value") == taint["value"]
                       and t.get("effect") == taint["effect"] for t in pool["tolerations"]), taint


def test_kind_member_cluster_serves_the_member_cluster_region() -> None:
    """hack/kind-member-cluster.yaml (`make kind-up`'s member) has the node pool of the example's
    member-cluster Region, its own cluster name, and ingress ports that do not collide with the control
    cluster's on the host."""
    member = yaml.safe_load((REPO / "hack" / "kind-member-cluster.yaml").read_text())
    control = yaml.safe_load((REPO / "hack" / "kind-cluster.yaml").read_text())
    assert member["name"] != control["name"]
    (region,) = [d for d in yaml.safe_load_all((REPO / "examples" / "15-member-cluster-region.yaml").read_text())
                 if d and d.get("kind") == "Region"]
    assert region["spec"]["cluster"]["kubeconfigSecretRef"]["name"] in (REPO / "Makefile").read_text()
    assert f"KIND_MEMBER ?= {member['name']}" in (REPO / "Makefile").read_text()
    selector = region["spec"]["nodePool"]["nodeSelector"]
    workers = [n for n in member["nodes"] if n["role"] == "worker"]
    assert any(selector.items() <= n.get("labels", {}).items() for n in workers), selector

    def host_ports(config: dict) -> set[int]:
        return {m["hostPort"] for n in config["nodes"] for m in n.get("extraPortMappings", [])}

    assert host_ports(member) and not host_ports(member) & host_ports(control)
