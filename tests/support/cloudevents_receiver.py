"""A real HTTP receiver of CloudEvents batches on loopback (stdlib http.server in a thread).

It can be told to fail (answer 503) for a while, and keeps every record it accepted, in order,
so tests can check "every record exactly once after de-duplication by id"."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self) -> None:
        self.accepted: list[dict[str, Any]] = []
        self.posts = 0
        self.refused = 0
        self.failing = False
        self.content_types: set[str] = set()
        self.authorizations: set[str] = set()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.posts += 1
                    receiver.content_types.add(self.headers.get("Content-Type", ""))
                    receiver.authorizations.add(self.headers.get("Authorization", ""))
                    if receiver.failing:
                        receiver.refused += 1
                        self.send_response(503)
                        self.end_headers()
                        return
                    receiver.accepted.extend(json.loads(body))
                self.send_response(202)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.accepted)

    def unique(self) -> dict[str, dict[str, Any]]:
        """Accepted records by id (a duplicate must be identical to be harmless)."""
        result: dict[str, dict[str, Any]] = {}
        for record in self.records():
            result.setdefault(record["id"], record)
        return result
