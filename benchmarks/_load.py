"""The raw-socket HTTP/1.1 load generator of ``benchmarks ingest`` (and what a phase measured).

Requests are complete pre-built bytes sent over keep-alive connections, one in flight each,
multiplexed with ``selectors`` in the calling process; a reply is read to its
``Content-Length``. A closed connection is counted and its request sent again on a new one.
The CPU of the client, of the server process and of its main (event-loop) thread is read
from ``/proc`` over each phase, so a client-bound figure shows itself.
"""

from __future__ import annotations

import os
import selectors
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from benchmarks._common import Progress

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100



@dataclass
class Load:
    """What one phase measured."""

    requests: int = 0
    elapsed_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    events_accepted: int = 0
    reconnects: int = 0
    client_cpu_s: float = 0.0
    server_cpu_s: float | None = None
    server_thread_cpu_s: float | None = None

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    def rate(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s else 0.0

    def percentile_ms(self, fraction: float) -> float:
        ordered = sorted(self.latencies_s)
        if not ordered:
            return 0.0
        return 1000 * ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    def figures(self) -> dict[str, Any]:
        return {
            "requests": self.requests, "ok": self.ok, "per_s": round(self.rate()),
            "p50_ms": round(self.percentile_ms(0.50), 2), "p99_ms": round(self.percentile_ms(0.99), 2),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "outcomes": dict(self.outcomes), "events_accepted": self.events_accepted,
            "reconnects": self.reconnects,
            "client_cpu": round(self.client_cpu_s / self.elapsed_s, 3) if self.elapsed_s else None,
            "server_cpu": (round(self.server_cpu_s / self.elapsed_s, 3)
                           if self.elapsed_s and self.server_cpu_s is not None else None),
            "server_thread_cpu": (round(self.server_thread_cpu_s / self.elapsed_s, 3)
                                  if self.elapsed_s and self.server_thread_cpu_s is not None else None),
        }


class _Connection:
    __slots__ = ("address", "sock", "out", "sent", "buffer", "header_end", "total", "started")

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.sock = self._connect()
        self.out = memoryview(b"")
        self.sent = 0
        self.buffer = bytearray()
        self.header_end = -1
        self.total = -1
        self.started = 0.0

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        return sock

    def reconnect(self) -> None:
        self.sock.close()
        self.sock = self._connect()

    def begin(self, request: bytes) -> None:
        self.out, self.sent = memoryview(request), 0
        self.buffer.clear()
        self.header_end = self.total = -1
        self.started = time.perf_counter()

    def send_some(self) -> bool:
        """Send what the socket takes; True when the whole request is out."""
        try:
            self.sent += self.sock.send(self.out[self.sent:])
        except BlockingIOError:
            pass
        except (BrokenPipeError, ConnectionResetError):
            return False  # the read side sees the close and the request goes out again
        return self.sent >= len(self.out)

    def receive(self) -> bool | None:
        """Read what arrived; True when the reply is complete, None when the peer closed."""
        try:
            chunk = self.sock.recv(1 << 18)
        except BlockingIOError:
            return False
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        self.buffer += chunk
        if self.header_end < 0:
            self.header_end = self.buffer.find(b"\r\n\r\n")
            if self.header_end < 0:
                return False
            length = 0
            for line in bytes(self.buffer[:self.header_end]).split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            self.total = self.header_end + 4 + length
        return len(self.buffer) >= self.total

    def reply(self) -> tuple[int, bytes]:
        return int(self.buffer[9:12]), bytes(self.buffer[self.header_end + 4:self.total])


def _cpu_s(stat: str) -> float | None:
    """User + system CPU seconds from a ``/proc/.../stat`` file; ``None`` if it is gone."""
    try:
        fields = Path(stat).read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def _process_cpu_s(pid: int) -> float | None:
    """CPU seconds of process ``pid``, all threads."""
    return _cpu_s(f"/proc/{pid}/stat")


def _thread_cpu_s(pid: int) -> float | None:
    """CPU seconds of the main thread of ``pid`` (the gateway's event loop)."""
    return _cpu_s(f"/proc/{pid}/task/{pid}/stat")


def drive(address: tuple[str, int], requests: list[bytes], connections: int, label: str,
          events_per_request: int = 0, server_pid: int | None = None) -> Load:
    """Send ``requests`` over ``connections`` keep-alive connections, one in flight each.

    Args:
        address: the gateway's host and port.
        requests: complete request bytes, sent in order.
        connections: concurrent connections.
        label: progress label.
        events_per_request: > 0 for webhooks: replies are decoded and their outcome counts
            tallied (a 200 reply means its events are durable).
        server_pid: the gateway's pid, to report its CPU use over the phase.

    Returns:
        The phase's figures.
    """
    load = Load(requests=len(requests))
    progress = Progress(label, len(requests))
    selector = selectors.DefaultSelector()
    pending = iter(requests)
    done = 0
    cpu_before, server_before = time.process_time(), _process_cpu_s(server_pid) if server_pid else None
    thread_before = _thread_cpu_s(server_pid) if server_pid else None
    started = time.perf_counter()

    def start(conn: _Connection) -> bool:
        request = next(pending, None)
        if request is None:
            selector.unregister(conn.sock)
            return False
        conn.begin(request)
        complete = conn.send_some()
        selector.modify(conn.sock, selectors.EVENT_READ if complete else selectors.EVENT_READ | selectors.EVENT_WRITE,
                        conn)
        return True

    active = 0
    for _ in range(min(connections, len(requests))):
        conn = _Connection(address)
        selector.register(conn.sock, selectors.EVENT_READ, conn)
        active += start(conn)
    while active:
        for key, mask in selector.select():
            conn = key.data
            if mask & selectors.EVENT_WRITE and conn.send_some():
                selector.modify(conn.sock, selectors.EVENT_READ, conn)
            if not mask & selectors.EVENT_READ:
                continue
            state = conn.receive()
            if state is None:  # the server closed the connection: count it, resend on a new one
                selector.unregister(conn.sock)
                load.reconnects += 1
                request = bytes(conn.out)
                conn.reconnect()
                selector.register(conn.sock, selectors.EVENT_READ, conn)
                conn.begin(request)
                if not conn.send_some():
                    selector.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
                continue
            if not state:
                continue
            load.latencies_s.append(time.perf_counter() - conn.started)
            status, body = conn.reply()
            load.statuses[status] += 1
            if events_per_request and status == 200:
                reply = orjson.loads(body)
                load.events_accepted += reply["accepted"]
                load.outcomes.update(reply["counts"])
            done += 1
            progress.update(done)
            if not start(conn):
                conn.sock.close()
                active -= 1
    load.elapsed_s = time.perf_counter() - started
    load.client_cpu_s = time.process_time() - cpu_before
    if server_pid and server_before is not None:
        after = _process_cpu_s(server_pid)
        load.server_cpu_s = None if after is None else after - server_before
    if server_pid and thread_before is not None:
        after = _thread_cpu_s(server_pid)
        load.server_thread_cpu_s = None if after is None else after - thread_before
    selector.close()
    return load


__all__ = ["Load", "drive"]
