"""The ValidatingWebhookConfiguration `tenantry` (the validating rules) and the MutatingWebhookConfiguration
`tenantry` (the mutating ones), built from the rules. Pure: rules and a client config in, a manifest out.
Both are written and kept alike: same name, labels, owner, client config and CA bundle.

Written by the operator itself (server-side apply, field manager `tenantry`) rather than left to kopf's
managed admission: kopf's managed configuration sets `timeoutSeconds: 30` and no `namespaceSelector` for
every webhook, while each Tenantry rule has its own failure policy, a timeout of a few seconds (so that a
webhook in trouble never holds the API server for long) and, for the tenant-namespace rules, a selector
that keeps every other namespace of the cluster out of the webhook's path.

One webhook per rule, each calling its own path: `<base URL>/validate/<rule>` (`/mutate/<rule>`) when the
operator is reached by URL (`tenantry run` on a developer's machine, registered on 127.0.0.1), or the Service
`tenantry-webhook` in the cluster (the chart).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tenantry.naming import managed_labels
from tenantry.webhook.registry import Rule

CONFIGURATION_NAME = "tenantry"
VALIDATING = "ValidatingWebhookConfiguration"
MUTATING = "MutatingWebhookConfiguration"


@dataclass(frozen=True)
class ClientConfig:
    """How the API server reaches the webhook: a base URL, or a Service (namespace, name, port)."""

    ca_bundle: bytes  # PEM, one or more CA certificates
    url: str | None = None
    service_namespace: str | None = None
    service_name: str | None = None
    service_port: int = 443

    def for_path(self, path: str) -> dict[str, Any]:
        config: dict[str, Any] = {"caBundle": base64.b64encode(self.ca_bundle).decode()}
        if self.url is not None:
            config["url"] = self.url.rstrip("/") + path
        else:
            config["service"] = {"namespace": self.service_namespace, "name": self.service_name,
                                 "port": self.service_port, "path": path}
        return config


def build_webhook(rule: Rule, client: ClientConfig) -> dict[str, Any]:
    webhook: dict[str, Any] = {
        "name": rule.webhook_name,
        "clientConfig": client.for_path(rule.path),
        "rules": [{"apiGroups": [rule.group], "apiVersions": list(rule.versions), "resources": list(rule.resources),
                   "operations": list(rule.operations), "scope": "*"}],
        "failurePolicy": rule.failure_policy,
        "matchPolicy": "Equivalent",
        "namespaceSelector": dict(rule.namespaces),
        "objectSelector": dict(rule.object_selector),
        "sideEffects": "None",
        "timeoutSeconds": rule.timeout_seconds,
        "admissionReviewVersions": ["v1", "v1beta1"],
    }
    if rule.mutating:
        # A finished object is never sent back for a second pass: no rule of ours depends on another's change.
        webhook["reinvocationPolicy"] = "Never"
    return webhook


def build_webhook_configuration(rules: Iterable[Rule], client: ClientConfig,
                                owner: Mapping[str, str] | None = None, kind: str = VALIDATING) -> dict[str, Any]:
    """The whole configuration of `kind` (VALIDATING or MUTATING) with the rules of that kind, webhooks sorted
    by name so that the same rules give the same manifest (no rule of the kind: no webhooks, an empty list).
    `owner`: a ClusterRole ({name, uid}) installed with the operator; deleting it (uninstalling the chart)
    deletes the registration, which would otherwise go on refusing requests for a webhook that is gone."""
    if kind not in (VALIDATING, MUTATING):
        raise ValueError(f"no webhook configuration kind {kind}")
    chosen = [r for r in rules if r.mutating == (kind == MUTATING)]
    metadata: dict[str, Any] = {"name": CONFIGURATION_NAME,
                                "labels": {**managed_labels(), "app.kubernetes.io/component": "webhook"}}
    if owner:
        metadata["ownerReferences"] = [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                                        "name": owner["name"], "uid": owner["uid"]}]
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": metadata,
        "webhooks": [build_webhook(r, client) for r in sorted(chosen, key=lambda r: r.name)],
    }
