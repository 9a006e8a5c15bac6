"""The operator's and the meter's credentials, kept fresh: one source for kopf's watches and KubeClient.

Credentials do not stay put. The kubelet rotates a pod's projected ServiceAccount token (the file
changes; the old token stops working when it expires); exec plugins and OIDC hand out tokens that
expire (EKS: 15 minutes); a token file named by a kubeconfig (`tokenFile`) may be replaced at any
time. Read once, any of these ends with every request refused.

`ClusterLogin` logs in the way kubectl does - in-cluster ServiceAccount, else `$KUBECONFIG` - with
the Kubernetes Python client's own loaders (`kubernetes.config`, public API; the same ones
`kopf.login_via_client` uses), and then:

- `current()`, before each request: at most every RECHECK_SECONDS, asks the loaded configuration
  for its token again. The client library's refresh hook re-reads the in-cluster token file once
  a minute and re-runs an exec or OIDC plugin whose token passed its expirationTimestamp.
- `rejected(credentials)`, after a 401: a full login again (the kubeconfig and its token file are
  read again, exec plugins run again), once for all requests refused with the same token, and at
  most once a second. KubeClient then retries the request once.
- `connection_info()`, kopf's `@kopf.on.login` handler: the same full login, as kopf's
  ConnectionInfo. Kopf calls it at start-up and whenever its own requests meet a 401, so kopf's
  watches and KubeClient always use the same, latest credentials.

That is what client-go does (transport/token_source.go: a cached file token source re-read every
minute and reset on a 401; exec credentials refreshed at expiry and on a 401).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import kopf
import kubernetes
import yaml

from tenantry.kube import Credentials

log = logging.getLogger("tenantry.credentials")

RECHECK_SECONDS = 10.0      # how often the loaded configuration is asked for a (possibly refreshed) token
MIN_RELOGIN_SECONDS = 1.0   # a token that stays refused is not re-read for every request


class LoginError(RuntimeError):
    """Neither in-cluster credentials nor a usable $KUBECONFIG."""


def _load_configuration() -> Any:
    """A `kubernetes.client.Configuration` from in-cluster config, else $KUBECONFIG (blocking)."""
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)
    except kubernetes.config.ConfigException:
        try:
            # $KUBECONFIG as it is now (the library reads it once, at import), one path or several.
            kubernetes.config.load_kube_config(config_file=os.environ.get("KUBECONFIG") or None,
                                               client_configuration=configuration)
        except (kubernetes.config.ConfigException, OSError) as error:
            raise LoginError(f"no Kubernetes credentials found (in-cluster or $KUBECONFIG): {error}") from error
    return configuration


class KubeconfigError(LoginError):
    """A kubeconfig that cannot be used (not YAML, no cluster, no current context...)."""


def kubeconfig_login(read: Callable[[], bytes]) -> ClusterLogin:
    """A login from a kubeconfig's content, read again at each full login (a rotated file is followed).
    The content is checked now: a bad kubeconfig is refused before anything connects."""

    def load() -> Any:
        try:
            config = yaml.safe_load(read())
        except yaml.YAMLError as error:
            raise KubeconfigError(f"it is not YAML: {error}") from error
        if not isinstance(config, dict) or not config.get("clusters") or not config.get("current-context"):
            raise KubeconfigError("it is no kubeconfig (clusters and current-context are required)")
        configuration = kubernetes.client.Configuration()
        try:
            kubernetes.config.load_kube_config_from_dict(config, client_configuration=configuration)
        except (kubernetes.config.ConfigException, ValueError, KeyError, TypeError) as error:
            raise KubeconfigError(str(error) or type(error).__name__) from error
        if not configuration.host or not configuration.host.startswith(("https://", "http://")):
            raise KubeconfigError(f"its current context names no server URL ({configuration.host!r})")
        return configuration

    load()
    return ClusterLogin(load=load)


def credentials_of(configuration: Any) -> Credentials:
    """The credentials a loaded configuration holds now. Asking for the API key runs the client
    library's refresh hook (a rotated token file, an expired plugin token), as its own requests do."""
    header = (configuration.get_api_key_with_prefix("BearerToken")
              or configuration.get_api_key_with_prefix("authorization"))
    # Trailing whitespace of a token file is no part of the token (client-go trims it; this library does not).
    parts = header.strip().split(" ", 1) if header else []
    scheme, token = (None, None) if not parts else (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    # The CA by content, not by path: a kubeconfig's certificate-authority-data is written to a new
    # temporary file at every load, and a new path would look like a new server (a new connection pool).
    ca_data = None
    if configuration.ssl_ca_cert:
        with open(configuration.ssl_ca_cert, "rb") as ca_file:
            ca_data = ca_file.read()
    return Credentials(
        server=configuration.host.rstrip("/"),
        token=token,
        scheme=scheme,
        ca_data=ca_data,
        cert_path=configuration.cert_file or None,
        key_path=configuration.key_file or None,
        insecure=not configuration.verify_ssl,
    )


class ClusterLogin:
    """A CredentialSource (tenantry.kube) that logs in again when it must; see the module's doc."""

    def __init__(self, *, load: Callable[[], Any] = _load_configuration, recheck_seconds: float = RECHECK_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self._load = load
        self._recheck_seconds = recheck_seconds
        self._clock = clock
        self._lock = threading.Lock()  # kopf runs its (sync) login handler in a thread
        self._configuration: Any = None
        self._credentials: Credentials | None = None
        self._checked = 0.0
        self._logged_in = float("-inf")
        self.logins = 0  # full logins so far (for tests and logs)
        self._relogin: asyncio.Lock | None = None

    # -- blocking parts, run in a thread from async code -------------------------------------------

    def login(self) -> Credentials:
        """A full login now: configuration and token files read again, plugins run again."""
        configuration = self._load()
        credentials = credentials_of(configuration)
        with self._lock:
            changed = self._credentials is not None and credentials.authorization != self._credentials.authorization
            self._configuration, self._credentials = configuration, credentials
            self._checked = self._logged_in = self._clock()
            self.logins += 1
        if changed:
            log.info("Logged in to %s again, with new credentials.", credentials.server)
        return credentials

    def _recheck(self) -> Credentials:
        with self._lock:
            configuration, known = self._configuration, self._credentials
        credentials = credentials_of(configuration)
        with self._lock:
            if self._configuration is configuration:  # not replaced by a login meanwhile
                self._credentials, self._checked = credentials, self._clock()
            if known is not None and credentials.authorization != known.authorization:
                log.info("The credentials for %s were refreshed (a rotated token file or an expired plugin "
                         "token).", credentials.server)
            return self._credentials or credentials

    # -- CredentialSource ---------------------------------------------------------------------------

    async def current(self) -> Credentials:
        credentials = self._credentials
        if credentials is None:
            return await asyncio.to_thread(self.login)
        if self._clock() - self._checked >= self._recheck_seconds:
            self._checked = self._clock()  # one recheck at a time, the others use what is known
            return await asyncio.to_thread(self._recheck)
        return credentials

    async def rejected(self, credentials: Credentials) -> Credentials:
        if self._relogin is None:
            self._relogin = asyncio.Lock()
        async with self._relogin:  # many requests refused at once: one login, the others wait for it
            known = self._credentials
            if known is not None and known.authorization != credentials.authorization:
                return known  # a login since that request already replaced them
            if known is not None and self._clock() - self._logged_in < MIN_RELOGIN_SECONDS:
                return known
            log.info("The API server refused the credentials (401); logging in again.")
            return await asyncio.to_thread(self.login)

    # -- kopf ---------------------------------------------------------------------------------------

    def connection_info(self, settings: kopf.OperatorSettings | None = None) -> kopf.ConnectionInfo:
        """For `@kopf.on.login`: a full login, as kopf's ConnectionInfo (like kopf.login_via_client)."""
        credentials = self.login()
        return kopf.ConnectionInfo(
            server=credentials.server,
            ca_path=credentials.ca_path,
            ca_data=credentials.ca_data,  # PEM, as credentials_of reads it
            insecure=credentials.insecure,
            scheme=credentials.scheme,
            token=credentials.token,
            certificate_path=credentials.cert_path,
            private_key_path=credentials.key_path,
            trust_env=settings.networking.trust_env if settings is not None else False,
        )
