"""Kubeconfigs for ServiceAccounts, so that a process the tests start (a meter, a tool) talks to the
API server as the account the chart gives it, under exactly the chart's RBAC."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml
from kubernetes import client

from support.cluster import wait_for


def service_account_token(api: client.ApiClient, namespace: str, name: str, timeout: float = 60) -> str:
    """The token v1.20's token controller puts in the ServiceAccount's token Secret."""
    core = client.CoreV1Api(api)

    def token() -> str | None:
        account = core.read_namespaced_service_account(name, namespace)
        for ref in account.secrets or []:
            secret = core.read_namespaced_secret(str(ref.name), namespace)
            if secret.data and "token" in secret.data:
                return base64.b64decode(secret.data["token"]).decode()
        return None

    return str(wait_for(token, timeout, message=f"a token for ServiceAccount {namespace}/{name}"))


def service_account_kubeconfig(api: client.ApiClient, admin_kubeconfig: str | Path, namespace: str, name: str,
                               path: Path) -> Path:
    """Writes a kubeconfig (mode 0600) for the ServiceAccount, same server and CA as the admin's."""
    admin = yaml.safe_load(Path(admin_kubeconfig).read_text())
    cluster_entry = admin["clusters"][0]
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [cluster_entry],
        "users": [{"name": name, "user": {"token": service_account_token(api, namespace, name)}}],
        "contexts": [{"name": name, "context": {"cluster": cluster_entry["name"], "user": name}}],
        "current-context": name,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path
