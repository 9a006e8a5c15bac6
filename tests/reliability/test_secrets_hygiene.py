"""Secrets hygiene, checked last (this file sorts after the other suites): after everything the
session did (crashes, faults, bad certificates, swapped TLS files), no private key and no token
appears in the operator's logs (the session operator's and the one run behind the fault proxy), in
any Event, in the status of any Tenantry object, or in the operator's /metrics.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from kubernetes import client
from reliability_support import EXTRA_OPERATOR_LOGS, FIGURES

from support.operator import OperatorProcess
from support.platform import GROUP, PLURALS, VERSION

SECRET_MARKERS = ("PRIVATE KEY",)


def _token(kubeconfig: str | Path) -> str | None:
    config = yaml.safe_load(Path(kubeconfig).read_text())
    return (config.get("users") or [{}])[0].get("user", {}).get("token")


def test_no_private_key_or_token_in_logs_events_status_or_metrics(
        operator: OperatorProcess, api_client: client.ApiClient, kubeconfig: str) -> None:
    secrets = [marker for marker in SECRET_MARKERS]
    for token in (_token(operator.kubeconfig), _token(kubeconfig)):
        if token:
            secrets.append(token)
    assert len(secrets) >= 2, "the operator's token was not found to look for"

    places: dict[str, str] = {"operator log": operator.log_text(), "operator /metrics": operator.metrics()}
    for path in EXTRA_OPERATOR_LOGS:
        if path.exists():
            places[f"log {path.parent.name}"] = path.read_text(errors="replace")
    events = client.CoreV1Api(api_client).list_event_for_all_namespaces().items
    places["events"] = "\n".join(f"{e.reason} {e.message}" for e in events)
    objects = client.CustomObjectsApi(api_client)
    statuses = []
    for plural in PLURALS.values():
        for item in objects.list_cluster_custom_object(GROUP, VERSION, plural)["items"]:
            statuses.append(json.dumps(item.get("status") or {}))
    places["status of Tenantry objects"] = "\n".join(statuses)

    leaks = [f"{where}: {'a token' if secret not in SECRET_MARKERS else secret}"
             for where, text in places.items() for secret in secrets if secret in text]
    FIGURES["hygiene: places searched"] += len(places)
    FIGURES["hygiene: events searched"] += len(events)
    FIGURES["hygiene: statuses searched"] += len(statuses)
    FIGURES["hygiene: log lines searched"] += sum(text.count("\n") for where, text in places.items() if "log" in where)
    assert not leaks, f"secrets leaked: {leaks}"
    assert len(places["operator log"]) > 0 and statuses, "nothing was searched"
