"""One client connection of the builtin HTTP/1.1 server (``gateway._server.h1``): parse, serve, reply.

``Connection`` reads the socket only when the next request's head is needed or the app asks
for more body, feeds httptools (llhttp) and is its callback object; parsed heads wait in a
small deque (pipelining). ``Request`` is one request's ASGI ``receive``/``send``: the body is
streamed to the app as it arrives, the response is framed by ``gateway._server.h1_framing``. Limits,
timeouts and what happens to unread bodies: the module docstring of ``gateway._server.h1``.
"""

from __future__ import annotations

import logging
import socket
import time
import urllib.parse
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from math import inf
from typing import Any, Protocol

import httptools
import trio

from gateway._server.h1_framing import CHUNKED, IDENTITY, error_response, frame_chunk, frame_head

log = logging.getLogger("gateway._server.h1")
access_log = logging.getLogger("gateway.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

READ_BYTES = 64 * 1024
LINGER_S = 2.0
LINGER_BYTES = 16 * 1024 * 1024
_DISCONNECT: Message = {"type": "http.disconnect"}
_PENDING, _STARTED, _STREAMING, _COMPLETE = range(4)  # response states


@dataclass(frozen=True)
class ServerSettings:
    """Limits and timeouts of ``serve_http1`` (see the module docstring)."""

    keep_alive_timeout_s: float = 5.0
    request_timeout_s: float = 30.0
    max_connections: int = 1000
    max_head_bytes: int = 64 * 1024
    graceful_timeout_s: float = 10.0
    server_header: bytes = b"gateway"
    access_log: bool = False



class ConnectionOwner(Protocol):
    """What a connection needs of its server."""

    app: ASGIApp
    settings: ServerSettings
    shutting_down: bool


class _HeadTooLarge(Exception):
    pass


class Connection:
    """One client connection, and the httptools parser's callback object."""

    def __init__(self, server: ConnectionOwner, sock: trio.socket.SocketType) -> None:
        self.server = server
        self.settings = server.settings
        self.sock = sock
        self.client = tuple(sock.getpeername()[:2])
        self.local = tuple(sock.getsockname()[:2])
        self.parser = httptools.HttpRequestParser(self)
        self.timer = trio.CancelScope()  # its deadline times socket waits only: inf while the app works
        self.requests: deque[Request] = deque()  # parsed heads not served yet (pipelining)
        self.parsing: Request | None = None  # whose body the parser is in
        self.current: Request | None = None  # the one the app is serving
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
        request = self.parsing = Request(self, scope, parser.should_keep_alive(), self.head_deadline)
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

    async def next_request(self) -> Request | None:
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
        return error_response(status, self.settings.server_header)

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
            if self.settings.access_log:
                self.log_access("-", b"-", self.error_status, 0, 0.0)
            await self.write(self.error_response(self.error_status))
            return True
        return False

    async def serve(self, request: Request) -> None:
        started = time.perf_counter() if self.settings.access_log else 0.0
        try:
            await self.server.app(request.scope, request.receive, request.send)
        except Exception:  # the app is foreign code: its failure ends this request, not the server
            await self.fail(request, "ASGI app raised", exc_info=True)
        else:
            if request.state != _COMPLETE:
                await self.fail(request, "ASGI app returned without a complete response")
            elif request.body:
                request.body.clear()  # unread, but all of it arrived: drop it, keep the connection
        finally:
            request.wake()
            if started:
                forwarded = next((v for n, v in request.scope["headers"] if n == b"x-forwarded-for"), b"")
                self.log_access(request.scope["method"], request.scope["raw_path"], request.status,
                                request.sent_bytes, time.perf_counter() - started, forwarded)

    def log_access(self, method: str, path: bytes, status: int, sent_bytes: int, elapsed_s: float,
                   forwarded: bytes = b"") -> None:
        """One line per request: the TCP peer, method, path WITHOUT the query (platforms sign
        requests in it), status, body bytes sent, time, and behind a proxy its
        ``X-Forwarded-For`` as sent (at most 200 characters)."""
        suffix = f" xff={forwarded[:200].decode('latin-1')}" if forwarded else ""
        access_log.info("%s %s %s %d %d %.1fms%s", self.client[0], method, path.decode("latin-1"), status,
                        sent_bytes, elapsed_s * 1000, suffix)

    async def fail(self, request: Request, what: str, exc_info: bool = False) -> None:
        """End a request the app failed: an error reply if nothing was sent yet, then close."""
        request.keep_alive = False
        if self.disconnected:
            log.debug("%s after client %s left", what, self.client, exc_info=exc_info)
        elif request.state >= _STREAMING:
            log.error("%s after its response started; connection closed", what, exc_info=exc_info)
        elif request.body_broken:  # the request body was malformed: the app saw a disconnect
            request.status = self.error_status
            await self.write(self.error_response(self.error_status))
        else:
            log.error("%s; replying 500", what, exc_info=exc_info)
            request.status = 500
            await self.write(self.error_response(500))

    async def linger(self) -> None:
        """Drop what the client still sends, then close: closing with unread input sends a TCP
        reset, which can destroy the response before the client has read it."""
        with trio.move_on_after(LINGER_S):
            self.sock.shutdown(socket.SHUT_WR)
            dropped = 0
            while dropped < LINGER_BYTES and (data := await self.sock.recv(READ_BYTES)):
                dropped += len(data)


class Request:
    """One request of a connection: its scope, its body as parsed, and ``receive``/``send``."""

    __slots__ = ("body", "body_broken", "body_complete", "body_delivered", "connection", "deadline",
                 "expect_continue", "finished", "framing", "head_only", "keep_alive", "response_headers",
                 "scope", "sent_bytes", "state", "status")

    def __init__(self, connection: Connection, scope: Scope, keep_alive: bool, deadline: float) -> None:
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
        self.framing = IDENTITY
        self.sent_bytes = 0

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
            self.sent_bytes += len(body)
            if self.state == _STARTED:
                data = self.head(body, more)
            elif self.framing == CHUNKED:
                data = frame_chunk(body, more)
            else:
                data = body if self.framing == IDENTITY else b""
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
        keep_alive = (self.keep_alive and self.body_complete and not connection.server.shutting_down
                      and not (connection.stopped and not connection.error_status and not connection.requests))
        data, self.framing, self.keep_alive = frame_head(
            self.status, self.response_headers, body, more, http_version=self.scope["http_version"],
            head_only=self.head_only, keep_alive=keep_alive, server_header=connection.settings.server_header)
        return data


__all__ = ["ASGIApp", "Connection", "ConnectionOwner", "Request", "ServerSettings"]
