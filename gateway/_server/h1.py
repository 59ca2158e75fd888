"""A small HTTP/1.1 server for one ASGI app, on trio sockets, parsed by httptools (llhttp, in C).

Why: hypercorn's trio worker tops out at ~1,960 requests/s on a 2-core box even for a 10-line
ASGI app (per request ~16 task reschedules, ~7 cancel scopes, 2 socket sends, the pure-Python
h11 parser), below the >= 2,000 signed webhooks/s the gateway must take with its real work on
top, and there is no other ASGI server on trio. Here one task serves one connection: requests
are parsed in C and handled in order in that task, the app is awaited directly, and a reply
that does not stream leaves in one socket send.

It implements HTTP/1.1 and 1.0 with keep-alive (1.0 only when asked) and pipelining, request
bodies (``Content-Length`` or chunked) streamed to ``receive()`` as the app asks,
``Expect: 100-continue``, chunked (1.1) or close-delimited (1.0) streaming responses, HEAD,
absolute-form targets (``GET http://host/path``: the target's authority is the host, an empty
path is ``/``), ``date``/``server`` headers, error replies, timeouts, a connection limit and a
graceful shutdown. The ``http`` scope is ASGI spec 2.3: after a disconnect ``send()`` is a no-op.

Deliberately not: TLS (put a reverse proxy in front), HTTP/2, WebSockets (an upgrade request is
served as a plain request, then the connection closes), the lifespan protocol (the gateway's
app has no startup hooks), trailers (counted, dropped), or noticing a client gone while the app
works and sends nothing (the next write notices).

Limits (``ServerSettings``, defaults in brackets). ``keep_alive_timeout_s`` [5] closes a
connection idle between requests. ``request_timeout_s`` [30]: a request's head and body must
arrive within it of the request's first byte (slowloris; an empty line before the request
line is its first byte) and each response write finish within it, else the connection is
closed (no 408: the client is not reading or writing anyway). ``max_head_bytes`` [64 KiB] and
``max_header_fields`` [100]: a larger head gets 431, and so does a chunked body sending more
than ``max_head_bytes`` besides data (chunk sizes, extensions, its trailer section). ``max_target_bytes`` [8 KiB]: a longer request
target gets 414. ``max_empty_lines`` [8]: more empty lines before a request line get 400.
``max_pipelined_requests`` [32]: requests parsed ahead of the one served; past it the server
answers those and closes (a pipelining client sends the rest again). ``max_connections``
[1000]: at the limit, a new client is accepted at once and the connection that has waited
longest for a request (idle between requests, silent since it connected, still sending a
head, or lingering before its close) is closed to make room; only when every connection has
a request in the app does a new client wait in the kernel's accept queue, until one finishes
(its reads and writes are bounded by ``request_timeout_s``). ``graceful_timeout_s`` [10]: at
shutdown the listeners and idle connections close at once, requests in flight get this long
(their replies say ``connection: close``), then the rest is cancelled and ``serve_http1``
returns. Together they bound what one connection holds, whatever it sends: about a head, a
read (64 KiB) and the parsed heads (``gateway._server.h1_connection``).

A request body the app did not read is dropped when all of it has arrived; else the reply says
``connection: close``, and before closing the server drops what the client still sends (up to
``LINGER_S``) so the reply is not lost to a TCP reset. llhttp runs strict (no lenient flags):
a request with both ``Content-Length`` and ``Transfer-Encoding``, two different lengths, or a
``Transfer-Encoding`` not ending in ``chunked`` is a 400 — no request smuggling past a proxy.
The server adds (``gateway._server.h1_limits``): 400 for an HTTP/1.1 request without ``Host``,
two ``Host`` fields or an invalid one, two ``Transfer-Encoding`` fields, or a
``Transfer-Encoding`` in HTTP/1.0; 501 for a coding before ``chunked`` (both checked at the
first chunk: a request whose head was served already sees a disconnect instead of its body);
505 for a version other than 1.0 and 1.1. Every refusal closes the connection.

Layout: this module accepts, limits connections and shuts down; ``gateway._server.h1_connection``
serves one connection (parsing, limits, timeouts); ``gateway._server.h1_request`` is one
request's ``receive``/``send``; ``gateway._server.h1_limits`` holds the settings and head rules
(pure); ``gateway._server.h1_framing`` builds response bytes (pure).
"""


from __future__ import annotations

import errno
import logging
from collections.abc import Awaitable, Callable
from math import inf
from typing import Any

import trio

from gateway._server.h1_connection import Connection
from gateway._server.h1_limits import ServerSettings
from gateway._server.h1_request import ASGIApp

log = logging.getLogger(__name__)

_ACCEPT_RETRY = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}  # as trio.serve_listeners
ROOM_POLL_S = 0.05
LIMIT_LOG_EVERY_S = 60.0


