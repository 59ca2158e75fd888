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
``date``/``server`` headers, 400/431/500 replies, timeouts and a graceful shutdown. The
``http`` scope is ASGI spec 2.3: after a disconnect ``send()`` is a no-op.

Deliberately not: TLS (put a reverse proxy in front), HTTP/2, WebSockets (an upgrade request is
served as a plain request, then the connection closes), the lifespan protocol (the gateway's
app has no startup hooks), trailers, or noticing a client gone while the app works and sends
nothing (the next write notices).

Limits (``ServerSettings``, defaults in brackets): ``keep_alive_timeout_s`` [5] closes a
connection idle between requests; ``request_timeout_s`` [30]: a request's head and body must
arrive within it of the request's first byte (slowloris) and each response write finish
within it, else the connection is closed (no 408: the client is not reading or writing
anyway); ``max_head_bytes`` [64 KiB]: a larger head gets 431; ``max_connections`` [1000]:
more clients wait in the kernel's accept queue; ``graceful_timeout_s`` [10]: at shutdown the
listeners and idle connections close at once, requests in flight get this long (their replies
say ``connection: close``), then the rest is cancelled and ``serve_http1`` returns.

A request body the app did not read is dropped when all of it has arrived; else the reply says
``connection: close``, and before closing the server drops what the client still sends (up to
``LINGER_S``) so the reply is not lost to a TCP reset. llhttp runs strict (no lenient flags):
a request with both ``Content-Length`` and ``Transfer-Encoding``, two different lengths, or a
``Transfer-Encoding`` not ending in ``chunked`` is a 400 — no request smuggling past a proxy.

Layout: this module accepts and shuts down; ``gateway._server.h1_connection`` serves one connection
(parsing, ``receive``/``send``); ``gateway._server.h1_framing`` builds response bytes (pure).
"""


from __future__ import annotations

import errno
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from gateway._server.h1_connection import ASGIApp, Connection, ServerSettings

log = logging.getLogger(__name__)

_ACCEPT_RETRY = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}  # as trio.serve_listeners


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
        self.slots = trio.Semaphore(settings.max_connections)
        self.connections: set[Connection] = set()
        self.shutting_down = False
        self.all_closed = trio.Event()

    async def accept(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        while True:
            await self.slots.acquire()  # at the limit, clients wait in the kernel's accept queue
            try:
                stream = await listener.accept()
            except OSError as exc:
                self.slots.release()
                if exc.errno not in _ACCEPT_RETRY:
                    raise
                log.warning("accept failed (%s); retrying in 0.1 s", exc)
                await trio.sleep(0.1)
                continue
            except BaseException:
                self.slots.release()
                raise
            nursery.start_soon(self.serve_connection, stream.socket)

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
            self.slots.release()
            if connection is not None:
                self.connections.discard(connection)
            if self.shutting_down and not self.connections:
                self.all_closed.set()

    def begin_shutdown(self) -> None:
        self.shutting_down = True
        for connection in list(self.connections):
            if connection.idle:
                connection.timer.cancel()
        if not self.connections:
            self.all_closed.set()


__all__ = ["ServerSettings", "serve_http1"]
