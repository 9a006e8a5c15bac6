"""kubernetes.io/tls Secrets as the integration tests write and read them through the API (the journeys
use kubectl instead: tests/journeys/journey_support.py)."""

from __future__ import annotations

import base64
from collections.abc import Mapping

from kubernetes import client


def put_tls_secret(core: client.CoreV1Api, name: str, namespace: str, data: Mapping[str, bytes]) -> None:
    """Creates the Secret, or replaces it when it is there already (a renewed certificate)."""
    body = client.V1Secret(metadata=client.V1ObjectMeta(name=name), type="kubernetes.io/tls",
                           data={k: base64.b64encode(v).decode() for k, v in data.items()})
    try:
        core.create_namespaced_secret(namespace, body)
    except client.ApiException as error:
        if error.status != 409:
            raise
        core.replace_namespaced_secret(name, namespace, body)


def secret_data(core: client.CoreV1Api, name: str, namespace: str) -> dict[str, bytes] | None:
    """The Secret's data, decoded; None when there is no such Secret."""
    try:
        secret = core.read_namespaced_secret(name, namespace)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    return {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}
