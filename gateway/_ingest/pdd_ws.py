"""The Pinduoduo message client: an outbound WebSocket, acknowledged only after the commit.

Pinduoduo (拼多多) delivers its order and refund messages over a WebSocket that the
*subscriber* opens, which suits a gateway behind NAT: nothing listens, we dial out.

Protocol (PROTOCOLS.md, Pinduoduo; helpers in ``gateway._ingest.adapters.pinduoduo``)::

    wss://message-api.pinduoduo.com/message/{client_id}/{timestamp_ms}/{sign}
    sign = urlencode(base64(md5_hex_text(client_id + timestamp_ms + client_secret)))

    PDD -> us  {"id": 123, "commandType": "Common", "sendTime": 1764036000000,
                "message": {"type": "pdd_trade_TradeConfirmed", "mallID": 9,
                            "content": "{\\"tid\\": \\"251125-1\\", \\"order_status\\": 1}"}}
    us -> PDD  {"id": 123, "commandType": "Ack", "time": ..., "sendTime": ...,
                "type": "pdd_trade_TradeConfirmed", "mallID": 9}
    both ways  {"commandType": "HeartBeat", "time": ..., "sendTime": ...}
    PDD -> us  {"commandType": "Fail", "message": {"content": "<why>"}}   (an error report)

What two public client libraries do (read for this module, 2026-11): Cherrs/pdd-rs
(``src/pmc.rs``) sends ``{"commandType":"HeartBeat","time":<ms>}`` every 5 s on its own,
ignores the HeartBeat frames it receives, and acks with ``{"commandType":"Ack","time",
"id","sendTime","type","mallID"}`` (``sendTime`` echoing the frame's); bububa/openpdd
(``api/pmc``) has the same Ack fields, a ``Fail`` command whose content is an error text,
and reconnects when a read fails. Neither is PDD's own documentation, so the following
are **UNCONFIRMED** and this module is written to be safe either way:

* whether PDD needs client HeartBeats, at what interval, and whether its own HeartBeat
  frames want an answer: we send one every ``heartbeat_interval_s`` (5 s, as pdd-rs) AND
  answer every HeartBeat we receive with one of ours (an extra heartbeat is harmless);
* whether an unacknowledged message is redelivered on the same connection, only after a
  reconnect, or after how long; and whether a redelivery keeps its ``id`` (the event
  fingerprint uses it: a redelivery with a new id would be stored twice, as an
  ``unchanged`` event that does not move the order);
* which Ack fields PDD checks (we send all five that both libraries send);
* whether ``sendTime`` is epoch milliseconds (the rule file reads it so; see its comment).

Liveness does not rely on any of those: with every heartbeat we also send a WebSocket
``ping`` (RFC 6455, answered by any compliant server); no ``pong`` within
``ping_timeout_s`` means the connection is dead and we reconnect.

**Acknowledged only when durable; malformed frames lose nothing; several shops on one app.**
The read loop here answers heartbeats and queues every Common (or malformed) frame; a
``FrameCommitter`` (``gateway._ingest.pdd_commit``, whose docstring is the reference)
commits them in arrival order, acks each only once the write batch holding it is fsynced,
quarantines a malformed frame before acking it, and routes a shared channel's frames by
``message.mallID``, neither storing nor acking a shop no tenant lists.

**Reconnect policy.** Any failure of a connection — refused handshake (wrong secret or
clock skew), DNS/TCP/TLS error, connect timeout, close by PDD, a dead peer — is logged
(one line per state change) and followed by a wait of ``backoff_initial_s`` doubling per
consecutive failure up to ``backoff_max_s``, each wait jittered by +-25 % (never above the
cap). The sequence restarts from ``backoff_initial_s`` once a connection has delivered a
frame. The URL is signed afresh per attempt (the timestamp is part of the sign). The
secret, the sign and the signed URL are never logged: log lines name the endpoint and
client_id only, and foreign error texts are scrubbed of the sign.

Which clients a configuration runs (one per channel) is ``gateway._ingest.pdd_clients``.

Cancellation: cancelling ``PinduoduoClient.serve`` closes the WebSocket; an event whose
submission was already taken by the committer is still committed, its ack is not sent,
and the redelivery after the next start is absorbed as a duplicate.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Mapping
from urllib.parse import unquote

import trio
import trio_websocket

from gateway._backoff import Backoff
from gateway._errors import MalformedEventError
from gateway._ingest.adapters.pinduoduo import (
    ACK,
    COMMON,
    FAIL,
    HEARTBEAT,
    connection_sign,
    connection_url,
    decode_frame,
    heartbeat_frame,
)
from gateway._ingest.pdd_commit import ClientStats, FrameCommitter, frame_field
from gateway._ingest.pdd_inbound import Inbound, loose_frame
from gateway._metrics import Metrics
from gateway._pipeline import Pipeline, now_ms
from gateway._rules import RuleHolder
from gateway._settings import Secret

log = logging.getLogger(__name__)

SOURCE = "pinduoduo"


class _SignScrubber(logging.Filter):
    """Blank the live connection signs in trio-websocket's own log records.

    trio-websocket logs ``Connecting to ws://host:port/<resource>`` at DEBUG, and our
    resource is the signed path; with ``log_level = "DEBUG"`` that would print the sign.
    """

    def __init__(self) -> None:
        super().__init__()
        self.signs: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.signs:
            text = record.getMessage()
            scrubbed = text
            for sign in tuple(self.signs):
                scrubbed = scrubbed.replace(sign, "***")
            if scrubbed != text:
                record.msg, record.args = scrubbed, None
        return True


_SCRUBBER = _SignScrubber()
logging.getLogger("trio-websocket").addFilter(_SCRUBBER)


class _PeerSilentError(Exception):
    """No pong within ``ping_timeout_s``: the connection is dead."""


class PinduoduoClient:
    """One tenant's message WebSocket to Pinduoduo; see the module docstring.

    Args:
        url_base: the endpoint, ``wss://message-api.pinduoduo.com/message`` (the tenant's
            ``ws_url``); ``/{client_id}/{timestamp_ms}/{sign}`` is appended per attempt.
        tenant: the tenant the messages belong to; for a channel shared by several tenants
            its label (``"t1+t2"``), with ``mall_routes`` saying whose each message is.
        client_id: the PDD app's client_id (the tenant's ``app_key``).
        secret: the app's client_secret.
        rules: the live rules; ``rules.current.get("pinduoduo")`` is read per commit.
        pipeline: the committer events are submitted to.
        metrics: where refusals are counted (``None``: not counted).
        backoff_initial_s / backoff_max_s: reconnect and resubmit backoff (module docstring).
        heartbeat_interval_s: our HeartBeat + WebSocket ping period; 0 = send none.
        ping_timeout_s: a ping unanswered this long drops the connection; 0 = never.
        connect_timeout_s: TCP + TLS + WebSocket handshake limit.
        max_batch_frames: most frames committed in one submit.
        queue_frames: frames received but not yet committed before reading pauses.
        ssl_context: for ``wss://`` (default: the system trust store).
        mall_routes: ``{mallID (text): tenant}``; empty = every message is ``tenant``'s. A
            message from a shop not listed is neither stored nor acked (PDD delivers it again
            after the mall is configured); a malformed frame whose shop cannot be read is kept
            in the quarantine of the first tenant listed.
    """

    def __init__(
        self, url_base: str, tenant: str, client_id: str, secret: Secret, rules: RuleHolder,
        pipeline: Pipeline, metrics: Metrics | None, *, backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0, heartbeat_interval_s: float = 5.0, ping_timeout_s: float = 20.0,
        connect_timeout_s: float = 20.0, max_batch_frames: int = 500, queue_frames: int = 1000,
        ssl_context: ssl.SSLContext | None = None, mall_routes: Mapping[str, str] | None = None,
    ) -> None:
        if not client_id:
            raise ValueError("client_id (the tenant's pinduoduo app_key) is required")
        self.url_base = url_base.rstrip("/")
        self.tenant = tenant
        self.mall_routes = dict(mall_routes or {})
        self.tenants = tuple(dict.fromkeys(self.mall_routes.values())) or (tenant,)
        self.client_id = client_id
        self._secret = secret
        self.rules = rules
        self.pipeline = pipeline
        self.metrics = metrics
        self.backoff = Backoff(backoff_initial_s, backoff_max_s)
        self.heartbeat_interval_s = heartbeat_interval_s
        self.ping_timeout_s = ping_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_batch_frames = max_batch_frames
        self.queue_frames = queue_frames
        self.ssl_context = ssl_context
        self.stats = ClientStats()
        self._sign = ""  # the current attempt's sign, scrubbed from foreign error texts
        self._changed = trio.Event()

    def __repr__(self) -> str:
        return (f"PinduoduoClient({self.url_base!r}, tenant={self.tenant!r}, client_id={self.client_id!r}, "
                f"state={self.stats.state!r})")

    async def wait_until(self, predicate: Callable[[ClientStats], bool]) -> None:
        """Return once ``predicate(self.stats)`` holds, re-checked whenever the stats change."""
        while not predicate(self.stats):
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    @property
    def where(self) -> str:
        """The endpoint as logged: never the signed path."""
        return f"{self.url_base}/{self.client_id}/…"

    async def serve(self, *, task_status: trio.TaskStatus[PinduoduoClient] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, consume and reconnect until cancelled; never raises for network trouble.

        ``task_status.started(self)`` comes at once, before the first connection attempt,
        so a PDD outage never holds up the daemon's start.
        """
        task_status.started(self)
        while True:
            self.stats.state = "connecting"
            try:
                await self._session()
                reason = "closed"
            except trio_websocket.ConnectionRejected as exc:
                reason = f"handshake refused: HTTP {exc.status_code} (check app_key, secret and the clock)"
            except trio_websocket.ConnectionClosed as exc:
                reason = f"closed by peer: {exc.reason}"
            except (trio_websocket.HandshakeError, OSError, trio.BrokenResourceError, _PeerSilentError) as exc:
                reason = _describe(exc)
            except Exception as exc:  # supervisor: a bug in one tenant's client must not stop the daemon
                log.exception("pinduoduo client %s for tenant %s failed unexpectedly; it reconnects with backoff (a bug: "
                              "report it with this traceback)", self.where, self.tenant)
                reason = f"unexpected {type(exc).__name__}"
            was_connected = self.stats.state == "connected"
            if was_connected:
                self.stats.disconnects += 1
            else:
                self.stats.connect_failures += 1
            self.stats.last_error = self._scrub(reason)
            if self.metrics is not None:
                self.metrics.channel_connected.labels(SOURCE, self.tenant).set(0)
                self.metrics.channel_reconnects.labels(SOURCE, self.tenant).inc()
            bases = self.backoff.base_s()
            delay = self.backoff.next_delay()
            self.stats.reconnect_bases.append(bases)
            self.stats.reconnect_delays.append(delay)
            self.stats.state = "waiting"
            self._notify()
            log.warning("pinduoduo %s (tenant %s) %s: %s; reconnecting in %.1f s",
                        self.where, self.tenant, "disconnected" if was_connected else "connection failed",
                        self.stats.last_error, delay)
            await trio.sleep(delay)

    def _scrub(self, text: str) -> str:
        if self._sign:
            text = text.replace(self._sign, "***")
            text = text.replace(unquote(self._sign), "***")
        return text[:300]

    async def _session(self) -> None:
        timestamp = now_ms()
        secret = self._secret.reveal()
        _SCRUBBER.signs.discard(self._sign)
        self._sign = connection_sign(self.client_id, timestamp, secret)
        _SCRUBBER.signs.update((self._sign, unquote(self._sign)))
        url = connection_url(self.url_base, self.client_id, timestamp, secret)
        log.info("pinduoduo %s (tenant %s): connecting", self.where, self.tenant)
        try:
            await self._connected_session(url)
        finally:
            _SCRUBBER.signs.difference_update((self._sign, unquote(self._sign)))

    async def _connected_session(self, url: str) -> None:
        async with trio_websocket.open_websocket_url(
            url, self.ssl_context, message_queue_size=64, connect_timeout=self.connect_timeout_s,
            disconnect_timeout=5,
        ) as ws:
            self.stats.state = "connected"
            self.stats.connects += 1
            if self.metrics is not None:
                self.metrics.channel_connected.labels(SOURCE, self.tenant).set(1)
            self._notify()
            log.info("pinduoduo %s (tenant %s): connected", self.where, self.tenant)
            send, receive = trio.open_memory_channel[Inbound](self.queue_frames)
            committer = FrameCommitter(self.tenant, self.where, self.mall_routes, self.tenants, self.rules,
                                       self.pipeline, self.metrics, self.stats, self.backoff, self.max_batch_frames,
                                       self._notify)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(committer.commit_loop, ws, receive)
                    if self.heartbeat_interval_s > 0:
                        nursery.start_soon(self._keepalive, ws)
                    await self._read_loop(ws, send)
            except BaseExceptionGroup as group:
                # One connection failure usually surfaces in several tasks at once (the
                # reader and an ack both see ConnectionClosed): report the first real one.
                real = [leaf for leaf in _leaves(group) if not isinstance(leaf, trio.Cancelled)]
                if not real:
                    raise
                raise real[0] from None

    async def _read_loop(self, ws: trio_websocket.WebSocketConnection,
                         send: trio.MemorySendChannel[Inbound]) -> None:
        """Read frames: answer heartbeats here, queue Common (and malformed) frames to commit."""
        async with send:
            while True:
                message = await ws.get_message()
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                self.stats.frames += 1
                self.backoff.reset()  # the connection delivers: the next failure starts afresh
                try:
                    frame = decode_frame(text)
                except MalformedEventError as exc:
                    await send.send(Inbound(text, frame=loose_frame(text), error=str(exc)))
                    continue
                command = frame["commandType"]
                if command == COMMON:
                    await send.send(Inbound(text, frame=frame))
                elif command == HEARTBEAT:
                    await ws.send_message(heartbeat_frame(now_ms=now_ms()).decode())
                    self.stats.heartbeats_answered += 1
                    self._notify()
                elif command == FAIL:
                    self.stats.fails += 1
                    log.warning("pinduoduo %s (tenant %s) reported a failure: %s", self.where, self.tenant,
                                self._scrub(str(frame_field(frame, "message", "content"))))
                elif command == ACK:
                    log.debug("pinduoduo %s: ignoring an Ack frame from the server", self.where)

    async def _keepalive(self, ws: trio_websocket.WebSocketConnection) -> None:
        """Our HeartBeat frame and a WebSocket ping every ``heartbeat_interval_s``."""
        while True:
            await ws.send_message(heartbeat_frame(now_ms=now_ms()).decode())
            self.stats.heartbeats_sent += 1
            self._notify()
            if self.ping_timeout_s > 0:
                with trio.move_on_after(self.ping_timeout_s) as scope:
                    await ws.ping()
                if scope.cancelled_caught:
                    raise _PeerSilentError(f"no pong within {self.ping_timeout_s} s")
            await trio.sleep(self.heartbeat_interval_s)


def _describe(exc: BaseException) -> str:
    """``Type: message`` plus the cause (a HandshakeError's own text is empty)."""
    text = f"{type(exc).__name__}: {exc}".rstrip(": ")
    cause = exc.__cause__ or exc.__context__
    if cause is not None and not str(exc):
        text += f" ({type(cause).__name__}: {cause})"
    return text


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


__all__ = ["SOURCE", "ClientStats", "PinduoduoClient"]
