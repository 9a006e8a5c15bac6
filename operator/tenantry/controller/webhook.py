"""The admission webhook's life inside the running operator: certificate, server, registration, self-check.

At start-up (after the picture of the cluster is loaded, so that the first answer is already right):
1. the serving certificate: read the Secret `tenantry-webhook-tls` in the operator's namespace; if it is
   missing, due or for other names, issue (tenantry.webhook.certificate decides) and write it back, with
   optimistic concurrency so that replicas starting together end up with one certificate;
2. the HTTPS server on `webhook.listen`;
3. the ValidatingWebhookConfiguration `tenantry` and the MutatingWebhookConfiguration `tenantry` (built by
   tenantry.webhook.configuration, the same client config and CA bundle), each applied only when it differs
   from the live one. The mutating one only saves the operator a write (a new Tenant's finalizer): a failure
   to register it is logged and retried, and never holds the validating one or the self-check up.
Then, every `webhook.selfCheckSeconds`: re-read the Secret (a replica may have rotated it; a certificate
due for renewal is renewed), re-apply the registration if someone changed or deleted it, and call the
webhook through its registration with the registered CA (`tenantry_webhook_up`). A failure at any step is
logged and retried with back-off; the operator goes on reconciling meanwhile (the asynchronous checks do
not depend on the webhook).

The registration is never removed when the operator stops: the security rules fail closed, and a rolling
restart must not open a window in which they are not enforced. `webhook.enabled: false` removes both.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import json
import logging
import os
import ssl
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import kopf
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from tenantry.admission import AdmissionBook
from tenantry.controller.apply import apply_one, contains, delete_if_present, store_secret_data
from tenantry.controller.context import Operator
from tenantry.kube import ApiError
from tenantry.pacing import Backoff
from tenantry.webhook.certificate import ServingCertificate, plan_certificate, supplied_certificate
from tenantry.webhook.configuration import (
    CONFIGURATION_NAME,
    MUTATING,
    VALIDATING,
    ClientConfig,
    build_webhook_configuration,
)
from tenantry.webhook.registry import Identities, TenantScope, tenant_scope
from tenantry.webhook.server import CERTIFICATE_EXPIRY, UP, WebhookServer
from tenantry.webhook.settings import WebhookSettings

log = logging.getLogger("tenantry.webhook")

IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
MAX_BACKOFF = 60.0


class OperatorView:
    """The ClusterView validators read: the operator's Store and AdmissionBook, and one API read to confirm."""

    def __init__(self, op: Operator):
        self._op = op
        self.default_plans = frozenset(p.name for p in op.settings.default_plans)

    @property
    def book(self) -> AdmissionBook:
        return self._op.book

    @property
    def store(self) -> Any:
        return self._op.store

    def tenant_for_namespace(self, namespace: str) -> TenantScope | None:
        return tenant_scope(self._op.store, namespace)

    async def read(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return await self._op.client.get(kind, name, namespace)


# -- who the operator is ---------------------------------------------------------------------------


def _token_subject(token: str) -> str | None:
    """The `sub` of a JWT (a ServiceAccount token says system:serviceaccount:<ns>:<name>). Not verified:
    the operator reads its own token to know its own name, nothing is trusted from it."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    subject = claims.get("sub")
    return subject if isinstance(subject, str) else None


def _certificate_user(pem: bytes) -> str | None:
    try:
        names = x509.load_pem_x509_certificate(pem).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        return None
    return str(names[0].value) if names else None


def _kubeconfig_user_and_server() -> tuple[dict[str, Any], str | None]:
    """The current context's user entry and cluster server of $KUBECONFIG (or ~/.kube/config)."""
    path = (os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")).split(os.pathsep)[0]
    try:
        config = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}, None
    context_name = config.get("current-context")
    context = next((c.get("context") or {} for c in config.get("contexts") or () if c.get("name") == context_name), {})
    user = next((u.get("user") or {} for u in config.get("users") or () if u.get("name") == context.get("user")), {})
    cluster = next((c.get("cluster") or {} for c in config.get("clusters") or ()
                    if c.get("name") == context.get("cluster")), {})
    return user, cluster.get("server")


def loopback_unreachable(settings: WebhookSettings) -> str | None:
    """Why registering the default loopback URL would break the cluster, or None. An API server on another
    machine (kind's container, a cloud) cannot call this machine's 127.0.0.1, and the security rules fail
    closed: registered there, they would refuse every Ingress, Service and Pod of every tenant namespace."""
    if settings.service is not None or settings.url is not None or IN_CLUSTER_TOKEN.exists():
        return None
    host = urlsplit(settings.base_url()).hostname or ""
    try:
        if not ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        if host != "localhost":
            return None
    _, server = _kubeconfig_user_and_server()
    server_host = urlsplit(server or "").hostname or ""
    try:
        local = server_host == "localhost" or ipaddress.ip_address(server_host).is_loopback
    except ValueError:
        local = False
    if local:
        return None
    return (f"the API server {server} is not on this machine and cannot call {settings.base_url()}; set "
            "webhook.url to an address it can reach (or webhook.service), or webhook.enabled: false")


def operator_usernames(settings: WebhookSettings) -> frozenset[str]:
    """The operator's own user name: the setting, else what its in-cluster token or kubeconfig says."""
    if settings.operator_username:
        return frozenset({settings.operator_username})
    if IN_CLUSTER_TOKEN.exists():
        subject = _token_subject(IN_CLUSTER_TOKEN.read_text().strip())
        return frozenset({subject} if subject else ())
    user, _ = _kubeconfig_user_and_server()
    token = user.get("token")
    if not token and user.get("tokenFile"):
        # A token file (rotated by whoever writes it) names the same account on every rotation.
        try:
            token = Path(user["tokenFile"]).read_text().strip()
        except OSError:
            token = None
    if token:
        subject = _token_subject(token)
        return frozenset({subject} if subject else ())
    pem = None
    if user.get("client-certificate-data"):
        pem = base64.b64decode(user["client-certificate-data"])
    elif user.get("client-certificate"):
        try:
            pem = Path(user["client-certificate"]).read_bytes()
        except OSError:
            pem = None
    name = _certificate_user(pem) if pem else None
    return frozenset({name} if name else ())


# -- the webhook's life ----------------------------------------------------------------------------


class Webhook:
    def __init__(self, op: Operator, settings: WebhookSettings):
        self.op = op
        self.settings = settings
        self.namespace = settings.operator_namespace()
        self.identities = Identities(operator_users=operator_usernames(settings),
                                     users=frozenset(settings.exempt_users), groups=frozenset(settings.exempt_groups))
        self.server = WebhookServer(OperatorView(op), self.identities, ready=lambda: op.queue is not None,
                                    disabled=settings.disabled_rules)
        self.certificate: ServingCertificate | None = None
        self.registered_bundle: bytes | None = None
        self.last_check: dict[str, Any] = {"up": False, "message": "not checked yet"}
        self.mutating_problem: str | None = None  # why the MutatingWebhookConfiguration is not registered
        self._task: asyncio.Task[None] | None = None

    # -- certificate

    async def _read_secret(self) -> tuple[dict[str, bytes] | None, str | None]:
        secret = await self.op.client.get("Secret", self.settings.certificate.secret_name, self.namespace)
        if secret is None:
            return None, None
        data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
        return data, secret["metadata"].get("resourceVersion")

    async def ensure_certificate(self) -> ServingCertificate:
        """The certificate to serve, issuing and storing a new one when it is missing or due."""
        name = self.settings.certificate.secret_name
        for _ in range(5):  # a replica writing at the same time: read again and decide again
            data, version = await self._read_secret()
            if self.settings.certificate.issuer == "CertManager":
                certificate = supplied_certificate(data)
                if certificate is None:
                    raise RuntimeError(f"Secret {self.namespace}/{name} has no complete certificate from "
                                       "cert-manager yet (tls.crt, tls.key, ca.crt)")
                return certificate
            new_data, certificate = plan_certificate(data, self.settings.serving_names(self.server.port),
                                                     datetime.datetime.now(datetime.UTC))
            if new_data is None:
                return certificate
            if await store_secret_data(self.op.client, self.namespace, name, new_data, version, set(data or ()),
                                       labels={"app.kubernetes.io/name": "tenantry",
                                               "app.kubernetes.io/component": "webhook"}):
                log.info("Issued the admission webhook's serving certificate for %s (Secret %s/%s), valid until %s.",
                         ", ".join(self.settings.serving_names(self.server.port)), self.namespace, name,
                         certificate.not_after.strftime("%Y-%m-%d"))
                return certificate
        raise RuntimeError(f"Secret {self.namespace}/{name} kept changing while the certificate was stored")

    def _serve(self, certificate: ServingCertificate) -> None:
        if self.certificate is None or certificate.cert_pem != self.certificate.cert_pem:
            self.server.load_certificate(certificate.cert_pem, certificate.key_pem)
        self.certificate = certificate
        CERTIFICATE_EXPIRY.set(certificate.not_after.timestamp())

    # -- registration

    def client_config(self, certificate: ServingCertificate) -> ClientConfig:
        service = self.settings.service
        if service is not None:
            return ClientConfig(certificate.ca_bundle, service_namespace=service.namespace or self.namespace,
                                service_name=service.name, service_port=service.port)
        return ClientConfig(certificate.ca_bundle, url=self.settings.base_url(self.server.port))

    def desired_configuration(self, certificate: ServingCertificate, owner: Mapping[str, str] | None = None,
                              kind: str = VALIDATING) -> dict[str, Any]:
        return build_webhook_configuration(self.server.rules.values(), self.client_config(certificate), owner, kind)

    async def _owner(self) -> dict[str, str] | None:
        name = self.settings.owner_cluster_role
        if not name:
            return None
        role = await self.op.client.get("ClusterRole", name)
        if role is None:
            log.warning("ClusterRole %s (webhook.ownerClusterRole) does not exist; the webhook's registration has no "
                        "owner and stays if the operator is uninstalled.", name)
            return None
        return {"name": name, "uid": role["metadata"]["uid"]}

    async def register(self, certificate: ServingCertificate) -> bool:
        """Apply both configurations where the live ones differ; True when one was written. The validating
        one first: a failure there is the cycle's (retried with back-off). The mutating one only saves the
        operator the finalizer's write, which the reconcile makes when the webhook did not: a failure there
        (say, an install whose ClusterRole predates it) is logged once, retried at the next cycle, and
        never keeps the self-check from running."""
        owner = await self._owner()
        written = await self._register(self.desired_configuration(certificate, owner, VALIDATING))
        try:
            written = await self._register(self.desired_configuration(certificate, owner, MUTATING)) or written
        except (ApiError, RuntimeError) as error:
            if str(error) != self.mutating_problem:
                log.warning("The mutating admission webhook is not registered (the operator adds new Tenants' "
                            "finalizer itself, one write each): %s", error)
            self.mutating_problem = str(error)
        else:
            self.mutating_problem = None
        return written

    async def _register(self, desired: Mapping[str, Any]) -> bool:
        kind = desired["kind"]
        live = await self.op.client.get(kind, CONFIGURATION_NAME)
        if live is None and not desired["webhooks"]:
            return False  # nothing to register, and nothing registered
        # No webhooks is no field at all in what the API server returns (the chart's empty registration).
        if live is not None and contains({**live, "webhooks": live.get("webhooks") or []}, desired):
            return False
        try:
            await apply_one(self.op.client, self.op.store, desired)
        except ApiError as error:
            if live is None and error.status == 403:
                raise RuntimeError(f"{kind} {CONFIGURATION_NAME} does not exist and the operator may not create "
                                   "one (its ClusterRole grants only get/patch of that name): install it with the "
                                   "chart or manifests/install.yaml") from error
            raise
        log.info("Registered the admission webhook (%s %s, %d rules, %s).", kind,
                 CONFIGURATION_NAME, len(desired["webhooks"]),
                 f"Service {self.namespace}/{self.settings.service.name}" if self.settings.service
                 else self.settings.base_url(self.server.port))
        return True

    # -- self-check

    async def self_check(self) -> dict[str, Any]:
        """Call the webhook the way the API server does: through the registration, trusting its CA bundle."""
        certificate = self.certificate
        if certificate is None:
            return {"up": False, "message": "no certificate yet"}
        # A request every rule lets through quietly (the deletion of an Ingress that is not Tenantry's): the
        # check is that an answer comes, through the same address and CA bundle as the API server's calls.
        rule = self.server.rules.get("ingresses-delete") or min(self.server.rules.values(), key=lambda r: r.mutating)
        config = self.client_config(certificate).for_path(rule.path)
        if "url" in config:
            url = config["url"]
        else:
            service = config["service"]
            url = f"https://{service['name']}.{service['namespace']}.svc:{service['port']}{service['path']}"
        context = ssl.create_default_context(cadata=certificate.ca_bundle.decode())
        uid = str(uuid.uuid4())
        review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": uid, "operation": "DELETE",
            "resource": {"group": "networking.k8s.io", "version": "v1", "resource": "ingresses"},
            "kind": {"group": "networking.k8s.io", "version": "v1", "kind": "Ingress"},
            "namespace": "tenantry-self-check", "name": "self-check",
            "oldObject": {"metadata": {"name": "self-check", "namespace": "tenantry-self-check"}},
            "userInfo": {"username": next(iter(self.identities.operator_users), "system:tenantry-self-check")}}}
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session, \
                    session.post(url, json=review, ssl=context) as response:
                body = await response.json()
            answered = body.get("response", {}).get("uid") == uid
            result = {"up": answered, "message": f"{url} answered" if answered else f"{url} answered wrongly"}
        except (aiohttp.ClientError, TimeoutError, ValueError, ssl.SSLError) as error:
            result = {"up": False, "message": f"{url}: {error or type(error).__name__}"}
        UP.set(1 if result["up"] else 0)
        if result["up"] != self.last_check.get("up"):
            log.log(logging.INFO if result["up"] else logging.ERROR, "Admission webhook self-check: %s (%s).",
                    "up" if result["up"] else "DOWN", result["message"])
        self.last_check = result
        return result

    # -- running

    async def _cycle(self) -> None:
        certificate = await self.ensure_certificate()
        self._serve(certificate)
        if not self.server.serving:
            await self.server.start(self.settings.listen_host, self.settings.listen_port)
        await self.register(certificate)
        await self.self_check()

    async def run(self) -> None:
        backoff = Backoff(1.0, MAX_BACKOFF)
        while True:
            try:
                await self._cycle()
                backoff.reset()
                await asyncio.sleep(self.settings.self_check_seconds)
            except asyncio.CancelledError:
                raise
            except (ApiError, aiohttp.ClientError, OSError, RuntimeError, TimeoutError) as error:
                UP.set(0)
                self.last_check = {"up": False, "message": str(error)}
                delay = backoff.next()
                log.error("The admission webhook could not be set up, retrying in %.0f s: %s", delay, error)
                await asyncio.sleep(delay)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="admission-webhook")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.server.stop()


