#!/usr/bin/env python3
"""A local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager) for tests and dev.

DESIGN.md §6: there is no Docker and no prebuilt Kubernetes download here, so the binaries come from
`hack/build-control-plane.sh` (v1.20.2 built from Debian's source package, cached outside the tree) and
etcd from Debian's `etcd-server`. This module only *runs* them:

    cp = ControlPlane(Path(".dev"))
    cp.start()                      # idempotent; first start generates PKI, tokens, kubeconfigs
    cp.install_platform()           # what the chart installs besides the operator: CRDs + platform roles
    ...                             # KUBECONFIG=cp.kubeconfig
    cp.stop_component("apiserver"); cp.start_component("apiserver")   # fault tests
    cp.destroy()                    # stop by pid + remove the directory

Several control planes can run side by side (each picks its own free loopback ports, persisted in
`<dir>/ports.json`); everything binds to 127.0.0.1. Processes are detached (own session) so a CLI
`up` outlives the shell; they are found again through `<dir>/pids/*.pid` and stopped by pid only.

Standard library + `cryptography` only, so that it runs from the project venv before anything else
of the project is importable.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import http.client
import ipaddress
import json
import os
import random
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO_ROOT = Path(__file__).resolve().parent.parent
CRDS_DIR = REPO_ROOT / "crds"
# The ClusterRoles the operator binds for reseller admins, their support staff and tenant owners
# (DESIGN.md §3): the chart ships this very file, and the operator holds `bind` on them, not their rules.
PLATFORM_ROLES_FILE = REPO_ROOT / "charts" / "tenantry" / "files" / "platform-clusterroles.yaml"
BUILD_SCRIPT = REPO_ROOT / "hack" / "build-control-plane.sh"
K8S_VERSION = "v1.20.2"

ETCD = "etcd"
APISERVER = "apiserver"
CONTROLLER_MANAGER = "controller-manager"
COMPONENTS = (ETCD, APISERVER, CONTROLLER_MANAGER)  # start order; stop order is the reverse

# Seconds between SIGTERM and SIGKILL. The apiserver drains gracefully only once no watch is open:
# while the controller-manager (or an operator) watches, it would wait out its 60s request timeout.
STOP_GRACE = {ETCD: 10.0, APISERVER: 5.0, CONTROLLER_MANAGER: 5.0}

ADMIN_USER = "tenantry-admin"
CONTROLLER_MANAGER_USER = "system:kube-controller-manager"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc"
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")

# Written once per directory. Only writes are audited, at Metadata level (no bodies): the tests count
# the operator's writes by user agent and user, and reads would make the file grow for nothing.
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    verbs: [{verbs}]
  - level: None
""".format(verbs=", ".join(f'"{v}"' for v in WRITE_VERBS))

# Ports below Linux's ephemeral range (32768-60999): a port picked there cannot be taken by some
# outgoing connection while a component is down during a restart test.
PORT_RANGE = (20000, 32000)


class ControlPlaneError(RuntimeError):
    """The control plane could not be started or did not become ready; the message says why."""


