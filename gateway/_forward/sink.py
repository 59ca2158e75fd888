"""The upstream sink: how a batch of outbox records goes over the wire, and what the answer means.

What the upstream receives (``HttpSink``)::

    POST <upstream.url>
    Content-Type: application/json
    Idempotency-Key: <gateway_id>-<first outbox seq>-<last outbox seq>
    X-Gateway-Id: <gateway_id>
    X-Gateway-Timestamp: <unix seconds>
    X-Gateway-Signature: sha256=<hex HMAC-SHA256(upstream secret, timestamp + "." + body)>

    {"gateway_id": "...", "batch_id": "<the Idempotency-Key>", "events": [
       {"tenant", "event_id", "order_id", "seq", "type", "source", "status", "prev_status",
        "occurred_at", "data", "queued_at_ms"[, "detail"]}, ...]}

The signature is the one the generic ERP feed verifies (``gateway._ingest.adapters.erp.sign``), so
one verifier serves both directions. ``event_id`` is stable across retries, restarts and
re-queues: it is the key an upstream de-duplicates on. ``batch_id`` is stable for a resent
batch while the gateway runs; after a restart a batch may be cut differently, so upstreams
must de-duplicate by ``event_id``, not by batch.

Statuses: 2xx ``ok``; ``CHANNEL_ERRORS`` and every other status but 4xx ``retry``; other 4xx
``reject`` (the forwarder splits the batch and dead-letters what stays refused: see
``gateway._forward.forwarder``). Other sinks (a NATS JetStream stream, with ``event_id`` as
``Nats-Msg-Id``) implement ``Sink``.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import httpx
import orjson

from gateway._settings import Secret
from gateway._signing import sign

CHANNEL_ERRORS = frozenset({401, 403, 404, 405, 407, 408, 421, 429})
"""4xx answers retried like 5xx: they are about the channel, not about an event."""

RESPONSE_KEPT_CHARS = 2000


@dataclass(frozen=True)
class OutboundBatch:
    """One POST's worth of outbox records.

    Attributes:
        batch_id: ``<gateway_id>-<first seq>-<last seq>``; the ``Idempotency-Key``.
        seqs: the outbox seqs it carries, in order.
        body: the JSON body, built from the stored bytes.
    """

    batch_id: str
    seqs: list[int]
    body: bytes

    def __repr__(self) -> str:
        return f"<OutboundBatch {self.batch_id} {len(self.seqs)} events {len(self.body)} bytes>"


@dataclass(frozen=True)
class Delivery:
    """What a sink made of one batch.

    Attributes:
        outcome: ``ok`` (acknowledged), ``retry`` (send the same batch again later) or
            ``reject`` (the upstream refuses something in it; split).
        status: the HTTP status, 0 when there was no answer.
        reason: one line for logs and ``outbox status``.
        retry_after_s: the upstream's ``Retry-After``, if it sent one.
        response: the start of the upstream's answer (kept with dead letters).
    """

    outcome: Literal["ok", "retry", "reject"]
    status: int = 0
    reason: str = ""
    retry_after_s: float | None = None
    response: str = ""


class Sink(Protocol):
    """Where batches go. ``deliver`` must not raise for upstream trouble: it reports it."""

    async def deliver(self, batch: OutboundBatch) -> Delivery: ...

    async def aclose(self) -> None: ...


def build_batch(gateway_id: str, records: Sequence[tuple[int, bytes]]) -> OutboundBatch:
    """The batch for ``records`` (``(seq, stored JSON)``), without decoding them."""
    batch_id = f"{gateway_id}-{records[0][0]}-{records[-1][0]}"
    head = orjson.dumps({"gateway_id": gateway_id, "batch_id": batch_id})
    body = b"".join((head[:-1], b',"events":[', b",".join([value for _, value in records]), b"]}"))
    return OutboundBatch(batch_id, [seq for seq, _ in records], body)


def parse_retry_after(value: str | None, now_s: float) -> float | None:
    """``Retry-After`` in seconds from delta-seconds or an HTTP date; ``None`` if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now_s)


def classify(status: int) -> Literal["ok", "retry", "reject"]:
    """The delivery outcome an HTTP status means (see the module docstring)."""
    if 200 <= status < 300:
        return "ok"
    if 400 <= status < 500 and status not in CHANNEL_ERRORS:
        return "reject"
    return "retry"


class HttpSink:
    """POSTs batches with httpx, signed per the module docstring.

    Args:
        url: the upstream endpoint.
        secret: the HMAC key (never logged).
        gateway_id: sent in ``X-Gateway-Id``.
        timeout_s: per request; a timeout is a retry.
        transport: an httpx transport (tests); ``None`` for the default.
    """

    def __init__(self, url: str, secret: Secret, gateway_id: str, timeout_s: float,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = url
        self._secret = secret
        self._gateway_id = gateway_id
        self._client = httpx.AsyncClient(timeout=timeout_s, transport=transport)

    def __repr__(self) -> str:
        return f"<HttpSink {self.url}>"

    async def deliver(self, batch: OutboundBatch) -> Delivery:
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": batch.batch_id,
            "X-Gateway-Id": self._gateway_id,
            "X-Gateway-Timestamp": timestamp,
            "X-Gateway-Signature": sign(self._secret.reveal(), timestamp, batch.body),
        }
        try:
            response = await self._client.post(self.url, content=batch.body, headers=headers)
        except httpx.TimeoutException as exc:
            return Delivery("retry", 0, f"timeout: {type(exc).__name__}")
        except httpx.HTTPError as exc:  # connection refused/reset, DNS, protocol errors
            return Delivery("retry", 0, f"{type(exc).__name__}: {exc}"[:300])
        status = response.status_code
        outcome = classify(status)
        text = response.text[:RESPONSE_KEPT_CHARS] if outcome != "ok" else ""
        return Delivery(outcome, status, f"HTTP {status}" if outcome != "ok" else "",
                        parse_retry_after(response.headers.get("retry-after"), time.time()), text)

    async def aclose(self) -> None:
        await self._client.aclose()


__all__ = ["CHANNEL_ERRORS", "Delivery", "HttpSink", "OutboundBatch", "Sink", "build_batch", "classify",
           "parse_retry_after"]
