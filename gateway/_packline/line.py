"""The pack line's brain: every station's scans and interrupts, sessions, labels and evidence.

``PackLine`` owns one ``StationRunner`` per configured station. Scans from every scanner
arrive on one channel and are dispatched to their station's inbox; each station handles
its inbox in order (one station's slow commit never delays another's). The pipeline calls
``PackLine.on_commit`` after every durable write batch; from it the line learns, at once,
that an order of an open session was refunded or cancelled (the station is interrupted
without waiting for the next scan), that a parcel's waybill arrived, or that the catalog
changed.

``PackLine`` is assembled from parts: ``line_base`` (shared state, the bill of a group, the
station's view), ``line_scans`` (what a scan or an interrupt does), ``line_declaration`` (the customs
declaration hold of cross-border orders), ``line_watch`` (follow-ups,
the waybill watch, evidence), and this module (the commit listener, restoring at start, the
tasks). What a scan is: ``gateway._packline.station``; the verdicts:
``gateway._packline.session``. Labels: ``gateway._packline.printing``.
Evidence: ``gateway._packline.evidence``.

Records (store ``packline`` keyspace) this module writes:

* ``("", "station", <name>)``: the operator signed in and the open session's id and tenant;
* ``(T, "session", <session_id>)`` and its ``(T, "session_step", ...)`` timeline entries: the
  session (bill, state; the timeline one record per entry), every scan
  (``gateway._packline.session_records``);
* ``(T, "parcel", <group_id>)``: a packed parcel: orders, packed time, label job, waybill
  (the waybill-timeout watch and the intercept watch list read it);
* ``(T, "print", <job_id>)``, ``(T, "evidence_pending", <session_id>)``: see their modules.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import trio

from devices.scan import Scan
from gateway._errors import BackpressureError, StoreError
from gateway._model import OrderState, Status
from gateway._packline.alerts import alert_write, waybill_reused_alert
from gateway._packline.line_base import StationRunner, _Interrupt, _refunded_lines
from gateway._packline.line_scans import LineScans
from gateway._packline.line_watch import LineWatches
from gateway._packline.printing import PrintJob, job_audit, job_record, recover_jobs, reprint_job
from gateway._packline.session import PackSession
from gateway._packline.session_records import read_session
from gateway._packline.station import (
    WITHDRAWN,
    Outcome,
)
from gateway._packline.values import Verdict
from gateway._pipeline import now_ms
from gateway._store import StepWrite

log = logging.getLogger(__name__)


class PackLine(LineScans, LineWatches):
    """Every station of the line (see the module docstring).

    Args:
        config: ``[packline]`` (its ``tenant`` resolved).
        stations: ``{station: (nvr name, nvr channel)}``.
        store / pipeline: where everything durable goes (the pipeline is the one writer).
        rules: the live rule set (its gift rules).
        display: where each station's view is published.
        registry: the devices' state, shown on the station page.
        printers / nvrs: the drivers (a station without a printer queues its labels).
        evidence_dir: where snapshots at close are kept.
    """

    # Built by ``LineBase.__init__``.

    # -- the commit listener -------------------------------------------------------

    def on_commit(self, write: StepWrite) -> None:
        """Called by the pipeline after every durable batch (see ``Pipeline.add_listener``)."""
        for tenant, kind, _, _ in write.records:
            if kind in ("product", "stock"):
                self._catalogs.pop(tenant, None)
        for record in write.audit:
            reused = record.get("reused")
            if reused:
                self._queue_followup(alert_write(waybill_reused_alert(
                    record["tenant"], reused["waybill"], record["order_id"], reused["bound_to"], record["at_ms"])))
        for order in write.orders:
            key = (order.tenant, order.order_id)
            station = self._open_orders.get(key)
            if station is not None and (order.status in WITHDRAWN or _refunded_lines(order)):
                runner = self.stations[station]
                try:
                    runner.inbox_send.send_nowait(_Interrupt(order))
                except trio.WouldBlock:
                    log.error("station %s: inbox full; the refund of %s is seen at the next scan (check the station's "
                              "scanner for a flood of reads: gateway devices monitor)", station, order.order_id)
            if order.status in WITHDRAWN or order.waybill or order.status is Status.READY_TO_PACK:
                self._queue_followup(order)

    def _queue_followup(self, item: OrderState | StepWrite) -> None:
        """An order to look at again, or an alert to commit, off the committer's task."""
        try:
            self._followups_send.send_nowait(item)
        except trio.WouldBlock:
            log.error("pack line: follow-up queue full; dropped %s (an order is checked again at its next change)",
                      item.order_id if isinstance(item, OrderState) else "an alert")

    # -- operators' decisions (the API) ------------------------------------------------

    async def decide_label(self, tenant: str, job_id: str, decision: str, by: str) -> PrintJob:
        """An operator's decision on a label job: ``printed`` (an uncertain job did come out),
        ``reprint`` (a new job repeating it: after an uncertain job that did not come out, or
        a damaged label) or ``cancel`` (a queued job that must not print). Audited with ``by``.

        Raises:
            KeyError: no such job.
            ValueError: the decision does not fit the job's state.
        """
        raw = self.store.get_record(tenant, "print", job_id)
        if raw is None:
            raise KeyError(job_id)
        job = PrintJob.from_dict(raw)
        now = now_ms()
        actor = f"api:{by}"
        runner = self.stations.get(job.station)
        if decision == "printed":
            if job.state != "uncertain":
                raise ValueError(f"only an uncertain job can be confirmed printed; this one is {job.state}")
            decided = replace(job, state="printed", printed_at_ms=now, updated_at_ms=now,
                              reason=f"confirmed printed by {by}")
            await self._commit(StepWrite(records=[job_record(decided)],
                                         audit=[job_audit(decided, now, actor, "uncertain label confirmed printed")]))
            self._label_changed(decided)
            return decided
        if decision == "reprint":
            if job.state not in ("uncertain", "printed"):
                raise ValueError(f"a {job.state} job cannot be reprinted")
            number = 1 + sum(1 for _, rid, _ in self.store.iter_records("print", tenant,
                                                                      id_prefix=job_id.rsplit("/", 1)[0] + "/r"))
            again = reprint_job(job, number, actor, now)
            closed = replace(job, state="printed" if job.state == "printed" else "cancelled", updated_at_ms=now,
                             reason=f"reprinted as {again.job_id}" if job.state != "printed" else job.reason)
            await self._commit(StepWrite(records=[job_record(closed), job_record(again)],
                                         audit=[job_audit(again, now, actor, f"reprint of {job.job_id}")]))
            if runner is not None:
                runner.queue.add(again)
            self._label_changed(again)
            return again
        if decision == "cancel":
            if job.state != "queued":
                raise ValueError(f"only a queued job can be cancelled; this one is {job.state}")
            if runner is not None and not runner.queue.remove(job.job_id):
                raise ValueError("the label is being sent to the printer right now; decide once it is done")
            cancelled = replace(job, state="cancelled", updated_at_ms=now, reason=f"cancelled by {by}")
            await self._commit(StepWrite(records=[job_record(cancelled)],
                                         audit=[job_audit(cancelled, now, actor, "label cancelled")]))
            self._label_changed(cancelled)
            return cancelled
        raise ValueError(f"unknown decision {decision!r}: printed, reprint or cancel")

    def stations_report(self) -> list[dict[str, Any]]:
        """Each station's operator, open session and label, for the API."""
        out = []
        for runner in self.stations.values():
            session = runner.session
            out.append({"station": runner.name, "operator": runner.operator,
                        "session": None if session is None else {
                            "session_id": session.session_id, "tenant": session.tenant, "state": session.state,
                            "group_id": session.bill.group_id, "orders": list(session.bill.orders)},
                        "label": runner.label, "last": runner.last, "queued_labels": len(runner.queue.pending)})
        return out

    # -- running -------------------------------------------------------------------

    async def serve(self, scans: trio.MemoryReceiveChannel[Scan], *,
                    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Restore open sessions and queued labels, then run every station until cancelled."""
        await trio.to_thread.run_sync(self._restore)
        async with trio.open_nursery() as nursery:
            for runner in self.stations.values():
                nursery.start_soon(self._serve_station, runner)
                nursery.start_soon(runner.queue.serve)
                self._publish(runner)
            nursery.start_soon(self._serve_followups)
            nursery.start_soon(self._serve_evidence)
            nursery.start_soon(self._serve_waybill_watch)
            task_status.started()
            async for scan in scans:
                target = self.stations.get(scan.station)
                if target is None:
                    log.warning("scan from unknown station %r dropped", scan.station)
                    continue
                state = self.registry.get(scan.station, scan.device_id)
                if state is not None:
                    state.note_event()
                await target.inbox_send.send(scan)

    def _restore(self) -> None:
        now = now_ms()
        for _, name, record in self.store.iter_records("station", ""):
            found = self.stations.get(name)
            if found is None:
                continue
            runner = found
            runner.stored = dict(record)
            runner.operator = record.get("operator", "")
            runner.tenant = record.get("tenant", "")
            session_id = record.get("session_id", "")
            if session_id and runner.tenant:
                stored = read_session(self.store, runner.tenant, session_id)
                if stored is not None and stored.get("state") in ("open", "held", "stopped"):
                    runner.session = PackSession.from_dict(stored)
                    self._track(runner)
                    log.info("station %s: session %s resumed (%s)", name, session_id, runner.session.state)
        jobs = [PrintJob.from_dict(value) for _, _, value in self.store.iter_records("print")]
        pending, uncertain = recover_jobs(jobs, now)
        if uncertain:
            write = StepWrite(records=[job_record(job) for job in uncertain])
            self.store.commit(write)  # before the pipeline runs anything of ours
            for job in uncertain:
                log.warning("station %s: label %s is uncertain (the gateway stopped while sending it)",
                            job.station, job.job_id)
        for job in pending:
            owner = self.stations.get(job.station)
            if owner is not None:
                owner.queue.add(job)
        for job in [*pending, *uncertain]:
            owner = self.stations.get(job.station)
            if owner is not None:
                owner.last_job, owner.label = job, job.label_view()

    async def _serve_station(self, runner: StationRunner) -> None:
        async for item in runner.inbox:
            try:
                if isinstance(item, _Interrupt):
                    outcome = await self._interrupt(runner, item.order)
                else:
                    outcome = await self._scan(runner, item)
            except (BackpressureError, StoreError) as exc:
                runner.last = Outcome(Verdict.UNKNOWN_BARCODE, f"未保存，请重扫（{exc}）",
                                      f"Not saved, scan again ({exc})").view(now_ms())
                log.error("station %s: not saved: %s; the packer was told to scan again (if this repeats: gateway doctor, "
                          "free disk space or the outbox backlog)", runner.name, exc)
                self._publish(runner)
                continue
            if outcome is not None:
                runner.last = outcome.view(now_ms())
                self._publish(runner)
                if self.metrics is not None:
                    self.metrics.verdicts.labels(runner.name, outcome.verdict.value).inc()


__all__ = ["PackLine", "StationRunner"]
