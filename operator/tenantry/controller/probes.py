"""The health endpoints of `tenantry run` (`/healthz`, `/readyz` on `healthPort`), for a standby and a leader.

One server for the life of the process, on a thread of its own, because kopf's liveness endpoint
exists only while kopf runs, that is only on the leader and only once kopf's start-up (which lists
every object) has finished. kopf's endpoint listens on a loopback port of its own, and:

- `/healthz` (liveness): a standby is live while its leader election runs. A leader whose kopf is
  still starting is live for up to STARTUP_GRACE seconds; after that, kopf's own `/healthz` answers
  (its probes: the watches, the webhook, the queue), status and body as they are.
- `/readyz` (readiness): a standby is ready once its pod carries no stale leader label and it has
  read the Lease once, so that its answer names the holder (see tenantry.controller.leadership); a
  leader once kopf's `/healthz` says 200 (start-up done: the picture
  is loaded, the webhook started). A ready standby lets a PodDisruptionBudget allow a node drain; the
  admission webhook's Service selects the leader by its label, not by readiness.

Every answer is JSON with `leader` (whether this process holds the Lease) and `identity`.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tenantry.controller.leadership import LeaderElector

# As long as the chart's startupProbe gives a fresh container (60 x 5 s): kopf's start-up lists
# everything before its endpoint answers.
STARTUP_GRACE = 300.0


class ProbeServer:
    def __init__(self, host: str, port: int, kopf_endpoint: str, elector: LeaderElector | None = None):
        self.host, self.port = host, port
        self.kopf_endpoint = kopf_endpoint
        self.elector = elector
        self.started = time.monotonic()  # without an election, this process leads from the start
        self._server: ThreadingHTTPServer | None = None

    # -- answers (status, body)

    def _leading(self) -> bool:
        return self.elector is None or self.elector.leading.is_set()

    def _base(self) -> dict[str, Any]:
        return self.elector.status() if self.elector is not None else {"leader": True, "identity": None}

    def _kopf(self) -> tuple[int, Any] | None:
        """kopf's own /healthz (status, parsed body), or None while it does not answer."""
        try:
            with urllib.request.urlopen(self.kopf_endpoint, timeout=4) as response:
                return response.status, _json(response.read())
        except urllib.error.HTTPError as error:
            return error.code, _json(error.read())
        except OSError:
            return None

    def _leading_for(self) -> float:
        since = self.elector.leading_since if self.elector is not None else self.started
        return time.monotonic() - (since if since is not None else time.monotonic())

    def healthz(self) -> tuple[int, dict[str, Any]]:
        base = self._base()
        if not self._leading():
            return 200, {**base, "role": "standby"}
        answer = self._kopf()
        if answer is None:
            if self._leading_for() < STARTUP_GRACE:
                return 200, {**base, "role": "leader", "starting": True}
            return 500, {**base, "role": "leader", "error": f"kopf did not answer within {STARTUP_GRACE:.0f} s"}
        status, body = answer
        return status, {**base, "role": "leader", "probes": body}

    def readyz(self) -> tuple[int, dict[str, Any]]:
        base = self._base()
        if not self._leading():
            ready = self.elector is None or self.elector.ready.is_set()
            return (200 if ready else 503), {**base, "role": "standby", "ready": ready}
        answer = self._kopf()
        ready = answer is not None and answer[0] == 200
        return (200 if ready else 503), {**base, "role": "leader", "ready": ready}

    # -- serving

    def start(self) -> None:
        probes = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the stdlib's name
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    status, body = probes.healthz()
                elif path == "/readyz":
                    status, body = probes.readyz()
                else:
                    status, body = 404, {"error": "not found: /healthz and /readyz are served"}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # the stdlib's signature
                return  # a probe every few seconds is not news

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="probes", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data.decode(errors="replace")
