"""A real upstream ERP for the forwarder tests: an HTTP server on 127.0.0.1 in a thread.

It verifies the gateway's batch signature the way an ERP integrator would, records every
batch it acknowledged, and can be told to misbehave: be down (socket closed), answer
500 or 429 with ``Retry-After``, refuse batches holding a poisoned event with 400, or
hang past the client's timeout. It runs in a thread so it serves trio tests and tests
that drive the gateway as a separate process alike, and it outlives a SIGKILLed gateway.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

UPSTREAM_SECRET = "upstream-test-secret"


@dataclass
class Scripted:
    """One scripted answer: ``status`` with ``headers``, after sleeping ``hang_s``."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    hang_s: float = 0.0
    body: bytes = b'{"ok":false}'


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on a hanging answer is part of the test


class Upstream:
    """The recorder. ``url`` is valid once ``start()`` returned.

    Attributes:
        batches: acknowledged batches (parsed bodies), in arrival order.
        attempts: every request's ``(status answered, Idempotency-Key, event count)``.
        bad_signatures: requests whose signature did not verify (answered 401).
    """

    def __init__(self, secret: str = UPSTREAM_SECRET) -> None:
        self.secret = secret.encode()
        self.port = 0
        self.batches: list[dict[str, Any]] = []
        self.attempts: list[tuple[int, str, int]] = []
        self.bad_signatures = 0
        self.script: list[Scripted] = []
        self.poison: Callable[[dict[str, Any]], bool] | None = None
        self.delay_s = 0.0  # added to every answer: a slow ERP
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/erp/batches"

    def start(self) -> Upstream:
        """Listen (again, on the same port after ``stop``)."""
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, headers, reply = upstream._answer(self.headers, body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        server = _QuietServer(("127.0.0.1", self.port), Handler)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket: the upstream is down (connection refused)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def _answer(self, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        timestamp = headers.get("X-Gateway-Timestamp", "")
        mac = hmac.new(self.secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        key = headers.get("Idempotency-Key", "")
        if not hmac.compare_digest("sha256=" + mac, headers.get("X-Gateway-Signature", "")):
            with self._lock:
                self.bad_signatures += 1
                self.attempts.append((401, key, 0))
            return 401, {}, b'{"ok":false,"error":"signature"}'
        batch = orjson.loads(body)
        if self.delay_s:
            time.sleep(self.delay_s)
        with self._lock:
            scripted = self.script.pop(0) if self.script else None
        if scripted is not None:
            time.sleep(scripted.hang_s)
            if not 200 <= scripted.status < 300:
                with self._lock:
                    self.attempts.append((scripted.status, key, len(batch["events"])))
                return scripted.status, scripted.headers, scripted.body
        poison = self.poison
        if poison is not None and any(poison(event) for event in batch["events"]):
            with self._lock:
                self.attempts.append((400, key, len(batch["events"])))
            return 400, {}, b'{"ok":false,"error":"unknown sku in event"}'
        with self._lock:
            self.attempts.append((200, key, len(batch["events"])))
            self.batches.append(batch)
        return 200, {}, b'{"ok":true}'

    def events(self) -> list[dict[str, Any]]:
        """Every acknowledged event, in arrival order (duplicates included)."""
        with self._lock:
            return [event for batch in self.batches for event in batch["events"]]

    def unique_events(self) -> dict[str, dict[str, Any]]:
        """Acknowledged events de-duplicated by ``event_id`` (what an ERP applies)."""
        unique: dict[str, dict[str, Any]] = {}
        for event in self.events():
            unique.setdefault(event["event_id"], event)
        return unique


def upstream_config(upstream: Upstream, **overrides: Any) -> str:
    """An ``[upstream]`` table pointing at ``upstream`` with fast retries for tests."""
    values: dict[str, Any] = {"url": upstream.url, "secret": upstream.secret.decode(), "linger_s": 0.01,
                              "timeout_s": 5.0, "retry_initial_s": 0.05, "retry_max_s": 0.5}
    values.update(overrides)
    lines = [f"{k} = {orjson.dumps(v).decode()}" for k, v in values.items()]
    return "[upstream]\n" + "\n".join(lines) + "\n"


def in_per_order_order(events: list[dict[str, Any]]) -> bool:
    """True when, per order, first arrivals come in increasing ``seq`` (re-sends may repeat)."""
    last: dict[tuple[str, str], int] = {}
    seen: set[str] = set()
    for event in events:
        if event["event_id"] in seen:
            continue
        seen.add(event["event_id"])
        key = (event["tenant"], event["order_id"])
        if event["seq"] <= last.get(key, 0):
            return False
        last[key] = event["seq"]
    return True
