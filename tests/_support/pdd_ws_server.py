"""A local stand-in for Pinduoduo's message WebSocket, for the client's tests.

It speaks the frames of PROTOCOLS.md (Pinduoduo) on 127.0.0.1 (port 0):

* the handshake path is ``/message/{client_id}/{timestamp_ms}/{sign}``; the sign is checked
  with this module's own implementation of the rule (not the client's), a wrong one gets
  HTTP 401 and is counted;
* ``push`` queues a Common frame; every frame stays *pending* until its Ack arrives, and all
  pending frames are delivered again, in order, on every new connection (the redelivery the
  client must absorb);
* Acks and HeartBeats from the client are recorded; ``on_ack`` is called as each Ack is
  read (tests check durability there);
* ``drop`` closes the connection mid-stream; ``lose_ack_of`` makes the server treat an Ack
  as lost in transit and drop the connection instead (the frame stays pending).

Waiting is event-driven: ``wait_until(predicate)`` wakes on every recorded change.
"""

from __future__ import annotations

import base64
import hashlib
import math
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import orjson
import trio
import trio_websocket


def expected_sign(client_id: str, timestamp_ms: str, secret: str) -> str:
    hex_text = hashlib.md5(f"{client_id}{timestamp_ms}{secret}".encode()).hexdigest()
    return quote(base64.b64encode(hex_text.encode()).decode(), safe="")


def common_frame(frame_id: int, topic: str, content: dict[str, Any] | str, *, mall_id: int = 9001,
                 send_time_ms: int = 1_764_036_000_000) -> str:
    """A Common frame as PDD sends it: ``content`` a JSON *string*."""
    text = content if isinstance(content, str) else orjson.dumps(content).decode()
    return orjson.dumps({"id": frame_id, "commandType": "Common", "sendTime": send_time_ms, "time": send_time_ms,
                         "message": {"type": topic, "mallID": mall_id, "content": text}}).decode()


class _Connection:
    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self.ws = ws
        self.send, self.receive = trio.open_memory_channel[str](math.inf)
        self.scope = trio.CancelScope()


class PddMessageServer:
    """See the module docstring.

    Args:
        client_id: the app's client_id the path must name.
        secret: the client_secret the sign must be made with.
    """

    def __init__(self, client_id: str, secret: str) -> None:
        self.client_id = client_id
        self.secret = secret
        self.port = 0
        self.pending: dict[Any, str] = {}
        self.acks: list[dict[str, Any]] = []
        self.lost_acks: list[dict[str, Any]] = []
        self.heartbeats: list[dict[str, Any]] = []
        self.handshakes_refused = 0
        self.connections = 0
        self.on_ack: Callable[[dict[str, Any]], None] | None = None
        self.lose_ack_of: set[Any] = set()
        self._current: _Connection | None = None
        self._changed = trio.Event()

    @property
    def url_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}/message"

    @property
    def connected(self) -> bool:
        return self._current is not None

    def acked_ids(self) -> list[Any]:
        return [ack["id"] for ack in self.acks]

    async def serve(self, *, task_status: trio.TaskStatus[PddMessageServer] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            server = await nursery.start(trio_websocket.serve_websocket, self._handle, "127.0.0.1", 0, None)
            self.port = server.port
            task_status.started(self)

    def push(self, text: str, frame_id: Any = None) -> None:
        """Deliver ``text`` now (if connected) and, when it has an id, until it is acked."""
        if frame_id is None:
            try:
                parsed = orjson.loads(text)
                frame_id = parsed.get("id") if isinstance(parsed, dict) else None
            except orjson.JSONDecodeError:
                frame_id = None
        if frame_id is not None:
            self.pending[frame_id] = text
        if self._current is not None:
            self._current.send.send_nowait(text)

    def send_heartbeat(self) -> None:
        """A server HeartBeat frame on the current connection."""
        assert self._current is not None, "no client connected"
        now = int(time.time() * 1000)
        self._current.send.send_nowait(orjson.dumps({"commandType": "HeartBeat", "time": now}).decode())

    def drop(self) -> None:
        """Close the current connection (code 1011), whatever is in flight."""
        if self._current is not None:
            self._current.scope.cancel()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds; re-checked on every change the server records.

        Only a hang guard bounds it (the caller's ``trio.fail_after``); nothing is timed.
        """
        while not predicate():
            await self._changed.wait()

    def notify(self) -> None:
        """Wake ``wait_until`` callers (tests call it when they change something themselves)."""
        self._changed.set()
        self._changed = trio.Event()

    async def _handle(self, request: trio_websocket.WebSocketRequest) -> None:
        parts = request.path.split("/")
        good = (len(parts) == 5 and parts[1] == "message" and parts[2] == self.client_id
                and parts[3].isdigit() and parts[4] == expected_sign(self.client_id, parts[3], self.secret))
        if not good:
            self.handshakes_refused += 1
            self.notify()
            await request.reject(401, body=b'{"error_code": 10001, "error_msg": "sign check failed"}')
            return
        ws = await request.accept()
        connection = _Connection(ws)
        self._current = connection
        self.connections += 1
        for text in list(self.pending.values()):
            connection.send.send_nowait(text)
        self.notify()
        with connection.scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write, connection)
                await self._read(connection)
                nursery.cancel_scope.cancel()
        if self._current is connection:
            self._current = None
        self.notify()
        with trio.move_on_after(5):
            await ws.aclose(1011, "dropped by the test server")

    async def _write(self, connection: _Connection) -> None:
        try:
            async for text in connection.receive:
                await connection.ws.send_message(text)
        except trio_websocket.ConnectionClosed:
            connection.scope.cancel()

    async def _read(self, connection: _Connection) -> None:
        while True:
            try:
                message = await connection.ws.get_message()
            except trio_websocket.ConnectionClosed:
                return
            frame = orjson.loads(message)
            command = frame.get("commandType")
            if command == "Ack":
                frame_id = frame.get("id")
                if frame_id in self.lose_ack_of:
                    self.lose_ack_of.discard(frame_id)
                    self.lost_acks.append(frame)
                    self.notify()
                    return  # the Ack is "lost" and the connection dies with it
                if self.on_ack is not None:
                    self.on_ack(frame)
                self.acks.append(frame)
                self.pending.pop(frame_id, None)
            elif command == "HeartBeat":
                self.heartbeats.append(frame)
            self.notify()
