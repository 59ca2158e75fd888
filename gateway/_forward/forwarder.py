"""Store-and-forward to the upstream ERP (DESIGN section 6): the outbox drained in order.

The outbox is written in the SAME RocksDB write batch as the state change it reports
(``Store.commit``), so an acknowledged event is in the outbox or already delivered,
whatever crashes when. This module only reads the outbox, sends it and deletes what the
upstream acknowledged::

    outbox (RocksDB, FIFO by outbox seq)
        -> Forwarder.serve: read the oldest records (batch_max_events / batch_max_bytes,
           waiting linger_s for a short batch to fill)
        -> OutboundBatch: body built from the stored JSON bytes, never re-encoded
        -> Sink.deliver (HttpSink: POST, signed, Idempotency-Key)
        -> 2xx: Store.delete_outbox(seqs), durable     | retry: same batch again later
                                                        | reject: split, dead-letter

What the upstream receives, and what its answers mean: ``gateway._forward.sink``.

Delivery rules (the decisions, in operator's words):

* **2xx**: the batch leaves the outbox (one durable delete batch).
* **Retry, same batch, in order** (nothing behind it overtakes it, so per-order order
  holds): connection errors, timeouts (``timeout_s``), 408, 429, every 5xx, and the
  answers that say the *channel* is wrong rather than an event — 3xx, 401, 403, 404, 405,
  407, 421. Splitting on those would dead-letter every event for a typo in the URL or a
  rotated secret, so they keep everything and show the error in ``gateway outbox status``,
  the API and metrics. Delay: ``retry_initial_s`` doubling per consecutive failure, capped
  at ``retry_max_s``, +-25 % jitter; a ``Retry-After`` (seconds or HTTP date) is honoured
  up to the same cap.
* **Reject** (any other 4xx, e.g. 400, 409, 413, 422): the batch is split in halves, left
  half first, until the refused events stand alone; each of those goes to the dead-letter
  keyspace with the upstream's status and answer (first 2,000 characters); the rest are
  delivered. ``gateway outbox dead`` lists them, ``gateway outbox requeue`` puts them back.

Crash safety: records are deleted only after a 2xx, so a crash between the 2xx and the
delete re-sends that batch after restart (at-least-once; the upstream de-duplicates by
``event_id``). Nothing is held only in memory.

Other sinks (a NATS JetStream stream, with ``event_id`` as ``Nats-Msg-Id``) implement the
``Sink`` protocol; the forwarder does not change.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

import trio

from gateway._backoff import Backoff
from gateway._errors import StoreError
from gateway._forward.outage import Backlog, OutageLog, public_url
from gateway._forward.sink import Delivery, HttpSink, OutboundBatch, Sink, build_batch
from gateway._metrics import Metrics
from gateway._settings import UpstreamSection
from gateway._store import Store

log = logging.getLogger(__name__)

_IDLE_POLL_S = 0.05


@dataclass
class ForwarderState:
    """What the forwarder is doing, for ``outbox status``, the API and metrics."""

    state: Literal["disabled", "idle", "sending", "backoff"] = "idle"
    delivered_events: int = 0
    delivered_batches: int = 0
    dead_lettered: int = 0
    retries: int = 0
    consecutive_failures: int = 0
    last_success_at: float | None = None
    last_error: str = ""
    last_error_at: float | None = None
    retry_at: float | None = None


class Forwarder:
    """Drains the outbox to a ``Sink`` in outbox order.

    Args:
        store: the open store (the forwarder deletes and dead-letters; the pipeline appends).
        sink: where batches go (``HttpSink`` for the ERP).
        settings: the ``[upstream]`` section.
        gateway_id: ``[gateway] id``.
        metrics: where counts go, or ``None``.
    """

    def __init__(self, store: Store, sink: Sink, settings: UpstreamSection, gateway_id: str,
                 metrics: Metrics | None = None) -> None:
        self.store = store
        self.sink = sink
        self.settings = settings
        self.gateway_id = gateway_id
        self.metrics = metrics
        self.status = ForwarderState()
        self._limiter = trio.CapacityLimiter(1)
        self._backoff = Backoff(settings.retry_initial_s, settings.retry_max_s)
        self._progress_at = 0.0
        self._progress_delivered = 0
        self._stopping = False
        self._reader_scope = trio.CancelScope()
        self._backoff_scope: trio.CancelScope | None = None
        self._undeleted: dict[str, list[int]] = {}
        self.stopped = trio.Event()
        self.where: str = getattr(sink, "where", "") or public_url(settings.url)
        """The upstream as logs and ``outbox status`` name it (never with credentials)."""
        self.outage = OutageLog(self.where, self._backlog, lambda: store.outbox_stats().count,
                                caught_up_events=settings.batch_max_events)

    def __repr__(self) -> str:
        return f"<Forwarder {self.sink!r} {self.status.state}>"

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Forward until ``request_stop()`` (graceful) or cancellation.

        Three tasks overlap so the upstream's round trip is not idle time: a reader
        prefetches the next batch while one is in flight (a channel of one), the sender
        delivers batches strictly in order, and a deleter removes acknowledged batches
        from the outbox (one delete at a time; the sender may POST the next batch
        meanwhile: if the process dies before that delete, the batch is simply re-sent).

        ``request_stop()`` lets the POST in flight finish (a backoff sleep is cut short),
        deletes everything acknowledged, then returns: a restart re-sends nothing the
        upstream acknowledged. Cancellation is safe too: unacknowledged records stay in the
        outbox, a delete already running completes, and acknowledged batches not yet
        deleted are deleted before ``serve`` returns (shielded; without an fsync, so quick).
        """
        batches, batches_out = trio.open_memory_channel[list[tuple[int, bytes]]](1)
        deletes, deletes_out = trio.open_memory_channel[OutboundBatch](1)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_ahead, batches)
                nursery.start_soon(self._delete_acknowledged, deletes_out)
                task_status.started()
                async with batches_out, deletes:
                    async for records in batches_out:
                        if self._stopping:
                            break
                        self.status.state = "sending"
                        await self._forward(records, deletes)
                        self._report_progress()
                self._reader_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                undeleted = [seq for seqs in self._undeleted.values() for seq in seqs]
                if undeleted:
                    try:
                        self.store.delete_outbox(undeleted)
                    except StoreError as exc:  # they are re-sent after the restart; upstream de-duplicates
                        log.error("cannot delete %d acknowledged records at stop: %s; they are sent again at the next start "
                                  "(the upstream de-duplicates by event_id)", len(undeleted), exc)
                await self.sink.aclose()
            self.stopped.set()

    def request_stop(self) -> None:
        """Stop after the POST in flight (see ``serve``); wait on ``stopped``."""
        self._stopping = True
        self._reader_scope.cancel()
        if self._backoff_scope is not None:
            self._backoff_scope.cancel()

    async def _read_ahead(self, batches: trio.MemorySendChannel[list[tuple[int, bytes]]]) -> None:
        """Read the outbox in order into ``batches``, lingering once for a short batch."""
        settings, store = self.settings, self.store
        after_seq, lingered = 0, False
        with self._reader_scope, batches:
            while True:
                try:
                    records = store.read_outbox(settings.batch_max_events, settings.batch_max_bytes, after_seq)
                except StoreError as exc:  # e.g. the store is being reopened after a write error
                    self._note_error(f"store: cannot read the outbox: {exc}")
                    await trio.sleep(1.0)
                    continue
                if not records:
                    if not store.outbox_stats().count:
                        self.status.state = "idle"
                    lingered = False
                    await trio.sleep(_IDLE_POLL_S)
                    continue
                if (len(records) < settings.batch_max_events and not lingered and settings.linger_s > 0
                        and sum(len(v) for _, v in records) < settings.batch_max_bytes):
                    lingered = True  # a short batch: give it linger_s to fill, once
                    await trio.sleep(settings.linger_s)
                    continue
                lingered = False
                await batches.send(records)
                after_seq = records[-1][0]

    async def _delete_acknowledged(self, deletes: trio.MemoryReceiveChannel[OutboundBatch]) -> None:
        async with deletes:
            async for batch in deletes:
                try:  # on the loop when the store is free (cheap: no fsync), else in a thread
                    done = self.store.delete_outbox(batch.seqs, blocking=False)
                except StoreError:
                    done = False
                if not done:
                    await self._store_call(self.store.delete_outbox, batch.seqs, what="delete delivered records")
                self._undeleted.pop(batch.batch_id, None)

    async def wait_flushed(self) -> None:
        """Return when the outbox is empty or the upstream is failing (for shutdown)."""
        while self.store.outbox_stats().count and self.status.state != "backoff":  # noqa: ASYNC110  (the store has no event to wait on)
            await trio.sleep(_IDLE_POLL_S)

    async def _forward(self, records: list[tuple[int, bytes]],
                       deletes: trio.MemorySendChannel[OutboundBatch]) -> None:
        """Deliver ``records`` completely: each one ends delivered or dead-lettered."""
        pending = [records]
        while pending:
            part = pending.pop(0)
            batch = build_batch(self.gateway_id, part)
            while True:
                delivery = await self.sink.deliver(batch)
                if delivery.outcome == "ok":
                    self._undeleted[batch.batch_id] = batch.seqs
                    self._acknowledged(batch)
                    await deletes.send(batch)
                    break
                if delivery.outcome == "retry":
                    await self._back_off(batch, delivery)
                    if self._stopping:
                        return  # stays in the outbox for the next start
                    continue
                if len(part) > 1:  # isolate the refused events; order kept: left half first
                    middle = len(part) // 2
                    pending[:0] = [part[:middle], part[middle:]]
                    log.info("upstream refused %s (%s): splitting to isolate the bad events",
                             batch, delivery.reason)
                    self._count_batch("rejected")
                else:
                    await self._dead_letter(batch, delivery)
                break

    def _acknowledged(self, batch: OutboundBatch) -> None:
        status = self.status
        status.delivered_events += len(batch.seqs)
        status.delivered_batches += 1
        status.consecutive_failures = 0
        self._backoff.reset()
        status.last_success_at = time.time()
        status.retry_at = None
        status.state = "sending"
        if self.metrics:
            self.metrics.forwarded_events.inc(len(batch.seqs))
        self._count_batch("ok")
        self.outage.delivered(len(batch.seqs))

    async def _dead_letter(self, batch: OutboundBatch, delivery: Delivery) -> None:
        seq = batch.seqs[0]
        why: dict[str, Any] = {"status": delivery.status, "response": delivery.response,
                               "reason": delivery.reason, "batch_id": batch.batch_id,
                               "at_ms": time.time_ns() // 1_000_000}
        await self._store_call(self.store.dead_letter, [(seq, why)], what="dead-letter a refused event")
        self.status.dead_lettered += 1
        self._note_error(f"outbox seq {seq} dead-lettered: upstream answered {delivery.reason}")
        log.warning("upstream refused outbox seq %d (%s): moved to dead letters; "
                    "`gateway outbox dead` lists it, `gateway outbox requeue` retries it", seq, delivery.reason)
        self._count_batch("dead_letter")
        if self.metrics:
            self.metrics.dead_letters.set(self.store.dead_count())

    async def _back_off(self, batch: OutboundBatch, delivery: Delivery) -> None:
        status = self.status
        status.consecutive_failures += 1
        status.retries += 1
        delay = self._backoff.next_delay(delivery.retry_after_s)
        self._note_error(f"{delivery.reason} (retry {status.consecutive_failures} in {delay:.1f} s)")
        self.outage.failed(f"{batch}: {delivery.reason}", delay)
        self._count_batch("retry")
        status.state = "backoff"
        status.retry_at = time.time() + delay
        with trio.CancelScope() as self._backoff_scope:
            if self._stopping:
                self._backoff_scope.cancel()
            await trio.sleep(delay)
        self._backoff_scope = None
        status.state = "sending"

    async def _store_call(self, call: Any, *args: Any, what: str) -> None:
        """Run a store write in a thread; retry it (with backoff) while the store fails.

        The upstream already has the batch; re-sending it instead would also be correct
        (it de-duplicates), but a failing disk is better waited out here, loudly. After a
        failure the store is reopened before the next try (RocksDB refuses every write after
        a failed one until then), so the forwarder heals even when no event comes in.
        """
        backoff = Backoff(self.settings.retry_initial_s, self.settings.retry_max_s)
        while True:
            try:
                await trio.to_thread.run_sync(call, *args, limiter=self._limiter)
                return
            except StoreError as exc:
                reason = str(exc)  # text only: a kept traceback would keep the failed database open
            self._note_error(f"store: cannot {what}: {reason}")
            log.error("cannot %s (attempt %d): %s; retried with backoff (check free disk space: gateway doctor)", what,
                      backoff.failures + 1, reason)
            await trio.sleep(backoff.next_delay())
            try:  # RocksDB refuses writes after a failed one until it is reopened (Store.reopen)
                await trio.to_thread.run_sync(self.store.reopen, limiter=self._limiter)
            except StoreError as exc:
                log.error("cannot reopen the store: %s; tried again with backoff (gateway doctor says why)", str(exc))

    def _backlog(self) -> Backlog:
        stats = self.store.outbox_stats()
        queued_ms = self.store.outbox_oldest_queued_ms()
        age = max(0.0, time.time() - queued_ms / 1000) if queued_ms is not None else None
        return Backlog(stats.count, stats.bytes, age)

    def _note_error(self, reason: str) -> None:
        self.status.last_error = reason
        self.status.last_error_at = time.time()

    def _count_batch(self, result: str) -> None:
        if self.metrics:
            self.metrics.forward_batches.labels(result).inc()

    def _report_progress(self) -> None:
        """Log the drain's progress every ``progress_every_s`` while a backlog exists."""
        every = self.settings.progress_every_s
        now = time.monotonic()
        if every <= 0 or now - self._progress_at < every:
            return
        backlog = self.store.outbox_stats()
        delivered = self.status.delivered_events - self._progress_delivered
        elapsed = now - self._progress_at if self._progress_at else 0.0
        self._progress_at, self._progress_delivered = now, self.status.delivered_events
        if backlog.count <= self.settings.batch_max_events or not elapsed:
            return
        rate = delivered / elapsed
        eta = f"{backlog.count / rate:.0f} s" if rate > 0 else "unknown"
        log.info("outbox drain: %d events (%.1f MiB) left, %.0f events/s, ETA %s",
                 backlog.count, backlog.bytes / 1024**2, rate, eta)


def outbox_report(store: Store, forwarder: Forwarder | None, upstream_url: str) -> dict[str, Any]:
    """The numbers of ``gateway outbox status``, ``GET /api/v1/outbox`` and the dashboard."""
    stats = store.outbox_stats()
    queued = store.outbox_oldest_queued_ms()
    state = forwarder.status if forwarder else ForwarderState(state="disabled" if not upstream_url else "idle")
    return {
        "upstream": upstream_url or (forwarder.where if forwarder is not None else None),
        "state": state.state,
        "backlog_events": stats.count,
        "backlog_bytes": stats.bytes,
        "oldest_seq": stats.oldest_seq,
        "oldest_age_s": None if queued is None else round(max(0.0, time.time() - queued / 1000), 3),
        "dead_letters": store.dead_count(),
        "delivered_events": state.delivered_events,
        "delivered_batches": state.delivered_batches,
        "dead_lettered": state.dead_lettered,
        "retries": state.retries,
        "consecutive_failures": state.consecutive_failures,
        "last_success_at": state.last_success_at,
        "last_error": state.last_error or None,
        "last_error_at": state.last_error_at,
        "retry_at": state.retry_at,
        "bounds": {
            "outbox_max_events": store.settings.outbox_max_events,
            "outbox_max_bytes": store.settings.outbox_max_bytes,
            "outbox_reserve_events": store.settings.outbox_reserve_events,
            "outbox_reserve_bytes": store.settings.outbox_reserve_bytes,
        },
    }


def open_forwarder(store: Store, settings: UpstreamSection, gateway_id: str,
                   metrics: Metrics | None = None) -> Forwarder | None:
    """The forwarder for ``[upstream]``: to the NATS stream for ``kind = "nats"``, else to
    ``url`` over HTTP; ``None`` when ``url`` is empty (forwarding off)."""
    sink: Sink
    if settings.kind == "nats":
        from gateway._forward.nats_sink import NatsSink  # nats-py loads only for the fleet

        sink = NatsSink(settings.nats, gateway_id, settings.timeout_s)
        return Forwarder(store, sink, settings, gateway_id, metrics)
    if not settings.url:
        return None
    sink = HttpSink(settings.url, settings.secret, gateway_id, settings.timeout_s)
    return Forwarder(store, sink, settings, gateway_id, metrics)


__all__ = ["Forwarder", "ForwarderState", "open_forwarder", "outbox_report"]
