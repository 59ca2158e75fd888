"""One client connection of the builtin HTTP/1.1 server (``gateway._server.h1``): parse, serve, reply.

``Connection`` reads the socket only when the next request's head is needed or the app asks
for more body, feeds httptools (llhttp) and is its callback object; parsed heads wait in a
small deque (pipelining). ``Request`` (``gateway._server.h1_request``) is one request's ASGI
``receive``/``send``. Limits, timeouts, what is refused and what happens to unread bodies: the
module docstring of ``gateway._server.h1``.

What a connection holds is bounded whatever the client sends (checked after each read and
when a head completes, so one read, 64 KiB, may pass a limit before it is refused): a head
by ``max_head_bytes`` and ``max_header_fields``, its request target by ``max_target_bytes``,
what a chunked body sends besides data (sizes, extensions, trailer section) by
``max_head_bytes``, parsed heads waiting their turn by ``max_pipelined_requests``, body bytes
by one read (the next read waits until the app took them), empty lines before a request line
by ``max_empty_lines``. Checks that cost per request stay out of the per-header path: a Host
value is checked when it differs from the connection's last one, Transfer-Encoding fields at
a chunked body's first chunk.
"""

from __future__ import annotations

import logging
import socket
import time
import urllib.parse
from collections import deque
from math import inf
from typing import Any, Protocol

import httptools
import trio

from gateway._server.h1_framing import error_response
from gateway._server.h1_limits import (
    Refused,
    ServerSettings,
    absolute_form_authority,
    check_host_field,
    check_transfer_encoding,
    check_version_and_host,
)
from gateway._server.h1_request import COMPLETE, STREAMING, ASGIApp, Request

log = logging.getLogger("gateway._server.h1")
access_log = logging.getLogger("gateway.access")

READ_BYTES = 64 * 1024
LINGER_S = 2.0
LINGER_BYTES = 16 * 1024 * 1024


