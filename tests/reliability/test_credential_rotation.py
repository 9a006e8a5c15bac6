"""Credentials that change while the operator runs (issue 11, finding 6).

The operator's token comes from a file, as in a pod (a projected ServiceAccount token) or with a
kubeconfig's `tokenFile`. The token is revoked and replaced while the operator runs: a new token
Secret of its ServiceAccount is issued and written into the file, then the old Secret is deleted,
which makes the apiserver refuse the old token at once. Reconciliation must go on - a new Tenant gets
Ready, a deleted child comes back - in the same process, with no restart.

And an apiserver that answers 429 and 5xx now and then (the loopback fault proxy, with Retry-After
on its 429s) costs the operator's client retries, not failed requests.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from reliability_support import EXTRA_OPERATOR_LOGS, FIGURES

from support.cluster import wait_for
from support.faultproxy import FaultProxy
from support.operator import OPERATOR_NAMESPACE, TEST_CONFIG, OperatorProcess, operator_kubeconfig
from support.platform import Platform
from tenantry.kube import Credentials, KubeClient

ACCOUNT = "tenantry-rotating"


def _token_secrets(core: client.CoreV1Api) -> dict[str, str]:
    """The ServiceAccount's token Secrets that the token controller has filled: name -> token."""
    tokens = {}
    listed = core.list_namespaced_secret(OPERATOR_NAMESPACE, field_selector="type=kubernetes.io/service-account-token")
    for secret in listed.items:
        annotations = secret.metadata.annotations or {}
        if annotations.get("kubernetes.io/service-account.name") == ACCOUNT and (secret.data or {}).get("token"):
            tokens[secret.metadata.name] = base64.b64decode(secret.data["token"]).decode()
    return tokens


@pytest.fixture
def rotating_account(api_client: client.ApiClient, operator: OperatorProcess, kubeconfig: str,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[client.CoreV1Api]:
    """A ServiceAccount of its own with the chart's operator roles (cluster and leader election):
    revoking the session operator's token would leave the other tests without an operator."""
    core, rbac = client.CoreV1Api(api_client), client.RbacAuthorizationV1Api(api_client)
    operator_kubeconfig(api_client, kubeconfig, tmp_path_factory.mktemp("rotating"), account_name=ACCOUNT)
    binding = f"tenantry-operator-tests-{ACCOUNT}"  # as operator_kubeconfig names it
    try:
        yield core
    finally:
        rbac.delete_cluster_role_binding(binding)
        rbac.delete_namespaced_role_binding(binding, OPERATOR_NAMESPACE)
        core.delete_namespaced_service_account(ACCOUNT, OPERATOR_NAMESPACE)


def _token_file_kubeconfig(session_kubeconfig: Path, token_file: Path, directory: Path) -> Path:
    config = yaml.safe_load(session_kubeconfig.read_text())
    config["users"] = [{"name": "tenantry", "user": {"tokenFile": str(token_file)}}]
    path = directory / "token-file.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def _refused(kubeconfig: Path, token: str, directory: Path) -> bool:
    """Whether the apiserver now refuses `token` (401)."""
    cluster = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]
    ca_file = directory / "ca.crt"
    ca_file.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    configuration = client.Configuration()
    configuration.host = cluster["server"]
    configuration.ssl_ca_cert = str(ca_file)
    configuration.api_key = {"BearerToken": f"Bearer {token}"}
    with client.ApiClient(configuration) as api:
        try:
            client.VersionApi(api).get_code()
        except client.ApiException as error:
            return error.status == 401
    return False


