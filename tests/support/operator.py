"""Running the real operator (`tenantry run`) as a subprocess for integration tests.

The operator gets an identity of its own: a ServiceAccount `tenantry` in `tenantry-system` bound to
the operator ClusterRole of the chart (`charts/tenantry/files/operator-clusterrole.yaml`), with its
token in a kubeconfig of its own. So the tests prove the chart's role is enough, and the audit log
tells the operator's writes (user `system:serviceaccount:tenantry-system:tenantry`) from the tests'.
"""

from __future__ import annotations

import base64
import copy
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from support.dns import TEST_DNS

REPO = Path(__file__).resolve().parents[2]
OPERATOR_NAMESPACE = "tenantry-system"
OPERATOR_ACCOUNT = "tenantry"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}"
OPERATOR_ROLE = REPO / "charts" / "tenantry" / "files" / "operator-clusterrole.yaml"
# Its namespaced Role (leader election's Lease, its own pod's label), bound in OPERATOR_NAMESPACE.
OPERATOR_NAMESPACED_ROLE = REPO / "charts" / "tenantry" / "files" / "operator-leader-election-role.yaml"

# Operator configuration used by the tests: one platform default plan to prove seeding.
TEST_CONFIG = {
    "resyncSeconds": 60,
    "workers": 8,
    "defaultPlans": [
        {"name": "trial", "spec": {
            "displayName": "Trial",
            "quota": {"cpu": "500m", "memory": "512Mi", "storage": "1Gi", "pods": "5"},
            "defaults": {"cpu": "50m", "memory": "64Mi"},
            "pricing": {"currency": "USD", "monthly": "0.00"},
        }},
    ],
    # Custom-domain TXT proofs are asked of the loopback DNS server of support.dns (tests edit its
    # records); a pending proof is looked at again every second.
    "dnsResolver": TEST_DNS.address,
    "domainRecheckSeconds": 1,
    # The admission webhook, registered by URL on 127.0.0.1 (each OperatorProcess listens on a port of its
    # own): the tenant-namespace rules as in production; the rules for Tenantry objects are off, so that the
    # tests of the asynchronous refusals can create what the webhook would deny at apply
    # (tests/integration/test_webhook.py runs an operator with every rule).
    "webhook": {"disabledRules": ["tenants", "plans", "resellers"], "selfCheckSeconds": 5},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _apply_yaml(api: client.ApiClient, path: Path) -> None:
    from kubernetes import utils

    for doc in yaml.safe_load_all(path.read_text()):
        if not doc:
            continue
        try:
            utils.create_from_dict(api, doc)
        except utils.FailToCreateError as error:
            if not all(getattr(e, "status", None) == 409 for e in error.api_exceptions):
                raise
            # Already there: replace so that an edited role file takes effect.
            rbac = client.RbacAuthorizationV1Api(api)
            if doc["kind"] == "ClusterRole":
                rbac.replace_cluster_role(doc["metadata"]["name"], doc)
            elif doc["kind"] == "ClusterRoleBinding":
                rbac.replace_cluster_role_binding(doc["metadata"]["name"], doc)


def operator_kubeconfig(api: client.ApiClient, admin_kubeconfig: str, directory: Path,
                        account_name: str = OPERATOR_ACCOUNT) -> Path:
    """Create the operator's ServiceAccount, bind its roles, and write a kubeconfig with its token.
    `account_name`: another ServiceAccount with the same roles (an operator the audit log tells apart)."""
    core = client.CoreV1Api(api)
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=OPERATOR_NAMESPACE)))
    except client.ApiException as error:
        if error.status != 409:
            raise
    try:
        core.create_namespaced_service_account(OPERATOR_NAMESPACE, client.V1ServiceAccount(
            metadata=client.V1ObjectMeta(name=account_name)))
    except client.ApiException as error:
        if error.status != 409:
            raise
    # The platform ClusterRoles it binds come with the cluster (conftest: install_platform), as on dev-up.
    # The admission webhook's registrations, validating and mutating, empty, as the chart makes them
    # (templates/webhook.yaml): the operator fills them in, and its role may not create one.
    admission = client.AdmissionregistrationV1Api(api)
    for kind, create in (("ValidatingWebhookConfiguration", admission.create_validating_webhook_configuration),
                         ("MutatingWebhookConfiguration", admission.create_mutating_webhook_configuration)):
        try:
            create({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
                    "metadata": {"name": "tenantry", "labels": {"app.kubernetes.io/name": "tenantry"}}})
        except client.ApiException as error:
            if error.status != 409:
                raise
    role_name = "cluster-admin"
    # TENANTRY_TEST_OPERATOR_ROLE=cluster-admin runs the operator unconstrained (to tell a missing
    # permission from a bug while developing); CI always uses the chart's role.
    if OPERATOR_ROLE.exists() and os.environ.get("TENANTRY_TEST_OPERATOR_ROLE") != "cluster-admin":
        _apply_yaml(api, OPERATOR_ROLE)
        role_name = yaml.safe_load(OPERATOR_ROLE.read_text())["metadata"]["name"]
    binding_name = "tenantry-operator-tests" + ("" if account_name == OPERATOR_ACCOUNT else f"-{account_name}")
    subjects = [{"kind": "ServiceAccount", "name": account_name, "namespace": OPERATOR_NAMESPACE}]
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": binding_name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
        "subjects": subjects,
    }
    rbac = client.RbacAuthorizationV1Api(api)
    try:
        rbac.create_cluster_role_binding(binding)
    except client.ApiException as error:
        if error.status != 409:
            raise
        rbac.replace_cluster_role_binding(binding_name, binding)
    # The namespaced Role as the chart makes it (templates/rbac.yaml), in the operator's namespace.
    if role_name != "cluster-admin":
        role = {**yaml.safe_load(OPERATOR_NAMESPACED_ROLE.read_text())}
        role["metadata"] = {**role["metadata"], "namespace": OPERATOR_NAMESPACE}
        role_binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": binding_name, "namespace": OPERATOR_NAMESPACE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role["metadata"]["name"]},
            "subjects": subjects,
        }
        for create, replace, body in (
                (rbac.create_namespaced_role, rbac.replace_namespaced_role, role),
                (rbac.create_namespaced_role_binding, rbac.replace_namespaced_role_binding, role_binding)):
            try:
                create(OPERATOR_NAMESPACE, body)
            except client.ApiException as error:
                if error.status != 409:
                    raise
                replace(body["metadata"]["name"], OPERATOR_NAMESPACE, body)

    # v1.20's token controller fills a Secret for every ServiceAccount.
    deadline = time.monotonic() + 60
    token = None
    while token is None:
        account = core.read_namespaced_service_account(account_name, OPERATOR_NAMESPACE)
        for ref in account.secrets or []:
            secret = core.read_namespaced_secret(ref.name, OPERATOR_NAMESPACE)
            if secret.data and "token" in secret.data:
                token = base64.b64decode(secret.data["token"]).decode()
        if token is None:
            if time.monotonic() > deadline:
                raise RuntimeError("the operator's ServiceAccount got no token Secret within 60s")
            time.sleep(0.5)

    admin = yaml.safe_load(Path(admin_kubeconfig).read_text())
    cluster_entry = admin["clusters"][0]
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [cluster_entry],
        "users": [{"name": "tenantry", "user": {"token": token}}],
        "contexts": [{"name": "tenantry", "context": {"cluster": cluster_entry["name"], "user": "tenantry"}}],
        "current-context": "tenantry",
    }
    path = directory / ("operator.kubeconfig" if account_name == OPERATOR_ACCOUNT else f"{account_name}.kubeconfig")
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


