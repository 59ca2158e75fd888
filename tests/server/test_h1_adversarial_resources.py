"""The builtin HTTP/1.1 server probed as an attacker would, over raw sockets: resource abuse.

A real server process (``tests._support.h1_server_process``: max_connections 24,
request_timeout_s 2, keep_alive_timeout_s 2) is attacked by slowloris heads, empty lines
trickled before a request line, an endless trailer, a client that never reads, and
connections that fill the limit. Throughout, a normal client (``Prober``) asks ``/livez`` on a
new connection every 0.2 s and must be answered within a second (within ``request_timeout_s``
when every slot holds a request in progress), and the process's resident memory must stay
bounded. Every attack loop is bounded in count and time.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio

from tests._support.h1_server_process import LIMITS, Prober, ServerProcess, connect, exchange, read_some

REQUEST_TIMEOUT_S = LIMITS["request_timeout_s"]
MAX_CONNECTIONS = LIMITS["max_connections"]
MAX_GROWTH_BYTES = 40 * 1024 * 1024


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    process = ServerProcess({}).start()
    try:
        start_rss = process.rss_bytes()
        yield process
        assert process.alive()
        assert process.rss_bytes() - start_rss < MAX_GROWTH_BYTES, "the module's attacks left memory taken"
    finally:
        process.stop()


class Watch:
    """An attack's witnesses: a ``Prober`` and the process's peak memory, sampled every 0.1 s."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.prober = Prober(server.port)
        self.start_rss = server.rss_bytes()
        self.peak_rss = self.start_rss

    async def sample(self) -> None:
        while not self.prober.stop.is_set():
            self.peak_rss = max(self.peak_rss, self.server.rss_bytes())
            with trio.move_on_after(0.1):
                await self.prober.stop.wait()

    def check(self, worst_s: float = 1.0) -> None:
        assert self.prober.latencies_s, "the normal client never got to ask"
        assert self.prober.worst_s < worst_s, f"a normal client waited {self.prober.latencies_s}"
        growth = self.peak_rss - self.start_rss
        assert growth < MAX_GROWTH_BYTES, f"the server grew by {growth / 2**20:.0f} MiB"


async def under_attack(server: ServerProcess, attackers: list, duration_s: float, worst_s: float = 1.0) -> None:
    """Run ``attackers`` (async callables, each bounded by ``duration_s``) with the witnesses."""
    watch = Watch(server)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch.prober.run)
        nursery.start_soon(watch.sample)
        with trio.move_on_after(duration_s + 5):  # a safety net: each attacker ends by itself
            async with trio.open_nursery() as attacking:
                for attacker in attackers:
                    attacking.start_soon(attacker)
        watch.prober.stop.set()
    watch.check(worst_s)


async def drip(port: int, first: bytes, then: bytes, every_s: float, duration_s: float) -> tuple[float, bytes]:
    """Send ``first``, then ``then`` every ``every_s`` until the server closes or ``duration_s``;
    returns the seconds it kept the connection open (inf if it never closed) and what it replied."""
    with await connect(port) as sock:
        started = trio.current_time()
        await sock.send(first)
        received = b""
        with trio.move_on_after(duration_s):
            while True:
                with trio.move_on_after(every_s):
                    data = await read_some(sock)
                    received += data
                    if not data:
                        return trio.current_time() - started, received
                    continue
                try:
                    await sock.send(then)
                except (BrokenPipeError, ConnectionResetError):
                    return trio.current_time() - started, received
        return float("inf"), received


async def test_slowloris_heads_are_cut_at_the_request_timeout(server):
    held: list[float] = []

    async def slowloris() -> None:
        held.append((await drip(server.port, b"GET /livez HTTP/1.1\r\nX-Slow: ", b"a", 0.1, REQUEST_TIMEOUT_S + 1.5))[0])

    await under_attack(server, [slowloris] * (MAX_CONNECTIONS - 8), REQUEST_TIMEOUT_S + 1.5)
    assert len(held) == MAX_CONNECTIONS - 8 and max(held) < REQUEST_TIMEOUT_S + 0.6, held


