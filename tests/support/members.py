"""Member clusters for the multi-cluster tests (DESIGN.md §7): extra local control planes beside the
session's control cluster, registered with the kubeconfig Secret a platform would make.

A member gets what docs/multi-cluster.md tells a platform to install there and nothing more: the
platform ClusterRoles (the operator binds them for reseller admins and tenant owners), the operator's
ClusterRole of the chart bound to a ServiceAccount `tenantry-system/tenantry-operator` of the member,
and the namespace `tenantry-system`. No CRDs: the Tenantry kinds live in the control cluster only, so
an operator that wrongly wrote one into a member would be refused there.

The control cluster gets a Secret `tenantry-system/<name>` holding that ServiceAccount's kubeconfig
under key `value` (the Cluster API convention), which a Region names in `spec.cluster`.
Every member is a `ControlPlane` of hack/controlplane.py on 127.0.0.1 with ports of its own, stopped
by pid (`destroy`) at the end.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from support.cluster import load_controlplane_module, new_api_client, wait_for
from support.kubectl import Kubectl
from support.operator import OPERATOR_ROLE

# Nodes, read only: a member region shows its node pool (charts/tenantry/files/member-nodes-clusterrole.yaml).
MEMBER_NODES_ROLE = OPERATOR_ROLE.parent / "member-nodes-clusterrole.yaml"

NAMESPACE = "tenantry-system"  # the operator's namespace, in the control cluster and in every member
MEMBER_ACCOUNT = "tenantry-operator"  # the ServiceAccount of the member the operator acts as there
MEMBER_OPERATOR_USER = f"system:serviceaccount:{NAMESPACE}:{MEMBER_ACCOUNT}"
KUBECONFIG_KEY = "value"
TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"


def kubeconfig_for(server: str, ca_pem: bytes, user: str, token: str) -> str:
    """A kubeconfig (JSON, which is YAML) for one bearer token: what a platform puts in the Secret."""
    return json.dumps({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "member", "cluster": {"server": server,
                                                    "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "member", "context": {"cluster": "member", "user": user}}],
        "current-context": "member",
    }, indent=2) + "\n"


@dataclass
class MemberCluster:
    """One member cluster: its control plane, an admin client and kubectl for it, the ServiceAccount
    token the operator uses there, and the Secret in the control cluster that holds it."""

    label: str  # member-1, member-2: for messages
    cp: Any  # hack/controlplane.py ControlPlane
    secret_name: str  # in the control cluster, namespace tenantry-system
    api: client.ApiClient = field(init=False)
    kubectl: Kubectl = field(init=False)
    token: str = ""
    token_secret: str = ""  # the member's Secret holding `token`

    def __post_init__(self) -> None:
        self.api = new_api_client(self.cp.kubeconfig)
        self.kubectl = Kubectl(str(self.cp.kubeconfig))

    # -- what the member is ------------------------------------------------------------------------
    @property
    def server(self) -> str:
        return str(self.cp.server)

    @property
    def audit_log(self) -> Path:
        return Path(self.cp.audit_log)

    def git_version(self) -> str:
        """The member's `/version` gitVersion, as the API server reports it."""
        return str(client.VersionApi(self.api).get_code().git_version)

    def kubeconfig_text(self, token: str | None = None) -> str:
        return kubeconfig_for(self.server, Path(self.cp.ca_file).read_bytes(), MEMBER_ACCOUNT, token or self.token)

    def secret_ref(self) -> dict[str, str]:
        return {"namespace": NAMESPACE, "name": self.secret_name, "key": KUBECONFIG_KEY}

    # -- faults --------------------------------------------------------------------------------------
    def stop_apiserver(self) -> None:
        """Stops the member's kube-apiserver by pid (etcd and the controller-manager keep running)."""
        self.cp.stop_component("apiserver")

    def start_apiserver(self) -> None:
        """Starts it again on the same port and waits until it serves."""
        self.cp.start_component("apiserver", wait=True, timeout=120)

    def answers(self, token: str) -> int:
        """The HTTP status the member's API server gives a request for `/api` with `token`."""
        context = ssl.create_default_context(cafile=str(self.cp.ca_file))
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=context))
        request = urllib.request.Request(f"{self.server}/api", headers={"Authorization": f"Bearer {token}"})
        try:
            with opener.open(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    def rotate_credential(self, control: client.ApiClient) -> str:
        """What a platform does to rotate the operator's credential for this member: a new token for
        the ServiceAccount, the Secret in the control cluster replaced with a kubeconfig holding it,
        then the old token Secret deleted so the old token is revoked. Returns once the member
        refuses the old token (its API server caches a token's success for up to 10 s)."""
        old_token, old_secret = self.token, self.token_secret
        core = client.CoreV1Api(self.api)
        made = core.create_namespaced_secret(NAMESPACE, client.V1Secret(
            type=TOKEN_TYPE,
            metadata=client.V1ObjectMeta(generate_name=f"{MEMBER_ACCOUNT}-rotated-",
                                         annotations={SA_NAME_ANNOTATION: MEMBER_ACCOUNT})))
        name = str(made.metadata.name)

        def filled() -> str | None:
            data = core.read_namespaced_secret(name, NAMESPACE).data or {}
            return base64.b64decode(data["token"]).decode() if "token" in data else None

        self.token = str(wait_for(filled, 60, message=f"the token controller of {self.label} to fill {name}"))
        self.token_secret = name
        put_kubeconfig_secret(control, self.secret_name, self.kubeconfig_text())
        core.delete_namespaced_secret(old_secret, NAMESPACE)
        wait_for(lambda: self.answers(old_token) == 401, 60, interval=0.5,
                 message=f"{self.label} to refuse the revoked token")
        assert self.answers(self.token) == 200, f"{self.label} refuses the new token"
        return self.token

    # -- node pool -----------------------------------------------------------------------------------
    def add_node(self, name: str, labels: dict[str, str], allocatable: dict[str, str]) -> None:
        """A Node object as a kubelet would register it (no kubelet runs here: it only holds data)."""
        status = client.V1NodeStatus(allocatable=allocatable, capacity=allocatable)
        client.CoreV1Api(self.api).create_node(client.V1Node(
            metadata=client.V1ObjectMeta(name=name, labels=labels), status=status))
        # Nodes take their status on create; patch it anyway where an API server dropped it.
        client.CoreV1Api(self.api).patch_node_status(name, {"status": {"allocatable": allocatable,
                                                                         "capacity": allocatable}})

    def token_without_rbac(self, account: str) -> str:
        """A token of a new ServiceAccount of the member that nothing is bound to: an identity the
        member authenticates and then forbids everything."""
        core = client.CoreV1Api(self.api)
        _create_if_absent(lambda: core.create_namespaced_service_account(
            NAMESPACE, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=account))))
        _, token = wait_for(lambda: _token_of(core, account), 60, message=f"a token for {account} of {self.label}")
        return str(token)

    def close(self) -> None:
        self.api.close()


