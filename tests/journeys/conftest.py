"""Journeys: the paths a platform and its resellers take, end to end, on the real local control
plane with the operator running and the chart's RBAC installed.

`installed` applies the RBAC of `manifests/install.yaml` (the chart rendered with its defaults: the
operator's and the meters' ServiceAccounts, ClusterRoles and bindings, and the three platform
ClusterRoles) with `kubectl apply --server-side`, as a platform does on day one. The operator itself
runs as a process under that ServiceAccount (tests/conftest.py), since the control plane has no
kubelet to run its Deployment.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from journey_support import Stage, stage_fixture

from support.cluster import REPO_ROOT
from support.kubectl import Kubectl
from support.operator import OperatorProcess

INSTALL = REPO_ROOT / "manifests" / "install.yaml"
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")


@pytest.fixture(scope="session")
def kubectl(kubeconfig: str) -> Kubectl:
    """The real kubectl with the admin kubeconfig; `.as_user(user, *groups)` acts as someone else."""
    return Kubectl(kubeconfig)


@pytest.fixture(scope="session")
def installed(kubectl: Kubectl, operator: OperatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The platform's install: the RBAC documents of manifests/install.yaml, server-side applied by
    the cluster admin. Returns the file applied."""
    docs: list[dict[str, Any]] = [d for d in yaml.safe_load_all(INSTALL.read_text())
                                  if d and d.get("kind") in RBAC_KINDS]
    path = tmp_path_factory.mktemp("install") / "rbac.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    kubectl.run("apply", "--server-side", "--force-conflicts", "-f", str(path))
    return path


@pytest.fixture(scope="module")
def stage(kubectl: Kubectl, installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    """One journey's objects and identities; what it made is deleted when the module is done."""
    yield from stage_fixture(kubectl, tmp_path_factory.mktemp("journey"))
