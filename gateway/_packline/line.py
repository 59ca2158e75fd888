"""The pack line's brain: every station's scans and interrupts, sessions, labels and evidence.

``PackLine`` owns one ``StationRunner`` per configured station. Scans from every scanner
arrive on one channel and are dispatched to their station's inbox; each station handles
its inbox in order (one station's slow commit never delays another's). The pipeline calls
``PackLine.on_commit`` after every durable write batch; from it the line learns, at once,
that an order of an open session was refunded or cancelled (the station is interrupted
without waiting for the next scan), that a parcel's waybill arrived, or that the catalog
changed.

What a station does with a scan: ``gateway._packline.station`` (classification, the events)
and ``gateway._packline.session`` (the verdicts). Labels: ``gateway._packline.printing``.
Evidence: ``gateway._packline.evidence``.

Records (store ``packline`` keyspace) this module writes:

* ``("", "station", <name>)``: the operator signed in and the open session's id and tenant;
* ``(T, "session", <session_id>)``: the session (bill, timeline, state), every scan;
* ``(T, "parcel", <group_id>)``: a packed parcel: orders, packed time, label job, waybill
  (the waybill-timeout watch and the intercept watch list read it);
* ``(T, "print", <job_id>)``, ``(T, "evidence_pending", <session_id>)``: see their modules.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import trio

from devices.nvr import NvrClient
from devices.printer import ZplPrinter
from devices.scan import Scan
from devices.supervisor import DeviceRegistry
from devices.zpl import LabelData, ZplError, check_zpl, render_label
from gateway._errors import BackpressureError, DeviceError, StoreError
from gateway._model import OrderState, Status
from gateway._packline import evidence as evidence_mod
from gateway._packline.alerts import (
    PackedParcel,
    alert_write,
    intercept_alert,
    overdue_waybills,
    refund_stop_alert,
    shortfall_alert,
)
from gateway._packline.bill import build_bill, unit_weights_g, unknown_skus
from gateway._packline.catalog import load_catalog, load_stock, packed_stock_write
from gateway._packline.display import StationDisplay
from gateway._packline.printing import PrintJob, PrintQueue, job_record, recover_jobs, reprint_job
from gateway._packline.session import PackSession, ScanResult, open_session
from gateway._packline.station import (
    OVERRIDE_S,
    WITHDRAWN,
    Outcome,
    classify,
    group_members,
    order_candidates,
    station_audit,
    station_event,
)
from gateway._packline.values import Bill, Catalog, StockLevel, Verdict
from gateway._pipeline import Pipeline, now_ms
from gateway._rules import GiftOrder, RuleSet, evaluate_gifts
from gateway._settings import PackLineSection
from gateway._store import StepWrite, Store

log = logging.getLogger(__name__)

INBOX = 256
#: How often packed parcels are checked for a missing waybill.
WAYBILL_CHECK_S = 30.0
#: Pending evidence searches are looked at at least this often.
EVIDENCE_POLL_S = 30.0


@dataclass
class _Interrupt:
    """An order of the station's open session changed (refund, cancel, refunded line)."""

    order: OrderState


@dataclass
class StationRunner:
    """One station's state: operator, open session, label queue."""

    name: str
    nvr: str
    nvr_channel: int
    queue: PrintQueue
    operator: str = ""
    tenant: str = ""
    session: PackSession | None = None
    override_by: str = ""
    override_until_ms: int = 0
    last: dict[str, Any] | None = None
    label: dict[str, Any] | None = None
    last_job: PrintJob | None = None
    reprints: int = 0
    seq: int = 0
    inbox_send: trio.MemorySendChannel[Scan | _Interrupt] = field(init=False)
    inbox: trio.MemoryReceiveChannel[Scan | _Interrupt] = field(init=False)

    def __post_init__(self) -> None:
        self.inbox_send, self.inbox = trio.open_memory_channel[Scan | _Interrupt](INBOX)

    def record(self) -> dict[str, Any]:
        return {"operator": self.operator, "tenant": self.tenant,
                "session_id": self.session.session_id if self.session else ""}


def _copy(session: PackSession) -> PackSession:
    """A working copy: a scan's change goes live only once it is durable."""
    return PackSession.from_dict(session.to_dict())


