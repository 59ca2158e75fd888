"""The builtin HTTP/1.1 server probed as an attacker would, over raw sockets: request smuggling.

A real server process (``tests._support.h1_server_process``) on 127.0.0.1 serves a marker
route, ``/__smuggled__``, that no case may reach: every payload hides a request to it where
a server that frames the message differently from us (a proxy in front, or a lenient parser)
would see a second request. Each case is sent whole and in pieces (a parser must not change
its mind at a read boundary), and must be refused with a 400-class reply and a closed
connection, or accepted with the hidden request kept as body. After each, the marker's hit
count is read back from the process. The resource-abuse half is ``test_h1_adversarial_resources``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests._support.h1_server_process import ServerProcess, exchange, get, smuggled_hits

MARK = b"GET /__smuggled__ HTTP/1.1\r\nHost: t\r\n\r\n"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    process = ServerProcess({}).start()
    try:
        yield process
    finally:
        process.stop()


def post(*fields: bytes, body: bytes = b"", version: bytes = b"1.1", target: bytes = b"/webhook") -> bytes:
    """A request head with these field lines (each without CRLF), then ``body``."""
    return b"POST " + target + b" HTTP/" + version + b"\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n" + body


def length(body: bytes) -> bytes:
    return b"Content-Length: %d" % len(body)


HOST = b"Host: t"
TE = b"Transfer-Encoding: chunked"
LAST_CHUNK = b"0\r\n\r\n"
CHUNKED_MARK = b"%x\r\n%s\r\n0\r\n\r\n" % (len(MARK), MARK)  # the marker as chunk data

# (name, payload): every one refused, 400 unless the case says otherwise
REFUSED: list[tuple[str, bytes, int]] = [
    # CL.TE and TE.CL: the two framings disagree on where the body ends
    ("cl-te", post(HOST, length(LAST_CHUNK + MARK), TE, body=LAST_CHUNK + MARK), 400),
    ("te-cl", post(HOST, TE, b"Content-Length: 4", body=CHUNKED_MARK), 400),
    ("cl-te-tab", post(HOST, length(LAST_CHUNK + MARK), b"Transfer-Encoding:\tchunked", body=LAST_CHUNK + MARK), 400),
    ("cl-te-case", post(HOST, b"content-length: %d" % len(LAST_CHUNK + MARK), b"TRANSFER-ENCODING: CHUNKED",
                        body=LAST_CHUNK + MARK), 400),
    ("te-cl-zero", post(HOST, b"Content-Length: 0", TE, body=CHUNKED_MARK), 400),
    # duplicate and malformed lengths: a server taking the first or a prefix sees the marker
    ("cl-twice-different", post(HOST, b"Content-Length: 0", length(MARK), body=MARK), 400),
    ("cl-twice-same", post(HOST, length(MARK), length(MARK), body=MARK), 400),
    ("cl-list", post(HOST, b"Content-Length: 0, %d" % len(MARK), body=MARK), 400),
    ("cl-plus", post(HOST, b"Content-Length: +%d" % len(MARK), body=MARK), 400),
    ("cl-negative", post(HOST, b"Content-Length: -1", body=MARK), 400),
    ("cl-hex", post(HOST, b"Content-Length: 0x%x" % len(MARK), body=MARK), 400),
    ("cl-inner-space", post(HOST, b"Content-Length: 0 %d" % len(MARK), body=MARK), 400),
    ("cl-empty", post(HOST, b"Content-Length: ", body=MARK), 400),
    ("cl-overflow", post(HOST, b"Content-Length: 184467440737095516160", body=MARK), 400),
    ("cl-garbage", post(HOST, b"Content-Length: 0abc", body=MARK), 400),
    ("cl-space-before-colon", post(HOST, b"Content-Length : %d" % len(MARK), body=MARK), 400),
    # Transfer-Encoding in disguise: a proxy that reads it as chunked and one that does not disagree
    ("te-xchunked", post(HOST, b"Transfer-Encoding: xchunked", body=LAST_CHUNK + MARK), 400),
    ("te-chunked-identity", post(HOST, b"Transfer-Encoding: chunked, identity", body=LAST_CHUNK + MARK), 400),
    ("te-quoted", post(HOST, b'Transfer-Encoding: "chunked"', body=LAST_CHUNK + MARK), 400),
    ("te-space-before-colon", post(HOST, b"Transfer-Encoding : chunked", body=LAST_CHUNK + MARK), 400),
    ("te-vertical-tab", post(HOST, b"Transfer-Encoding:\x0bchunked", body=LAST_CHUNK + MARK), 400),
    ("te-two-lines", post(HOST, b"Transfer-Encoding: identity", TE, body=LAST_CHUNK + MARK), 400),
    ("te-two-lines-chunked-first", post(HOST, TE, b"Transfer-Encoding: identity", body=LAST_CHUNK + MARK), 400),
    ("te-gzip-chunked", post(HOST, b"Transfer-Encoding: gzip, chunked", body=LAST_CHUNK + MARK), 501),
    ("te-nul", post(HOST, b"Transfer-Encoding: chunked\x00", body=LAST_CHUNK + MARK), 400),
    ("te-obs-fold", post(HOST, b"Transfer-Encoding:", b" chunked", body=LAST_CHUNK + MARK), 400),
    ("te-underscore-and-cl", post(HOST, length(MARK), b"Transfer_Encoding: chunked", TE, body=MARK), 400),
    # chunk sizes a lenient parser reads as something else
    ("chunk-size-overflow", post(HOST, TE, body=b"10000000000000000\r\n" + MARK), 400),
    ("chunk-size-negative", post(HOST, TE, body=b"-1\r\n" + MARK), 400),
    ("chunk-size-hex-prefix", post(HOST, TE, body=b"0x0\r\n\r\n" + MARK), 400),
    ("chunk-size-plus", post(HOST, TE, body=b"+0\r\n\r\n" + MARK), 400),
    ("chunk-size-space", post(HOST, TE, body=b"0 \r\n\r\n" + MARK), 400),
    ("chunk-size-empty", post(HOST, TE, body=b"\r\n\r\n" + MARK), 400),
    ("chunk-data-overrun", post(HOST, TE, body=b"3\r\nabcdef\r\n" + LAST_CHUNK + MARK), 400),
    ("chunk-data-no-crlf", post(HOST, TE, body=b"3\r\nabc" + LAST_CHUNK + MARK), 400),
    ("chunk-ext-bare-lf", post(HOST, TE, body=b"0;x\n\r\n" + MARK), 400),
    ("chunk-ext-quote-crlf", post(HOST, TE, body=b'0;x="a\r\n"\r\n\r\n' + MARK), 400),
    ("last-chunk-then-request", post(HOST, TE, body=b"0\r\n" + MARK), 400),
    # bare LF, bare CR, obs-fold, NUL and CR inside values
    ("bare-lf-head", b"POST /webhook HTTP/1.1\nHost: t\nContent-Length: %d\n\n" % len(MARK) + MARK, 400),
    ("bare-lf-one-field", post(HOST + b"\nContent-Length: 0", body=MARK), 400),
    ("bare-lf-chunked", post(HOST, TE, body=b"0\n\n" + MARK), 400),
    ("bare-cr", b"POST /webhook HTTP/1.1\rHost: t\r\nContent-Length: 0\r\n\r\n" + MARK, 400),
    ("obs-fold-length", post(HOST, b"Content-Length: 0", b" %d" % len(MARK), body=MARK), 400),
    ("obs-fold-host", post(HOST, b"\tx", length(MARK), body=MARK), 400),
    ("nul-in-value", post(HOST, b"X-A: a\x00b", length(MARK), body=MARK), 400),
    ("cr-in-value", post(HOST, b"X-A: a\rb", length(MARK), body=MARK), 400),
    ("space-in-name", post(HOST, b"Content Length: %d" % len(MARK), body=MARK), 400),
    # HTTP/1.0 with Transfer-Encoding: faulty framing (RFC 9112 §6.1), whatever follows
    ("http10-te", post(HOST, b"Connection: keep-alive", TE, body=LAST_CHUNK + MARK, version=b"1.0"), 400),
    ("http10-te-no-host", post(b"Connection: keep-alive", TE, body=LAST_CHUNK + MARK, version=b"1.0"), 400),
    ("http10-te-cl", post(b"Connection: keep-alive", length(MARK), TE, body=MARK, version=b"1.0"), 400),
    # Host rules (RFC 9112 §3.2): the request is refused, so what follows it is never read
    ("no-host", b"GET /livez HTTP/1.1\r\n\r\n" + MARK, 400),
    ("two-hosts", b"GET /livez HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n" + MARK, 400),
    ("host-with-space", b"GET /livez HTTP/1.1\r\nHost: t u\r\n\r\n" + MARK, 400),
    ("host-with-path", b"GET /livez HTTP/1.1\r\nHost: t/x\r\n\r\n" + MARK, 400),
    ("host-with-userinfo", b"GET /livez HTTP/1.1\r\nHost: a@t\r\n\r\n" + MARK, 400),
    # versions the server does not speak
    ("http09-request-line", b"GET /__smuggled__\r\n\r\n", 505),
    ("http20-version", b"GET /__smuggled__ HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    ("http2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + MARK, 400),
    ("http12-version", b"GET /livez HTTP/1.2\r\nHost: t\r\n\r\n" + MARK, 400),
]

# accepted: the hidden request is body (or after an upgrade) and is never served
ACCEPTED: list[tuple[str, bytes]] = [
    ("cl-body-holds-a-request", post(HOST, length(MARK), body=MARK)),
    ("chunked-body-holds-a-request", post(HOST, TE, body=CHUNKED_MARK)),
    ("get-with-body-holds-a-request", b"GET /livez HTTP/1.1\r\nHost: t\r\n" + length(MARK) + b"\r\n\r\n" + MARK),
    ("trailer-holds-a-request-line", post(HOST, TE, body=b"0\r\nX-Request: GET /__smuggled__ HTTP/1.1\r\n\r\n")),
    ("upgrade-then-a-request", b"GET /livez HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
                               + MARK),
    ("expect-100-body-holds-a-request", post(HOST, length(MARK), b"Expect: 100-continue", body=MARK)),
]


@pytest.mark.parametrize("pieces", [1, 5], ids=["whole", "pieces"])
@pytest.mark.parametrize(("name", "payload", "status"), REFUSED, ids=[case[0] for case in REFUSED])
async def test_ambiguous_framing_is_refused_and_nothing_is_served_from_it(server, name, payload, status, pieces):
    hits = await smuggled_hits(server.port)
    seen = await exchange(server.port, payload, pieces=pieces)
    assert seen.statuses == [status], (name, seen.received[:300])
    assert seen.replies[0].headers.get(b"connection") == b"close"
    assert seen.closed, f"{name}: the connection stayed open after the refusal"
    assert b"SMUGGLED" not in seen.received
    assert await smuggled_hits(server.port) == hits, f"{name} reached the marker route"


@pytest.mark.parametrize("pieces", [1, 5], ids=["whole", "pieces"])
@pytest.mark.parametrize(("name", "payload"), ACCEPTED, ids=[case[0] for case in ACCEPTED])
async def test_a_request_inside_a_body_is_never_served(server, name, payload, pieces):
    hits = await smuggled_hits(server.port)
    seen = await exchange(server.port, payload, pieces=pieces, replies=1)
    statuses = [status for status in seen.statuses if status != 100]
    assert statuses == [200], (name, seen.received[:300])
    assert b"SMUGGLED" not in seen.received
    assert await smuggled_hits(server.port) == hits, f"{name} reached the marker route"


async def test_the_marker_route_counts_what_reaches_it(server):
    """The checks above are only evidence if the marker does count: reach it on purpose."""
    before = await smuggled_hits(server.port)
    reply, _ = await get(server.port, "/__smuggled__")
    assert reply is not None and reply.body == b"SMUGGLED"
    assert await smuggled_hits(server.port) == before + 1


async def test_absolute_form_and_long_targets(server):
    """RFC 9112 §3.2.2: an absolute-form target is served (its empty path read as ``/``), and §3:
    an over-long target is 414, not 431."""
    seen = await exchange(server.port, b"GET http://t HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert seen.statuses == [404] and seen.closed  # "/" is no route of the process: what matters is it parsed
    seen = await exchange(server.port, b"GET http://t/livez?x=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert seen.statuses == [200] and seen.replies[0].body == b"live"
    seen = await exchange(server.port, b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    assert seen.statuses == [414] and seen.closed
