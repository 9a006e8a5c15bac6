"""The HTTPS endpoint the API server calls: `POST /validate/<rule>` (and `/mutate/<rule>` for a mutating
rule) answers an AdmissionReview.

aiohttp (kopf's HTTP stack, already a dependency) rather than kopf's `WebhookServer`: the serving certificate
lives in a Secret shared by the operator's replicas and is swapped in place in the running SSL context when
it is rotated (kopf's server reads certificate files and restarts its listener on a change, which refuses
connections for a moment: with failure policy Fail, a refused `kubectl apply`), and the response carries
the rule's reason and code, which kopf's handlers cannot set.

Each request goes to exactly one rule (by path). A user the rule exempts is allowed at once. A validator
that fails (an exception, or overrunning its time) is answered as its failure policy says: a Fail rule
denies ("could not be checked"), an Ignore rule allows, so that a bug in an advisory check never blocks
anyone. A mutating rule's change travels as a JSON Patch in the answer (`patchType: JSONPatch`). Every answer
is counted (`tenantry_webhook_requests_total{rule,result}`) and timed.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import logging
import os
import ssl
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import Counter, Gauge, Histogram

from tenantry.webhook.registry import (
    FAIL,
    ClusterView,
    Identities,
    Request,
    Rule,
    Verdict,
    active_rules,
    allow,
    deny,
    is_exempt,
)

log = logging.getLogger("tenantry.webhook")

REQUESTS = Counter("tenantry_webhook_requests_total",
                   "Admission requests answered by Tenantry's webhook, by rule and result "
                   "(allowed, warned, mutated, denied, exempt, error)", ["rule", "result"])
DURATION = Histogram("tenantry_webhook_request_duration_seconds", "Time to answer one admission request, by rule",
                     ["rule"], buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
UP = Gauge("tenantry_webhook_up",
           "1 when the operator's last self-check reached its own webhook through its registration (URL or "
           "Service, with the registered CA bundle) and got an answer, else 0")
CERTIFICATE_EXPIRY = Gauge("tenantry_webhook_certificate_expiry_timestamp_seconds",
                           "When the webhook's serving certificate expires (Unix time)")

INTERNAL_ERROR = "WebhookError"
NOT_READY = "WebhookNotReady"
# An overrunning validator is cut short well within the API server's timeout, so that the answer is ours.
VALIDATOR_SHARE_OF_TIMEOUT = 0.6


def review_response(review: Mapping[str, Any], verdict: Verdict) -> dict[str, Any]:
    """The AdmissionReview answer for a verdict (admission.k8s.io v1 and v1beta1 have the same shape)."""
    request = review.get("request") or {}
    response: dict[str, Any] = {"uid": request.get("uid", ""), "allowed": verdict.allowed}
    if not verdict.allowed:
        message = f"{verdict.reason}: {verdict.message}" if verdict.reason else verdict.message
        response["status"] = {"status": "Failure", "code": verdict.code, "message": message,
                              "reason": "Forbidden" if verdict.code == 403 else "Invalid"}
    if verdict.warnings:
        response["warnings"] = list(verdict.warnings)
    if verdict.allowed and verdict.patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(list(verdict.patch)).encode()).decode()
    return {"apiVersion": review.get("apiVersion", "admission.k8s.io/v1"), "kind": "AdmissionReview",
            "response": response}


async def decide(rule: Rule, request: Request, view: ClusterView, identities: Identities) -> tuple[Verdict, str]:
    """(verdict, result label) for one request: exemption, the validator, and the failure policy."""
    if is_exempt(request, rule.exempt, identities):
        return allow(), "exempt"
    try:
        outcome = rule.validate(request, view)
        if inspect.isawaitable(outcome):
            outcome = await asyncio.wait_for(outcome, timeout=rule.timeout_seconds * VALIDATOR_SHARE_OF_TIMEOUT)
        verdict: Verdict = outcome
    except Exception as error:  # a bug or an overrun: the rule's failure policy decides
        log.exception("Admission rule %s failed on %s %s/%s by %s: %s", rule.name, request.operation,
                      request.namespace, request.name, request.username, error)
        if rule.failure_policy == FAIL:
            return deny(INTERNAL_ERROR, f"Tenantry's admission rule {rule.name} could not check this request; "
                        "try again, and if it persists ask the platform to look at the operator's log."), "error"
        return allow(), "error"
    if not verdict.allowed:
        return verdict, "denied"
    if verdict.patch:
        return verdict, "mutated"
    return verdict, "warned" if verdict.warnings else "allowed"


class WebhookServer:
    """The webhook's listener. `view` is read on every request; `ready()` says whether it can answer."""

    def __init__(self, view: ClusterView, identities: Identities, *, ready: Callable[[], bool] = lambda: True,
                 disabled: Iterable[str] = ()):
        self.view = view
        self.identities = identities
        self.rules = active_rules(disabled)
        self.ready = ready
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._certificate_loaded = False
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # -- certificate --------------------------------------------------------------------------------

    def load_certificate(self, cert_pem: bytes, key_pem: bytes) -> None:
        """Serve this certificate from the next handshake on, without closing the listener. The ssl module
        loads keys only from files: they exist for a moment, readable by this user alone, then go."""
        with tempfile.TemporaryDirectory(prefix="tenantry-webhook-") as directory:
            cert_path, key_path = os.path.join(directory, "tls.crt"), os.path.join(directory, "tls.key")
            for path, data in ((cert_path, cert_pem), (key_path, key_pem)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            self.context.load_cert_chain(cert_path, key_path)
        self._certificate_loaded = True

    @property
    def serving(self) -> bool:
        return self._runner is not None and self._certificate_loaded

    # -- listening ----------------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> None:
        if not self._certificate_loaded:
            raise RuntimeError("the webhook server needs its certificate before it listens")
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_post("/validate/{rule}", self._handle)
        app.router.add_post("/mutate/{rule}", self._handle)
        app.router.add_get("/readyz", self._readyz)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=self.context, reuse_address=True)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1]) if runner.addresses else port  # port 0: the one chosen
        log.info("Admission webhook listening on https://%s:%s with %d rules: %s.", host, self.port,
                 len(self.rules), ", ".join(sorted(self.rules)))

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- requests -----------------------------------------------------------------------------------

    async def _readyz(self, _: web.Request) -> web.Response:
        if self.serving and self.ready():
            return web.Response(text="ok")
        return web.Response(status=503, text="the operator's picture of the cluster is not loaded yet")

    async def _handle(self, http_request: web.Request) -> web.Response:
        started = time.perf_counter()
        name = http_request.match_info["rule"]
        rule = self.rules.get(name)
        if rule is None or rule.path != http_request.path:  # a validating rule never mutates, nor the reverse
            return web.Response(status=404, text=f"no admission rule {http_request.path}")
        try:
            review = await http_request.json()
            request = Request.from_review(review)
        except (ValueError, json.JSONDecodeError):
            return web.Response(status=400, text="the body is not an AdmissionReview")
        if not self.ready():
            # Before the picture is loaded no answer would be right: a Fail rule refuses (try again in a
            # moment), an Ignore rule lets the request through.
            verdict = (deny(NOT_READY, "Tenantry's operator is starting and cannot check this yet; try again in a "
                            "few seconds.") if rule.failure_policy == FAIL else allow())
            result = "error"
        else:
            verdict, result = await decide(rule, request, self.view, self.identities)
        REQUESTS.labels(rule=name, result=result).inc()
        DURATION.labels(rule=name).observe(time.perf_counter() - started)
        if not verdict.allowed:
            log.info("Admission rule %s denied %s of %s %s/%s by %s: %s: %s", name, request.operation, request.kind,
                     request.namespace, request.name, request.username, verdict.reason, verdict.message)
        return web.json_response(review_response(review, verdict))