def _session_view(session: PackSession | None) -> dict[str, Any] | None:
    if session is None:
        return None
    bill = session.bill
    return {"session_id": session.session_id, "group_id": bill.group_id, "orders": list(bill.orders),
            "state": session.state, "components": [c.to_dict() for c in bill.components]}


def _result_outcome(result: ScanResult, code: str) -> Outcome:
    detail = dict(result.detail)
    for name in ("missing", "remove"):
        rows = getattr(result, name)
        if rows:
            detail[name] = [dict(row) for row in rows]
    if result.sku:
        detail["sku"] = result.sku
    return Outcome(result.verdict, result.message_zh, result.message_en, code=code,
                   component_id=result.component_id or None, detail=detail)


class PackLine:
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

    def __init__(self, config: PackLineSection, stations: Mapping[str, tuple[str, int]], store: Store,
                 pipeline: Pipeline, rules: Callable[[], RuleSet], display: StationDisplay, registry: DeviceRegistry,
                 printers: Mapping[str, ZplPrinter | None], nvrs: Mapping[str, NvrClient], evidence_dir: Any) -> None:
        self.config = config
        self.store = store
        self.pipeline = pipeline
        self.rules = rules
        self.display = display
        self.registry = registry
        self.nvrs = nvrs
        self.evidence_dir = evidence_dir
        self._catalogs: dict[str, tuple[Catalog, dict[str, StockLevel]]] = {}
        self._open_orders: dict[tuple[str, str], str] = {}
        self._followups_send, self._followups = trio.open_memory_channel[OrderState](4096)
        self._evidence_wake = trio.Event()
        self._snapshots: dict[str, bytes] = {}
        self._pending_snapshots: list[tuple[NvrClient, int, str]] = []
        self.stations: dict[str, StationRunner] = {}
        for name, (nvr, channel) in stations.items():
            queue = PrintQueue(name, printers.get(name), self._commit, self._print_guard,
                               self._label_changed, now_ms)
            self.stations[name] = StationRunner(name, nvr, channel, queue)

    # -- durable writes ------------------------------------------------------------

    async def _commit(self, write: StepWrite) -> None:
        await self.pipeline.submit([], "station", extra=write)

    # -- catalog -------------------------------------------------------------------

    def catalog(self, tenant: str) -> tuple[Catalog, dict[str, StockLevel]]:
        """The tenant's catalog and gift stock (cached until a commit changes them)."""
        cached = self._catalogs.get(tenant)
        if cached is None:
            cached = self._catalogs[tenant] = (load_catalog(self.store, tenant), load_stock(self.store, tenant))
        return cached

    # -- the commit listener -------------------------------------------------------

    def on_commit(self, write: StepWrite) -> None:
        """Called by the pipeline after every durable batch (see ``Pipeline.add_listener``)."""
        for tenant, kind, _, _ in write.records:
            if kind in ("product", "stock"):
                self._catalogs.pop(tenant, None)
        for order in write.orders:
            key = (order.tenant, order.order_id)
            station = self._open_orders.get(key)
            if station is not None and (order.status in WITHDRAWN or _refunded_lines(order)):
                runner = self.stations[station]
                try:
                    runner.inbox_send.send_nowait(_Interrupt(order))
                except trio.WouldBlock:
                    log.error("station %s: inbox full; the refund of %s is seen at the next scan", station,
                              order.order_id)
            if order.status in WITHDRAWN or order.waybill or order.status is Status.READY_TO_PACK:
                try:
                    self._followups_send.send_nowait(order)
                except trio.WouldBlock:
                    log.error("pack line: follow-up queue full; %s is checked at the next change", order.order_id)

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
            runner.operator = record.get("operator", "")
            runner.tenant = record.get("tenant", "")
            session_id = record.get("session_id", "")
            if session_id and runner.tenant:
                stored = self.store.get_record(runner.tenant, "session", session_id)
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

    def _track(self, runner: StationRunner) -> None:
        for key in [k for k, v in self._open_orders.items() if v == runner.name]:
            del self._open_orders[key]
        session = runner.session
        if session is not None and session.state != "closed":
            for order_id in session.bill.orders:
                self._open_orders[(session.tenant, order_id)] = runner.name

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
                log.error("station %s: not saved: %s", runner.name, exc)
                self._publish(runner)
                continue
            if outcome is not None:
                runner.last = outcome.view(now_ms())
                self._publish(runner)

    # -- scans -------------------------------------------------------------------------

    def _find_order(self, tenant: str, code: str) -> OrderState | None:
        text = code.strip()
        order_id = self.store.order_for_waybill(tenant, text)
        if order_id:
            return self.store.get_order(tenant, order_id)
        for candidate in order_candidates(text):
            order = self.store.get_order(tenant, candidate)
            if order is not None:
                return order
        return None

    async def _scan(self, runner: StationRunner, scan: Scan) -> Outcome | None:
        config = self.config
        kind = classify(scan, badge_prefix=config.badge_prefix, supervisor_prefix=config.supervisor_prefix,
                        close_code=config.close_code, cancel_code=config.cancel_code,
                        reprint_code=config.reprint_code)
        at = scan.received_at_ms or now_ms()
        text = scan.text.strip()
        tenant = config.tenant
        if kind == "unreadable":
            outcome = Outcome(Verdict.UNKNOWN_BARCODE, f"无法识别的条码（{scan.error or '空'}）",
                              f"Unreadable barcode ({scan.error or 'empty'})", code=scan.raw.decode("latin-1")[:64])
            return await self._note(runner, outcome, at)
        if kind == "badge":
            runner.operator = text
            outcome = Outcome(Verdict.SIGNED_IN, f"操作员 {text} 已登录", f"Operator {text} signed in", code=text)
            outcome.extra.records.append(("", "station", runner.name, {**runner.record(), "operator": text}))
            return await self._note(runner, outcome, at)
        if kind == "supervisor":
            runner.override_by, runner.override_until_ms = text, at + round(OVERRIDE_S * 1000)
            outcome = Outcome(Verdict.SIGNED_IN, f"主管 {text}：{int(OVERRIDE_S)} 秒内扫结束码可强制结箱",
                              f"Supervisor {text}: scan the close code within {int(OVERRIDE_S)} s to force a "
                              "partial close", code=text)
            return await self._note(runner, outcome, at)
        if not runner.operator:
            return await self._note(runner, Outcome(Verdict.NOT_SIGNED_IN, "请先扫描工牌登录",
                                                    "Scan your badge first", code=text), at)
        if kind == "close":
            return await self._close(runner, at, text)
        if kind == "cancel":
            return await self._cancel(runner, at, text)
        if kind == "reprint":
            return await self._reprint(runner, at, text)
        session = runner.session
        if session is not None and session.state != "closed":
            catalog, _ = self.catalog(session.tenant)
            product = catalog.by_barcode(text, scan.gtin)
            if product is None:
                order = self._find_order(session.tenant, text)
                if order is not None and order.order_id not in session.bill.orders:
                    if session.state in ("stopped", "held") or session.complete:
                        if session.state == "open":
                            await self._close(runner, at, config.close_code)
                        else:
                            await self._cancel(runner, at, text)
                        return await self._open(runner, order, at, text)
                    if config.close_mode == "next_order":
                        closed = await self._close(runner, at, text)
                        if runner.session is not None and runner.session.state != "closed":
                            return closed  # MISSING: the next order waits
                        return await self._open(runner, order, at, text)
            working = _copy(session)
            result = working.scan_item(product, text, scan.element("21"), at)
            outcome = _result_outcome(result, text)
            outcome = self._session_events(runner, working, outcome, "pack_exception" if result.verdict.alarm
                                           else "pack_scan", at, result.order_id or working.bill.group_id)
            await self._commit_outcome(runner, working, outcome)
            if config.close_mode == "auto" and working.state == "open" and working.complete:
                return await self._close(runner, at, text)
            return outcome
        order = self._find_order(tenant, text)
        if order is not None:
            return await self._open(runner, order, at, text)
        catalog, _ = self.catalog(tenant)
        if catalog.by_barcode(text, scan.gtin) is not None:
            return await self._note(runner, Outcome(Verdict.NO_SESSION, "请先扫描订单号或运单号",
                                                    "Scan an order or waybill first", code=text), at)
        return await self._note(runner, Outcome(Verdict.UNKNOWN_BARCODE, f"未知条码：{text}",
                                                f"Unknown barcode: {text}", code=text), at)

    async def _note(self, runner: StationRunner, outcome: Outcome, at: int) -> Outcome:
        """A verdict that concerns no order: an audit record of the line's tenant."""
        tenant = runner.session.tenant if runner.session else self.config.tenant
        if tenant:
            outcome.extra.audit.append(station_audit(tenant, runner.name, runner.operator, at, outcome.verdict.value,
                                                     {"code": outcome.code, "station": runner.name}))
        if outcome.extra.records or outcome.extra.audit:
            await self._commit(outcome.extra)
        return outcome

    def _session_events(self, runner: StationRunner, session: PackSession, outcome: Outcome, kind: str, at: int,
                        order_id: str, status: Status | None = None, all_orders: bool = False) -> Outcome:
        n = len(session.timeline)
        detail = {"session_id": session.session_id, "station": runner.name, "verdict": outcome.verdict.value,
                  "code": outcome.code, "component_id": outcome.component_id, "group_id": session.bill.group_id,
                  **outcome.detail}
        targets = list(session.bill.orders) if all_orders else [order_id]
        for target in targets:
            outcome.events.append(station_event(session.tenant, runner.name, runner.operator, target, kind, status,
                                                f"{session.session_id}:{n}", at, now_ms(), detail))
        return outcome

    async def _commit_outcome(self, runner: StationRunner, session: PackSession, outcome: Outcome) -> None:
        """Make the session's change durable with its events; only then is it live."""
        outcome.extra.records.append((session.tenant, "session", session.session_id, session.to_dict()))
        outcome.extra.records.append(("", "station", runner.name, {
            "operator": runner.operator, "tenant": session.tenant,
            "session_id": session.session_id if session.state != "closed" else ""}))
        await self.pipeline.submit(outcome.events, "station", extra=outcome.extra)
        runner.session, runner.tenant = session, session.tenant
        self._track(runner)
        for action in outcome.after:
            action()

    async def _open(self, runner: StationRunner, order: OrderState, at: int, code: str) -> Outcome:
        tenant = order.tenant
        members = group_members(order, self.store.orders_for_buyer, self.store.get_order)
        group_id = order.pack_group or order.order_id
        catalog, stock = self.catalog(tenant)
        grants = evaluate_gifts(self.rules().gifts, tenant, [
            GiftOrder.from_order_data(m.order_id, m.data, m.created_at_ms) for m in members])
        bill = build_bill(group_id, members, catalog, grants, stock)
        session_id = f"{runner.name}-{at}"
        session, result = open_session(session_id, runner.name, runner.operator, tenant, bill, at,
                                       order_states={m.order_id: m.status.value if m.status else "" for m in members},
                                       unit_weights_g=unit_weights_g(bill, catalog),
                                       unknown_skus=unknown_skus(bill, catalog))
        outcome = _result_outcome(result, code)
        opened = result.verdict is Verdict.OPENED
        outcome = self._session_events(runner, session, outcome, "pack_open" if opened else "pack_exception", at,
                                       group_id, Status.PACKING if opened else None, all_orders=True)
        if result.verdict is Verdict.STOP_NO_STOCK:
            self._raise_shortfall(outcome, tenant, bill, at)
        await self._commit_outcome(runner, session, outcome)
        return outcome

    async def _close(self, runner: StationRunner, at: int, code: str) -> Outcome:
        session = runner.session
        if session is None or session.state == "closed":
            return await self._note(runner, Outcome(Verdict.NO_SESSION, "没有进行中的包裹", "No open parcel",
                                                    code=code), at)
        forced_by = runner.override_by if runner.override_until_ms >= at else ""
        working = _copy(session)
        result = working.close(at, forced_by=forced_by, reason="forced at station" if forced_by else "")
        outcome = _result_outcome(result, code)
        if working.state != "closed":
            outcome = self._session_events(runner, working, outcome, "pack_exception", at, working.bill.group_id)
            await self._commit_outcome(runner, working, outcome)
            return outcome
        runner.override_by, runner.override_until_ms = "", 0
        outcome = self._session_events(runner, working, outcome, "packed", at, working.bill.group_id,
                                       Status.PACKED, all_orders=True)
        tenant, bill = working.tenant, working.bill
        job = PrintJob(f"{working.session_id}/1", tenant, runner.name, bill.group_id, tuple(bill.orders),
                       self._label(runner, working, at), created_at_ms=at, updated_at_ms=at)
        outcome.extra.records.append(job_record(job))
        outcome.extra.records.append((tenant, "parcel", bill.group_id, {
            "group_id": bill.group_id, "order_ids": list(bill.orders), "session_id": working.session_id,
            "station": runner.name, "operator": runner.operator, "packed_at_ms": at, "job_id": job.job_id,
            "waybill": self._waybill_of(tenant, bill.orders), "alerted": False}))
        if runner.nvr:
            request = evidence_mod.evidence_request(tenant, working.to_dict(), runner.nvr, runner.nvr_channel)
            request["next_attempt_ms"] = at + round(evidence_mod.TAIL_S * 1000)
            outcome.extra.records.append((tenant, evidence_mod.PENDING, working.session_id, request))
        catalog, stock = self.catalog(tenant)
        used: dict[str, int] = {}
        for component in bill.components:
            if component.parcel == 1 and component.status != "removed" and component.kind != "item":
                used[component.sku] = used.get(component.sku, 0) + component.packed
        if used:
            outcome.extra.merge(packed_stock_write(tenant, stock, used, at))
        outcome.after.append(lambda: runner.queue.add(job))
        outcome.after.append(lambda: self._label_changed(job))
        if runner.nvr:
            outcome.after.append(lambda: self._evidence_wake.set())
        await self._commit_outcome(runner, working, outcome)
        if runner.nvr:
            client = self.nvrs.get(runner.nvr)
            if client is not None:
                self._snapshots[working.session_id] = b""  # a marker: the snapshot is being taken
                self._pending_snapshots.append((client, runner.nvr_channel, working.session_id))
                self._evidence_wake.set()
        return outcome

    def _waybill_of(self, tenant: str, order_ids: list[str]) -> str:
        for order_id in order_ids:
            order = self.store.get_order(tenant, order_id)
            if order is not None and order.waybill:
                return order.waybill
        return ""

    def _label(self, runner: StationRunner, session: PackSession, at: int) -> str:
        """The ERP's ZPL for the parcel's primary order when it supplied a valid one, else ours."""
        primary = self.store.get_order(session.tenant, session.bill.orders[0])
        supplied = primary.data.get("label_zpl") if primary is not None else None
        if isinstance(supplied, str) and supplied.strip():
            problems = check_zpl(supplied)
            if not problems:
                return supplied
            log.warning("station %s: the ERP's label for %s is not valid ZPL (%s); printing ours", runner.name,
                        session.bill.orders[0], "; ".join(problems))
        waybill = primary.waybill if primary is not None else ""
        try:
            return render_label(LabelData(order_id=session.bill.orders[0], pack_group=session.bill.group_id,
                                          station=runner.name, printed_at=datetime.fromtimestamp(at / 1000, UTC),
                                          waybill=waybill or None))
        except ZplError:
            return render_label(LabelData(order_id=session.bill.group_id, pack_group=session.bill.group_id,
                                          station=runner.name, printed_at=datetime.fromtimestamp(at / 1000, UTC)))

    async def _cancel(self, runner: StationRunner, at: int, code: str) -> Outcome:
        session = runner.session
        if session is None or session.state == "closed":
            return await self._note(runner, Outcome(Verdict.NO_SESSION, "没有进行中的包裹", "No open parcel",
                                                    code=code), at)
        working = _copy(session)
        result = working.abandon(at, by=runner.operator)
        outcome = _result_outcome(result, code)
        back = Status.READY_TO_PACK if session.state == "open" else None
        outcome = self._session_events(runner, working, outcome, "pack_cancelled", at, working.bill.group_id,
                                       back, all_orders=True)
        await self._commit_outcome(runner, working, outcome)
        return outcome

    async def _reprint(self, runner: StationRunner, at: int, code: str) -> Outcome:
        original = runner.last_job
        if original is None:
            return await self._note(runner, Outcome(Verdict.NO_SESSION, "没有可重打的面单", "No label to reprint",
                                                    code=code), at)
        runner.reprints += 1
        job = reprint_job(original, runner.reprints, f"operator:{runner.operator}", at)
        outcome = Outcome(Verdict.OK, f"重打面单 {job.job_id}", f"Reprinting label {job.job_id}", code=code)
        outcome.extra.records.append(job_record(job))
        outcome.extra.audit.append(station_audit(job.tenant, runner.name, runner.operator, at, "label_reprint",
                                                 {"job_id": job.job_id, "reprint_of": original.job_id},
                                                 job.order_ids[0] if job.order_ids else ""))
        await self._commit(outcome.extra)
        runner.queue.add(job)
        self._label_changed(job)
        return outcome

    # -- interrupts: an order of the open session changed ----------------------------------

    async def _interrupt(self, runner: StationRunner, order: OrderState) -> Outcome | None:
        session = runner.session
        if session is None or session.state == "closed" or order.order_id not in session.bill.orders:
            return None
        status = order.status.value if order.status else ""
        skus = {line.get("sku") for line in order.data.get("lines", ()) if isinstance(line, dict) and (
            line.get("refund") is True or line.get("refund_status") in ("refunding", "refunded"))}
        refunded = {sku for sku in skus if isinstance(sku, str)}
        if order.status in WITHDRAWN:
            if session.order_states.get(order.order_id) == status:
                return None  # already stopped for it (our own events touch the order too)
        else:
            removed = {c.sku for c in session.bill.components if c.order_id == order.order_id and c.status == "removed"}
            removed |= {c.origin[4:] for c in session.bill.components
                        if c.order_id == order.order_id and c.status == "removed" and c.origin.startswith("kit:")}
            if refunded <= removed:
                return None
        at = now_ms()
        working = _copy(session)
        working.order_states[order.order_id] = status
        if order.status in WITHDRAWN:
            result = working.refund(order.order_id, None, at)
        else:
            result = working.refund(order.order_id, refunded, at)
        outcome = _result_outcome(result, order.order_id)
        outcome = self._session_events(runner, working, outcome, "pack_exception", at, order.order_id)
        if order.status in WITHDRAWN:
            if order.waybill:
                self._raise_intercept(outcome, order, at)
            else:
                outcome.events.append(station_event(
                    order.tenant, runner.name, runner.operator, order.order_id, "cancel_shipment", None,
                    f"{working.session_id}:cancel:{order.order_id}", at, now_ms(),
                    {"session_id": working.session_id, "station": runner.name, "verdict": "STOP_REFUND",
                     "instruction": "cancel_shipment", "reason": order.status.value if order.status else ""}))
            self._raise_refund_stop(outcome, order, working, at)
        await self._commit_outcome(runner, working, outcome)
        log.warning("station %s: %s %s during session %s: %s", runner.name, order.order_id,
                    order.status.value if order.status else "?", working.session_id, result.verdict.value)
        return outcome

    # -- alerts ------------------------------------------------------------------------

    def _raise_shortfall(self, outcome: Outcome, tenant: str, bill: Bill, at: int) -> None:
        alert = shortfall_alert(tenant, bill.group_id, list(bill.orders), dict(bill.shortfalls), at)
        outcome.extra.merge(alert_write(alert))

    def _raise_refund_stop(self, outcome: Outcome, order: OrderState, session: PackSession, at: int) -> None:
        alert = refund_stop_alert(order.tenant, session.bill.group_id, list(session.bill.orders), order.order_id, at,
                                  station=session.station)
        outcome.extra.merge(alert_write(alert))

    def _raise_intercept(self, outcome: Outcome, order: OrderState, at: int) -> None:
        pickup = _pickup_state(order)
        outcome.extra.records.append((order.tenant, "intercept", order.order_id, {
            "order_id": order.order_id, "waybill": order.waybill, "group_id": order.pack_group or order.order_id,
            "refund_status": order.status.value if order.status else "", "pickup_state": pickup, "at_ms": at}))
        outcome.extra.merge(alert_write(intercept_alert(order.tenant, order.order_id, order.waybill, pickup, at)))

    # -- follow-ups: refunds after the label, waybills, orders ready to pack -----------------

    async def _serve_followups(self) -> None:
        async for order in self._followups:
            try:
                write = await trio.to_thread.run_sync(self._followup, order)
                if write is not None:
                    await self._commit(write)
            except (BackpressureError, StoreError) as exc:
                log.error("pack line: follow-up of %s not saved (%s); it is checked at its next change",
                          order.order_id, exc)

    def _followup(self, order: OrderState) -> StepWrite | None:
        tenant, group_id = order.tenant, order.pack_group or order.order_id
        now = now_ms()
        parcel = self.store.get_record(tenant, "parcel", group_id)
        write = StepWrite()
        if parcel is not None and order.waybill and not parcel.get("waybill"):
            write.records.append((tenant, "parcel", group_id, {**parcel, "waybill": order.waybill,
                                                               "waybill_at_ms": now}))
        if order.status in WITHDRAWN and parcel is not None and (tenant, order.order_id) not in self._open_orders:
            known = self.store.get_record(tenant, "intercept", order.order_id)
            pickup = _pickup_state(order)
            if known is None or known.get("pickup_state") != pickup:
                write.records.append((tenant, "intercept", order.order_id, {
                    "order_id": order.order_id, "waybill": order.waybill, "group_id": group_id,
                    "refund_status": order.status.value if order.status else "", "pickup_state": pickup,
                    "labelled_at_ms": parcel.get("packed_at_ms", 0), "at_ms": now}))
                if known is None:
                    write.merge(alert_write(intercept_alert(tenant, order.order_id, order.waybill, pickup, now)))
        if order.status is Status.READY_TO_PACK and parcel is None and (tenant, order.order_id) not in self._open_orders:
            if self.store.get_record(tenant, "plan", group_id) is None:
                write.merge(self._plan(order, now))
        if not (write.records or write.audit):
            return None
        return write

    def _plan(self, order: OrderState, now: int) -> StepWrite:
        """Gift rules and gift stock for an order that became ready to pack: a shortfall holds
        it (``STOP_NO_STOCK`` at the station), raises an anomaly and an alert, before anyone
        starts packing it."""
        tenant, group_id = order.tenant, order.pack_group or order.order_id
        members = group_members(order, self.store.orders_for_buyer, self.store.get_order)
        catalog, stock = self.catalog(tenant)
        grants = evaluate_gifts(self.rules().gifts, tenant, [
            GiftOrder.from_order_data(m.order_id, m.data, m.created_at_ms) for m in members])
        bill = build_bill(group_id, members, catalog, grants, stock)
        write = StepWrite(records=[(tenant, "plan", group_id, {
            "group_id": group_id, "orders": list(bill.orders), "grants": [g.to_dict() for g in grants],
            "shortfalls": dict(bill.shortfalls), "planned_at_ms": now})])
        if bill.shortfalls:
            write.records.append((tenant, "hold", group_id, {
                "group_id": group_id, "orders": list(bill.orders), "reason": "STOP_NO_STOCK",
                "shortfalls": dict(bill.shortfalls), "at_ms": now}))
            write.merge(alert_write(shortfall_alert(tenant, group_id, list(bill.orders), dict(bill.shortfalls), now)))
            log.warning("tenant %s: %s held: gift stock short %s", tenant, group_id, bill.shortfalls)
        return write

    async def _serve_waybill_watch(self) -> None:
        while True:
            await trio.sleep(WAYBILL_CHECK_S)
            write = await trio.to_thread.run_sync(self._overdue_waybills, now_ms())
            if write is not None:
                try:
                    await self._commit(write)
                except (BackpressureError, StoreError) as exc:
                    log.error("pack line: waybill alerts not saved (%s); retried", exc)

    def _overdue_waybills(self, now: int) -> StepWrite | None:
        parcels = []
        records = {}
        for tenant, group_id, parcel in self.store.iter_records("parcel"):
            if parcel.get("waybill") or parcel.get("alerted"):
                continue
            records[(tenant, group_id)] = parcel
            parcels.append(PackedParcel(tenant, group_id, tuple(parcel.get("order_ids", ())),
                                        int(parcel.get("packed_at_ms", 0)), ""))
        alerts = overdue_waybills(parcels, now, self.config.waybill_timeout_s)
        if not alerts:
            return None
        write = StepWrite()
        for alert in alerts:
            write.merge(alert_write(alert))
        for packed in parcels:
            if now - packed.packed_at_ms >= self.config.waybill_timeout_s * 1000:
                record = records[(packed.tenant, packed.group_id)]
                write.records.append((packed.tenant, "parcel", packed.group_id, {**record, "alerted": True}))
        return write

    # -- evidence ----------------------------------------------------------------------

    async def _serve_evidence(self) -> None:
        while True:
            while self._pending_snapshots:
                client, channel, session_id = self._pending_snapshots.pop(0)
                self._snapshots[session_id] = await evidence_mod.take_snapshot(client, channel) or b""
            now = now_ms()
            wait_s = EVIDENCE_POLL_S
            pending = await trio.to_thread.run_sync(lambda: list(self.store.iter_records(evidence_mod.PENDING)))
            for tenant, session_id, request in pending:
                due = int(request.get("next_attempt_ms", 0))
                if due > now:
                    wait_s = min(wait_s, (due - now) / 1000)
                    continue
                nvr = self.nvrs.get(request.get("nvr", ""))
                if nvr is None:
                    continue
                try:
                    write = await evidence_mod.find_evidence(nvr, request, self.evidence_dir,
                                                             self._snapshots.get(session_id) or None, now_ms())
                except DeviceError as exc:
                    log.warning("evidence of session %s not found yet: %s", session_id, exc)
                    write = StepWrite(records=[(tenant, evidence_mod.PENDING, session_id,
                                                evidence_mod.pending_after_failure(request, str(exc), now_ms()))])
                try:
                    await self._commit(write)
                except (BackpressureError, StoreError) as exc:
                    log.error("evidence of session %s not saved (%s); retried", session_id, exc)
                    continue
                if any(kind == evidence_mod.KIND for _, kind, _, _ in write.records):
                    self._snapshots.pop(session_id, None)
                    log.info("evidence of session %s stored", session_id)
            self._evidence_wake = trio.Event()
            with trio.move_on_after(max(0.05, wait_s)):
                await self._evidence_wake.wait()


    # -- the display -----------------------------------------------------------------

    def view(self, runner: StationRunner) -> dict[str, Any]:
        runner.seq += 1
        return {"station": runner.name, "operator": runner.operator, "seq": runner.seq,
                "session": _session_view(runner.session), "last": runner.last, "label": runner.label,
                "devices": [{"device": d["device"], "kind": d["kind"], "state": d["state"],
                             "detail": d.get("detail", "")} for d in self.registry.report(runner.name)]}

    def _publish(self, runner: StationRunner) -> None:
        self.display.publish(runner.name, self.view(runner))

    def _label_changed(self, job: PrintJob) -> None:
        runner = self.stations.get(job.station)
        if runner is not None and (runner.last_job is None or runner.last_job.job_id == job.job_id
                                   or job.created_at_ms >= runner.last_job.created_at_ms):
            runner.last_job, runner.label = job, job.label_view()
            self._publish(runner)

    def _print_guard(self, job: PrintJob) -> str:
        for order_id in job.order_ids:
            order = self.store.get_order(job.tenant, order_id)
            if order is not None and order.status in WITHDRAWN:
                return f"{order_id} {order.status.value}"
        return ""


def _refunded_lines(order: OrderState) -> bool:
    lines = order.data.get("lines")
    return isinstance(lines, list) and any(
        isinstance(line, dict) and (line.get("refund") is True or line.get("refund_status") in ("refunding", "refunded"))
        for line in lines)


def _pickup_state(order: OrderState) -> str:
    """Where the parcel of a refunded order is: still waiting for the carrier (the last chance
    to pull it) or already picked up (intercept with the carrier)."""
    before = order.resume_status or order.status
    if before in (Status.SHIPPED, Status.IN_TRANSIT, Status.DELIVERED, Status.FULFILLMENT_STARTED):
        return "picked_up"
    return "awaiting_pickup"
