"""One request of a connection of the builtin HTTP/1.1 server: its ASGI ``receive`` and ``send``.

``Request`` holds what the parser gave for one request (the scope, body parts as they
arrive) and is what the app talks to: ``receive()`` hands over the body as the app asks,
reading the socket through its ``Connection`` (``gateway._server.h1_connection``) only when
nothing is buffered; ``send()`` frames the response with ``gateway._server.h1_framing`` and
writes it, a reply that does not stream in one socket send. The ASGI type names used by the
server live here too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import trio

from gateway._server.h1_framing import CHUNKED, IDENTITY, frame_chunk, frame_head

if TYPE_CHECKING:
    from gateway._server.h1_connection import Connection

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DISCONNECT: Message = {"type": "http.disconnect"}
PENDING, STARTED, STREAMING, COMPLETE = range(4)
"""Response states: nothing sent, ``http.response.start`` received, body streaming, done."""


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
        self.state = PENDING
        self.status = 200
        self.response_headers: Any = ()
        self.framing = IDENTITY
        self.sent_bytes = 0

    def wake(self) -> None:
        if self.finished is not None:
            self.finished.set()

    async def receive(self) -> Message:
        connection = self.connection
        if self.body_delivered or self.state == COMPLETE or connection.disconnected:
            if self.state != COMPLETE and not connection.disconnected:
                # ASGI: after the body, receive() waits for the disconnect; here, the response's end
                if self.finished is None:
                    self.finished = trio.Event()
                await self.finished.wait()
            return DISCONNECT
        while not self.body and not self.body_complete:
            if self.body_broken or connection.stopped:
                return DISCONNECT
            if self.expect_continue and self.state == PENDING:
                self.expect_continue = False
                await connection.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            data = await connection.receive_bytes(self.deadline)
            if not data:
                return DISCONNECT
            connection.feed(data)
        chunks = self.body
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.body_delivered = self.body_complete
        return {"type": "http.request", "body": body, "more_body": not self.body_complete}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            if self.state not in (STARTED, STREAMING):
                raise RuntimeError(f"http.response.body in response state {self.state}")
            body = message.get("body", b"")
            more = message.get("more_body", False)
            self.sent_bytes += len(body)
            if self.state == STARTED:
                data = self.head(body, more)
            elif self.framing == CHUNKED:
                data = frame_chunk(body, more)
            else:
                data = body if self.framing == IDENTITY else b""
            self.state = STREAMING if more else COMPLETE
            if not more:
                self.wake()
            if data:
                await self.connection.write(data)
        elif kind == "http.response.start":
            if self.state != PENDING:
                raise RuntimeError("http.response.start sent twice")
            self.status = message["status"]
            self.response_headers = message.get("headers", ())
            self.state = STARTED
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


__all__ = ["COMPLETE", "DISCONNECT", "PENDING", "STARTED", "STREAMING", "ASGIApp", "Message", "Receive",
           "Request", "Scope", "Send"]
