"""What the pack line does after commits and on timers: follow-ups, waybill timeouts, evidence.

``LineWatches`` (part of ``PackLine``):

* follow-ups of committed orders: a waybill for a packed parcel (and, once the order is
  shipped, its session's packed components marked "shipped with waybill W"), a refund of an order that
  was already labelled (the intercept watch list, with its pickup state), an order that
  became ``READY_TO_PACK`` (its bill planned: gift rules and gift stock; a shortfall holds it
  and raises an alert before anyone packs it; a cross-border order with an incomplete customs
  declaration gets its ``customs_hold`` record: the anomaly board shows it before anyone scans it);
* every ``WAYBILL_CHECK_S``, packed parcels still without a waybill after
  ``[packline] waybill_timeout_s`` raise one ``waybill_timeout`` alert each;
* the evidence of closed sessions: the snapshot taken at close, the clip searched on the
  NVR once the recording is there, retried with backoff (``gateway._packline.evidence``).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import trio

from gateway._customs import hold_writes
from gateway._errors import BackpressureError, DeviceError, StoreError
from gateway._model import OrderState, Status
from gateway._packline import evidence as evidence_mod
from gateway._packline.alerts import (
    PackedParcel,
    alert_write,
    intercept_alert,
    overdue_waybills,
    shortfall_alert,
)
from gateway._packline.bill import STOCK_CHECKED_KINDS, shipped_session
from gateway._packline.catalog_store import catalog_write
from gateway._packline.line_base import EVIDENCE_POLL_S, WAYBILL_CHECK_S, _pickup_state
from gateway._packline.line_declaration import LineDeclarations
from gateway._packline.station import (
    WITHDRAWN,
)
from gateway._packline.stock_reader import StockReader
from gateway._pipeline import now_ms
from gateway._store import StepWrite

#: The states in which a packed parcel has left: its components are "shipped with waybill W".
SHIPPED_STATES = frozenset({Status.SHIPPED, Status.IN_TRANSIT, Status.DELIVERED})

log = logging.getLogger(__name__)


class LineWatches(LineDeclarations):
    """Follow-ups, the waybill watch and evidence (see the module docstring)."""

    # -- follow-ups: refunds after the label, waybills, orders ready to pack -----------------

    async def _serve_followups(self) -> None:
        async for item in self._followups:
            try:
                if isinstance(item, OrderState) and self.stock_reader is not None:
                    await self._read_stock(self.stock_reader, item)
                write = item if isinstance(item, StepWrite) else await trio.to_thread.run_sync(self._followup, item)
                if write is not None:
                    await self._commit(write)
            except (BackpressureError, StoreError) as exc:
                what = item.order_id if isinstance(item, OrderState) else "an alert"
                log.error("pack line: follow-up of %s not saved (%s); it is checked at its next change", what, exc)

    async def _read_stock(self, reader: StockReader, order: OrderState) -> None:
        """Before an order's bill is planned, read its gift SKUs' stock from the ERP
        (``[packline] stock_url``; ``gateway._packline.stock_reader``) and store what is newer."""
        if not self._needs_plan(order):
            return
        tenant = order.tenant
        _, _, bill = await trio.to_thread.run_sync(self.bill_for, order)
        _, known = self.catalog(tenant)
        now = now_ms()
        wanted = reader.stale([c.sku for c in bill.components if c.parcel == 1 and c.status != "removed"
                               and c.kind in STOCK_CHECKED_KINDS], known, now)
        read = await reader.read(tenant, wanted, known)
        if read.levels:
            levels = [dataclasses.replace(level, source="erp_read") for level in read.levels]
            await self._commit(catalog_write(tenant, [], levels, actor="erp:stock_url", now_ms=now,
                                             note=f"stock read before packing {order.order_id}: "
                                                  + ", ".join(f"{lv.sku}={lv.quantity}" for lv in levels)))
            self._catalogs.pop(tenant, None)

    def _needs_plan(self, order: OrderState) -> bool:
        """True when ``order`` is ready to pack and its group has no plan, no parcel and no open session."""
        group_id = order.pack_group or order.order_id
        return (order.status is Status.READY_TO_PACK and (order.tenant, order.order_id) not in self._open_orders
                and self.store.get_record(order.tenant, "parcel", group_id) is None
                and self.store.get_record(order.tenant, "plan", group_id) is None)

    def _followup(self, order: OrderState) -> StepWrite | None:
        tenant, group_id = order.tenant, order.pack_group or order.order_id
        now = now_ms()
        parcel = self.store.get_record(tenant, "parcel", group_id)
        write = StepWrite()
        if parcel is not None:
            write.merge(self._parcel_followup(parcel, order, now))
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
        if self._needs_plan(order):
            write.merge(self._plan(order, now))
        if not (write.records or write.audit):
            return None
        return write

    def _parcel_followup(self, parcel: dict[str, Any], order: OrderState, now: int) -> StepWrite:
        """The parcel's waybill once the order has one; once the order is shipped, its session's
        packed components become "shipped with waybill W" (the after-sales view reads them)."""
        tenant, group_id = order.tenant, str(parcel.get("group_id") or order.pack_group or order.order_id)
        changed = dict(parcel)
        if order.waybill and not parcel.get("waybill"):
            changed.update(waybill=order.waybill, waybill_at_ms=now)
        write = StepWrite()
        waybill = str(changed.get("waybill") or "")
        if waybill and order.status in SHIPPED_STATES and not parcel.get("shipped_at_ms"):
            changed["shipped_at_ms"] = now
            session = self.store.get_record(tenant, "session", str(parcel.get("session_id", "")))
            if session is not None:
                write.records.append((tenant, "session", session["session_id"], shipped_session(session, waybill, now)))
        if changed != parcel:
            write.records.insert(0, (tenant, "parcel", group_id, changed))
        return write

    def _plan(self, order: OrderState, now: int) -> StepWrite:
        """Gift rules and gift stock for an order that became ready to pack: a shortfall holds
        it (``STOP_NO_STOCK`` at the station), raises an anomaly and an alert, before anyone
        starts packing it."""
        tenant, group_id = order.tenant, order.pack_group or order.order_id
        members, _, bill = self.bill_for(order)
        gifts = [{"rule": c.origin[5:], "order_id": c.order_id, "sku": c.sku, "quantity": c.quantity,
                  "parcel": c.parcel} for c in bill.components if c.origin.startswith("gift:")]
        write = StepWrite(records=[(tenant, "plan", group_id, {
            "group_id": group_id, "orders": list(bill.orders), "gifts": gifts,
            "shortfalls": dict(bill.shortfalls), "planned_at_ms": now})])
        if bill.shortfalls:
            write.records.append((tenant, "hold", group_id, {
                "group_id": group_id, "orders": list(bill.orders), "reason": "STOP_NO_STOCK",
                "shortfalls": dict(bill.shortfalls), "at_ms": now}))
            write.merge(alert_write(shortfall_alert(tenant, group_id, list(bill.orders), dict(bill.shortfalls), now)))
            log.warning("tenant %s: %s held: gift stock short %s", tenant, group_id, bill.shortfalls)
        write.merge(hold_writes(self.store, self._declarations(members), group_id, now))  # customs: seen before packing
        return write

    async def _serve_waybill_watch(self) -> None:
        while True:
            await trio.sleep(min(WAYBILL_CHECK_S, max(0.2, self.config.waybill_timeout_s / 4)))
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