def _default_cache_dir() -> Path:
    # Same rule as hack/build-control-plane.sh.
    if os.environ.get("TENANTRY_CACHE"):
        return Path(os.environ["TENANTRY_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tenantry"


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR like Go's listeners: connections in TIME_WAIT after our own restart do not
        # make the port "taken"; another listener on it does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_free_ports(count: int) -> list[int]:
    rng = random.SystemRandom()
    picked: list[int] = []
    while len(picked) < count:
        port = rng.randrange(*PORT_RANGE)
        if port not in picked and _port_is_free(port):
            picked.append(port)
    return picked


def _write_private(path: Path, data: bytes) -> None:
    """Writes a secret file with mode 0600 from the start (no window where it is world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def _pid_alive(pid: int, binary: str, marker: str) -> bool:
    """True if `pid` is a live process running `binary` with `marker` (our directory) in its
    arguments. pid_max is 32768 on this kind of machine and pids wrap within minutes, so a stale
    pid file can name some other control plane's etcd: the directory tells ours apart. A Go
    process's leader thread can show as a zombie with an empty cmdline while its other threads run,
    so any live thread of the process counts, and its cmdline is read through that thread."""
    try:
        threads = [Path(f"/proc/{pid}"), *sorted(Path(f"/proc/{pid}/task").iterdir())]
    except OSError:
        return False
    for thread in threads:
        try:
            state = (thread / "stat").read_text().rsplit(")", 1)[-1].split()[0]
            cmdline = (thread / "cmdline").read_bytes()
        except OSError:
            continue
        if state in ("Z", "X") or not cmdline:
            continue
        argv0 = cmdline.split(b"\0", 1)[0].decode(errors="replace")
        return Path(argv0).name == Path(binary).name and marker.encode() in cmdline
    return False


@dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int


class ControlPlane:
    """One local control plane living in `directory` (PKI, tokens, kubeconfigs, etcd data, logs, pids)."""

    def __init__(self, directory: Path | str, cache_dir: Path | str | None = None) -> None:
        self.directory = Path(directory).resolve()
        self.cache_dir = Path(cache_dir) if cache_dir else _default_cache_dir()
        self.bin_dir = self.cache_dir / "bin"
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._exit_status: dict[str, int] = {}  # of our children that exited, for error messages
        self.timings: dict[str, float] = {}  # seconds, filled by start()

    # ------------------------------------------------------------------ paths and properties
    @property
    def pki_dir(self) -> Path:
        return self.directory / "pki"

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig: embedded CA, bearer token of `tenantry-admin` (group system:masters)."""
        return self.directory / "kubeconfig"

    @property
    def controller_manager_kubeconfig(self) -> Path:
        return self.directory / "controller-manager.kubeconfig"

    @property
    def ca_file(self) -> Path:
        return self.pki_dir / "ca.crt"

    @property
    def audit_log(self) -> Path:
        return self.directory / "audit.log"

    @property
    def token_file(self) -> Path:
        return self.directory / "tokens.csv"

    @property
    def ports_file(self) -> Path:
        return self.directory / "ports.json"

    @property
    def logs_dir(self) -> Path:
        return self.directory / "logs"

    @property
    def pids_dir(self) -> Path:
        return self.directory / "pids"

    @property
    def etcd_dir(self) -> Path:
        return self.directory / "etcd"

    @property
    def kubectl(self) -> Path:
        return self.bin_dir / "kubectl"

    @property
    def etcd_binary(self) -> Path:
        found = shutil.which("etcd")
        return Path(found) if found else Path("/usr/bin/etcd")

    @property
    def ports(self) -> Ports:
        data = json.loads(self.ports_file.read_text())
        return Ports(**data)

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.etcd_client}"

    @property
    def admin_token(self) -> str:
        return self._tokens()[ADMIN_USER]

    def _tokens(self) -> dict[str, str]:
        tokens: dict[str, str] = {}
        for line in self.token_file.read_text().splitlines():
            if line.strip():
                token, user = line.split(",")[:2]
                tokens[user] = token
        return tokens

    def binary(self, component: str) -> Path:
        return {
            ETCD: self.etcd_binary,
            APISERVER: self.bin_dir / "kube-apiserver",
            CONTROLLER_MANAGER: self.bin_dir / "kube-controller-manager",
        }[component]

    def log_file(self, component: str) -> Path:
        return self.logs_dir / f"{component}.log"

    def pid_file(self, component: str) -> Path:
        return self.pids_dir / f"{component}.pid"

    # ------------------------------------------------------------------ state
    def pid(self, component: str) -> int | None:
        try:
            return int(self.pid_file(component).read_text().strip())
        except (OSError, ValueError):
            return None

    def component_running(self, component: str) -> bool:
        proc = self._procs.get(component)
        if proc is not None:
            # Our own child: waitpid is the authority (and reaps it, so no zombie is left). /proc is
            # not: its thread-group leader can show as a zombie with an empty cmdline while the
            # rest of the (Go) process still runs, which once made a live etcd look dead.
            if proc.poll() is None:
                return True
            self._procs.pop(component, None)
            self._exit_status[component] = proc.returncode
            return False
        pid = self.pid(component)
        return pid is not None and _pid_alive(pid, str(self.binary(component)), f"{self.directory}/")

    def _process_facts(self, component: str) -> str:
        """What the liveness check saw, for an error message: the pid file, /proc and our child's status."""
        pid = self.pid(component)
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()[:120].replace(b"\0", b" ").decode(errors="replace")
        except (OSError, TypeError):
            cmdline = "no such process"
        child = f"exit status {self._exit_status.get(component, 'unknown')}"
        return f"pid file {pid}, /proc cmdline {cmdline!r}, {child}"

    def running(self) -> bool:
        return all(self.component_running(c) for c in COMPONENTS)

    def status(self) -> dict[str, object]:
        state: dict[str, object] = {
            "directory": str(self.directory),
            "components": {c: {"pid": self.pid(c), "running": self.component_running(c)} for c in COMPONENTS},
        }
        if self.ports_file.exists():
            state["server"] = self.server
            state["kubeconfig"] = str(self.kubeconfig)
            state["ready"] = self.component_running(APISERVER) and self.ready()
        return state

    def ready(self) -> bool:
        """The apiserver answers /readyz with ok (all its checks, etcd included)."""
        try:
            status, body = self._get("/readyz", timeout=3)
        except (OSError, http.client.HTTPException, ValueError):
            return False
        return status == 200 and body.strip() == b"ok"

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 120.0) -> None:
        """Starts whatever is not running and waits until the API is ready. Idempotent."""
        began = time.monotonic()
        if self.running() and self.ready():
            return
        self.ensure_binaries()
        self.directory.mkdir(parents=True, exist_ok=True)
        fresh = not self.ca_file.exists()
        self._ensure_ports()
        self._ensure_pki()
        self._ensure_tokens_and_kubeconfigs()
        self._ensure_audit_policy()
        self.timings["setup"] = time.monotonic() - began
        for component in COMPONENTS:
            if not self.component_running(component):
                self.start_component(component, wait=False)
            if component == ETCD:
                self._wait_etcd(began + timeout)
                self.timings["etcd"] = time.monotonic() - began
            elif component == APISERVER:
                self.wait_ready(began + timeout - time.monotonic())
                self.timings["apiserver"] = time.monotonic() - began
        # The controller-manager's service-account controller creating `default/default` shows that it
        # is up and talking to the API (it has no health endpoint: both its ports are disabled).
        self._wait_for(lambda: self._get("/api/v1/namespaces/default/serviceaccounts/default")[0] == 200,
                       began + timeout - time.monotonic(), "the default service account (controller-manager)",
                       CONTROLLER_MANAGER)
        self.timings["total"] = time.monotonic() - began
        self.timings["fresh"] = float(fresh)

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM each component by pid (reverse start order), SIGKILL after `timeout` (default: the
        component's own grace period, STOP_GRACE)."""
        for component in reversed(COMPONENTS):
            self.stop_component(component, timeout=timeout)
        self._kill_strays()

    def _kill_strays(self) -> None:
        """SIGKILL, by pid, any of our binaries still running on this directory whose pid file was lost
        or wrong (a start that failed half-way): a stopped control plane leaves no process behind."""
        binaries = {self.binary(c).name for c in COMPONENTS}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            pid = int(entry.name)
            if any(_pid_alive(pid, name, f"{self.directory}/") for name in binaries):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def destroy(self) -> None:
        """Stops the processes and removes the whole directory (data, PKI, logs)."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def start_component(self, component: str, wait: bool = True, timeout: float = 60.0) -> None:
        """Starts one component (detached) unless it runs; with `wait`, until it serves again."""
        if component not in COMPONENTS:
            raise ValueError(f"unknown component {component!r}; one of {COMPONENTS}")
        if not self.component_running(component):
            args = self._command(component)
            self.logs_dir.mkdir(parents=True, exist_ok=True)
            self.pids_dir.mkdir(parents=True, exist_ok=True)
            with open(self.log_file(component), "ab") as log:
                log.write(f"\n===== {datetime.datetime.now().isoformat()} starting {component}\n".encode())
                log.flush()
                proc = subprocess.Popen(
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # detached: survives the CLI; no terminal signals
                    cwd=self.directory,
                    env=self._child_env(),
                )
            self._procs[component] = proc
            self.pid_file(component).write_text(f"{proc.pid}\n")
        if not wait:
            return
        deadline = time.monotonic() + timeout
        if component == ETCD:
            self._wait_etcd(deadline)
        elif component == APISERVER:
            self.wait_ready(timeout)
        else:
            time.sleep(0.5)
            if not self.component_running(component):
                raise ControlPlaneError(f"{component} exited right after start\n{self.log_tail(component)}")

    def stop_component(self, component: str, timeout: float | None = None) -> None:
        """SIGTERM by pid, wait up to `timeout` (default STOP_GRACE[component]), then SIGKILL;
        removes the pid file."""
        pid = self.pid(component)
        if pid is not None and self.component_running(component):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + (STOP_GRACE[component] if timeout is None else timeout)
            while self.component_running(component) and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.component_running(component):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                while self.component_running(component):
                    time.sleep(0.05)
        proc = self._procs.pop(component, None)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)
        self.pid_file(component).unlink(missing_ok=True)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        self._wait_for(self.ready, timeout, "/readyz", APISERVER)
        # The apiserver's bootstrap controller creates `default` shortly after /readyz.
        self._wait_for(lambda: self._get("/api/v1/namespaces/default")[0] == 200,
                       deadline - time.monotonic(), "the default namespace", APISERVER)

    # ------------------------------------------------------------------ CRDs and kubectl
    def run_kubectl(
        self, *args: str, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        return run_kubectl(self.kubectl, self.kubeconfig, *args, check=check, timeout=timeout)

    def install_crds(self, crds_dir: Path | str, timeout: float = 60.0) -> list[str]:
        """Server-side applies every YAML in `crds_dir`, waits until each CRD is Established."""
        return install_crds(self.kubectl, self.kubeconfig, crds_dir, timeout)

    def install_platform(self, crds_dir: Path | str = CRDS_DIR, timeout: float = 60.0) -> list[str]:
        """The CRDs and the platform ClusterRoles (see `install_platform` below)."""
        return install_platform(self.kubectl, self.kubeconfig, crds_dir, timeout=timeout)

    # ------------------------------------------------------------------ diagnostics
    def log_tail(self, component: str | None = None, lines: int = 30) -> str:
        parts = []
        for c in [component] if component else COMPONENTS:
            path = self.log_file(c)
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path} (last {lines} lines)\n" + "\n".join(text))
            else:
                parts.append(f"--- {path}: no log")
        return "\n".join(parts)

    # ------------------------------------------------------------------ internals
    def ensure_binaries(self) -> None:
        """Runs hack/build-control-plane.sh when a binary is missing (a cached run is near-instant)."""
        needed = [self.binary(c) for c in COMPONENTS] + [self.kubectl]
        if all(p.exists() for p in needed):
            return
        env = dict(os.environ, TENANTRY_CACHE=str(self.cache_dir))
        result = subprocess.run(["bash", str(BUILD_SCRIPT)], env=env)
        missing = [str(p) for p in needed if not p.exists()]
        if result.returncode != 0 or missing:
            raise ControlPlaneError(f"{BUILD_SCRIPT} failed (exit {result.returncode}); missing: {missing}")

    def _child_env(self) -> dict[str, str]:
        env = _no_proxy_env()
        env.pop("KUBECONFIG", None)  # the components get their kubeconfig by flag, never by accident
        return env

    def _ensure_ports(self) -> None:
        if self.ports_file.exists():
            ports = self.ports
            # Reuse the ports across restarts; pick new ones only if nothing of ours runs and another
            # process has taken one meanwhile.
            ours = any(self.component_running(c) for c in COMPONENTS)
            if ours or all(_port_is_free(p) for p in (ports.etcd_client, ports.etcd_peer, ports.apiserver)):
                return
        client, peer, api = _pick_free_ports(3)
        self.ports_file.write_text(json.dumps(Ports(client, peer, api).__dict__) + "\n")

    def _ensure_pki(self) -> None:
        pki = self.pki_dir
        if (pki / "ca.crt").exists() and (pki / "apiserver.crt").exists() and (pki / "sa.key").exists():
            return
        pki.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)  # tolerate clock skew

        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tenantry-local-ca")])
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name).issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )

        server_key = ec.generate_private_key(ec.SECP256R1())
        dns = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"]
        ips = ["127.0.0.1", str(next(ipaddress.ip_network(SERVICE_CLUSTER_IP_RANGE).hosts()))]  # 10.0.0.1
        server_cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca_name)
            .public_key(server_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=False,
                                         crl_sign=False, content_commitment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]),
                critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256())
        )

        # RSA for the service-account signer: RS256 is what every token consumer accepts.
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

        def pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
            return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())

        _write_private(pki / "ca.key", pem_key(ca_key))
        _write_private(pki / "apiserver.key", pem_key(server_key))
        _write_private(pki / "sa.key", pem_key(sa_key))
        (pki / "sa.pub").write_bytes(sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        (pki / "apiserver.crt").write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
        (pki / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))  # last: marks done

    def _ensure_tokens_and_kubeconfigs(self) -> None:
        if not self.token_file.exists():
            lines = [
                # token,user,uid,"groups" - the controller-manager gets its own user so audit entries
                # of the test admin and of the controllers can be told apart.
                f'{secrets.token_urlsafe(32)},{ADMIN_USER},{ADMIN_USER},"system:masters"',
                f'{secrets.token_urlsafe(32)},{CONTROLLER_MANAGER_USER},{CONTROLLER_MANAGER_USER},"system:masters"',
            ]
            _write_private(self.token_file, ("\n".join(lines) + "\n").encode())
        tokens = self._tokens()
        # Rewritten on every start: cheap, and follows the apiserver port if it had to change.
        _write_private(self.kubeconfig, self._kubeconfig_yaml(ADMIN_USER, tokens[ADMIN_USER]).encode())
        cm_config = self._kubeconfig_yaml(CONTROLLER_MANAGER_USER, tokens[CONTROLLER_MANAGER_USER])
        _write_private(self.controller_manager_kubeconfig, cm_config.encode())

    def _kubeconfig_yaml(self, user: str, token: str) -> str:
        ca = base64.b64encode(self.ca_file.read_bytes()).decode()
        # JSON is valid YAML, and needs no YAML library here.
        return json.dumps({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "tenantry-local",
                          "cluster": {"server": self.server, "certificate-authority-data": ca}}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "tenantry-local", "context": {"cluster": "tenantry-local", "user": user}}],
            "current-context": "tenantry-local",
            "preferences": {},
        }, indent=2) + "\n"

    def _ensure_audit_policy(self) -> None:
        policy = self.directory / "audit-policy.yaml"
        if not policy.exists():
            policy.write_text(AUDIT_POLICY)

    def _etcd_supports(self, flag: str) -> bool:
        marker = self.cache_dir / f".etcd-flags-{self.etcd_binary.stat().st_size}.txt"
        if not marker.exists():
            out = subprocess.run([str(self.etcd_binary), "--help"], capture_output=True, text=True)
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(out.stdout + out.stderr)
        return flag in marker.read_text()

    def _command(self, component: str) -> list[str]:
        p, d, pki = self.ports, self.directory, self.pki_dir
        if component == ETCD:
            peer = f"http://127.0.0.1:{p.etcd_peer}"
            args = [
                str(self.etcd_binary),
                "--name=default",
                f"--data-dir={self.etcd_dir}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=default={peer}",
                "--initial-cluster-state=new",
                f"--quota-backend-bytes={8 * 1024**3}",
                "--snapshot-count=10000",
                "--logger=zap",
                "--log-level=warn",
            ]
            # etcd 3.4 has no --unsafe-no-fsync (3.5 does); use it only where it exists.
            if self._etcd_supports("--unsafe-no-fsync"):
                args.append("--unsafe-no-fsync")
            return args
        if component == APISERVER:
            return [
                str(self.binary(APISERVER)),
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={p.apiserver}",
                "--insecure-port=0",
                f"--cert-dir={pki}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={self.ca_file}",
                f"--token-auth-file={self.token_file}",
                "--authorization-mode=RBAC",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                # The `kubernetes` Endpoints would hold 127.0.0.1, which Endpoints validation rejects
                # (loopback); with no kubelet nothing needs them, so skip the reconciler's error loop.
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,ResourceQuota,"
                "PodNodeSelector,PodTolerationRestriction",
                "--max-requests-inflight=800",
                "--max-mutating-requests-inflight=400",
                f"--audit-policy-file={d / 'audit-policy.yaml'}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-mode=blocking",  # an event is on disk when the request returns
                # Never rotated (the default rotates at 100 MB, which 10,000 tenants' writes pass: the
                # bench counted only the last file's); a test's or bench's plane lives for one run.
                "--audit-log-maxsize=1048576",
                "--profiling=false",
                "--v=1",
            ]
        if component == CONTROLLER_MANAGER:
            return [
                str(self.binary(CONTROLLER_MANAGER)),
                f"--kubeconfig={self.controller_manager_kubeconfig}",
                "--controllers=namespace,resourcequota,garbagecollector,serviceaccount,serviceaccount-token",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={self.ca_file}",
                "--leader-elect=false",
                "--port=0",
                "--secure-port=0",
                "--resource-quota-sync-period=10s",
                "--concurrent-namespace-syncs=5",
                "--concurrent-gc-syncs=10",
                "--concurrent-resource-quota-syncs=5",
                "--profiling=false",
                "--v=1",
            ]
        raise ValueError(component)

    def _get(self, path: str, timeout: float = 5) -> tuple[int, bytes]:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        request = urllib.request.Request(self.server + path, headers=headers)
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx)
        )
        try:
            with opener.open(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def _wait_etcd(self, deadline: float) -> None:
        def healthy() -> bool:
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            try:
                with opener.open(self.etcd_url + "/health", timeout=2) as response:
                    return bool(json.loads(response.read()).get("health") == "true")
            except (OSError, ValueError):
                return False

        self._wait_for(healthy, deadline - time.monotonic(), "etcd /health", ETCD)

    def _wait_for(self, predicate: Callable[[], bool], timeout: float, what: str, component: str) -> None:
        deadline = time.monotonic() + max(timeout, 1.0)
        while True:
            with contextlib.suppress(OSError, http.client.HTTPException, ValueError):
                if predicate():
                    return
            if not self.component_running(component):
                raise ControlPlaneError(
                    f"{component} is not running (waiting for {what}; {self._process_facts(component)})\n"
                    f"{self.log_tail(component)}"
                )
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"timed out waiting for {what}\n{self.log_tail()}")
            time.sleep(0.2)


# ---------------------------------------------------------------------- kubectl, any cluster
def _no_proxy_env() -> dict[str, str]:
    env = dict(os.environ)
    # Talking to 127.0.0.1 must never go through a proxy configured for the package registries.
    no_proxy = ",".join(filter(None, [env.get("NO_PROXY") or env.get("no_proxy"), "127.0.0.1,localhost"]))
    env["NO_PROXY"] = env["no_proxy"] = no_proxy
    return env


def run_kubectl(
    kubectl: Path | str, kubeconfig: Path | str, *args: str, check: bool = True, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    cmd = [str(kubectl), f"--kubeconfig={kubeconfig}", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_no_proxy_env())
    if check and result.returncode != 0:
        raise ControlPlaneError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                                f"{result.stdout}{result.stderr}")
    return result


def install_crds(kubectl: Path | str, kubeconfig: Path | str, crds_dir: Path | str,
                 timeout: float = 60.0) -> list[str]:
    """Server-side applies every YAML/JSON file in `crds_dir` and waits until each CRD is Established.

    Works against any cluster. Returns the CRD names as kubectl prints them
    (`customresourcedefinition.apiextensions.k8s.io/<name>`)."""
    files = sorted(p for p in Path(crds_dir).glob("*") if p.suffix in (".yaml", ".yml", ".json"))
    names: list[str] = []
    for path in files:
        out = run_kubectl(kubectl, kubeconfig, "apply", "--server-side", "--force-conflicts",
                          "--field-manager=tenantry-dev", "-o", "name", "-f", str(path)).stdout
        names += [n for n in out.split() if n.startswith("customresourcedefinition")]
    if names:
        run_kubectl(kubectl, kubeconfig, "wait", "--for=condition=Established", f"--timeout={int(timeout)}s",
                    *names, timeout=timeout + 10)
    return names


OPERATOR_NAMESPACE = "tenantry-system"  # the chart's release namespace


def install_platform(kubectl: Path | str, kubeconfig: Path | str, crds_dir: Path | str = CRDS_DIR, *,
                     roles_file: Path | str = PLATFORM_ROLES_FILE, timeout: float = 60.0) -> list[str]:
    """What the chart installs besides the operator's own Deployment and RBAC: the CRDs (waited for
    until Established), the platform ClusterRoles `tenantry-reseller`, `tenantry-reseller-support`
    and `tenantry-tenant-owner`, and the namespace `tenantry-system` (the operator's Lease and
    webhook certificate live there). Without the roles the operator's RoleBindings grant nothing.

    Every way this project sets up a cluster calls this one function (`make dev-up` and `make demo`
    through `up`, the test session, hack/bench), so none of them can forget a part. Server-side
    applied, so it is idempotent and takes an edited role file into account. Returns what kubectl
    applied (`customresourcedefinition.apiextensions.k8s.io/<name>`, `clusterrole.rbac.../<name>`)."""
    names = install_crds(kubectl, kubeconfig, crds_dir, timeout)
    out = run_kubectl(kubectl, kubeconfig, "apply", "--server-side", "--force-conflicts",
                      "--field-manager=tenantry-dev", "-o", "name", "-f", str(roles_file)).stdout
    # The chart's namespace: `tenantry run` keeps its leader Lease and webhook certificate there.
    if run_kubectl(kubectl, kubeconfig, "get", "namespace", OPERATOR_NAMESPACE, check=False).returncode != 0:
        run_kubectl(kubectl, kubeconfig, "create", "namespace", OPERATOR_NAMESPACE, check=False)
    return [*names, *out.split(), f"namespace/{OPERATOR_NAMESPACE}"]


# ---------------------------------------------------------------------- CLI
def _cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hack/controlplane.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run a local Kubernetes v1.20 control plane (etcd, kube-apiserver,\n"
                    "kube-controller-manager) on 127.0.0.1 for development and tests.",
        epilog="""commands:
  up      start (idempotent: returns at once when already up) and install the CRDs of --crds
          and the platform ClusterRoles of the chart (what the operator binds for resellers)
  down    stop the processes AND REMOVE the directory (etcd data, PKI, tokens, logs),
          so that the next `up` starts from a clean, empty cluster
  stop    stop the processes but keep the data (the next `up` is a fast restart)
  status  print pids, server URL and readiness as JSON (exit 1 when not ready)
  env     print shell exports: eval "$(hack/controlplane.py env)"
