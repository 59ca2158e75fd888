"""The committer: group commit of normalised events, acknowledged only when durable.

Request handlers call ``Pipeline.submit(events)``; it returns only after the write batch
holding those events is durable (per ``[store] sync``). One task, ``Pipeline.serve``, owns
all writes: it takes every submission waiting in its bounded channel (up to
``max_group_events`` events), plans ONE step over all of them (``plan_step``, pure), and
commits it as ONE RocksDB write batch. Many concurrent webhooks therefore share one fsync.

Commit delay (``commit_delay_ms``, like PostgreSQL's ``commit_delay``): before it takes a
group, the committer waits until no other task of the event loop can run
(``trio.testing.wait_all_tasks_blocked``: every request that has arrived is parsed, verified,
mapped and submitted, or waits for the network), at most ``commit_delay_ms``. Idle, that is
at once; under load, the requests in hand join this group instead of the next one. Each
group costs ~400 us of CPU whatever its size (the worker-thread hand-off and the fsync's
kernel work, measured), so this is what keeps single-event webhooks cheap under load
(``python -m benchmarks ingest``: 4,250 -> 5,100 webhooks/s, lower p50 latency too).
A pack-line submission (``priority="station"``: a packer is waiting for the verdict) is not
delayed: it commits with what is queued at once, and ends the wait of a group being gathered
(``python -m benchmarks packline``: "submitted -> commit starts" p99 7.7 -> 3.6-5.4 ms).

Backpressure, never silent loss:

* the submission channel holds ``queue_batches`` submissions; when it is full, or the
  outbox is over its bound, ``submit`` raises ``BackpressureError`` at once (HTTP 503 +
  ``Retry-After``) and nothing is stored. The bound depends on who submits: external
  webhooks (``priority="webhook"``, platforms retry) are refused at
  ``outbox_max_* - outbox_reserve_*`` (the reserve is capped at half the bound);
  pack-line scans (``priority="station"``: a packer is
  waiting at the station) may use the reserve up to ``outbox_max_*`` itself;
* a failed commit (disk full, I/O error) fails every submission of the group with
  ``StoreError`` (HTTP 503); nothing of the group is acknowledged or half-written. RocksDB
  refuses all writes after such a failure until reopened, so for ``REOPEN_EVERY_S`` (5 s)
  submissions get 503 at once (``Retry-After``), then the next group reopens the store in
  place (``Store.reopen``) and tries again: once space is back the gateway heals itself,
  without a restart and without losing anything acknowledged. ``store_error`` and the
  ``gateway_store_writable`` gauge show the state.

Cancellation: a submission whose caller is cancelled (client hung up) is still committed
once the committer has taken it; the sender did not get a 2xx and will retry, and the retry
is a duplicate that de-duplication absorbs.

The write itself runs in a worker thread so the event loop keeps accepting requests while
RocksDB fsyncs. The committer hands it over with ``_in_worker`` (trio's low-level
``start_thread_soon``), not ``trio.to_thread.run_sync``: the commit is shielded and only the
committer submits, so to_thread's cancellation, limiter and context handling are not needed,
and they cost ~260k instructions per call against ~140k (callgrind, one call per group commit).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, TypeVar

import outcome
import trio
import trio.testing

from gateway._errors import BackpressureError, StoreError
from gateway._metrics import Metrics
from gateway._model import Event
from gateway._pipeline.quarantine import plan_release
from gateway._pipeline.step import EventResult, plan_step
from gateway._rules import RuleSet
from gateway._settings import PipelineSection
from gateway._store import StepWrite, Store

log = logging.getLogger(__name__)

Priority = Literal["webhook", "station"]
REOPEN_EVERY_S = 5.0
"""After a failed write, submissions get 503 for this long, then the next one reopens the store."""


@dataclass(slots=True)
class _Submission:
    events: list[Event]
    extra: StepWrite | None = None
    urgent: bool = False  # a packer is waiting (priority "station"): no commit delay
    done: trio.Event = field(default_factory=trio.Event)
    results: list[EventResult] = field(default_factory=list)
    error: BaseException | None = None


@dataclass(frozen=True)
class SubmitReport:
    """The per-event results of one submission, in input order."""

    results: list[EventResult]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for result in self.results:
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
        return counts


def now_ms() -> int:
    return time.time_ns() // 1_000_000


_T = TypeVar("_T")


async def _in_worker(fn: Callable[..., _T], *args: Any) -> _T:
    """``fn(*args)`` in a worker thread (trio's thread cache): its result, or its exception
    raised here. Not cancellable: the caller waits until ``fn`` has returned, as a commit
    must (the committer runs it shielded anyway)."""
    token = trio.lowlevel.current_trio_token()
    task = trio.lowlevel.current_task()

    def deliver(result: outcome.Outcome[_T]) -> None:
        token.run_sync_soon(trio.lowlevel.reschedule, task, result)

    work: Callable[[], _T] = partial(fn, *args)
    trio.lowlevel.start_thread_soon(work, deliver)  # runs deliver(outcome.capture(work)) in the thread
    result: _T = await trio.lowlevel.wait_task_rescheduled(lambda _: trio.lowlevel.Abort.FAILED)
    return result


class Pipeline:
    """Group-commits submitted events into the store.

    Args:
        store: the open store; the pipeline is its only writer while serving.
        settings: ``[pipeline]`` settings.
        metrics: where counts go.
        rules: the live rule set (``RuleHolder.current``), for releasing logistics events
            that waited in quarantine for their waybill; ``None``: they wait for an operator.
    """

    def __init__(self, store: Store, settings: PipelineSection, metrics: Metrics,
                 rules: Callable[[], RuleSet] | None = None) -> None:
        self.store = store
        self._rules = rules
        self.settings = settings
        self.metrics = metrics
        self._send, self._receive = trio.open_memory_channel[_Submission](settings.queue_batches)
        self.groups_committed = 0
        self._delaying: trio.CancelScope | None = None  # the commit delay being waited out
        self._listeners: list[Callable[[StepWrite], None]] = []
        self.store_error: StoreError | None = None  # the last failed write, until a write succeeds
        self._reopen_at = 0.0
        bounds = store.settings  # fixed for the store's life: computed once, checked per submission
        max_events, max_bytes = bounds.outbox_max_events, bounds.outbox_max_bytes
        self._bounds: dict[Priority, tuple[int, int, str]] = {
            "station": (max_events, max_bytes, "outbox_max"),
            "webhook": (max_events - min(bounds.outbox_reserve_events, max_events // 2),
                        max_bytes - min(bounds.outbox_reserve_bytes, max_bytes // 2),
                        "outbox_max - outbox_reserve"),
        }

    def check_capacity(self, priority: Priority = "webhook") -> None:
        """Raise ``BackpressureError`` when the outbox is over the bound for ``priority``."""
        count, size = self.store.outbox_size()
        max_events, max_bytes, what = self._bounds[priority]
        if count >= max_events:
            raise BackpressureError(f"outbox full: {count} events >= {what}_events ({max_events})", 30)
        if size >= max_bytes:
            raise BackpressureError(f"outbox full: {size} bytes >= {what}_bytes ({max_bytes})", 30)

    async def submit(self, events: list[Event], priority: Priority = "webhook", *,
                     extra: StepWrite | None = None) -> SubmitReport:
        """Commit ``events`` durably and report what happened to each.

        Args:
            events: normalised events, committed in order.
            priority: ``"webhook"`` (refused before the outbox reserve) or ``"station"``
                (pack-line scans: may use the reserve).
            extra: records written in the same batch as the events, after the step's own
                (the pack line's session records, audit records, outbox entries): durable
                together with the events or not at all.

        Raises:
            BackpressureError: queue or outbox full; nothing was stored.
            StoreError: the write failed; nothing was stored.
        """
        if not events and extra is None:
            return SubmitReport([])
        self.check_capacity(priority)
        wait_s = self._reopen_at - time.monotonic()
        if self.store_error is not None and wait_s > 0:  # don't queue work that cannot be written yet
            raise BackpressureError(f"store unavailable ({self.store_error}); retrying", max(1, round(wait_s)))
        submission = _Submission(events, extra, urgent=priority == "station")
        try:
            self._send.send_nowait(submission)
        except trio.WouldBlock:
            raise BackpressureError("ingest queue full", 2) from None
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise BackpressureError("gateway is shutting down", 5) from None
        if submission.urgent and self._delaying is not None:
            self._delaying.cancel()  # a packer is waiting: the group being gathered commits now
        await submission.done.wait()
        if submission.error is not None:
            raise submission.error
        return SubmitReport(submission.results)

    def add_listener(self, listener: Callable[[StepWrite], None]) -> None:
        """Call ``listener(write)`` after every durable commit, in the committer's task.

        It must return at once (set an event, ``send_nowait``): the pack line uses it to
        stop a session the moment a refund is durable, and to plan a bill when an order
        becomes ready to pack. What it raises is logged; the commit stands.
        """
        self._listeners.append(listener)

    def close(self) -> None:
        """Stop accepting submissions; ``serve`` drains what is queued, then returns."""
        self._send.close()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the committer until ``close()`` and the queue is drained."""
        task_status.started()
        delay_s = self.settings.commit_delay_ms / 1000
        async with self._receive:
            async for first in self._receive:
                if delay_s > 0 and not first.urgent:  # let requests being handled join this group's fsync
                    with trio.move_on_after(delay_s) as self._delaying:  # a station's submission ends it
                        await trio.testing.wait_all_tasks_blocked()
                    self._delaying = None
                group = [first]
                count = len(first.events)
                while count < self.settings.max_group_events:
                    try:
                        more = self._receive.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    group.append(more)
                    count += len(more.events)
                with trio.CancelScope(shield=True):
                    await self._commit_group(group, count)

    async def _release_waiting(self, waybills: list[tuple[str, str, str]]) -> None:
        """Commit the quarantined logistics events that waited for these newly known waybills."""
        assert self._rules is not None
        waiting = self.store.waiting_for_waybills((tenant, waybill) for tenant, waybill, _ in waybills)
        for tenant, seqs in waiting.items():
            release = plan_release(self.store, self._rules(), tenant, seqs, now_ms())
            if release.events:
                log.info("tenant %s: %d logistics events that waited for their waybill are released",
                         tenant, len(release.events))
                await self._commit_group([_Submission(release.events)], len(release.events))

    async def _commit_group(self, group: list[_Submission], count: int) -> None:
        started = time.perf_counter()
        store = self.store
        try:
            if self.store_error is not None:
                await _in_worker(store.reopen)
            plan = plan_step(
                (event for submission in group for event in submission.events),
                store.get_order, store.seen_fingerprint, store.order_for_waybill, store.orders_for_buyer,
                now_ms(), merge_window_ms=round(self.settings.merge_window_s * 1000),
            )
            for submission in group:
                if submission.extra is not None:
                    plan.write.merge(submission.extra)
            await _in_worker(store.commit, plan.write)
        except StoreError as exc:
            # Only text is kept (log args, store_error, the submissions' error): the exception's
            # traceback frames would keep the failed database alive, and RocksDB frees its LOCK
            # (needed by Store.reopen) only with the last reference.
            log.error("commit of %d events failed, nothing acknowledged (senders get 503 and retry): %s; check free "
                      "disk space and the store with gateway doctor", count, str(exc))
            failure = StoreError(str(exc))
            del exc
            self.store_error = failure
            self._reopen_at = time.monotonic() + REOPEN_EVERY_S
            self.metrics.store_writable.set(0)
            for submission in group:
                submission.error = failure
                submission.done.set()
            return
        except Exception as exc:  # a bug must not leave webhook handlers waiting forever
            log.exception("processing step failed; its senders got an error and retry (a bug: report it with this "
                          "traceback)")
            for submission in group:
                submission.error = StoreError(f"processing failed: {exc!r}")
                submission.done.set()
            return
        if self.store_error is not None:
            log.warning("store writable again after: %s", self.store_error)
            self.store_error = None
            self.metrics.store_writable.set(1)
        offset = 0
        for submission in group:
            submission.results = plan.results[offset: offset + len(submission.events)]
            offset += len(submission.events)
            submission.done.set()
        self.groups_committed += 1
        for listener in self._listeners:
            try:
                listener(plan.write)
            except Exception:  # a listener's bug must not fail what is already durable
                log.exception("commit listener %r failed", listener)
        metrics = self.metrics
        metrics.commit_seconds.observe(time.perf_counter() - started)
        metrics.commit_events.observe(count)
        tally = Counter((r.outcome, e.source) for r, e in zip(
            plan.results, (e for s in group for e in s.events), strict=True))
        for (result, source), n in tally.items():
            metrics.events.labels(source, result).inc(n)
        metrics.quarantined.set(store.quarantine_count())  # arrivals and releases
        records, size = store.outbox_size()
        metrics.outbox_events.set(records)
        metrics.outbox_bytes.set(size)
        if self._rules is not None and plan.write.waybill_index:
            await self._release_waiting(plan.write.waybill_index)