def put_kubeconfig_secret(control: client.ApiClient, name: str, text: str, key: str = KUBECONFIG_KEY) -> None:
    """Creates or replaces the Secret `tenantry-system/<name>` of the control cluster with `text` under `key`."""
    core = client.CoreV1Api(control)
    body = client.V1Secret(metadata=client.V1ObjectMeta(name=name, namespace=NAMESPACE,
                                                         labels={"tenantry.dev/test": "member-kubeconfig"}),
                           type="Opaque", string_data={key: text})
    try:
        core.create_namespaced_secret(NAMESPACE, body)
    except client.ApiException as error:
        if error.status != 409:
            raise
        core.replace_namespaced_secret(name, NAMESPACE, body)


def delete_secret(control: client.ApiClient, name: str) -> None:
    try:
        client.CoreV1Api(control).delete_namespaced_secret(name, NAMESPACE)
    except client.ApiException as error:
        if error.status != 404:
            raise


def _token_of(core: client.CoreV1Api, account: str) -> tuple[str, str] | None:
    """(Secret name, token) of the ServiceAccount's token Secret once v1.20's token controller filled it."""
    sa = core.read_namespaced_service_account(account, NAMESPACE)
    for ref in sa.secrets or []:
        secret = core.read_namespaced_secret(str(ref.name), NAMESPACE)
        if secret.type == TOKEN_TYPE and secret.data and "token" in secret.data:
            return str(ref.name), base64.b64decode(secret.data["token"]).decode()
    return None


