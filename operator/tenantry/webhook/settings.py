"""The operator's `webhook:` settings (chart values `config.webhook`): where the webhook listens, how the API
server reaches it, and where its certificate lives. The defaults serve a developer's `tenantry run` against
`make dev-up` with no flags: listen on 127.0.0.1:9443 and register that URL.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SERVICE_ACCOUNT_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DEFAULT_NAMESPACE = "tenantry-system"


def own_namespace(configured: str | None) -> str:
    """The operator's namespace: the one configured, else its pod's (POD_NAMESPACE, then the namespace
    of its ServiceAccount's token), else tenantry-system (a process run outside the cluster)."""
    if configured:
        return configured
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        return SERVICE_ACCOUNT_NAMESPACE_FILE.read_text().strip() or DEFAULT_NAMESPACE
    except OSError:
        return DEFAULT_NAMESPACE


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)


class WebhookService(_Model):
    """The Service in front of the operator's replicas (the chart's `tenantry-webhook`)."""

    name: str = "tenantry-webhook"
    namespace: str | None = Field(None, description="default: the operator's namespace")
    port: int = Field(443, ge=1, le=65535)


class WebhookCertificate(_Model):
    secret_name: str = Field("tenantry-webhook-tls", alias="secretName",
                             description="Secret (in the operator's namespace) holding the serving certificate and CA")
    issuer: Literal["Operator", "CertManager"] = Field(
        "Operator", description="Operator: the operator makes and rotates a CA and certificate of its own; "
        "CertManager: a cert-manager Certificate fills the Secret (tls.crt, tls.key, ca.crt)")


class WebhookSettings(_Model):
    enabled: bool = Field(True, description="serve and register the validating admission webhook")
    listen: str = Field("127.0.0.1:9443", description="host:port the webhook's HTTPS server binds")
    url: str | None = Field(None, description="base URL the API server calls (clientConfig.url); default "
                            "https://<listen address> when no service is set")
    service: WebhookService | None = Field(None, description="register the webhook by this Service instead of a URL "
                                           "(in a cluster)")
    namespace: str | None = Field(None, description="the operator's namespace (certificate Secret, Service); "
                                  "default: the pod's namespace, else tenantry-system")
    certificate: WebhookCertificate = WebhookCertificate()
    owner_cluster_role: str | None = Field(None, alias="ownerClusterRole",
                                           description="a ClusterRole installed with the operator that owns the "
                                           "webhook's registration, so that removing it removes the registration "
                                           "(for installs without the chart, which makes the registration itself)")
    exempt_users: tuple[str, ...] = Field((), alias="exemptUsers",
                                          description="users the tenant-namespace rules never check (besides the "
                                          "operator, cluster admins and kube-system's controllers)")
    exempt_groups: tuple[str, ...] = Field((), alias="exemptGroups",
                                           description="groups the tenant-namespace rules never check")
    operator_username: str | None = Field(None, alias="operatorUsername",
                                          description="the operator's own user name, when its credentials do not "
                                          "say (exec plugins); its token's or certificate's otherwise")
    disabled_rules: tuple[str, ...] = Field((), alias="disabledRules",
                                            description="rules neither registered nor served (names as in "
                                            "docs/admission-webhook.md, e.g. plans)")
    self_check_seconds: float = Field(30.0, alias="selfCheckSeconds", gt=0,
                                      description="how often the operator calls its own webhook through its "
                                      "registration (tenantry_webhook_up, readiness)")

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"webhook.listen {value!r} must be host:port, e.g. 127.0.0.1:9443")
        return value

    @property
    def listen_host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def listen_port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    def operator_namespace(self) -> str:
        return own_namespace(self.namespace)

    def base_url(self, port: int | None = None) -> str:
        """The URL the API server calls when registered by URL: https://<listen address> (a wildcard
        address is reached on loopback)."""
        if self.url:
            return self.url
        host = self.listen_host
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return f"https://{host}:{port or self.listen_port}"
        if address.is_unspecified:
            address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
        shown = f"[{address}]" if address.version == 6 else str(address)
        return f"https://{shown}:{port or self.listen_port}"

    def serving_names(self, port: int | None = None) -> list[str]:
        """The names the serving certificate must cover: the Service's DNS names, or the URL's host."""
        if self.service is not None:
            namespace = self.service.namespace or self.operator_namespace()
            base = f"{self.service.name}.{namespace}.svc"
            return [base, f"{base}.cluster.local"]
        from urllib.parse import urlsplit

        return [urlsplit(self.base_url(port)).hostname or "127.0.0.1"]
