"""The fleet sink: outbox events published to a replicated NATS JetStream stream.

``[upstream] kind = "nats"`` (settings: ``gateway._settings.nats``). The forwarder does not
change: it reads batches in outbox order, hands ONE at a time to ``NatsSink.deliver`` and
deletes the batch only when every event in it has its JetStream acknowledgement (the stream
stored it on a quorum of its replicas). Backoff, backpressure and the outbox bound are the
forwarder's, exactly as for the HTTP sink.

What the stream receives, per outbox event::

    subject  gateway.<tenant>.<gateway_id>.<type>       (the template of [upstream.nats] subject;
                                                        a value's "." / blanks / wildcards -> "_")
    headers  Nats-Msg-Id: <event_id>                   (JetStream de-duplicates on it)
             Nats-Expected-Stream: <stream>            (a subject bound elsewhere is refused)
             Gateway-Id: <gateway_id>
    payload  the event's JSON exactly as the HTTP body carries it (tenant, event_id, order_id,
             seq, type, source, status, prev_status, occurred_at, data, queued_at_ms[, detail])

Outcomes (``Delivery``):

* ``ok``: every event acknowledged (an ack saying ``duplicate`` counts: the stream had it);
* ``retry`` (the same batch again after backoff; nothing behind it overtakes it): no
  connection yet or any more, wrong credentials (the error says so, nothing is deleted), the
  stream missing or without a leader, a publish refused by the stream (limits), and any event
  not acknowledged within ``[upstream] timeout_s``. nats-py's ``publish_async`` futures have no
  timeout and are not failed on a disconnect, so each batch is bounded and what is left is
  cancelled (otherwise its pending-publish slots leak until publishing blocks for good);
* ``reject``: an event larger than the servers' ``max_payload`` (the forwarder isolates it and
  dead-letters it).

Re-sends and the duplicate window: a cancelled or timed-out batch may have been stored in part,
so the next try re-sends the SAME ``Nats-Msg-Id``s; within the stream's ``duplicate_window``
(2 minutes by default; set it when creating the stream) JetStream drops the copies. A re-send
older than the window (a box that crashed between the ack and the outbox delete and stayed
down longer than the window) is stored again: consumers de-duplicate by ``event_id`` too, as
they must for the HTTP upstream. In the rare case that a batch is stored in part during a
leader change, a re-sent earlier event can land after a later one of the same order: per-order
order is then restored by each event's ``seq`` (consumers keep the highest ``seq`` per order).

The client is nats-py on its own asyncio thread (``gateway._forward.nats_thread``); every call
that touches it runs on that thread.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
import orjson
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from gateway._forward.nats_thread import AsyncioThread
from gateway._forward.sink import Delivery, OutboundBatch
from gateway._settings.nats import NatsSettings, describe_nats

log = logging.getLogger(__name__)

T = TypeVar("T")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_PLACEHOLDER = re.compile(r"<([a-z_]+)>")
#: publish_async slots: above the largest batch, so one batch never waits on its own acks.
MAX_PENDING = 20_000


class NatsUnavailableError(Exception):
    """The sink is not connected (or not ready) within the time given; the message says why."""


@dataclass(frozen=True)
class NatsMessage:
    """One event as published: subject, ``Nats-Msg-Id`` and the JSON payload."""

    subject: str
    msg_id: str
    payload: bytes


def subject_token(value: object) -> str:
    """``value`` as one subject token: anything but letters, digits, ``_`` and ``-`` -> ``_``."""
    return _UNSAFE.sub("_", str(value)) or "_"


def subject_for(template: str, gateway_id: str, event: dict[str, Any]) -> str:
    """The subject of ``event`` from ``template`` (``<tenant>``, ``<gateway_id>``, ``<type>``, ``<source>``)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return subject_token(gateway_id if name == "gateway_id" else event.get(name, ""))

    return _PLACEHOLDER.sub(value, template)


def messages_of(batch: OutboundBatch, template: str, gateway_id: str) -> list[NatsMessage]:
    """The messages of ``batch``, in order: its body's events, each re-encoded on its own."""
    events = orjson.loads(batch.body)["events"]
    return [NatsMessage(subject_for(template, gateway_id, event), str(event["event_id"]), orjson.dumps(event))
            for event in events]