async def start_webhook(op: Operator) -> Webhook | None:
    """Serve and register the webhook (or remove a registration left from before, when it is disabled)."""
    settings = op.settings.webhook
    if not settings.enabled:
        await remove_registrations(op)
        return None
    unreachable = loopback_unreachable(settings)
    if unreachable:
        log.warning("The admission webhook is not served: %s.", unreachable)
        return None
    webhook = Webhook(op, settings)
    webhook.start()
    return webhook


async def remove_registrations(op: Operator) -> None:
    """webhook.enabled: false: no configuration may call a webhook nobody serves."""
    for kind in (VALIDATING, MUTATING):
        try:
            if await delete_if_present(op.client, kind, CONFIGURATION_NAME):
                log.info("The admission webhook is disabled (webhook.enabled: false): removed its registration "
                         "(%s %s).", kind, CONFIGURATION_NAME)
        except ApiError as error:
            if kind == VALIDATING or error.status != 403:
                raise
            # A ClusterRole from before the mutating webhook: there is none of ours to remove.
            log.warning("Could not remove the %s %s: %s", kind, CONFIGURATION_NAME, error)


async def stop_webhook(webhook: Webhook | None) -> None:
    if webhook is not None:
        await webhook.stop()


@kopf.on.probe(id="webhook")
def webhook_probe(memo: kopf.Memo, **_: Any) -> Mapping[str, Any]:
    """What /healthz says about the webhook (it never fails liveness: a webhook in trouble is reported by the
    metric and the readiness of its own port, and restarting the operator would not mend it)."""
    webhook: Webhook | None = memo.get("webhook")
    if webhook is None:
        return {"enabled": False}
    return {"enabled": True, **webhook.last_check}