class ConnectionOwner(Protocol):
    """What a connection needs of its server."""

    app: ASGIApp
    settings: ServerSettings
    shutting_down: bool


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
        self.current: Request | None = None  # the one the app is serving; None: the connection may be evicted
        self.in_head = self.expect_continue = self.stopped = self.disconnected = self.evicted = False
        self.idle = True  # waiting for a next request: shutdown closes it at once
        self.waiting_since = trio.current_time()  # since when it waits for a request (eviction order)
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_bytes = 0  # bytes it took of earlier reads
        self.head_start = 0  # estimated offset of its first byte in the current read
        self.fed = 0  # estimated bytes the parser consumed of the current read
        self.framing_bytes = 0  # reads of the current body that held no body byte (chunk framing, trailers)
        self.empty_line_bytes = 0  # CR/LF received before a request line
        self.host: bytes | None = None  # the Host field of the head being parsed
        self.valid_host = b""  # the last Host value that passed ``check_host_field``
        self.chunked_checked: Request | None = None  # whose Transfer-Encoding passed
        self.head_deadline = inf
        self.error_status = 0  # set with ``stopped`` when the input was bad

    # -- httptools callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_head, self.url, self.headers, self.expect_continue, self.host = True, b"", [], False, None
        self.head_bytes = self.framing_bytes = 0
        self.head_start = self.fed
        if self.empty_line_bytes:  # the request's clock started with its first empty line
            self.empty_line_bytes = 0
        else:
            self.head_deadline = trio.current_time() + self.settings.request_timeout_s

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.fed += len(url)
        if len(self.url) > self.settings.max_target_bytes:
            raise Refused(414)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.in_head:
            return  # a chunked body's trailer: not passed on (its bytes are counted by ``feed``)
        name = name.lower()
        self.headers.append((name, value))
        size = len(name) + len(value) + 4
        self.fed += size  # the head's size is checked per read (``feed``) and when it is complete
        if name == b"host":  # its value is checked by ``check_head``
            if self.host is not None:
                raise Refused(400)  # two Host fields (RFC 9112 §3.2)
            self.host = value
        elif name == b"expect" and value.lower() == b"100-continue":
            self.expect_continue = True

    def on_headers_complete(self) -> None:
        self.in_head = False
        settings = self.settings
        if (self.head_bytes + self.fed - self.head_start > settings.max_head_bytes
                or len(self.headers) > settings.max_header_fields):
            raise Refused(431)
        parser = self.parser
        version = parser.get_http_version()
        if self.host != self.valid_host or version != "1.1":  # else as the connection's last request
            self.check_head(version)
        if self.requests and len(self.requests) >= settings.max_pipelined_requests:
            raise Refused(0)  # serve those waiting, then close: the client sends the rest again
        url = httptools.parse_url(self.url)
        raw_path = url.path if url.schema is None else self.absolute_form(url)
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        method = parser.get_method().decode("ascii")
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": version,
            "method": method, "scheme": "http", "path": path, "raw_path": raw_path,
            "query_string": url.query or b"", "root_path": "", "headers": self.headers,
            "client": self.client, "server": self.local,
        }
        request = self.parsing = Request(self, scope, parser.should_keep_alive(), self.head_deadline)
        request.head_only = method == "HEAD"
        request.expect_continue = self.expect_continue and version == "1.1"
        self.requests.append(request)

    def check_head(self, version: str) -> None:
        """The rules of ``gateway._server.h1_limits`` for a version other than 1.1 or a Host
        other than the one this connection sent last (a connection's first request)."""
        transfer_encoding = version == "1.0" and any(name == b"transfer-encoding" for name, _ in self.headers)
        check_version_and_host(version, 0 if self.host is None else 1, transfer_encoding)
        if self.host is not None:
            check_host_field(self.host)
            self.valid_host = self.host

    def absolute_form(self, url: Any) -> bytes:
        """An absolute-form target (RFC 9112 §3.2.2): its authority replaces Host, its path is
        the path (``/`` when empty)."""
        authority = absolute_form_authority(url)
        if authority is not None:
            headers = self.headers
            headers[:] = [(name, authority if name == b"host" else value) for name, value in headers]
        path: bytes = url.path or b"/"
        return path

    def on_chunk_header(self) -> None:
        """A chunk of a chunked body: at a request's first, its Transfer-Encoding fields are
        checked (``check_transfer_encoding``), here where only chunked requests pay for it."""
        request = self.parsing
        if request is not self.chunked_checked:
            self.chunked_checked = request
            try:
                check_transfer_encoding([v for name, v in self.headers if name == b"transfer-encoding"])
            except Refused:
                if self.requests and self.requests[-1] is request:
                    self.requests.pop()  # not served yet: the refusal is its reply
                raise

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
            refused = exc.__context__
            status = refused.status if isinstance(refused, Refused) else 400
            log.debug("request from %s refused (%d): %r (%r)", self.client, status, exc, refused)
            self.stop(status)
        else:
            if self.in_head:  # an incomplete head: count what it took of this read
                self.head_bytes += len(data) - self.head_start
                self.head_start = 0
                settings = self.settings
                too_many = len(self.headers) > settings.max_header_fields
                if self.head_bytes > settings.max_head_bytes or too_many:
                    self.stop(431)
            elif self.parsing is not None and not self.fed:  # no body byte: chunk framing or a trailer
                self.framing_bytes += len(data)
                if self.framing_bytes > self.settings.max_head_bytes:
                    self.stop(431)

    def skip_empty_lines(self, data: bytes) -> bool:
        """Count the empty lines that start ``data`` (RFC 9112 §2.2 lets a server ignore a few
        before a request line): the first starts the request's ``request_timeout_s``; False
        (and a 400 to send) past ``max_empty_lines``."""
        if not self.empty_line_bytes:
            self.head_deadline = trio.current_time() + self.settings.request_timeout_s
        self.empty_line_bytes += len(data) - len(data.lstrip(b"\r\n"))
        if self.empty_line_bytes > 2 * self.settings.max_empty_lines:
            log.debug("request from %s refused: more than %d empty lines", self.client,
                      self.settings.max_empty_lines)
            self.stop(400)
            return False
        return True

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
                if self.empty_line_bytes:  # keep-alive is over: the request's own clock runs
                    deadline = self.head_deadline
                else:
                    now = self.waiting_since = trio.current_time()
                    deadline = now + self.settings.keep_alive_timeout_s
            data = await self.receive_bytes(deadline)
            self.idle = False
            if not data:
                return None
            if data[0] in b"\r\n" and not self.in_head:  # empty lines before a request line
                if not self.skip_empty_lines(data):
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
        if unread_input and not self.disconnected and not self.evicted:
            self.waiting_since = -inf  # closing anyway: the first to make room at the limit
            self.timer = trio.CancelScope(deadline=trio.current_time() + LINGER_S)
            with self.timer:
                await self.linger()

    def evict(self) -> None:
        """Close the connection now (the server is at ``max_connections``); only while
        ``current`` is None, i.e. no app is serving one of its requests."""
        self.evicted = True
        self.timer.cancel()

    async def serve_requests(self) -> bool:
        """Serve requests until the connection should close; True if the client may still send."""
        while (request := await self.next_request()) is not None:
            self.current = request
            await self.serve(request)
            self.current = None
            if not request.keep_alive or self.disconnected:
                return not request.body_complete or bool(self.requests) or self.in_head or self.stopped
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
            if request.state != COMPLETE:
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
        elif request.state >= STREAMING:
            log.error("%s after its response started; connection closed (a bug: report it with this traceback)", what,
                      exc_info=exc_info)
        elif request.body_broken:  # the request body was malformed: the app saw a disconnect
            request.status = self.error_status
            await self.write(self.error_response(self.error_status))
        else:
            log.error("%s; replying 500 (a bug: report it with this traceback)", what, exc_info=exc_info)
            request.status = 500
            await self.write(self.error_response(500))

    async def linger(self) -> None:
        """Drop what the client still sends, then close: closing with unread input sends a TCP
        reset, which can destroy the response before the client has read it."""
        self.sock.shutdown(socket.SHUT_WR)
        dropped = 0
        while dropped < LINGER_BYTES and (data := await self.sock.recv(READ_BYTES)):
            dropped += len(data)


__all__ = ["ASGIApp", "Connection", "ConnectionOwner", "Request", "ServerSettings"]
