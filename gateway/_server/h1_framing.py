"""HTTP/1.1 response framing for the builtin server (``gateway._server.h1``): pure, no I/O.

``frame_head`` turns an ASGI ``http.response.start`` (status, headers) and the first body
part into the bytes that go on the wire: status line, the app's headers, then what the
server adds — ``content-length`` when the app gave none and the body is complete,
``transfer-encoding: chunked`` for a streamed HTTP/1.1 body (an HTTP/1.0 one ends with the
connection), ``connection: close`` / ``keep-alive`` when needed, ``date`` (formatted at most
once a second) and ``server`` unless the app set them. HEAD, 1xx, 204 and 304 replies carry
no body. A header name or value with CR or LF is refused (``ValueError``): it would let a
value inject headers or a second response.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from email.utils import formatdate
from http import HTTPStatus

IDENTITY, CHUNKED, NO_BODY = range(3)
"""How the response body is framed: as is (``content-length``), chunked, or not at all."""


def frame_head(status: int, headers: Iterable[tuple[bytes, bytes]], body: bytes, more: bool, *,
               http_version: str, head_only: bool, keep_alive: bool,
               server_header: bytes) -> tuple[bytes, int, bool]:
    """The status line and headers with the first body part, framed.

    Args:
        status, headers: the app's ``http.response.start``.
        body, more: the first ``http.response.body`` (``more``: more parts follow).
        http_version: the request's, ``"1.1"`` or ``"1.0"``.
        head_only: the request was ``HEAD``.
        keep_alive: whether the server would keep the connection; the app's
            ``connection: close`` or an HTTP/1.0 stream turns it off.
        server_header: the ``server`` value added when the app gave none.

    Returns:
        ``(bytes to send, framing of later parts, keep_alive)``.

    Raises:
        ValueError: a header name or value contains CR or LF.
    """
    lines = [status_line(status)]
    length = encoding = date = server = explicit_connection = False
    for name, value in headers:
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
    framing = IDENTITY
    if head_only or status < 200 or status in (204, 304):
        framing = NO_BODY
        if head_only and not (length or encoding or more):
            lines.append(b"content-length: %d\r\n" % len(body))
    elif encoding:
        framing = CHUNKED
    elif not length and not more:
        lines.append(b"content-length: %d\r\n" % len(body))
    elif not length and http_version == "1.1":
        lines.append(b"transfer-encoding: chunked\r\n")
        framing = CHUNKED
    elif not length:
        keep_alive = False  # HTTP/1.0 streaming: the connection's end ends the body
    if not explicit_connection and (not keep_alive or http_version == "1.0"):
        lines.append(b"connection: keep-alive\r\n" if keep_alive else b"connection: close\r\n")
    if not date:
        lines.append(date_line())
    if not server:
        lines.append(b"server: %s\r\n" % server_header)
    lines.append(b"\r\n")
    head = b"".join(lines)
    if head.count(b"\n") != len(lines) or head.count(b"\r") != len(lines):
        raise ValueError("a response header name or value contains CR or LF")
    if framing == CHUNKED:
        return head + frame_chunk(body, more), framing, keep_alive
    return (head if framing == NO_BODY else head + body), framing, keep_alive


def frame_chunk(body: bytes, more: bool) -> bytes:
    """A chunked body part; the last (``more`` false) ends with the zero-length chunk."""
    return (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + (b"" if more else b"0\r\n\r\n")


def error_response(status: int, server_header: bytes) -> bytes:
    """A complete ``text/plain`` error reply that closes the connection (400, 431, 500)."""
    text = f"{HTTPStatus(status).phrase}\n".encode("ascii")
    return (status_line(status) + b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
            b"connection: close\r\n%sserver: %s\r\n\r\n%s" % (len(text), date_line(), server_header, text))


_status_lines: dict[int, bytes] = {}
_date_cache: list[object] = [0, b""]


def status_line(status: int) -> bytes:
    """``HTTP/1.1 <status> <phrase>\\r\\n`` (an unknown status gets an empty phrase)."""
    line = _status_lines.get(status)
    if line is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        line = f"HTTP/1.1 {status} {phrase}\r\n".encode("ascii")
        if len(_status_lines) < 1000:
            _status_lines[status] = line
    return line


def date_line() -> bytes:
    """The ``date`` header line, formatted at most once a second."""
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[:] = [now, f"date: {formatdate(now, usegmt=True)}\r\n".encode("ascii")]
    line = _date_cache[1]
    assert isinstance(line, bytes)
    return line


__all__ = ["CHUNKED", "IDENTITY", "NO_BODY", "error_response", "frame_chunk", "frame_head", "status_line"]
