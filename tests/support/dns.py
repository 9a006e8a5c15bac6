"""A tiny authoritative DNS server on loopback for the domain-ownership tests (stdlib only).

It answers TXT questions from a dict the tests edit (`server.set_txt(name, *values)`), NXDOMAIN for
anything else, over UDP. `TEST_DNS` is bound when this module is imported so that the operator's
test configuration (support.operator.TEST_CONFIG, `dnsResolver`) can name its port before the
operator starts; it serves from a daemon thread for the whole test session.
"""

from __future__ import annotations

import socket
import struct
import threading


class TxtServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, 0))
        self.host, self.port = self._sock.getsockname()
        self._records: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self.questions: list[str] = []
        self._thread = threading.Thread(target=self._serve, name="test-dns", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def set_txt(self, name: str, *values: str) -> None:
        with self._lock:
            self._records[name.lower().rstrip(".")] = list(values)

    def remove(self, name: str) -> None:
        with self._lock:
            self._records.pop(name.lower().rstrip("."), None)

    def _serve(self) -> None:
        while True:
            try:
                query, client = self._sock.recvfrom(4096)
                answer = self._answer(query)
            except OSError:
                return
            except Exception:  # a malformed question: ignore it, like a real server would
                continue
            self._sock.sendto(answer, client)

    def _answer(self, query: bytes) -> bytes:
        query_id, _flags, _qd = struct.unpack("!HHH", query[:6])
        labels, offset = [], 12
        while query[offset]:
            size = query[offset]
            labels.append(query[offset + 1:offset + 1 + size].decode())
            offset += 1 + size
        question = query[12:offset + 5]
        qtype = struct.unpack("!H", query[offset + 1:offset + 3])[0]
        name = ".".join(labels).lower()
        with self._lock:
            self.questions.append(name)
            values = list(self._records.get(name, ()))
        if not values:
            return struct.pack("!HHHHHH", query_id, 0x8583, 1, 0, 0, 0) + question  # NXDOMAIN, authoritative
        answers = b""
        count = 0
        if qtype == 16:
            for value in values:
                raw = value.encode()
                rdata = b"".join(bytes([len(raw[i:i + 255])]) + raw[i:i + 255] for i in range(0, len(raw), 255))
                answers += b"\xc0\x0c" + struct.pack("!HHIH", 16, 1, 60, len(rdata)) + rdata
                count += 1
        return struct.pack("!HHHHHH", query_id, 0x8580, 1, count, 0, 0) + question + answers


TEST_DNS = TxtServer()
