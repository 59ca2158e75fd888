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
``LINGER_S``) so the reply is not lost to a TCP reset.
"""

from __future__ import annotations

import errno
import logging
import socket
import time
import urllib.parse
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from math import inf
from typing import Any

import httptools
import trio

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

READ_BYTES = 64 * 1024
LINGER_S = 2.0
LINGER_BYTES = 16 * 1024 * 1024
_ACCEPT_RETRY = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}  # as trio.serve_listeners
_DISCONNECT: Message = {"type": "http.disconnect"}
_PENDING, _STARTED, _STREAMING, _COMPLETE = range(4)  # response states
_IDENTITY, _CHUNKED, _NO_BODY = range(3)  # response body framing


@dataclass(frozen=True)
class ServerSettings:
    """Limits and timeouts of ``serve_http1`` (see the module docstring)."""

    keep_alive_timeout_s: float = 5.0
    request_timeout_s: float = 30.0
    max_connections: int = 1000
    max_head_bytes: int = 64 * 1024
    graceful_timeout_s: float = 10.0
    server_header: bytes = b"gateway"


async def serve_http1(
    app: ASGIApp,
    binds: list[tuple[str, int]],
    *,
    shutdown_trigger: Callable[[], Awaitable[object]],
    settings: ServerSettings = ServerSettings(),
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on every ``(host, port)`` until ``shutdown_trigger()`` returns, then drain.

    Args:
        app: an ASGI 3 application (``http`` scopes only).
        binds: addresses; an IPv6 literal without brackets (``"::1"``), ``""`` for all
            interfaces, port 0 for a free port.
        shutdown_trigger: awaited; its return starts the graceful shutdown.
        settings: limits and timeouts.
        task_status: receives the bound addresses as hypercorn reports them,
            ``"http://127.0.0.1:8780"``, ``"http://[::1]:8780"``.

    Raises:
        OSError: an address cannot be bound. A connection's errors never end the server.

    Cancelled, it closes every connection at once.
    """
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
        self.connections: set[_Connection] = set()
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
        connection: _Connection | None = None
        try:
            connection = _Connection(self, sock)
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


class _HeadTooLarge(Exception):
    pass