async def serve_http1(
    app: ASGIApp,
    binds: list[tuple[str, int]],
    *,
    shutdown_trigger: Callable[[], Awaitable[object]],
    settings: ServerSettings | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on every ``(host, port)`` until ``shutdown_trigger()`` returns, then drain.

    Args:
        app: an ASGI 3 application (``http`` scopes only).
        binds: addresses; an IPv6 literal without brackets (``"::1"``), ``""`` for all
            interfaces, port 0 for a free port.
        shutdown_trigger: awaited; its return starts the graceful shutdown.
        settings: limits and timeouts (``None``: the defaults).
        task_status: receives the bound addresses as hypercorn reports them,
            ``"http://127.0.0.1:8780"``, ``"http://[::1]:8780"``.

    Raises:
        OSError: an address cannot be bound. A connection's errors never end the server.

    Cancelled, it closes every connection at once.
    """
    settings = settings or ServerSettings()
    listeners: list[trio.SocketListener] = []
    try:
        for host, port in binds:
            listeners.extend(await trio.open_tcp_listeners(port, host=host or None))
        server = _Server(app, settings)
        async with trio.open_nursery() as connections:
            async with trio.open_nursery() as accepting:
                for listener in listeners:
                    accepting.start_soon(server.accept, listener, connections)
                task_status.started([_url(listener.socket.getsockname()) for listener in listeners])
                await shutdown_trigger()
                accepting.cancel_scope.cancel()
            for listener in listeners:
                listener.socket.close()
            server.begin_shutdown()
            with trio.move_on_after(settings.graceful_timeout_s):
                await server.all_closed.wait()
            if server.connections:
                log.warning("%d connections still busy after the %.1f s grace: cut", len(server.connections),
                            settings.graceful_timeout_s)
            connections.cancel_scope.cancel()
    finally:
        for listener in listeners:
            listener.socket.close()


def _url(sockname: Any) -> str:
    host, port = sockname[0], sockname[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server:
    def __init__(self, app: ASGIApp, settings: ServerSettings) -> None:
        self.app = app
        self.settings = settings
        self.connections: set[Connection] = set()
        self.open_count = 0  # accepted sockets handed to a task, not yet closed
        self.evicting = 0  # of those, evicted and not yet closed
        self.room = trio.lowlevel.ParkingLot()  # unparked whenever a connection closes
        self.shutting_down = False
        self.all_closed = trio.Event()
        self.limit_logged_at = -inf

    async def accept(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in _ACCEPT_RETRY:
                    raise
                log.warning("accept failed (%s); retrying in 0.1 s", exc)
                await trio.sleep(0.1)
                continue
            try:
                await self.make_room()
            except BaseException:
                stream.socket.close()
                raise
            self.open_count += 1
            nursery.start_soon(self.serve_connection, stream.socket)

    async def make_room(self) -> None:
        """Return once a new connection fits under ``max_connections``.

        At the limit, the connection that has waited longest for a request (idle between
        requests, silent since it connected, still sending a head, or lingering before its
        close) is closed at once. When every connection has a request in the app, wait for one
        to close or to finish its request (rechecked every ``ROOM_POLL_S``): each request's
        reads and writes are bounded by ``request_timeout_s``.
        """
        while self.open_count >= self.settings.max_connections:
            if self.open_count - self.evicting >= self.settings.max_connections:
                victim = min((c for c in self.connections if c.current is None and not c.evicted),
                             key=_waiting_since, default=None)
                if victim is not None:
                    self.evicting += 1
                    victim.evict()
                    self.log_limit("closing the connection that waited longest for a request")
                else:
                    self.log_limit("every connection has a request in progress: new clients wait")
            with trio.move_on_after(ROOM_POLL_S):
                await self.room.park()

    def log_limit(self, what: str) -> None:
        now = trio.current_time()
        if now - self.limit_logged_at >= LIMIT_LOG_EVERY_S:
            self.limit_logged_at = now
            log.warning("at max_connections=%d: %s (logged at most every %.0f s)",
                        self.settings.max_connections, what, LIMIT_LOG_EVERY_S)

    async def serve_connection(self, sock: trio.socket.SocketType) -> None:
        connection: Connection | None = None
        try:
            connection = Connection(self, sock)
            self.connections.add(connection)
            await connection.run()
        except OSError as exc:  # the peer reset or vanished: this connection only
            log.debug("connection ended: %r", exc)
        finally:
            sock.close()
            self.open_count -= 1
            if connection is not None:
                self.connections.discard(connection)
                if connection.evicted:
                    self.evicting -= 1
            self.room.unpark_all()
            if self.shutting_down and not self.connections:
                self.all_closed.set()

    def begin_shutdown(self) -> None:
        self.shutting_down = True
        for connection in list(self.connections):
            if connection.idle:
                connection.timer.cancel()
        if not self.connections:
            self.all_closed.set()


def _waiting_since(connection: Connection) -> float:
    return connection.waiting_since


__all__ = ["ServerSettings", "serve_http1"]
