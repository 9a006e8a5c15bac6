"""Fixtures for every test tier.

Integration tests run against a real API server (DESIGN.md §6): by default a private control plane
(etcd + kube-apiserver + kube-controller-manager v1.20) started once per session in a tmp dir and
destroyed at the end, so several sessions can run side by side. `USE_EXISTING_CLUSTER=1` uses the
cluster of `$KUBECONFIG` instead and never starts or stops anything.

If the control plane cannot start, the tests that need it fail (with the tail of its logs); they are
never skipped, so a broken environment cannot pass as green.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from support import cluster
from support.operator import OperatorProcess, operator_kubeconfig
from support.platform import Platform, platform_fixture


def use_existing_cluster() -> bool:
    return os.environ.get("USE_EXISTING_CLUSTER", "").lower() in ("1", "true", "yes")


# ---------------------------------------------------------------------------- options and markers
def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", default=False,
                     help="also run the tests marked `long` (deselected otherwise)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests that use the cluster get the `controlplane` marker, so `-m "not controlplane"` runs the
    # fast tiers alone. `long` tests are deselected (not skipped) unless --long is given; so are the
    # tests that restart the control plane's components when it is someone else's cluster
    # (USE_EXISTING_CLUSTER=1), which they must never do. In CI nothing is deselected but `long`.
    keep, dropped = [], []
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "control_plane" in fixtures:
            item.add_marker(pytest.mark.controlplane)
        if (item.get_closest_marker("long") and not config.getoption("--long")) or (
                "local_control_plane" in fixtures and use_existing_cluster()):
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


# ---------------------------------------------------------------------------- the cluster
@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The session's cluster: a started `ControlPlane` (hack/controlplane.py) with the CRDs of crds/
    and the platform ClusterRoles installed (`install_platform`, as `make dev-up`), or an
    `ExistingCluster` when USE_EXISTING_CLUSTER=1 (the same installed there).

    Both have `.kubeconfig` and `.audit_log` (None for an existing cluster); only the local one has
    `stop_component`/`start_component`, `server`, `admin_token` - use `local_control_plane` for those."""
    if use_existing_cluster():
        kubeconfig = os.environ.get("KUBECONFIG")
        if not kubeconfig or not Path(kubeconfig.split(os.pathsep)[0]).exists():
            pytest.fail("USE_EXISTING_CLUSTER=1 needs KUBECONFIG pointing at the cluster's kubeconfig")
        existing = cluster.ExistingCluster(kubeconfig=Path(kubeconfig.split(os.pathsep)[0]))
        _install_platform_with_kubectl(existing.kubeconfig)
        yield existing
        return

    controlplane = cluster.load_controlplane_module()
    cp = controlplane.ControlPlane(tmp_path_factory.mktemp("control-plane"))
    try:
        try:
            cp.start()
            cp.install_platform(cluster.CRDS_DIR)  # the CRDs and the platform ClusterRoles, as `make dev-up`
        except Exception as e:  # every failure to start must fail, with the logs
            pytest.fail(f"the local control plane did not start: {e}\n\n{cp.log_tail()}", pytrace=False)
        yield cp
    finally:
        cp.destroy()  # stops etcd/apiserver/controller-manager by pid, removes the tmp dir


def _install_platform_with_kubectl(kubeconfig: Path) -> None:
    """Existing cluster: apply crds/ and the platform ClusterRoles (hack/controlplane.py
    install_platform) with the cached kubectl v1.20 if built, else kubectl from PATH."""
    controlplane = cluster.load_controlplane_module()
    cached = controlplane._default_cache_dir() / "bin" / "kubectl"
    kubectl = cached if cached.exists() else shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("USE_EXISTING_CLUSTER=1: no kubectl to install crds/ (run `make control-plane`)")
    controlplane.install_platform(kubectl, kubeconfig, cluster.CRDS_DIR)


@pytest.fixture(scope="session")
def local_control_plane(control_plane: Any) -> Any:
    """The `ControlPlane` this session started, for tests that stop/start components or read its
    files. Under USE_EXISTING_CLUSTER=1 these tests are deselected at collection (we may not
    restart someone's API server), so reaching here with an existing cluster is a harness bug."""
    if isinstance(control_plane, cluster.ExistingCluster):
        pytest.fail("local_control_plane with USE_EXISTING_CLUSTER=1: the test should have been deselected")
    return control_plane