def _create_if_absent(create: Callable[[], object]) -> None:
    try:
        create()
    except client.ApiException as error:
        if error.status != 409:
            raise


def install_member(cp: Any, account: str = MEMBER_ACCOUNT, *, bind_operator_role: bool = True) -> tuple[str, str]:
    """Installs in a started member what docs/multi-cluster.md lists: the platform ClusterRoles, the
    operator's ClusterRole (bound to `tenantry-system/<account>` unless told not to), the namespace
    and the ServiceAccount. Returns (token Secret name, token) of the account."""
    controlplane = load_controlplane_module()
    kubectl = cp.kubectl
    for path in (controlplane.PLATFORM_ROLES_FILE, OPERATOR_ROLE, MEMBER_NODES_ROLE):
        controlplane.run_kubectl(kubectl, cp.kubeconfig, "apply", "--server-side", "--force-conflicts",
                                 "--field-manager=tenantry-dev", "-f", str(path))
    api = new_api_client(cp.kubeconfig)
    try:
        core = client.CoreV1Api(api)
        namespace = client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE))
        _create_if_absent(lambda: core.create_namespace(namespace))
        _create_if_absent(lambda: core.create_namespaced_service_account(
            NAMESPACE, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=account))))
        for role in ("tenantry-operator", "tenantry-member-nodes") if bind_operator_role else ():
            _create_if_absent(lambda role=role: client.RbacAuthorizationV1Api(api).create_cluster_role_binding({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": f"{role}-{account}"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}],
            }))
        found = wait_for(lambda: _token_of(core, account), 60,
                         message=f"a token for ServiceAccount {NAMESPACE}/{account} of {cp.directory}")
        return found
    finally:
        api.close()


def start_members(directories: Iterable[Path], control: client.ApiClient, secret_prefix: str) -> list[MemberCluster]:
    """Starts one member control plane per directory, side by side (start-up is mostly waiting),
    installs each (`install_member`) and registers its kubeconfig Secret in the control cluster as
    `<secret_prefix>-<n>-kubeconfig`. On any failure, stops what it started and re-raises."""
    controlplane = load_controlplane_module()
    planes = [controlplane.ControlPlane(d) for d in directories]

    def bring_up(cp: Any) -> tuple[str, str]:
        try:
            cp.start()
            return install_member(cp)
        except Exception as error:
            raise RuntimeError(f"member control plane {cp.directory} did not come up: {error}\n{cp.log_tail()}") \
                from error

    members: list[MemberCluster] = []
    try:
        with ThreadPoolExecutor(max_workers=len(planes)) as pool:
            tokens = list(pool.map(bring_up, planes))
        for index, (cp, (token_secret, token)) in enumerate(zip(planes, tokens, strict=True), start=1):
            member = MemberCluster(f"member-{index}", cp, f"{secret_prefix}-{index}-kubeconfig",
                                   token=token, token_secret=token_secret)
            members.append(member)
            put_kubeconfig_secret(control, member.secret_name, member.kubeconfig_text())
    except BaseException:
        stop_members(members, control)
        for cp in planes[len(members):]:
            cp.destroy()
        raise
    return members


def stop_members(members: Iterable[MemberCluster], control: client.ApiClient) -> None:
    """Deletes their Secrets in the control cluster and destroys their control planes (by pid)."""
    errors: list[BaseException] = []
    for member in members:
        try:
            delete_secret(control, member.secret_name)
        except Exception as error:  # the control cluster may be gone already; stop the member anyway
            errors.append(error)
        member.close()
        member.cp.destroy()
    if errors:
        raise errors[0]