class _Connection:
    """One client connection, and the httptools parser's callback object."""

    def __init__(self, server: _Server, sock: trio.socket.SocketType) -> None:
        self.server = server
        self.settings = server.settings
        self.sock = sock
        self.client = tuple(sock.getpeername()[:2])
        self.local = tuple(sock.getsockname()[:2])
        self.parser = httptools.HttpRequestParser(self)
        self.timer = trio.CancelScope()  # its deadline times socket waits only: inf while the app works
        self.requests: deque[_Request] = deque()  # parsed heads not served yet (pipelining)
        self.parsing: _Request | None = None  # whose body the parser is in
        self.current: _Request | None = None  # the one the app is serving
        self.in_head = self.expect_continue = self.stopped = self.disconnected = False
        self.idle = True  # waiting for a next request: shutdown closes it at once
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_size = 0  # url + complete headers of the head being parsed
        self.head_bytes = 0  # bytes it took of earlier reads
        self.head_start = 0  # estimated offset of its first byte in the current read
        self.fed = 0  # estimated bytes the parser consumed of the current read
        self.head_deadline = inf
        self.error_status = 0  # set with ``stopped`` when the input was bad

    # -- httptools callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_head, self.url, self.headers, self.expect_continue = True, b"", [], False
        self.head_size = self.head_bytes = 0
        self.head_start = self.fed
        self.head_deadline = trio.current_time() + self.settings.request_timeout_s

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.fed += len(url)
        self.head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.in_head:
            return  # a chunked body's trailer: not passed on
        name = name.lower()
        self.headers.append((name, value))
        size = len(name) + len(value) + 4
        self.fed += size
        self.head_size += size
        if self.head_size > self.settings.max_head_bytes:
            raise _HeadTooLarge
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_continue = True

    def on_headers_complete(self) -> None:
        self.in_head = False
        if self.head_size > self.settings.max_head_bytes:
            raise _HeadTooLarge
        parser = self.parser
        url = httptools.parse_url(self.url)
        path = url.path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        version = parser.get_http_version()
        method = parser.get_method().decode("ascii")
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": version,
            "method": method, "scheme": "http", "path": path, "raw_path": url.path,
            "query_string": url.query or b"", "root_path": "", "headers": self.headers,
            "client": self.client, "server": self.local,
        }
        request = self.parsing = _Request(self, scope, parser.should_keep_alive(), self.head_deadline)
        request.head_only = method == "HEAD"
        request.expect_continue = self.expect_continue and version == "1.1"
        self.requests.append(request)

    def on_body(self, body: bytes) -> None:
        self.fed += len(body)
        self.parsing.body.append(body)  # type: ignore[union-attr]  # set by on_headers_complete

    def on_message_complete(self) -> None:
        self.parsing.body_complete = True  # type: ignore[union-attr]
        self.parsing = None

    # -- input --------------------------------------------------------------------------------

    async def receive_bytes(self, deadline: float) -> bytes:
        """One read (b"" once the client closed); the connection is cancelled at ``deadline``."""
        self.timer.deadline = deadline
        try:
            data = await self.sock.recv(READ_BYTES)
        finally:
            self.timer.deadline = inf
        if not data:
            self.mark_disconnected()
        return data

    def feed(self, data: bytes) -> None:
        self.fed = 0
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self.parsing is not None:
                self.parsing.body_complete = True  # what follows is not HTTP
            self.stop(0)
        except httptools.HttpParserError as exc:
            log.debug("bad request from %s: %r (%r)", self.client, exc, exc.__context__)
            self.stop(431 if isinstance(exc.__context__, _HeadTooLarge) else 400)
        else:
            if self.in_head:  # an incomplete head: count what it took of this read
                self.head_bytes += len(data) - self.head_start
                self.head_start = 0
                if self.head_bytes > self.settings.max_head_bytes:
                    self.stop(431)

    def stop(self, error_status: int) -> None:
        self.stopped, self.error_status, self.in_head = True, error_status, False
        if self.parsing is not None and error_status:
            self.parsing.body_broken = True
        self.parsing = None

    async def next_request(self) -> _Request | None:
        while not self.requests:
            if self.stopped or self.disconnected:
                return None
            if self.in_head:
                deadline = self.head_deadline
            elif self.server.shutting_down:
                return None
            else:
                self.idle = True
                deadline = trio.current_time() + self.settings.keep_alive_timeout_s
            data = await self.receive_bytes(deadline)
            self.idle = False
            if not data:
                return None
            self.feed(data)
        return self.requests.popleft()

    # -- output -------------------------------------------------------------------------------

    async def write(self, data: bytes) -> None:
        """Send all of ``data``; a client gone only marks the connection disconnected."""
        if self.disconnected:
            return
        self.timer.deadline = trio.current_time() + self.settings.request_timeout_s
        try:
            sent = await self.sock.send(data)
            if sent < len(data):
                view = memoryview(data)
                while sent < len(view):
                    sent += await self.sock.send(view[sent:])
        except OSError as exc:
            log.debug("client %s gone while sending: %r", self.client, exc)
            self.mark_disconnected()
        finally:
            self.timer.deadline = inf

    def mark_disconnected(self) -> None:
        self.disconnected = True
        if self.current is not None:
            self.current.wake()

    def error_response(self, status: int) -> bytes:
        text = f"{HTTPStatus(status).phrase}\n".encode("ascii")
        return (_status_line(status) + b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
                b"connection: close\r\n%sserver: %s\r\n\r\n%s"
                % (len(text), _date_line(), self.settings.server_header, text))

    # -- the connection -------------------------------------------------------------------------

    async def run(self) -> None:
        unread_input = False
        with self.timer:
            unread_input = await self.serve_requests()
        if unread_input and not self.disconnected:
            await self.linger()

    async def serve_requests(self) -> bool:
        """Serve requests until the connection should close; True if the client may still send."""
        while (request := await self.next_request()) is not None:
            self.current = request
            await self.serve(request)
            self.current = None
            if not request.keep_alive or self.disconnected:
                return not request.body_complete or bool(self.requests) or self.in_head
        if self.error_status and not self.disconnected:
            await self.write(self.error_response(self.error_status))
            return True
        return False

    async def serve(self, request: _Request) -> None:
        try:
            await self.server.app(request.scope, request.receive, request.send)
        except Exception:  # the app is foreign code: its failure ends this request, not the server
            await self.fail(request, "ASGI app raised", exc_info=True)
            return
        finally:
            request.wake()
        if request.state != _COMPLETE:
            await self.fail(request, "ASGI app returned without a complete response")
        elif request.body:
            request.body.clear()  # unread, but all of it arrived: drop it, keep the connection

    async def fail(self, request: _Request, what: str, exc_info: bool = False) -> None:
        """End a request the app failed: an error reply if nothing was sent yet, then close."""
        request.keep_alive = False
        if self.disconnected:
            log.debug("%s after client %s left", what, self.client, exc_info=exc_info)
        elif request.state >= _STREAMING:
            log.error("%s after its response started; connection closed", what, exc_info=exc_info)
        elif request.body_broken:  # the request body was malformed: the app saw a disconnect
            await self.write(self.error_response(self.error_status))
        else:
            log.error("%s; replying 500", what, exc_info=exc_info)
            await self.write(self.error_response(500))

    async def linger(self) -> None:
        """Drop what the client still sends, then close: closing with unread input sends a TCP
        reset, which can destroy the response before the client has read it."""
        with trio.move_on_after(LINGER_S):
            self.sock.shutdown(socket.SHUT_WR)
            dropped = 0
            while dropped < LINGER_BYTES and (data := await self.sock.recv(READ_BYTES)):
                dropped += len(data)


