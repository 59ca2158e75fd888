"""What a scan or an interrupt does at a station: the verdict, and what is committed first.

``LineScans`` (part of ``PackLine``) classifies each scan (``station.classify``), asks the
station's session for its verdict on a working copy, and commits the verdict's events, the
session record and whatever the verdict sets off (a label job, an evidence request, gift
stock used, alerts) in one write batch; only then does the session change go live and the
screen show it. Interrupts (an order of the open session refunded or cancelled, a refunded
line) take the same path without waiting for a scan.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from devices.scan import Scan
from devices.zpl import LabelData, ZplError, check_zpl, render_label
from gateway._errors import DeviceError
from gateway._model import OrderState, Status
from gateway._packline import evidence as evidence_mod
from gateway._packline.alerts import alert_write, intercept_alert, refund_stop_alert, shortfall_alert
from gateway._packline.bill import unit_weights_g, unknown_skus
from gateway._packline.catalog import packed_stock_write
from gateway._packline.line_base import StationRunner, _copy, _pickup_state, _result_outcome
from gateway._packline.line_declaration import LineDeclarations
from gateway._packline.printing import PrintJob, job_record, reprint_job
from gateway._packline.session import PackSession, ScanResult, open_session
from gateway._packline.session_records import session_writes
from gateway._packline.station import (
    OVERRIDE_S,
    WITHDRAWN,
    Outcome,
    classify,
    order_candidates,
    station_audit,
    station_event,
)
from gateway._packline.values import Bill, Verdict
from gateway._pipeline import now_ms

log = logging.getLogger(__name__)


class LineScans(LineDeclarations):
    """Scans and interrupts (see the module docstring)."""

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
            record = {**runner.record(), "operator": text}
            outcome.extra.records.append(("", "station", runner.name, record))
            noted = await self._note(runner, outcome, at)
            runner.stored = record
            return noted
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
            reopen = self._declaration_done(session)  # held for its declaration, complete now
            if reopen is not None:
                await self._cancel(runner, at, text)
                return await self._open(runner, reopen, at, text)
            working = _copy(session)
            result = working.scan_item(product, text, scan.element("21"), at)
            outcome = _result_outcome(result, text)
            outcome = self._session_events(runner, working, outcome, "pack_exception" if result.verdict.alarm
                                           else "pack_scan", at, result.order_id or working.bill.group_id)
            if config.close_mode == "auto" and working.state == "open" and working.complete:
                # The last expected scan and the close are one commit: the packer waits for one fsync.
                return await self._close(runner, at, text, scanned=(working, outcome))
            await self._commit_outcome(runner, working, outcome)
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
        stored = runner.session  # the last committed state: only the timeline entries added since are written
        outcome.extra.records.extend(session_writes(session, len(stored.timeline) if stored is not None
                                                    and stored.session_id == session.session_id else 0))
        station = {"operator": runner.operator, "tenant": session.tenant,
                   "session_id": session.session_id if session.state != "closed" else ""}
        if station != runner.stored:  # an item scan leaves it as it is: not rewritten at every scan
            outcome.extra.records.append(("", "station", runner.name, station))
        await self.pipeline.submit(outcome.events, "station", extra=outcome.extra)
        runner.session, runner.tenant, runner.stored = session, session.tenant, station
        self._track(runner)
        for action in outcome.after:
            action()

    async def _open(self, runner: StationRunner, order: OrderState, at: int, code: str) -> Outcome:
        tenant = order.tenant
        members, catalog, bill = self.bill_for(order)
        group_id = bill.group_id
        session_id = f"{runner.name}-{at}"
        declarations, hold = self._declaration_hold(members)
        session, result = open_session(session_id, runner.name, runner.operator, tenant, bill, at,
                                       order_states={m.order_id: m.status.value if m.status else "" for m in members},
                                       unit_weights_g=unit_weights_g(bill, catalog),
                                       unknown_skus=unknown_skus(bill, catalog), hold=hold)
        outcome = _result_outcome(result, code)
        opened = result.verdict is Verdict.OPENED
        outcome = self._session_events(runner, session, outcome, "pack_open" if opened else "pack_exception", at,
                                       group_id, Status.PACKING if opened else None, all_orders=True)
        if result.verdict is Verdict.STOP_NO_STOCK:
            self._raise_shortfall(outcome, tenant, bill, at)
        self._declaration_outcome(outcome, runner, declarations, group_id, at)
        await self._commit_outcome(runner, session, outcome)
        return outcome

    async def _close(self, runner: StationRunner, at: int, code: str,
                     scanned: tuple[PackSession, Outcome] | None = None) -> Outcome:
        """Close the station's parcel; ``scanned``: the scan that completed it (auto close), not
        committed yet, to commit with the close."""
        first: Outcome | None = None
        if scanned is not None:
            working, first = scanned
        else:
            session = runner.session
            if session is None or session.state == "closed":
                return await self._note(runner, Outcome(Verdict.NO_SESSION, "没有进行中的包裹", "No open parcel",
                                                        code=code), at)
            working = _copy(session)
        forced_by = runner.override_by if runner.override_until_ms >= at else ""
        weighed = await self._weigh(runner, working, at) if not forced_by and working.complete else None
        if weighed is not None and weighed.verdict is Verdict.WEIGHT_MISMATCH:
            outcome = self._session_events(runner, working, _result_outcome(weighed, code), "pack_exception", at,
                                           working.bill.group_id)
            await self._commit_outcome(runner, working, _joined(first, outcome))
            return outcome
        result = working.close(at, forced_by=forced_by, reason="forced at station" if forced_by else "")
        outcome = _result_outcome(result, code)
        if working.state != "closed":
            outcome = self._session_events(runner, working, outcome, "pack_exception", at, working.bill.group_id)
            await self._commit_outcome(runner, working, _joined(first, outcome))
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
        await self._commit_outcome(runner, working, _joined(first, outcome))
        if runner.nvr:
            client = self.nvrs.get(runner.nvr)
            if client is not None:
                self._snapshots[working.session_id] = b""  # a marker: the snapshot is being taken
                self._pending_snapshots.append((client, runner.nvr_channel, working.session_id))
                self._evidence_wake.set()
        return outcome

    async def _weigh(self, runner: StationRunner, session: PackSession, at: int) -> ScanResult | None:
        """The weight check of a complete parcel (``gateway._packline.weighing``); ``None``
        when the station weighs nothing. A scale that fails is recorded, never blocking."""
        scale = self.scales.get(runner.name)
        tolerance_g = self.config.weight_tolerance_g
        if scale is None or tolerance_g <= 0:
            return None
        try:
            grams = await scale.weigh_g()
        except DeviceError as exc:
            log.warning("station %s: parcel not weighed: %s", runner.name, exc)
            session.timeline.append({"event": "weight", "at_ms": at, "verdict": "OK", "checked": False,
                                     "error": str(exc), "operator": runner.operator})
            return None
        return session.weight_check(grams, tolerance_g, self.config.weight_tolerance_pct, at_ms=at)

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


def _joined(first: Outcome | None, outcome: Outcome) -> Outcome:
    """``outcome`` with ``first``'s events, writes and after-actions put before its own."""
    if first is None:
        return outcome
    first.extra.merge(outcome.extra)
    outcome.events[:0], outcome.extra, outcome.after[:0] = first.events, first.extra, first.after
    return outcome