async def test_empty_lines_count_toward_the_request_timeout_and_never_extend_keep_alive(server):
    """Empty lines before a request line are ignored (RFC 9112 §2.2), but they are the request's
    first bytes: its timeout runs from the first, more than a few are refused, and reads of
    them do not restart the keep-alive timer (they did: a connection held for ever)."""
    held: list[float] = []

    async def trickle() -> None:
        held.append((await drip(server.port, b"\r\n", b"\r\n", 0.3, REQUEST_TIMEOUT_S + 1.5))[0])

    await under_attack(server, [trickle] * 8, REQUEST_TIMEOUT_S + 1.5)
    assert len(held) == 8 and max(held) < REQUEST_TIMEOUT_S + 0.6, held
    seen = await exchange(server.port, b"\r\n" * 20, wait_s=1.0)
    assert seen.statuses == [400] and seen.closed
    seen = await exchange(server.port, b"\r\n\r\nGET /livez HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert seen.statuses == [200] and seen.closed  # a few are fine


async def test_an_endless_trailer_is_refused_and_memory_stays_bounded(server):
    """A chunked POST ending ``0\\r\\nX-Trailer: `` and an endless value (it grew the process by
    hundreds of MiB): the trailer counts against the head limit, then 431 and close."""
    statuses: list[bytes] = []
    block = b"a" * 65536

    async def flood() -> None:
        deadline = trio.current_time() + 2.5
        while trio.current_time() < deadline:
            with await connect(server.port) as sock:
                await sock.send(b"POST /webhook HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                                b"5\r\nhello\r\n0\r\nX-Trailer: ")
                with trio.move_on_at(deadline):
                    try:
                        while True:
                            await sock.send(block)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                with trio.move_on_after(0.5):
                    statuses.append((await read_some(sock))[:12])

    await under_attack(server, [flood] * 8, 2.5)
    assert b"HTTP/1.1 431" in statuses, statuses


async def test_a_client_that_never_reads_is_cut_and_memory_stays_bounded(server):
    """Pipelined requests for 64 KiB replies, never read: the server's writes block, the write
    timeout (request_timeout_s) ends the connection, and it buffers at most what it parsed."""
    request = b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n"

    async def hog() -> None:
        with await connect(server.port, receive_buffer=4096) as sock:
            with trio.move_on_after(1.0):
                for _ in range(20_000):
                    await sock.send(request * 64)
            await trio.sleep(REQUEST_TIMEOUT_S + 0.5)  # reading nothing: the server's write times out
            with trio.fail_after(5):
                while await read_some(sock):  # what was sent before the cut, then the close
                    pass

    await under_attack(server, [hog] * 4, REQUEST_TIMEOUT_S + 2)


async def test_at_max_connections_idle_and_silent_clients_make_room(server):
    """More idle keep-alive, silent and one-byte connections than ``max_connections``, reopened
    as they are closed: a normal client is still answered within a second (it waited for a
    timeout to free a slot: 2.7-3.7 s with the defaults)."""
    kinds = [b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n", b"", b"G"]

    async def squat(first: bytes) -> None:
        deadline = trio.current_time() + 3.0
        while trio.current_time() < deadline:
            with await connect(server.port) as sock:
                if first:
                    await sock.send(first)
                with trio.move_on_at(deadline):
                    while await read_some(sock):  # until the server closes it
                        pass
            await trio.sleep(0.02)

    squatters = [lambda kind=kind: squat(kind) for kind in kinds] * ((MAX_CONNECTIONS + 8) // len(kinds))
    await under_attack(server, squatters, 3.0)


async def test_at_max_connections_with_every_request_in_progress_a_client_waits_at_most_the_request_timeout(server):
    """Every slot holds a request whose body trickles in: none can be closed early, and each is
    cut ``request_timeout_s`` after its first byte; a new client is answered by then."""

    async def trickle_body() -> None:
        await drip(server.port, b"POST /webhook HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n", b"x", 0.2,
                   REQUEST_TIMEOUT_S + 1)

    await under_attack(server, [trickle_body] * MAX_CONNECTIONS, REQUEST_TIMEOUT_S + 1,
                       worst_s=REQUEST_TIMEOUT_S + 0.5)
