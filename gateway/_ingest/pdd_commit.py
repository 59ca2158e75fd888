"""Pinduoduo message frames in, durable events out, then the acks: the commit side of the client.

``PinduoduoClient`` (``gateway._ingest.pdd_ws``) owns the connection: it dials, reads,
heartbeats and reconnects, and queues each Common (or malformed) frame it reads. A
``FrameCommitter``, one per connection, takes them off that queue and does the rest:

**Acknowledged only when durable.** Common frames are decoded (``content`` JSON string ->
object, the shape ``config/rules/pinduoduo.toml`` reads), normalised with the live
``pinduoduo`` rules and submitted to the ``Pipeline``; the Ack is sent only after
``Pipeline.submit`` returned, i.e. after the write batch holding the event is fsynced
(submitted with the default ``"webhook"`` priority: PDD redelivers, so it does not dip
into the outbox reserve kept for pack-line scans).
Frames that arrive together are committed together (one submit, one fsync) in arrival
order. A redelivered frame is de-duplicated by the pipeline (outcome ``duplicate``) and
acked again. If ``submit`` raises ``BackpressureError`` (outbox bound, queue full, shutting
down) or ``StoreError``, nothing is acked: the committer keeps the frames, waits with capped
exponential backoff and submits again (re-normalised with the then-live rules) while the
connection keeps heartbeating. If the connection dies meanwhile, the frames are dropped
from memory unacknowledged and PDD delivers them again.

**Malformed frames lose nothing either.** A frame that is not JSON, has an unknown
``commandType``, a ``content`` that is not a JSON object, or lacks what the rules need
(no ``tid``) is logged (reason only, never a secret), counted
(``gateway_requests_refused_total{source="pinduoduo",reason="malformed"}``) and stored in
quarantine through the pipeline: an event with no order, the raw frame text and the reason
(``raw = {"malformed": reason, "frame": text}``; it is listed at
``/api/v1/tenants/{t}/quarantine`` with reason ``missing_status`` and rule
``pinduoduo-ws:malformed``). Once that is durable the frame is acked when it has an id
(otherwise PDD could not have been asking for an ack). Not acking instead would make PDD
redeliver a poison frame forever and still lose it when PDD's retention ends.

**Several shops on one app.** An ISV app's channel carries every authorising shop's messages.
Tenants sharing a channel (same ``ws_url`` and ``app_key``) share one client, which routes
each frame by ``message.mallID`` to the tenant listing that shop in ``mall_ids``; a frame
from a shop no tenant lists is neither stored nor acked (counted as ``unroutable``, logged:
PDD delivers it again once the shop is configured), never stored under another tenant.

What happened is counted in the client's ``ClientStats``. Frames to events is pure
(``gateway._ingest.pdd_inbound``); this module adds the submit, the retries and the acks.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio
import trio_websocket

from gateway._backoff import Backoff
from gateway._errors import BackpressureError, StoreError
from gateway._ingest.adapters.pinduoduo import ack_for
from gateway._ingest.pdd_inbound import SOURCE, Inbound, NoRulesError, route, routed_events
from gateway._metrics import Metrics
from gateway._model import Event
from gateway._pipeline import Outcome, Pipeline, now_ms
from gateway._rules import RuleHolder

# The client's logger: operators follow one Pinduoduo channel under one name.
log = logging.getLogger("gateway._ingest.pdd_ws")


@dataclass
class ClientStats:
    """What one client did, for tests, logs and a future status page.

    ``state`` is ``"starting"``, ``"connecting"``, ``"connected"`` or ``"waiting"``;
    ``reconnect_delays`` keeps the most recent waits between connection attempts and
    ``reconnect_bases`` their un-jittered values; ``last_error`` is scrubbed of secrets.
    """

    state: str = "starting"
    connects: int = 0
    connect_failures: int = 0
    disconnects: int = 0
    frames: int = 0
    events_stored: int = 0
    duplicates: int = 0
    acked: int = 0
    malformed: int = 0
    unroutable: int = 0
    fails: int = 0
    submit_retries: int = 0
    heartbeats_sent: int = 0
    heartbeats_answered: int = 0
    last_error: str = ""
    reconnect_delays: deque[float] = field(default_factory=lambda: deque(maxlen=64))
    reconnect_bases: deque[float] = field(default_factory=lambda: deque(maxlen=64))

    def report(self) -> dict[str, Any]:
        """The counters and state for the local API (no secrets: ``last_error`` is scrubbed)."""
        return {name: getattr(self, name) for name in (
            "state", "connects", "connect_failures", "disconnects", "frames", "events_stored", "duplicates",
            "acked", "malformed", "unroutable", "fails", "submit_retries", "heartbeats_sent", "heartbeats_answered",
            "last_error")}


@dataclass(frozen=True)
class FrameCommitter:
    """Commits one connection's queued frames in batches and acks each once it is durable.

    Args:
        tenant: the client's tenant (its label, for a shared channel), as logged.
        where: the endpoint as logged (never the signed path).
        mall_routes / tenants: whose each frame is (``gateway._ingest.pdd_inbound.route``).
        rules: the live rules; ``rules.current.get("pinduoduo")`` is read per submit.
        pipeline: the committer events are submitted to.
        metrics: where refusals are counted (``None``: not counted).
        stats: the client's counters, updated in place.
        backoff: the client's backoff; its bounds pace the resubmits.
        max_batch_frames: most frames committed in one submit.
        notify: called whenever ``stats`` changed.
    """

    tenant: str
    where: str
    mall_routes: Mapping[str, str]
    tenants: Sequence[str]
    rules: RuleHolder
    pipeline: Pipeline
    metrics: Metrics | None
    stats: ClientStats
    backoff: Backoff
    max_batch_frames: int
    notify: Callable[[], None]

    async def commit_loop(self, ws: trio_websocket.WebSocketConnection,
                          receive: trio.MemoryReceiveChannel[Inbound]) -> None:
        """Take frames off ``receive`` (as many as are waiting, up to ``max_batch_frames``) and
        commit them until the channel closes; cancelled with the connection."""
        async with receive:
            async for first in receive:
                batch = [first]
                while len(batch) < self.max_batch_frames:
                    try:
                        batch.append(receive.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                await self.commit_and_ack(ws, batch)

    async def commit_and_ack(self, ws: trio_websocket.WebSocketConnection, batch: list[Inbound]) -> None:
        """Submit ``batch`` until it is durable (backing off on refusals), then ack each frame.

        A frame no tenant owns (its shop is not in ``mall_routes``) is left out: not stored,
        not acked, counted once and logged.
        """
        routed: list[tuple[Inbound, str]] = []
        for item in batch:
            tenant = route(item, self.mall_routes, self.tenants)
            if tenant is not None:
                routed.append((item, tenant))
            elif not item.counted:
                item.counted = True
                self.stats.unroutable += 1
                if self.metrics is not None:
                    self.metrics.refused.labels(SOURCE, "unknown_mall").inc()
                log.warning("pinduoduo %s: message %s is from shop %s, which no tenant lists in mall_ids: "
                            "not stored, not acked (PDD delivers it again)", self.where, item.frame_id,
                            frame_field(item.frame, "message", "mallID"))
        if not routed:
            self.notify()
            return
        retry = Backoff(self.backoff.initial_s, self.backoff.max_s)
        while True:
            try:
                events = self._events(routed)
                report = await self.pipeline.submit(events)
                break
            except (StoreError, NoRulesError) as exc:
                reason = "backpressure" if isinstance(exc, BackpressureError) else (
                    "store" if isinstance(exc, StoreError) else "no_rules")
                if self.metrics is not None:
                    self.metrics.refused.labels(SOURCE, reason).inc()
                self.stats.submit_retries += 1
                self.notify()
                delay = retry.next_delay()
                level = logging.WARNING if retry.failures == 1 else logging.DEBUG
                log.log(level, "pinduoduo tenant %s: %d frame(s) not stored (%s: %s); not acked, retrying in "
                        "%.1f s", self.tenant, len(routed), reason, exc, delay)
                await trio.sleep(delay)
        if retry.failures:
            log.info("pinduoduo tenant %s: stored after %d retries", self.tenant, retry.failures)
        for (item, _), result in zip(routed, report.results, strict=True):
            if result.outcome == Outcome.DUPLICATE:
                self.stats.duplicates += 1
            else:
                self.stats.events_stored += 1
            if item.frame is None or item.frame_id is None:
                continue  # nothing to ack: PDD did not send it as a message
            await ws.send_message(ack_for(item.frame, now_ms=now_ms()).decode())
            self.stats.acked += 1
        self.notify()

    def _events(self, routed: Sequence[tuple[Inbound, str]]) -> list[Event]:
        """The frames as events (``routed_events``); newly malformed frames are counted and logged."""
        events, malformed = routed_events(self.rules.current.get(SOURCE), routed, now_ms())
        for item, tenant in malformed:
            self.stats.malformed += 1
            if self.metrics is not None:
                self.metrics.refused.labels(SOURCE, "malformed").inc()
            log.warning("pinduoduo tenant %s: malformed frame (id %s) quarantined: %s",
                        tenant, item.frame_id, item.error[:200])
        return events


def frame_field(obj: Any, *keys: str) -> Any:
    """``obj[keys[0]][keys[1]]...`` of a decoded frame, or ``None`` where a level is missing
    or not an object (a frame is foreign input: any level may be anything)."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


__all__ = ["ClientStats", "FrameCommitter", "frame_field"]