class _Request:
    """One request of a connection: its scope, its body as parsed, and ``receive``/``send``."""

    __slots__ = ("body", "body_broken", "body_complete", "body_delivered", "connection", "deadline",
                 "expect_continue", "finished", "framing", "head_only", "keep_alive", "response_headers",
                 "scope", "state", "status")

    def __init__(self, connection: _Connection, scope: Scope, keep_alive: bool, deadline: float) -> None:
        self.connection = connection
        self.scope = scope
        self.keep_alive = keep_alive
        self.deadline = deadline
        self.head_only = self.expect_continue = False
        self.body: list[bytes] = []
        self.body_complete = self.body_broken = self.body_delivered = False
        self.finished: trio.Event | None = None  # made when receive() must wait for the end
        self.state = _PENDING
        self.status = 200
        self.response_headers: Any = ()
        self.framing = _IDENTITY

    def wake(self) -> None:
        if self.finished is not None:
            self.finished.set()

    async def receive(self) -> Message:
        connection = self.connection
        if self.body_delivered or self.state == _COMPLETE or connection.disconnected:
            if self.state != _COMPLETE and not connection.disconnected:
                # ASGI: after the body, receive() waits for the disconnect; here, the response's end
                if self.finished is None:
                    self.finished = trio.Event()
                await self.finished.wait()
            return _DISCONNECT
        while not self.body and not self.body_complete:
            if self.body_broken or connection.stopped:
                return _DISCONNECT
            if self.expect_continue and self.state == _PENDING:
                self.expect_continue = False
                await connection.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            data = await connection.receive_bytes(self.deadline)
            if not data:
                return _DISCONNECT
            connection.feed(data)
        chunks = self.body
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.body_delivered = self.body_complete
        return {"type": "http.request", "body": body, "more_body": not self.body_complete}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            if self.state not in (_STARTED, _STREAMING):
                raise RuntimeError(f"http.response.body in response state {self.state}")
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if self.state == _STARTED:
                data = self.head(body, more)
            elif self.framing == _CHUNKED:
                data = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + (b"" if more else b"0\r\n\r\n")
            else:
                data = body if self.framing == _IDENTITY else b""
            self.state = _STREAMING if more else _COMPLETE
            if not more:
                self.wake()
            if data:
                await self.connection.write(data)
        elif kind == "http.response.start":
            if self.state != _PENDING:
                raise RuntimeError("http.response.start sent twice")
            self.status = message["status"]
            self.response_headers = message.get("headers", ())
            self.state = _STARTED
        else:
            raise RuntimeError(f"unsupported ASGI message {kind!r}")

    def head(self, body: bytes, more: bool) -> bytes:
        """The status line and headers with the first body part, framed."""
        connection = self.connection
        status = self.status
        keep_alive = (self.keep_alive and self.body_complete and not connection.server.shutting_down
                      and not (connection.stopped and not connection.error_status and not connection.requests))
        lines = [_status_line(status)]
        length = encoding = date = server = explicit_connection = False
        for name, value in self.response_headers:
            lower = name.lower()
            if lower == b"content-length":
                length = True
            elif lower == b"transfer-encoding":
                encoding = True
            elif lower == b"connection":
                explicit_connection = True
                keep_alive = keep_alive and b"close" not in value.lower()
            elif lower == b"date":
                date = True
            elif lower == b"server":
                server = True
            lines.append(b"%s: %s\r\n" % (name, value))
        version = self.scope["http_version"]
        if self.head_only or status < 200 or status in (204, 304):
            self.framing = _NO_BODY
            if self.head_only and not (length or encoding or more):
                lines.append(b"content-length: %d\r\n" % len(body))
        elif encoding:
            self.framing = _CHUNKED
        elif not length and not more:
            lines.append(b"content-length: %d\r\n" % len(body))
        elif not length and version == "1.1":
            lines.append(b"transfer-encoding: chunked\r\n")
            self.framing = _CHUNKED
        elif not length:
            keep_alive = False  # HTTP/1.0 streaming: the connection's end ends the body
        if not explicit_connection and (not keep_alive or version == "1.0"):
            lines.append(b"connection: keep-alive\r\n" if keep_alive else b"connection: close\r\n")
        if not date:
            lines.append(_date_line())
        if not server:
            lines.append(b"server: %s\r\n" % connection.settings.server_header)
        lines.append(b"\r\n")
        head = b"".join(lines)
        if head.count(b"\n") != len(lines) or head.count(b"\r") != len(lines):
            raise ValueError("a response header name or value contains CR or LF")
        self.keep_alive = keep_alive
        if self.framing == _CHUNKED:
            return head + (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + (b"" if more else b"0\r\n\r\n")
        return head if self.framing == _NO_BODY else head + body


_status_lines: dict[int, bytes] = {}
_date_cache: list[Any] = [0, b""]


def _status_line(status: int) -> bytes:
    line = _status_lines.get(status)
    if line is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        line = _status_lines[status] = f"HTTP/1.1 {status} {phrase}\r\n".encode("ascii")
    return line


def _date_line() -> bytes:
    """The ``date`` header line, formatted at most once a second."""
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[:] = [now, f"date: {formatdate(now, usegmt=True)}\r\n".encode("ascii")]
    line: bytes = _date_cache[1]
    return line


__all__ = ["ServerSettings", "serve_http1"]