""",
    )
    parser.add_argument("command", choices=["up", "down", "stop", "status", "env"])
    parser.add_argument("--dir", default=str(REPO_ROOT / ".dev"),
                        help="state directory (default: <repo>/.dev)")
    parser.add_argument("--cache-dir", default=None,
                        help="binary cache (default: $TENANTRY_CACHE or ~/.cache/tenantry)")
    parser.add_argument("--crds", default=str(CRDS_DIR),
                        help="CRD directory installed by `up` (default: <repo>/crds)")
    args = parser.parse_args(argv)
    cp = ControlPlane(Path(args.dir), args.cache_dir)

    if args.command == "up":
        was_running = cp.running() and cp.ready()
        t0 = time.monotonic()
        try:
            cp.start()
        except ControlPlaneError as e:
            print(f"control plane failed to start: {e}", file=sys.stderr)
            return 1
        try:
            names = cp.install_platform(args.crds)
        except ControlPlaneError as e:
            print(f"control plane is up at {cp.server}, but installing the CRDs of {args.crds} and the platform "
                  f"ClusterRoles failed: {e}", file=sys.stderr)
            return 1
        elapsed = time.monotonic() - t0
        if was_running:
            print(f"control plane already running at {cp.server}")
        else:
            kind = "first start (PKI + fresh etcd)" if cp.timings.get("fresh") else "restart (existing data)"
            print(f"control plane up at {cp.server}: {kind}; etcd {cp.timings['etcd']:.1f}s, apiserver ready "
                  f"{cp.timings['apiserver']:.1f}s, controller-manager {cp.timings['total']:.1f}s")
        crds = [n for n in names if n.startswith("customresourcedefinition")]
        roles = [n.rsplit("/", 1)[-1] for n in names if n.startswith("clusterrole")]
        print(f"installed {len(crds)} CRD(s) from {args.crds} and ClusterRole(s) {', '.join(roles)}; "
              f"{elapsed:.1f}s in all")
        print(f"kubeconfig: {cp.kubeconfig}")
        print(f"  export KUBECONFIG={cp.kubeconfig}")
        print(f"  export PATH={cp.bin_dir}:$PATH   # kubectl {K8S_VERSION}")
        print(f"audit log (writes only): {cp.audit_log}; logs: {cp.logs_dir}")
        return 0
    if args.command == "down":
        cp.destroy()
        print(f"stopped and removed {cp.directory}")
        return 0
    if args.command == "stop":
        cp.stop()
        print(f"stopped; data kept in {cp.directory}")
        return 0
    if args.command == "status":
        state = cp.status()
        print(json.dumps(state, indent=2))
        return 0 if state.get("ready") else 1
    if args.command == "env":
        print(f"export KUBECONFIG={cp.kubeconfig}")
        print(f"export PATH={cp.bin_dir}:$PATH")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(_cli())