def explain(error: BaseException, settings: NatsSettings) -> str:
    """One line for ``outbox status`` and the log: what went wrong and what to check."""
    text = str(error).strip() or type(error).__name__
    if isinstance(error, nats.errors.AuthorizationError) or "authorization violation" in text.lower():
        return (f"NATS refused the credentials ({settings.credentials}): Authorization Violation; check "
                "[upstream.nats] user/password, creds_file or nkey_seed_file; nothing leaves the outbox")
    if "authentication expired" in text.lower() or "user authentication revoked" in text.lower():
        return f"NATS: {text}: renew the credentials ({settings.credentials})"
    if isinstance(error, nats.js.errors.NoStreamResponseError):
        return (f"NATS: no stream answered (stream {settings.stream} without a leader, or its subjects "
                f"do not cover {settings.subject})")
    if isinstance(error, nats.js.errors.NotFoundError):
        return (f"NATS: stream {settings.stream} not found: create it on the cluster (3 replicas, "
                f"subjects covering {settings.subject}; see the README's fleet section)")
    if isinstance(error, nats.js.errors.APIError):
        return f"NATS: the stream refused the publish: {error.description} (err_code {error.err_code})"
    if isinstance(error, ssl.SSLError | nats.errors.SecureConnFailedError):
        return f"NATS: TLS failed: {text} (check [upstream.nats] tls_ca_file and the servers' certificates)"
    return f"NATS: {type(error).__name__}: {text}"[:300]


def _is_refusal(error: BaseException) -> bool:
    return isinstance(error, nats.errors.AuthorizationError) or "authorization violation" in str(error).lower()


def _is_reset(error: BaseException) -> bool:
    return isinstance(error, ConnectionResetError) or "reset by peer" in str(error).lower()


def client_options(settings: NatsSettings, name: str) -> dict[str, Any]:
    """The keyword arguments of ``nats.connect`` for ``settings``: servers, credentials, TLS and
    reconnecting for ever (the sink, the heartbeat and ``gateway fleet`` all connect this way)."""
    options: dict[str, Any] = {
        "servers": list(settings.servers), "name": name, "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5, "connect_timeout": settings.connect_timeout_s, "allow_reconnect": True,
    }
    if settings.creds_file:
        options["user_credentials"] = settings.creds_file
    elif settings.nkey_seed_file:
        options["nkeys_seed"] = settings.nkey_seed_file
    elif settings.user:
        options["user"] = settings.user
        options["password"] = settings.password.reveal().decode()
    if settings.tls_ca_file:
        options["tls"] = ssl.create_default_context(cafile=settings.tls_ca_file)
    return options