def test_a_revoked_and_replaced_token_does_not_stop_reconciliation(
        platform: Platform, operator: OperatorProcess, rotating_account: client.CoreV1Api, tmp_path: Path) -> None:
    core = rotating_account
    [(old_secret, old_token)] = wait_for(lambda: _token_secrets(core) or None, 60,
                                         message="the ServiceAccount's first token").items()
    token_file = tmp_path / "token"
    token_file.write_text(old_token)
    kubeconfig = _token_file_kubeconfig(operator.kubeconfig, token_file, tmp_path)
    # No webhook.operatorUsername: the operator reads its own identity from the token file (its
    # writes to its own Ingresses must pass its admission webhook).
    rotating = OperatorProcess(kubeconfig, tmp_path, copy.deepcopy(TEST_CONFIG))
    EXTRA_OPERATOR_LOGS.append(rotating.log_path)
    operator.stop()  # one operator at a time
    try:
        rotating.start(timeout=180)
        pid = rotating.pid
        region, reseller = platform.setup()
        control = f"reseller-{reseller}"
        first = platform.tenant(reseller, region)
        platform.wait_tenant(reseller, first, timeout=60)

        # Replace, then revoke: a new token Secret, its token into the file (what the kubelet does
        # with a projected token), and the old Secret deleted - the old token is refused from now on.
        core.create_namespaced_secret(OPERATOR_NAMESPACE, client.V1Secret(
            metadata=client.V1ObjectMeta(name=f"{ACCOUNT}-rotated",
                                         annotations={"kubernetes.io/service-account.name": ACCOUNT}),
            type="kubernetes.io/service-account-token"))
        new_token = wait_for(lambda: _token_secrets(core).get(f"{ACCOUNT}-rotated"), 60, message="the new token")
        token_file.write_text(new_token)
        core.delete_namespaced_secret(old_secret, OPERATOR_NAMESPACE)
        wait_for(lambda: _refused(kubeconfig, old_token, tmp_path), 30, message="the old token refused")

        # Reconciliation goes on with the new token: a new tenant gets Ready, drift is corrected.
        second = platform.tenant(reseller, region)
        platform.wait_tenant(reseller, second, timeout=90)
        net = client.NetworkingV1Api(platform.api)
        net.delete_namespaced_network_policy("tenantry-isolation", f"{reseller}--{first}")
        wait_for(lambda: net.read_namespaced_network_policy("tenantry-isolation", f"{reseller}--{first}"), 60,
                 message="a deleted child restored")
        platform.patch("Tenant", first, {"spec": {"displayName": "after the rotation"}}, control)
        wait_for(lambda: platform.core.read_namespaced_config_map("tenantry-branding", f"{reseller}--{first}")
                 .data.get("tenantDisplayName") == "after the rotation", 60, message="an edit after the rotation")
        assert rotating.pid == pid and rotating.process is not None and rotating.process.poll() is None
        rotating.wait_healthy(30)
        log = rotating.log_text()
        assert "logged in again" in log.lower(), "no fresh login in the operator's log"
        assert old_token not in log and new_token not in log  # credentials are never logged
        FIGURES["faults: tokens revoked and replaced"] += 1
    finally:
        rotating.stop()
        print(f"the rotating operator's log (last lines):\n{rotating.log_tail(150)}")  # shown if the test failed
        operator.start()


def test_the_client_retries_429_and_5xx_answers_after_retry_after_and_back_off(
        operator: OperatorProcess, tmp_path: Path) -> None:
    config = yaml.safe_load(Path(operator.kubeconfig).read_text())
    cluster = config["clusters"][0]["cluster"]
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    proxy = FaultProxy(upstream=cluster["server"], ca_file=str(ca_file)).start()
    token = config["users"][0]["user"]["token"]
    try:
        proxy.set_faults(error_rate=0.4)  # 500, 503, 504, and 429 with Retry-After: 1

        async def reads() -> tuple[int, dict[str, int], float]:
            kube = KubeClient(Credentials(server=proxy.url, token=token), max_attempts=6)
            started = time.monotonic()
            try:
                done = 0
                for _ in range(25):
                    assert await kube.get("Namespace", OPERATOR_NAMESPACE) is not None
                    done += 1
                return done, kube.retries, time.monotonic() - started
            finally:
                await kube.close()

        done, retries, seconds = asyncio.run(reads())
    finally:
        proxy.stop()
    assert done == 25  # every read answered, despite ~40% of the answers being 429/5xx
    assert proxy.counts["error"] >= 5 and sum(retries.values()) == proxy.counts["error"], (retries, proxy.counts)
    if retries.get("429"):
        assert seconds >= retries["429"] * 1.0  # each 429 waited its Retry-After: 1
    FIGURES["faults: 429/5xx answers retried by the client"] += proxy.counts["error"]

