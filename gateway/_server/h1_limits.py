"""What the builtin HTTP/1.1 server accepts of a request head: its limits and rules, pure.

``ServerSettings`` holds the limits (the module docstring of ``gateway._server.h1`` says what
each bounds). The functions check what llhttp leaves to the server, each raising ``Refused``
with the status to answer: one ``Host`` field with a valid value (RFC 9112 §3.2), one
``Transfer-Encoding`` field that is exactly ``chunked`` and never in HTTP/1.0 (§6.1),
versions 1.0 and 1.1 only. ``absolute_form_authority`` is the ``Host`` an absolute-form
target implies (§3.2.2). llhttp itself, run strict, refuses the rest: ``Content-Length``
with ``Transfer-Encoding``, duplicate or malformed lengths, a ``Transfer-Encoding`` not ending
in ``chunked``, bad chunk sizes, bare LF or CR, obs-fold, NUL or CR in a value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# RFC 3986 uri-host [ ":" port ]: unreserved, pct-encoded, sub-delims, IP-literal brackets
HOST_CHARS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%!$&'()*+,;=:[]"


@dataclass(frozen=True)
class ServerSettings:
    """Limits and timeouts of ``serve_http1`` (see the module docstring of ``gateway._server.h1``).

    Attributes:
        keep_alive_timeout_s: a connection idle between requests is closed after it.
        request_timeout_s: a request's head and body must arrive within it of its first byte
            (an empty line before it included), and each response write finish within it.
        max_connections: open connections at most; at the limit the one that has waited
            longest for a request is closed to make room.
        max_head_bytes: request line and header fields (431 beyond), and separately what a
            chunked body sends besides data, its trailer section included (431 beyond).
        max_header_fields: header field lines of a request (431 beyond), as Apache's
            ``LimitRequestFields``: what a head of many tiny fields costs in Python objects.
        max_target_bytes: the request target (414 beyond).
        max_empty_lines: empty lines (CRLF) ignored before a request line (400 beyond).
        max_pipelined_requests: parsed requests waiting to be served on one connection; past
            it the server answers those, then closes (the client sends the rest again).
        graceful_timeout_s: what requests in flight get at shutdown.
        server_header: the ``server`` response header.
        access_log: one log line per request on ``gateway.access``.
    """

    keep_alive_timeout_s: float = 5.0
    request_timeout_s: float = 30.0
    max_connections: int = 1000
    max_head_bytes: int = 64 * 1024
    max_header_fields: int = 100
    max_target_bytes: int = 8 * 1024
    max_empty_lines: int = 8
    max_pipelined_requests: int = 32
    graceful_timeout_s: float = 10.0
    server_header: bytes = b"gateway"
    access_log: bool = False


class Refused(Exception):
    """A request head the server refuses: answer ``status``, then close (0: no answer, close
    after the requests already parsed)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def check_host_field(value: bytes) -> None:
    """A ``Host`` value must be a ``uri-host [":" port]`` (RFC 9112 §3.2).

    Raises:
        Refused: 400.
    """
    if value.strip(HOST_CHARS):  # what is left holds a character not in HOST_CHARS
        raise Refused(400)


def check_transfer_encoding(values: list[bytes]) -> None:
    """The ``Transfer-Encoding`` field lines of a request llhttp read as chunked.

    A second line is refused: parsers that join lines and parsers that take one disagree on
    the framing. A coding before ``chunked`` (``gzip, chunked``) is one the server does not
    decode (501, RFC 9112 §6.1). (A list not ending in ``chunked`` is llhttp's 400.)

    Raises:
        Refused: 400 or 501.
    """
    if len(values) > 1:
        raise Refused(400)
    if values and [coding.strip(b" \t").lower() for coding in values[0].split(b",")] != [b"chunked"]:
        raise Refused(501)


def check_version_and_host(version: str, host_count: int, transfer_encoding: bool) -> None:
    """HTTP/1.0 and 1.1 only (505); exactly one ``Host`` field, none allowed in 1.0 only (400);
    no ``Transfer-Encoding`` in HTTP/1.0 (400: RFC 9112 §6.1 calls its framing faulty).

    Raises:
        Refused: 400 or 505.
    """
    if version != "1.1" and version != "1.0":
        raise Refused(505)
    if host_count > 1 or (version == "1.1" and not host_count):
        raise Refused(400)
    if version == "1.0" and transfer_encoding:
        raise Refused(400)


def absolute_form_authority(url: Any) -> bytes | None:
    """The ``Host`` an absolute-form target (``http://host:port/path``, RFC 9112 §3.2.2) puts
    in place of the received one, from ``httptools.parse_url``; None without a host.

    Raises:
        Refused: 400, a scheme other than http and https.
    """
    if url.schema.lower() not in (b"http", b"https"):
        raise Refused(400)
    host: bytes | None = url.host
    if not host:
        return None
    if b":" in host:
        host = b"[%s]" % host
    return host if url.port is None else b"%s:%d" % (host, url.port)


__all__ = ["HOST_CHARS", "Refused", "ServerSettings", "absolute_form_authority", "check_host_field",
           "check_transfer_encoding", "check_version_and_host"]
