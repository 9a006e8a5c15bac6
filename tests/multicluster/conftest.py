"""Fixtures of the multi-cluster suite (DESIGN.md §7): two member clusters beside the session's control
cluster, and one platform that sells in three regions - one of the control cluster (a node pool, as
before §7) and one per member cluster - through one reseller.

The member control planes are started once per module (about 10-20 s each, side by side) and shared
by its tests, which run in file order and each leave the fleet as they found it (a stopped API server
is started again in a `finally`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from multicluster_support import Fleet

from support.cluster import make_unique_name_factory
from support.kubectl import Kubectl
from support.members import MemberCluster, start_members, stop_members
from support.operator import OperatorProcess


@pytest.fixture(scope="module")
def members(api_client: client.ApiClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[MemberCluster]]:
    """Two member clusters (local control planes on 127.0.0.1, ports of their own) with the platform
    ClusterRoles and the operator's ClusterRole bound to `tenantry-system/tenantry-operator` of each,
    and their kubeconfig Secrets in the control cluster. Destroyed (by pid) when the module ends."""
    root = tmp_path_factory.mktemp("members")
    prefix = make_unique_name_factory()("member", max_length=30)
    try:
        started = start_members([Path(root / "member-1"), Path(root / "member-2")], api_client, prefix)
    except Exception as error:  # never skipped: a member that cannot start fails the tests that need it
        pytest.fail(f"the member clusters did not start: {error}", pytrace=False)
    yield started
    stop_members(started, api_client)


@pytest.fixture(scope="module")
def kubectl(kubeconfig: str) -> Kubectl:
    """kubectl with the control cluster's admin kubeconfig; `.as_user(...)` acts as someone else."""
    return Kubectl(kubeconfig)


@pytest.fixture(scope="module")
def fleet(members: list[MemberCluster], kubectl: Kubectl, operator: OperatorProcess,
          api_client: client.ApiClient) -> Iterator[Fleet]:
    """Regions `central` (control cluster), `m1` (member 1) and `m2` (member 2) applied by the platform
    admin, a Reseller selling in all three, its Plan `small` applied by the reseller's admin."""
    fleet = Fleet(kubectl, api_client, members, operator)
    try:
        fleet.open()
        yield fleet
    finally:
        fleet.cleanup()