@pytest.fixture(scope="session")
def kubeconfig(control_plane: Any) -> str:
    """Path of the admin kubeconfig (token of `tenantry-admin`, group system:masters, when local)."""
    return str(control_plane.kubeconfig)


@pytest.fixture(scope="session")
def audit_log(control_plane: Any) -> Path | None:
    """The API server's audit log (JSON lines; write verbs only, Metadata level), None if not local."""
    return control_plane.audit_log


@pytest.fixture(scope="session")
def api_client(kubeconfig: str) -> Iterator[client.ApiClient]:
    """A `kubernetes.client.ApiClient` acting as the cluster admin."""
    api = cluster.new_api_client(kubeconfig)
    yield api
    api.close()


@pytest.fixture(scope="session")
def impersonated_client(kubeconfig: str) -> Iterator[Callable[..., client.ApiClient]]:
    """Factory `impersonated_client(user, groups=()) -> ApiClient` sending Impersonate-User/-Group
    headers: the API server authorizes each request as that user (RBAC tests)."""
    made: list[client.ApiClient] = []

    def factory(user: str, groups: Sequence[str] = ()) -> client.ApiClient:
        api = cluster.impersonating_api_client(kubeconfig, user, groups)
        made.append(api)
        return api

    yield factory
    for api in made:
        api.close()


@pytest.fixture(scope="session")
def can_i(api_client: client.ApiClient) -> Callable[..., bool]:
    """`can_i(user, groups, verb, resource, namespace, group="", name=None, subresource=None) -> bool`,
    a SubjectAccessReview made by the admin (see support.cluster.can_i)."""
    return functools.partial(cluster.can_i, api_client)


@pytest.fixture
def unique_name() -> Callable[..., str]:
    """Factory `unique_name(prefix="t", max_length=63, random_chars=4) -> str`: DNS-1123 names like
    `t-3fa9`, never repeated in the session, so each test makes its own objects."""
    return cluster.make_unique_name_factory()


@pytest.fixture
def namespace(api_client: client.ApiClient, unique_name: Callable[..., str]) -> Iterator[str]:
    """A fresh namespace for one test (deleted afterwards, without waiting for the namespace
    controller to finish)."""
    core = client.CoreV1Api(api_client)
    name = unique_name("ns")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    try:
        core.delete_namespace(name)
    except client.ApiException as e:
        if e.status != 404:
            raise


# ---------------------------------------------------------------------------- the operator
@pytest.fixture(scope="session")
def operator(control_plane: Any, api_client: client.ApiClient, kubeconfig: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """The real operator (`tenantry run` as a subprocess) for the whole session, under its own
    ServiceAccount and the chart's operator ClusterRole. Tests that kill or restart it must leave
    it running (`operator.start()`) when they finish."""
    directory = tmp_path_factory.mktemp("operator")
    own_kubeconfig = operator_kubeconfig(api_client, kubeconfig, directory)
    process = OperatorProcess(own_kubeconfig, directory)
    try:
        process.start()
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)
    yield process
    process.stop()
    if os.environ.get("TENANTRY_SHOW_OPERATOR_LOG"):
        print(process.log_tail(400))


@pytest.fixture(autouse=True)
def _operator_restarted_like_a_pod(request: pytest.FixtureRequest) -> None:
    """Before a test that uses the session operator: start it again if it has exited, as its
    Deployment would (a leader that lost its Lease during an earlier test's API server restart
    exits 1, see docs/high-availability.md)."""
    if "operator" in request.fixturenames:
        process = request.getfixturevalue("operator")
        if isinstance(process, OperatorProcess):
            process.ensure_running()


@pytest.fixture
def platform(operator: OperatorProcess, api_client: client.ApiClient,
             unique_name: Callable[..., str]) -> Iterator[Platform]:
    """A test's own Regions/Resellers/Plans/Tenants (support.platform.Platform), with the operator
    running; the resellers and regions it made are deleted afterwards."""
    yield from platform_fixture(api_client, unique_name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test that ran with the operator shows the operator's last log lines."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and "operator" in getattr(item, "fixturenames", ()):
        process = item.funcargs.get("operator") if hasattr(item, "funcargs") else None  # type: ignore[attr-defined]
        if isinstance(process, OperatorProcess):
            report.sections.append(("operator log (last 80 lines)", process.log_tail(80)))
