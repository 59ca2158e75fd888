"""The builtin HTTP/1.1 server: real sockets on loopback, a tiny ASGI app, then the real gateway."""

from __future__ import annotations

import logging
import re
import socket
from collections import deque

import httptools
import httpx
import orjson
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway._daemon import serve_gateway
from gateway._errors import ConfigError
from gateway._server import ServerSettings, serve_http1
from gateway._settings import load_settings
from tests._support import erp_event, signed, write_config

# -- a tiny ASGI app and a raw client ---------------------------------------------------------


async def echo_app(scope, receive, send):
    """Echoes the request; ``/boom`` raises, ``/stream`` streams, ``/slow`` waits, ``/ignore``
    answers without reading the body."""
    path = scope["path"]
    if path == "/boom":
        raise RuntimeError("boom")
    if path == "/slow":
        scope["state"]["started"].set()
        await trio.sleep(float(scope["query_string"] or 0.3))
    parts: list[bytes] = []
    if path != "/ignore":
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                scope["state"]["disconnects"].append(scope["client"])
                return
            parts.append(message["body"])
            if not message["more_body"]:
                break
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for word in (b"one ", b"two ", b"three"):
            await send({"type": "http.response.body", "body": word, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    reply = {
        "method": scope["method"], "path": scope["path"], "raw_path": scope["raw_path"].decode(),
        "query": scope["query_string"].decode(), "http_version": scope["http_version"],
        "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
        "client": list(scope["client"]), "server": list(scope["server"]),
        "body": b"".join(parts).decode(), "messages": len(parts),
    }
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": orjson.dumps(reply)})


class Server:
    def __init__(self, binds: list[str], shutdown: trio.Event, state: dict) -> None:
        self.binds = binds
        self.shutdown = shutdown
        self.state = state
        self.returned = trio.Event()
        self.port = int(binds[0].rsplit(":", 1)[1])


async def start(nursery, binds=(("127.0.0.1", 0),), **limits) -> Server:
    shutdown = trio.Event()
    state = {"started": trio.Event(), "disconnects": []}

    async def app(scope, receive, send):
        scope["state"] = state
        await echo_app(scope, receive, send)

    async def run(task_status=trio.TASK_STATUS_IGNORED):
        await serve_http1(app, list(binds), shutdown_trigger=shutdown.wait, settings=ServerSettings(**limits),
                          task_status=task_status)
        server.returned.set()

    bound = await nursery.start(run)
    server = Server(bound, shutdown, state)
    return server


class Raw:
    """A raw client connection that parses responses with httptools (pipelining, 100, chunked)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.parser = httptools.HttpResponseParser(self)
        self.responses: deque[dict] = deque()
        self.closed = False

    @classmethod
    async def connect(cls, port: int, host: str = "127.0.0.1") -> Raw:
        return cls(await trio.open_tcp_stream(host, port))

    def on_message_begin(self):
        self.current = {"headers": {}, "body": b""}

    def on_header(self, name, value):
        self.current["headers"][name.decode().lower()] = value.decode()

    def on_headers_complete(self):
        self.current["status"] = self.parser.get_status_code()

    def on_body(self, body):
        self.current["body"] += body

    def on_message_complete(self):
        self.responses.append(self.current)

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def read(self) -> bytes:
        try:
            data = await self.stream.receive_some(65536)
        except (trio.BrokenResourceError, ConnectionResetError):
            data = b""
        self.closed = not data
        return data

    async def response(self) -> dict:
        with trio.fail_after(5):
            while not self.responses:
                data = await self.read()
                assert data, "the server closed the connection before a response"
                self.parser.feed_data(data)
        return self.responses.popleft()

    async def wait_closed(self, within_s: float = 5) -> None:
        with trio.fail_after(within_s):
            while await self.read():
                pass


def request(method: str = "GET", path: str = "/", body: bytes = b"", version: str = "1.1", **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: test"]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def echoed(response: dict) -> dict:
    assert response["status"] == 200, response
    return orjson.loads(response["body"])


# -- the protocol ---------------------------------------------------------------------------------


async def test_binds_are_reported_like_hypercorn_and_the_scope_is_asgi(nursery):
    server = await start(nursery)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.binds[0]) and server.port > 0
    async with httpx.AsyncClient(base_url=server.binds[0]) as client:
        reply = (await client.post("/a%20b/c?x=1&y=%20", content=b"hi", headers={"X-Thing": "Yes"})).json()
    assert reply["method"] == "POST" and reply["http_version"] == "1.1"
    assert reply["path"] == "/a b/c" and reply["raw_path"] == "/a%20b/c" and reply["query"] == "x=1&y=%20"
    assert ["x-thing", "Yes"] in reply["headers"] and reply["body"] == "hi"
    assert reply["client"][0] == "127.0.0.1" and reply["server"] == ["127.0.0.1", server.port]


async def test_ipv6_literal_bind(nursery):
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    server = await start(nursery, binds=[("::1", 0)])
    assert re.fullmatch(r"http://\[::1\]:\d+", server.binds[0])
    async with httpx.AsyncClient(base_url=server.binds[0]) as client:
        assert (await client.get("/v6")).json()["client"][0] == "::1"


async def test_keep_alive_serves_several_requests_on_one_connection(nursery):
    server = await start(nursery)
    async with httpx.AsyncClient(base_url=server.binds[0], limits=httpx.Limits(max_connections=1)) as client:
        ports = {tuple((await client.post(f"/{n}", content=b"x" * n * 1000)).json()["client"]) for n in range(5)}
    assert len(ports) == 1


async def test_pipelined_requests_are_answered_in_order(nursery):
    server = await start(nursery)
    raw = await Raw.connect(server.port)
    await raw.send(request("POST", "/first", b"a" * 10) + request("GET", "/second") + request("POST", "/third", b"c"))
    assert [echoed(await raw.response())["path"] for _ in range(3)] == ["/first", "/second", "/third"]
    await raw.send(request("GET", "/after"))
    assert echoed(await raw.response())["path"] == "/after"


async def test_an_unread_body_that_has_arrived_is_skipped_and_the_connection_kept(nursery):
    server = await start(nursery)
    raw = await Raw.connect(server.port)
    await raw.send(request("POST", "/ignore", b"x" * 5000) + request("GET", "/next"))
    assert (await raw.response())["headers"].get("connection") != "close"
    assert echoed(await raw.response())["path"] == "/next"


async def test_an_unread_body_still_on_the_way_closes_the_connection(nursery):
    server = await start(nursery)
    raw = await Raw.connect(server.port)
    head = b"POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n"
    await raw.send(head + b"x" * 1000)
    response = await raw.response()
    assert response["status"] == 200 and response["headers"]["connection"] == "close"
    await raw.send(b"x" * 99000)  # the server drops the rest before closing: no reset
    await raw.wait_closed()


async def test_chunked_request_body_is_decoded(nursery):
    server = await start(nursery)
    raw = await Raw.connect(server.port)
    head = b"POST /chunks HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    await raw.send(head + b"5\r\nhello\r\n")
    await trio.sleep(0.05)
    await raw.send(b"6\r\n world\r\n0\r\n\r\n")
    assert echoed(await raw.response())["body"] == "hello world"


async def test_a_chunked_trailer_is_not_a_header(nursery):
    server = await start(nursery)
    raw = await Raw.connect(server.port)
    await raw.send(b"POST /t HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"5\r\nhello\r\n0\r\nX-Trailer: yes\r\n\r\n")
    reply = echoed(await raw.response())
    assert reply["body"] == "hello" and "x-trailer" not in dict(reply["headers"])


async def test_a_malformed_chunked_body_is_400(nursery):
    server = await start(nursery)
    raw = await Raw.connect(server.port)
    await raw.send(b"POST /bad HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")
    response = await raw.response()
    assert response["status"] == 400 and response["headers"]["connection"] == "close"
    await raw.wait_closed()


async def test_content_length_body_arrives_in_pieces(nursery):
    server = await start(nursery)
    raw = await Raw.connect(server.port)
    await raw.send(b"POST /pieces HTTP/1.1\r\nHost: t\r\nContent-Length: 12\r\n\r\n")
    for part in (b"abcd", b"efgh", b"ijkl"):
        await trio.sleep(0.05)
        await raw.send(part)
    reply = echoed(await raw.response())
    assert reply["body"] == "abcdefghijkl" and reply["messages"] >= 2


async def test_expect_100_continue(nursery):
    server = await start(nursery)
    raw = await Raw.connect(server.port)
    await raw.send(b"POST /expect HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    with trio.fail_after(5):
        assert await raw.read() == b"HTTP/1.1 100 Continue\r\n\r\n"
    await raw.send(b"body")
    assert echoed(await raw.response())["body"] == "body"


async def test_head_has_headers_but_no_body(nursery):
    server = await start(nursery)
    raw = await Raw.connect(server.port)
    await raw.send(request("HEAD", "/h"))
    received = b""
    with trio.fail_after(5):
        while b"\r\n\r\n" not in received:
            received += await raw.read()
    head, _, rest = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and re.search(rb"content-length: [1-9]", head) and rest == b""
    await raw.send(request("GET", "/next"))  # nothing of a body came before this reply
    assert echoed(await raw.response())["path"] == "/next"


async def test_malformed_request_is_400_and_closes(nursery):
    server = await start(nursery)
    raw = await Raw.connect(server.port)
    await raw.send(b"NOT AN HTTP REQUEST\r\n\r\n")
    response = await raw.response()
    assert response["status"] == 400 and response["headers"]["connection"] == "close"
    await raw.wait_closed()


async def test_a_bad_request_after_a_good_one_is_400_after_its_reply(nursery):
    server = await start(nursery)
    raw = await Raw.connect(server.port)
    await raw.send(request("GET", "/good") + b"GET /\x01 HTTP/1.1\r\n\r\n")
    assert echoed(await raw.response())["path"] == "/good"
    assert (await raw.response())["status"] == 400
    await raw.wait_closed()


@pytest.mark.parametrize("head", [
    b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 30\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked, identity\r\n\r\n",
    b"POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",  # RFC 9112 6.1
    b"POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\n",  # no Host
    b"POST /echo HTTP/1.1\r\nHost: t\r\nHost: u\r\nContent-Length: 5\r\n\r\n",
])
async def test_ambiguous_body_framing_is_400_never_a_smuggled_request(nursery, head):
    # Proxies and servers that disagree on where a body ends let an attacker smuggle a request.
    server = await start(nursery)
    raw = await Raw.connect(server.port)
    await raw.send(head + b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n")
    response = await raw.response()
    assert response["status"] == 400
    await raw.wait_closed()
    assert not raw.responses


@pytest.mark.parametrize(("head", "status"), [
    (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host (RFC 9112 3.2)
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 501),
    (b"GET /\r\n\r\n", 505),  # an HTTP/0.9 request line
    (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),  # not 431 (RFC 9112 3)
    (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
])
async def test_heads_the_server_refuses(nursery, head, status):
    server = await start(nursery)
    raw = await Raw.connect(server.port)
    await raw.send(head + request("GET", "/after"))
    response = await raw.response()
    assert response["status"] == status and response["headers"]["connection"] == "close"
    await raw.wait_closed()
    assert not raw.responses


async def test_http_1_0_needs_no_host(nursery):
    server = await start(nursery)
    raw = await Raw.connect(server.port)
    await raw.send(b"GET /old HTTP/1.0\r\n\r\n")
    assert echoed(await raw.response())["path"] == "/old"


@pytest.mark.parametrize(("target", "path", "query", "host"), [
    ("http://example.test", "/", "", "example.test"),
    ("http://example.test:8080/a%20b?x=1", "/a b", "x=1", "example.test:8080"),
    ("http://[::1]:81/v6", "/v6", "", "[::1]:81"),
])
async def test_an_absolute_form_target_is_served_with_its_authority_as_host(nursery, target, path, query, host):
    server = await start(nursery)
    raw = await Raw.connect(server.port)
    await raw.send(f"GET {target} HTTP/1.1\r\nHost: proxy.test\r\n\r\n".encode())
    reply = echoed(await raw.response())
    assert (reply["path"], reply["query"]) == (path, query)
    assert [v for k, v in reply["headers"] if k == "host"] == [host]  # RFC 9112 3.2.2


async def test_empty_lines_before_a_request_are_ignored_but_start_its_clock(nursery):
    server = await start(nursery, request_timeout_s=0.6, keep_alive_timeout_s=5)
    raw = await Raw.connect(server.port)
    await raw.send(b"\r\n\r\n" + request("GET", "/after-empty-lines"))  # a few: fine
    assert echoed(await raw.response())["path"] == "/after-empty-lines"
    slow = await Raw.connect(server.port)
    await slow.send(b"\r\n")
    await trio.sleep(0.35)
    await slow.send(b"GET /late HTTP/1.1\r\n")  # its own first byte would allow it until 0.95 s
    await trio.sleep(0.35)
    try:
        await slow.send(b"Host: t\r\n\r\n")
    except trio.BrokenResourceError:
        pass
    await slow.wait_closed(within_s=2)
    assert not slow.responses  # cut 0.6 s after the empty line, unanswered


async def test_empty_lines_never_restart_keep_alive_and_too_many_are_400(nursery):
    server = await start(nursery, request_timeout_s=0.5, keep_alive_timeout_s=0.3)
    raw = await Raw.connect(server.port)
    with trio.fail_after(2):  # one every 0.1 s restarted the keep-alive timer: held for ever
        try:
            while True:
                await raw.send(b"\r\n")
                with trio.move_on_after(0.1):
                    if not await raw.read():
                        break
        except trio.BrokenResourceError:
            pass
    burst = await Raw.connect(server.port)
    await burst.send(b"\r\n" * 9)
    response = await burst.response()
    assert response["status"] == 400 and response["headers"]["connection"] == "close"
    await burst.wait_closed()


async def test_a_trailer_section_counts_against_the_head_limit(nursery):
    server = await start(nursery, max_head_bytes=2048)
    raw = await Raw.connect(server.port)
    await raw.send(b"POST /t HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
    await trio.sleep(0.05)
    await raw.send(b"0\r\nX-Trailer: ")
    try:
        for _ in range(10):  # 10 KB of one trailer value: it was kept, without bound, while it lasted
            await trio.sleep(0.02)
            await raw.send(b"a" * 1000)
    except trio.BrokenResourceError:
        pass
    response = await raw.response()
    assert response["status"] == 431 and response["headers"]["connection"] == "close"
    assert server.state["disconnects"]  # the app saw the body end in a disconnect
    await raw.wait_closed()


async def test_pipelining_past_the_limit_is_answered_then_closed(nursery):
    server = await start(nursery, max_pipelined_requests=4)
    raw = await Raw.connect(server.port)
    await raw.send(b"".join(request("GET", f"/{n}") for n in range(10)))
    responses = [await raw.response() for _ in range(4)]
    assert [echoed(r)["path"] for r in responses] == ["/0", "/1", "/2", "/3"]
    assert responses[-1]["headers"]["connection"] == "close"  # the client sends the rest again
    await raw.wait_closed()
    assert not raw.responses


@pytest.mark.parametrize("headers", [{"X-Big": "x" * 70_000}, {f"X-H{n}": "y" * 1000 for n in range(70)}])
async def test_oversize_headers_are_431(nursery, headers):
    server = await start(nursery)
    raw = await Raw.connect(server.port)
    await raw.send(request("GET", "/", **headers))
    response = await raw.response()
    assert response["status"] == 431 and response["headers"]["connection"] == "close"
    await raw.wait_closed()


async def test_app_exception_is_500_and_the_server_keeps_serving(nursery, caplog):
    server = await start(nursery)
    async with httpx.AsyncClient(base_url=server.binds[0]) as client:
        assert (await client.get("/boom")).status_code == 500
        assert (await client.get("/fine")).status_code == 200
    assert "ASGI app raised" in caplog.text and "RuntimeError: boom" in caplog.text


async def test_streaming_response_is_chunked_and_parses_with_httpx(nursery):
    server = await start(nursery)
    async with httpx.AsyncClient(base_url=server.binds[0]) as client:
        response = await client.get("/stream")
    assert response.headers["transfer-encoding"] == "chunked" and "content-length" not in response.headers
    assert response.text == "one two three"


async def test_http_1_0_closes_unless_keep_alive_is_asked(nursery):
    server = await start(nursery)
    raw = await Raw.connect(server.port)
    await raw.send(request("GET", "/kept", version="1.0", Connection="keep-alive"))
    response = await raw.response()
    assert response["headers"]["connection"] == "keep-alive" and echoed(response)["http_version"] == "1.0"
    await raw.send(request("GET", "/closed", version="1.0"))
    response = await raw.response()
    assert response["headers"]["connection"] == "close" and echoed(response)["path"] == "/closed"
    await raw.wait_closed()


async def test_an_upgrade_request_is_served_then_closed(nursery):
    server = await start(nursery)
    raw = await Raw.connect(server.port)
    await raw.send(request("GET", "/ws", Connection="Upgrade", Upgrade="websocket") + b"\x81\x00not http")
    response = await raw.response()
    assert echoed(response)["path"] == "/ws" and response["headers"]["connection"] == "close"
    await raw.wait_closed()


# -- limits and shutdown ----------------------------------------------------------------------------


async def test_an_idle_keep_alive_connection_is_closed(nursery):
    server = await start(nursery, keep_alive_timeout_s=0.2)
    raw = await Raw.connect(server.port)
    await raw.send(request("GET", "/"))
    assert (await raw.response())["status"] == 200
    await raw.wait_closed(within_s=2)


async def test_a_request_head_that_never_completes_is_cut(nursery):
    server = await start(nursery, request_timeout_s=0.3)
    raw = await Raw.connect(server.port)
    await raw.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow")
    await raw.wait_closed(within_s=2)
    assert raw.closed


async def test_at_max_connections_the_connection_waiting_longest_makes_room(nursery):
    server = await start(nursery, max_connections=2)
    idle = await Raw.connect(server.port)
    await idle.send(request("GET", "/idle"))
    assert (await idle.response())["status"] == 200  # now idle between requests, since first
    silent = await Raw.connect(server.port)  # connected, sends nothing
    await trio.sleep(0.05)
    newcomer = await Raw.connect(server.port)
    await newcomer.send(request("GET", "/new"))
    with trio.fail_after(1):  # at once, not after the idle one's keep-alive timeout (5 s)
        assert echoed(await newcomer.response())["path"] == "/new"
    await idle.wait_closed(within_s=1)  # it had waited longest
    late = await Raw.connect(server.port)
    await late.send(request("GET", "/late"))
    with trio.fail_after(1):
        assert echoed(await late.response())["path"] == "/late"
    await silent.wait_closed(within_s=1)  # then the silent one; the newcomer, idle since, is kept
    await newcomer.send(request("GET", "/again"))
    assert echoed(await newcomer.response())["path"] == "/again"


async def test_at_max_connections_a_request_in_progress_is_never_cut_to_make_room(nursery):
    server = await start(nursery, max_connections=1)
    busy = await Raw.connect(server.port)
    await busy.send(request("GET", "/slow?0.5"))
    await server.state["started"].wait()
    waiting = await Raw.connect(server.port)  # accepted, held until the slow request is done
    await waiting.send(request("GET", "/waiting"))
    with trio.move_on_after(0.3):
        await waiting.read()
        pytest.fail("served beyond max_connections")
    assert echoed(await busy.response())["path"] == "/slow"
    assert echoed(await waiting.response())["path"] == "/waiting"  # the busy one, idle now, made room
    await busy.wait_closed(within_s=1)


async def test_graceful_shutdown_finishes_the_request_in_flight_then_returns(nursery):
    server = await start(nursery, graceful_timeout_s=5)
    idle = await Raw.connect(server.port)
    await idle.send(request("GET", "/"))
    assert (await idle.response())["status"] == 200
    busy = await Raw.connect(server.port)
    await busy.send(request("GET", "/slow?0.3"))
    await server.state["started"].wait()
    server.shutdown.set()
    await idle.wait_closed(within_s=1)  # idle keep-alive connections close at once
    response = await busy.response()
    assert echoed(response)["path"] == "/slow" and response["headers"]["connection"] == "close"
    with trio.fail_after(5):
        await server.returned.wait()
    with pytest.raises(OSError):
        await trio.open_tcp_stream("127.0.0.1", server.port)


async def test_graceful_shutdown_cuts_what_outlives_the_grace(nursery):
    server = await start(nursery, graceful_timeout_s=0.2)
    busy = await Raw.connect(server.port)
    await busy.send(request("GET", "/slow?30"))
    await server.state["started"].wait()
    server.shutdown.set()
    with trio.fail_after(5):
        await server.returned.wait()
    await busy.wait_closed()


async def test_a_client_leaving_mid_body_does_not_hurt_the_server(nursery):
    server = await start(nursery)
    raw = await Raw.connect(server.port)
    await raw.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
    await trio.sleep(0.05)
    await raw.stream.aclose()
    with trio.fail_after(5):
        while not server.state["disconnects"]:  # noqa: ASYNC110  (the app records it; nothing to wait on)
            await trio.sleep(0.01)
    async with httpx.AsyncClient(base_url=server.binds[0]) as client:
        assert (await client.get("/still-here")).status_code == 200


# -- the real gateway on both servers ---------------------------------------------------------------


async def test_the_gateway_takes_a_signed_webhook(tmp_path):
    settings = load_settings(write_config(tmp_path, "server = 'builtin'\n"))
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        services = await nursery.start(serve_gateway, settings, shutdown)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", services.bound[0])
        async with httpx.AsyncClient(base_url=services.bound[0], timeout=10) as client:
            body, headers = signed([erp_event(1)])
            response = await client.post("/webhooks/erp/t1", content=body, headers=headers)
            assert response.status_code == 200, response.text
            assert response.json()["counts"] == {"new": 1}
            assert (await client.get("/healthz")).json()["status"] == "ok"
        shutdown.set()


def test_the_removed_hypercorn_fallback_is_refused_with_what_to_do(tmp_path):
    """A config from before the removal names the line and says to delete it, never starts on something else."""
    with pytest.raises(ConfigError) as refused:
        load_settings(write_config(tmp_path, "server = 'hypercorn'\n"))
    message = str(refused.value)
    assert "gateway.toml:" in message and "server" in message and "delete this line" in message


# -- fuzzing the protocol layer -------------------------------------------------------------------

_request_pieces = st.sampled_from([
    b"GET / HTTP/1.1\r\n", b"POST /echo HTTP/1.1\r\n", b"HEAD / HTTP/1.0\r\n", b"Host: t\r\n",
    b"Content-Length: 5\r\n", b"Content-Length: -1\r\n", b"Content-Length: 99999999999999999999\r\n",
    b"Transfer-Encoding: chunked\r\n", b"Expect: 100-continue\r\n", b"Connection: close\r\n",
    b"Connection: upgrade\r\nUpgrade: websocket\r\n", b"\r\n", b"5\r\nhello\r\n0\r\n\r\n", b"hello",
    b"ffffffffffffffffff\r\n", b"\x00", b" ", b"\r", b"\n", b"GET /%zz HTTP/1.1\r\n", b"GET / HTTP/9.9\r\n",
])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.lists(st.one_of(_request_pieces, st.binary(max_size=64)), max_size=12))
def test_any_bytes_from_a_client_never_hurt_the_server(chunks):
    """Whatever a client sends, its connection ends in bounded time and the next client is served."""

    async def scenario():
        async with trio.open_nursery() as nursery:
            server = await start(nursery, request_timeout_s=0.5, keep_alive_timeout_s=0.3)
            raw = await Raw.connect(server.port)
            try:
                for chunk in chunks:
                    await raw.send(chunk)
                await raw.stream.send_eof()
                with trio.fail_after(5):  # answered or cut, never left hanging
                    while await raw.read():
                        pass
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the server closed on garbage while we were still sending
            fresh = await Raw.connect(server.port)
            await fresh.send(request("GET", "/after"))
            assert echoed(await fresh.response())["path"] == "/after"
            server.shutdown.set()

    trio.run(scenario)


async def test_the_access_log_names_each_request_but_never_its_query(tmp_path, caplog):
    settings = load_settings(write_config(tmp_path, "access_log = true\n"))
    shutdown = trio.Event()
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        async with trio.open_nursery() as nursery:
            services = await nursery.start(serve_gateway, settings, shutdown)
            async with httpx.AsyncClient(base_url=services.bound[0], timeout=10) as client:
                body, headers = signed([erp_event(1)])
                response = await client.post("/webhooks/erp/t1?sign=SECRETISH", content=body, headers=headers)
                assert response.status_code == 200, response.text
            shutdown.set()
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.access"]
    assert any("POST /webhooks/erp/t1 200" in line for line in lines), lines
    assert not any("SECRETISH" in line for line in lines)


async def test_no_access_log_by_default(nursery, caplog):
    server = await start(nursery)
    with caplog.at_level(logging.DEBUG, logger="gateway.access"):
        raw = await Raw.connect(server.port)
        await raw.send(request("GET", "/quiet"))
        assert echoed(await raw.response())["path"] == "/quiet"
    assert not [r for r in caplog.records if r.name == "gateway.access"]


async def test_the_access_log_has_malformed_requests_too(nursery, caplog):
    server = await start(nursery, access_log=True)
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        raw = await Raw.connect(server.port)
        await raw.send(request("GET", "/ok?x=1", X_Forwarded_For="203.0.113.7"))
        await raw.response()
        await raw.send(b"NOT HTTP\r\n\r\n")
        assert (await raw.response())["status"] == 400
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.access"]
    assert len(lines) == 2 and " GET /ok 200 " in lines[0] and " - - 400 " in lines[1], lines
    assert lines[0].endswith(" xff=203.0.113.7") and "x=1" not in lines[0]