class NatsSink:
    """Publishes batches to a JetStream stream; a ``Sink`` (``deliver``, ``aclose``).

    The connection is made on the first ``deliver`` and then kept, reconnecting for ever
    (``max_reconnect_attempts=-1``: nats-py's default gives up after about two minutes, for good).

    Args:
        settings: ``[upstream.nats]``.
        gateway_id: ``[gateway] id``: the subject's ``<gateway_id>`` and the client's name.
        timeout_s: ``[upstream] timeout_s``: how long one batch (or a connection) may take.
    """

    def __init__(self, settings: NatsSettings, gateway_id: str, timeout_s: float) -> None:
        self.settings = settings
        self.gateway_id = gateway_id
        self.timeout_s = timeout_s
        self.where = describe_nats(settings)
        self.duplicates = 0
        self.io = AsyncioThread("nats-io")
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._stream_checked = False
        self._last_error: BaseException | None = None
        self._closing = False

    def __repr__(self) -> str:
        return f"<NatsSink {self.where}>"

    # -- trio side -------------------------------------------------------------------------
    async def deliver(self, batch: OutboundBatch) -> Delivery:
        messages = messages_of(batch, self.settings.subject, self.gateway_id)
        return await self.io.run(self._publish, messages)

    async def call(self, function: Callable[[JetStreamContext], Awaitable[T]]) -> T:
        """Run ``function(jetstream)`` on the client's thread once connected (heartbeats, tests).

        Raises:
            NatsUnavailableError: not connected within ``timeout_s``.
        """

        async def on_loop() -> T:
            problem = await self._ready()
            if problem:
                raise NatsUnavailableError(problem)
            assert self._js is not None
            return await function(self._js)

        if self.io.closed:
            raise NatsUnavailableError("the NATS sink is closed (the forwarder stopped)")
        return await self.io.run(on_loop)

    async def aclose(self) -> None:
        await self.io.aclose(self._close)

    # -- the client's thread ---------------------------------------------------------------
    async def _publish(self, messages: list[NatsMessage]) -> Delivery:
        problem = await self._ready()
        if problem:
            return Delivery("retry", 0, problem)
        js = self._js
        assert js is not None
        futures: list[asyncio.Future[Any]] = []
        headers = {"Nats-Expected-Stream": self.settings.stream, "Gateway-Id": self.gateway_id}
        try:
            async with asyncio.timeout(self.timeout_s):
                for message in messages:
                    futures.append(await js.publish_async(message.subject, message.payload,
                                                          headers={**headers, "Nats-Msg-Id": message.msg_id}))
                acks = await asyncio.gather(*futures)
        except TimeoutError:
            acked = sum(1 for f in futures if f.done() and not f.cancelled() and f.exception() is None)
            state = "connected" if self._nc is not None and self._nc.is_connected else "reconnecting"
            return Delivery("retry", 0, f"NATS: {len(messages) - acked} of {len(messages)} events not "
                                        f"acknowledged within {self.timeout_s:g} s ({state}); re-sent with the same ids")
        except nats.errors.MaxPayloadError as exc:
            return Delivery("reject", 0, f"NATS: an event is larger than the servers' max_payload: {exc}",
                            response=str(exc)[:2000])
        except (nats.errors.Error, OSError) as exc:
            return Delivery("retry", 0, self._note(exc))
        finally:
            for future in futures:
                if not future.done():
                    future.cancel()  # frees its publish_async slot; a late ack is ignored
        self.duplicates += sum(1 for ack in acks if ack.duplicate)
        return Delivery("ok")

    def _note(self, error: BaseException) -> str:
        if _is_reset(error) and self._last_error is not None and _is_refusal(self._last_error):
            error = self._last_error  # a server resets the connection it refused: the refusal stays the reason
        reason = explain(error, self.settings)
        if type(error) is not type(self._last_error):  # once per kind of trouble, not per reconnect attempt
            log.error("%s", reason)
        self._last_error = error
        return reason

    async def _ready(self) -> str:
        """Connected and the stream checked, within ``timeout_s``; else why not ("" when ready)."""
        failed = self._connect_failure()
        if self._connecting is None or failed is not None or (self._nc is not None and self._nc.is_closed):
            self._connecting = asyncio.get_running_loop().create_task(self._connect())
        nc = self._nc
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        while nc is None or not nc.is_connected:
            failed = self._connect_failure()
            if failed is not None:
                return self._note(failed)
            if asyncio.get_running_loop().time() >= deadline:
                why = explain(self._last_error, self.settings) if self._last_error else "no server answered"
                return f"NATS: not connected to {','.join(self.settings.servers)} after {self.timeout_s:g} s: {why}"
            await asyncio.sleep(0.05)
            nc = self._nc
        if not self._stream_checked:
            return await self._check_stream()
        return ""

    def _connect_failure(self) -> BaseException | None:
        """Why the connection task ended without a connection, or ``None`` (running or done well)."""
        task = self._connecting
        if task is None or not task.done():
            return None
        if task.cancelled():
            return RuntimeError("the connection attempt was cancelled")
        return task.exception()

    async def _check_stream(self) -> str:
        assert self._js is not None
        try:
            info = await self._js.stream_info(self.settings.stream)
        except (nats.errors.Error, OSError) as exc:
            return self._note(exc)
        config = info.config
        log.info("NATS stream %s: %s replicas, subjects %s, duplicate window %s s, %d messages",
                 self.settings.stream, config.num_replicas, config.subjects, config.duplicate_window,
                 info.state.messages)
        if (config.num_replicas or 1) < 3:
            log.warning("NATS stream %s has %s replica(s): a server failure can lose acknowledged events; "
                        "the fleet stream should have 3", self.settings.stream, config.num_replicas)
        self._stream_checked = True
        return ""

    async def _connect(self) -> None:
        self._nc = nc = NatsClient()
        options = client_options(self.settings, f"edge-gateway {self.gateway_id}")
        options.update(error_cb=self._on_error, disconnected_cb=self._on_disconnected,
                       reconnected_cb=self._on_reconnected)
        await nc.connect(**options)
        self._js = nc.jetstream(timeout=self.timeout_s, publish_async_max_pending=MAX_PENDING)
        self._last_error = None
        log.info("connected to NATS %s (%s)", nc.connected_url.netloc if nc.connected_url else "?", self.where)

    async def _on_error(self, error: Exception) -> None:
        self._note(error)

    async def _on_disconnected(self) -> None:
        if self._closing:
            return
        log.warning("NATS: disconnected; reconnecting (publishing waits, nothing leaves the outbox)")

    async def _on_reconnected(self) -> None:
        nc = self._nc
        self._last_error = None
        log.info("NATS: reconnected to %s", nc.connected_url.netloc if nc and nc.connected_url else "?")

    async def _close(self) -> None:
        self._closing = True
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()


__all__ = ["NatsMessage", "NatsSink", "NatsUnavailableError", "client_options", "explain", "messages_of", "subject_for",
           "subject_token"]
