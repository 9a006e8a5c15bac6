"""A loopback HTTP proxy in front of the apiserver that injects faults: 5xx answers, requests that
hang and then lose their connection (timeouts), latency, cut streams (watches), and 404s for the watches
of a path prefix (an apiserver that has restarted but not yet registered its CRDs).

The operator under test talks plain HTTP to 127.0.0.1:<port>; the proxy forwards each request over
TLS to the real apiserver (verifying its CA) and streams the answer back, so watches work through it.
Every connection carries one request (`Connection: close` is forced), which keeps the proxy simple
and lets it decide the fate of each request on its own. Decisions come from a seeded `random.Random`,
so a run can be repeated; counters say what was injected.

    proxy = FaultProxy(upstream="https://127.0.0.1:6443", ca_file=...).start()
    proxy.set_faults(error_rate=0.2, timeout_rate=0.05, delay=(0.0, 0.3))
    ...
    proxy.set_faults()          # healthy again
    proxy.stop()
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

_ERROR_STATUSES = ((500, "Internal Server Error"), (503, "Service Unavailable"), (504, "Gateway Timeout"),
                   (429, "Too Many Requests"))


@dataclass
class Faults:
    error_rate: float = 0.0        # answer 5xx/429 without forwarding
    timeout_rate: float = 0.0      # hold the request `hang_seconds`, then close without an answer
    hang_seconds: float = 3.0
    delay: tuple[float, float] = (0.0, 0.0)  # latency added before forwarding (uniform in range)
    not_found_watches: str = ""    # path prefix whose watches answer 404, as while CRDs re-register


@dataclass
class FaultProxy:
    upstream: str
    ca_file: str | None = None
    seed: int = 7
    port: int = 0
    faults: Faults = field(default_factory=Faults)
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        parts = urlsplit(self.upstream)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 443
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        context = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else ssl._create_unverified_context()
        self._tls = context

    # -- control -------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(256)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept_forever, name="faultproxy-accept", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            self._listener.close()
        self.cut_streams()

    def set_faults(self, **settings: object) -> None:
        """Replace the fault settings (no arguments: no faults)."""
        with self._lock:
            self.faults = Faults(**settings)  # type: ignore[arg-type]

    def cut_streams(self) -> int:
        """Close every connection in flight (watches included), as a dying apiserver or LB would."""
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with self._lock:
            self.counts["cut"] += len(sockets)
        return len(sockets)

    @property
    def injected(self) -> int:
        return sum(self.counts[k] for k in ("error", "timeout", "cut", "not_found"))

    # -- serving -------------------------------------------------------------------------------------

    def _accept_forever(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name="faultproxy-conn", daemon=True).start()

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._lock:
            (self._open.add if add else self._open.discard)(sock)

    def _serve(self, conn: socket.socket) -> None:
        upstream: socket.socket | None = None
        self._track(conn, True)
        try:
            conn.settimeout(60)
            request = _read_request(conn)
            if request is None:
                return
            head, body = request
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            is_watch = "watch=1" in request_line or "watch=true" in request_line
            with self._lock:
                faults = self.faults
                roll = self._random.random()
                delay = self._random.uniform(*faults.delay) if faults.delay[1] > 0 else 0.0
                self.counts["requests"] += 1
            if is_watch and faults.not_found_watches and \
                    request_line.split(" ")[1].startswith(faults.not_found_watches):
                with self._lock:
                    self.counts["not_found"] += 1
                conn.sendall(_not_found_response())
                return
            if roll < faults.error_rate:
                with self._lock:
                    status, reason = self._random.choice(_ERROR_STATUSES)
                    self.counts["error"] += 1
                conn.sendall(_status_response(status, reason))
                return
            if roll < faults.error_rate + faults.timeout_rate:
                with self._lock:
                    self.counts["timeout"] += 1
                self._stopping.wait(faults.hang_seconds)
                return  # closed without an answer
            if delay:
                with self._lock:
                    self.counts["delayed"] += 1
                time.sleep(delay)
            raw = socket.create_connection((self._host, self._port), timeout=10)
            upstream = self._tls.wrap_socket(raw, server_hostname=self._host)
            upstream.settimeout(None)
            self._track(upstream, True)
            upstream.sendall(_force_close(head) + body)
            with self._lock:
                self.counts["forwarded"] += 1
            conn.settimeout(None)
            while True:
                chunk = upstream.recv(65536)
                if not chunk:
                    break
                conn.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (upstream, conn):
                if sock is not None:
                    self._track(sock, False)
                    with contextlib.suppress(OSError):
                        sock.close()


def _read_request(conn: socket.socket) -> tuple[bytes, bytes] | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if b"content-length" in headers:
        length = int(headers[b"content-length"])
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            rest += chunk
    elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        while not rest.endswith(b"0\r\n\r\n"):
            chunk = conn.recv(65536)
            if not chunk:
                return None
            rest += chunk
    return head + b"\r\n\r\n", rest


def _force_close(head: bytes) -> bytes:
    lines = [line for line in head.rstrip(b"\r\n").split(b"\r\n")
             if not line.lower().startswith((b"connection:", b"keep-alive:"))]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n"


def _status_response(status: int, reason: str) -> bytes:
    body = json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": f"injected by the test fault proxy: {reason}", "reason": "InternalError",
                       "code": status}).encode()
    extra = b"Retry-After: 1\r\n" if status == 429 else b""
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n").encode() + extra + b"\r\n" + body


def _not_found_response() -> bytes:
    """What a kube-apiserver answers for a resource it does not serve (yet): plain text, not a Status."""
    body = b"404 page not found\n"
    return (b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)) + body