class OperatorProcess:
    """`tenantry run` in a subprocess; logs in `log_path`. Stopped by its pid.

    Every `tenantry run` takes part in leader election (the Lease tenantry-system/tenantry-operator):
    `start()` waits until this one leads, unless told `leading=False` (a standby). Each instance keeps
    one leader identity across its restarts ($TENANTRY_LEADER_IDENTITY), so that a restart after a
    SIGKILL resumes the Lease at once rather than after the 15 s a new identity waits (the old process
    is gone: the harness waits for it), as a tests' convenience; in a cluster every process has an
    identity of its own. Starting a second instance while another leads makes it a standby."""

    def __init__(self, kubeconfig: Path, directory: Path, config: dict[str, Any] | None = None,
                 identity: str | None = None, env: dict[str, str] | None = None):
        self.kubeconfig = kubeconfig
        self.env = dict(env or {})  # e.g. POD_NAME, as the chart's Deployment sets it
        self.directory = directory
        self.config_path = directory / "operator-config.yaml"
        config = copy.deepcopy(config or TEST_CONFIG)
        self.webhook_port = free_port()
        config.setdefault("webhook", {}).setdefault("listen", f"127.0.0.1:{self.webhook_port}")
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = directory / "operator.log"
        self.health_port = free_port()
        self.metrics_port = free_port()
        self.identity = identity or f"test-operator-{self.health_port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.stopped_on_purpose = False  # by stop()/kill(): ensure_running leaves it stopped

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, timeout: float = 60.0, *, leading: bool = True) -> None:
        """Start it and wait until it is ready: leading (reconciling, its start-up done), or with
        `leading=False` as it is first ready, standby or leader."""
        self.stopped_on_purpose = False
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "TENANTRY_CONFIG": str(self.config_path),
               "TENANTRY_LEADER_IDENTITY": self.identity, **self.env}
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child holds it for its lifetime
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tenantry", "run", "--bind-address", "127.0.0.1",
             "--health-port", str(self.health_port), "--metrics-port", str(self.metrics_port),
             "--log-format", "plain"],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True,
        )
        log.close()
        self.wait_ready(timeout, leading=leading)

    def probe(self, path: str = "/readyz") -> tuple[int, dict[str, Any]] | None:
        """(status, JSON body) of one of its probe endpoints, or None while it does not answer."""
        import json
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}{path}", timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")
        except (OSError, ValueError):
            return None

    def wait_ready(self, timeout: float = 60.0, *, leading: bool = True) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the operator exited with {self.process.returncode}:\n{self.log_tail()}")
            answer = self.probe("/readyz")
            if answer is not None and answer[0] == 200 and (answer[1].get("leader") or not leading):
                return
            time.sleep(0.25)
        raise RuntimeError(f"the operator was not {'leading' if leading else 'ready'} within {timeout:.0f}s:\n"
                           f"{self.log_tail()}")

    def is_leader(self) -> bool:
        answer = self.probe("/readyz")
        return bool(answer and answer[1].get("leader"))

    def wait_healthy(self, timeout: float = 60.0) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the operator exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"the operator was not healthy within {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        self.stopped_on_purpose = True
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to clean up."""
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def ensure_running(self) -> str | None:
        """What a Deployment's `restartPolicy: Always` does: a process that has exited by itself (not by
        `stop()`/`kill()`) is started again.
        A leader exits by design when it cannot renew its Lease (a test stopped the API server for
        longer than the renew deadline); the next test must not inherit that. Returns why it was
        restarted, or None when it was running."""
        if self.process is None or self.process.poll() is None or self.stopped_on_purpose:
            return None  # running, or a test stopped it and runs another operator meanwhile
        why = f"the session operator had exited with {self.process.returncode}; started again"
        self.start(timeout=120)
        return why

    def metrics(self, *names: str) -> str:
        """The operator's /metrics; with `names`, only those families (prometheus_client's `name[]` filter:
        at 10,000 tenants the whole text is 1.5 MB, and rendering it costs the operator ~150 ms)."""
        import urllib.parse
        import urllib.request

        query = "?" + urllib.parse.urlencode([("name[]", name) for name in names]) if names else ""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics{query}", timeout=5) as r:
            return str(r.read().decode())

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])
