"""A pack session: one parcel of one pack group, scan by scan, with a verdict at every step.

``open_session`` opens it on a ``Bill`` (``gateway._packline.bill``); the station then feeds it
item scans, a close, live refunds and the scale's weight, and shows each ``ScanResult`` (its
lines worded by ``gateway._packline.session_text``). Pure: no I/O, no clock (every call
carries ``at_ms``); the station stores ``to_dict()`` with each step and ``from_dict``
continues exactly where a crash left it.

States and what moves them::

    open ──close, complete──────────────> closed   CLOSED (the label may print)
    open ──close, supervisor + reason───> closed   PARTIAL_CLOSE (what was missing is recorded)
    open ──close, incomplete────────────> open     MISSING (names every missing component)
    open / held ──whole-order refund────> stopped  STOP_REFUND (never released: do not ship)
    held ──release(by, reason)──────────> open     (stock arrived, or "ship without the gift")
    held (DECLARATION_INCOMPLETE) ──────> never released by a supervisor: complete the declaration
    stopped (ALREADY_PACKED) ──release──> open     (a supervisor allows the repack)
    open / held / stopped ──abandon─────> closed   OK, abandoned (the cancel code: unpack, no label)

Opening decides the first state: an order ``REFUND_INITIATED`` / ``REFUNDED`` / ``CANCELLED``
-> ``stopped`` with ``STOP_REFUND``; else one ``PACKED`` / ``SHIPPED`` / ``FULFILLMENT_STARTED``
/ ``IN_TRANSIT`` / ``DELIVERED`` -> ``stopped`` with ``ALREADY_PACKED`` (the duplicate-pack
alarm; FULFILLMENT_STARTED, picked up by the carrier, is as packed as it gets); else gift
shortfalls -> ``held`` with ``STOP_NO_STOCK``; else ``open``. In ``held`` and ``stopped``
every item scan and every close answers the stopping verdict again; after ``closed`` an item
scan answers ``NO_SESSION`` and a second close repeats the first close's verdict.

Item scans, checked in this order: ``UNKNOWN_BARCODE`` (no product), ``DUPLICATE_UNIT`` (the
same GS1 serial of the same SKU already counted in this session), ``WRONG_ITEM`` (no live
parcel-1 component has the SKU; the message says why when it can: a kit scanned instead of
its parts, an item of a later parcel, a refunded item), ``EXTRA`` (all units already
scanned), else ``OK``. An OK ticks one unit of the FIRST outstanding component with that SKU
in bill order (primary order first, its lines before its gifts): that is the line the
display lists first, and when a parcel closes short the shortage lands on the later order's
and the gift's units rather than on the primary order's goods. Only OK scans count a serial.

Refunds while packing: a whole-order refund (``skus=None``) stops the parcel at once. A refund
of some lines marks their components ``removed`` (``apply_line_refund``); when units of them
were already scanned the verdict is ``STOP_REFUND`` with ``remove`` naming them and their
units (the session stays open: take them out, carry on), otherwise ``OK`` with the removed
components in ``detail["removed"]`` (the expected list simply shrinks; ``detail["changed"]``
is false when nothing of this parcel was touched, e.g. a repeated notice). A line refund that
leaves the order none of its lines is a whole-order refund (its gifts do not ship alone). After ``closed`` a refund answers
``STOP_REFUND`` (unpack or intercept with the carrier) and the state stays ``closed``.

The timeline records every event in order (open, each scan with its code, serial, verdict,
component and operator, refunds, releases, weights, close): it is the evidence the NVR
clip is cut for.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from typing import Any

from gateway._packline.bill import apply_line_refund
from gateway._packline.session_data import SessionData
from gateway._packline.session_text import (
    ScanResult,
    SessionState,
    abandon_text,
    component_row,
    missing_rows,
    opening_stop,
    opening_text,
    refund_stop,
    shown,
    summary,
    wrong_item_text,
)
from gateway._packline.values import Bill, Product, Verdict

#: Order states that stop a parcel for a refund (do not ship).
REFUND_STATES = frozenset({"REFUND_INITIATED", "REFUNDED", "CANCELLED"})
#: Order states that mean the order was packed before (the duplicate-pack alarm).
PACKED_STATES = frozenset({"PACKED", "SHIPPED", "FULFILLMENT_STARTED", "IN_TRANSIT", "DELIVERED"})
#: Stops no supervisor releases: a refund (do not ship), an incomplete customs declaration
#: (the station releases it by itself once the declaration is complete).
_NEVER_RELEASED = frozenset({Verdict.STOP_REFUND.value, Verdict.DECLARATION_INCOMPLETE.value})
#: Stops that hold a parcel (it may be packed later) rather than stop it.
_HELD = frozenset({Verdict.STOP_NO_STOCK.value, Verdict.DECLARATION_INCOMPLETE.value})


class PackSession(SessionData):
    """One parcel being packed. Mutable; ``to_dict`` / ``from_dict`` carry all of it
    (``gateway._packline.session_data``: the fields and their dict form).

    Build it with ``open_session`` (or ``from_dict``). ``operator`` may be reassigned when a
    badge takes over (``change_operator`` records it); every timeline event names the
    operator at that moment.
    """

    def __repr__(self) -> str:
        return (f"<PackSession {self.session_id} {self.state} group={self.bill.group_id} "
                f"{self._packed_units()}/{self._total_units()} units>")

    @property
    def complete(self) -> bool:
        """True when every live component of parcel 1 is fully scanned."""
        return self.bill.complete

    @property
    def expected_weight_g(self) -> int | None:
        """The weight of what is in the parcel now (scanned units of live components), or
        ``None`` when a scanned SKU's unit weight is unknown."""
        total = 0
        for component in self._live():
            if component.packed:
                unit = self.unit_weights_g.get(component.sku)
                if unit is None:
                    return None
                total += unit * min(component.packed, component.quantity)
        return total

    def scan_item(self, product: Product | None, code: str, serial: str | None, at_ms: int) -> ScanResult:
        """The verdict of one item scan (``product`` is the catalog's match of ``code``)."""
        serial = (serial or "").strip() or None
        sku = product.sku if product is not None else ""
        fields: dict[str, Any] = {"code": code, "sku": sku, "serial": serial}
        if self.state == "closed":
            return self._record("scan", Verdict.NO_SESSION, at_ms, "本包裹已封箱：请扫描下一个订单",
                                "This parcel is closed: scan the next order", **fields)
        if self.stop is not None:
            return self._stopped("scan", at_ms, **fields)
        if product is None:
            code_shown = shown(code)
            return self._record("scan", Verdict.UNKNOWN_BARCODE, at_ms,
                                f"未知条码：{code_shown}，不是商品条码，请核对或找主管",
                                f"Unknown barcode: {code_shown} is not a product; check it or ask a supervisor",
                                **fields)
        name = shown(product.name or product.sku)
        if serial is not None and (product.sku, serial) in self._serials:
            return self._record("scan", Verdict.DUPLICATE_UNIT, at_ms,
                                f"重复扫描同一件：{name} 序列号 {shown(serial)} 已扫过，请扫另一件",
                                f"Same unit twice: {name} serial {shown(serial)} is already counted; "
                                "scan another unit", **fields)
        live = [c for c in self._live() if c.sku == product.sku]
        if not live:
            zh, en = wrong_item_text(product, self._live(), self.bill)
            return self._record("scan", Verdict.WRONG_ITEM, at_ms, zh, en, **fields)
        target = next((c for c in live if c.outstanding > 0), None)
        if target is None:
            units = sum(c.quantity for c in live)
            return self._record("scan", Verdict.EXTRA, at_ms, f"多扫：{name} 只需 {units} 件，已扫够，请取出这一件",
                                f"Extra: {name} needs {units}, all scanned; take this unit out", **fields)
        target.packed += 1
        if target.packed >= target.quantity:
            target.status = "packed"
        if serial is not None:
            self._serials.add((product.sku, serial))
        fields.update(component_id=target.component_id, order_id=target.order_id)
        return self._record("scan", Verdict.OK, at_ms, f"正确：{name}（{target.packed}/{target.quantity}）",
                            f"OK: {name} ({target.packed}/{target.quantity})", **fields)

    def close(self, at_ms: int, *, forced_by: str = "", reason: str = "") -> ScanResult:
        """Close the parcel: ``CLOSED`` when complete, ``PARTIAL_CLOSE`` when a supervisor
        (``forced_by``) forces it with a ``reason``, else ``MISSING`` and the session stays open."""
        if self.closing is not None:
            c = self.closing
            return self._record("close", Verdict(c["verdict"]), at_ms, c["message_zh"], c["message_en"], repeat=True,
                                missing=c["missing"])
        if self.stop is not None:
            return self._stopped("close", at_ms, forced_by=forced_by, reason=reason)
        missing = missing_rows(self.bill)
        if not missing:
            return self._closed(Verdict.CLOSED, at_ms, "封箱完成：清单已齐，打印面单",
                                "Closed: complete, the label prints", missing, "", "")
        listed_zh, listed_en = summary(missing, with_orders=True)
        if forced_by.strip() and reason.strip():
            by, why = shown(forced_by), shown(reason, 60)
            return self._closed(Verdict.PARTIAL_CLOSE, at_ms, f"主管 {by} 强制封箱（{why}），缺：{listed_zh}",
                                f"Forced close by {by} ({why}); missing: {listed_en}", missing, forced_by, reason)
        if forced_by.strip():
            return self._record("close", Verdict.MISSING, at_ms, f"强制封箱需填写原因；缺：{listed_zh}",
                                f"A forced close needs a reason; missing: {listed_en}", missing=missing,
                                forced_by=forced_by)
        return self._record("close", Verdict.MISSING, at_ms, f"缺件：{listed_zh}；请补扫或由主管强制封箱",
                            f"Missing: {listed_en}; scan them or have a supervisor force the close",
                            missing=missing)

    def refund(self, order_id: str, skus: Collection[str] | None, at_ms: int) -> ScanResult:
        """A refund or cancel of ``order_id`` (all of it when ``skus`` is ``None``) arriving live."""
        skus_field = None if skus is None else sorted(skus)
        if order_id not in self.bill.orders:
            return self._record("refund", Verdict.OK, at_ms, f"退款订单 {shown(order_id)} 不在本包裹，无需处理",
                                f"Refunded order {shown(order_id)} is not in this parcel", order_id=order_id,
                                skus=skus_field, changed=False)
        removed_before = {c.component_id for c in self.bill.components if c.status == "removed"}
        taken = [] if skus is None else apply_line_refund(self.bill, order_id, skus)
        newly = [c.component_id for c in self.bill.components
                 if c.status == "removed" and c.component_id not in removed_before]
        whole = skus is None or (bool(newly) and not any(
            c.order_id == order_id and c.status != "removed" and (c.origin == "line" or c.origin.startswith("kit:"))
            for c in self.bill.components))
        if whole:
            taken += apply_line_refund(self.bill, order_id, None)
        remove = [component_row(c, c.packed) for c in taken]
        order = shown(order_id)
        common: dict[str, Any] = {"order_id": order_id, "skus": skus_field, "remove": remove, "whole_order": whole}
        if self.closing is not None and self.closing.get("abandoned"):
            return self._record("refund", Verdict.OK, at_ms, f"订单 {order} 退款：本包裹已取消，无需处理",
                                f"Order {order} refunded: this parcel was abandoned already", **common)
        if self.state == "closed":
            if not whole and not remove:
                return self._record("refund", Verdict.OK, at_ms, f"订单 {order} 部分退款：不涉及已封箱商品",
                                    f"Order {order} partly refunded: nothing in the closed parcel", **common)
            return self._record("refund", Verdict.STOP_REFUND, at_ms,
                                f"订单 {order} 已退款但包裹已封箱：请拆箱取出或联系快递拦截",
                                f"Order {order} refunded after the close: unpack it or intercept with the carrier",
                                **common)
        if whole:
            self.state = "stopped"
            self.stop = refund_stop(order)
            return self._stopped("refund", at_ms, **common)
        if remove:
            listed_zh, listed_en = summary(remove)
            return self._record("refund", Verdict.STOP_REFUND, at_ms,
                                f"订单 {order} 部分退款：请从包裹取出 {listed_zh}，然后继续",
                                f"Order {order} partly refunded: take out {listed_en}, then carry on", **common)
        if not newly:
            return self._record("refund", Verdict.OK, at_ms, f"订单 {order} 有退款更新：本包裹清单不变",
                                f"Order {order} refund update: this parcel's bill is unchanged", changed=False,
                                **common)
        return self._record("refund", Verdict.OK, at_ms, f"订单 {order} 部分退款：清单已更新，继续打包",
                            f"Order {order} partly refunded: the bill is updated, carry on", removed=newly, **common)

    def abandon(self, at_ms: int, *, by: str, reason: str = "") -> ScanResult:
        """Give the parcel up (the station's cancel code): the session ends (``closed``, no label)
        and whatever was scanned goes back to the shelf; the orders may be packed again later.

        The verdict is ``OK`` with ``detail["abandoned"]``; the close record says so too.
        """
        if self.closing is not None:
            return self._record("abandon", Verdict.NO_SESSION, at_ms, "本包裹已结束", "This parcel is finished", by=by)
        units = self._packed_units()
        zh, en = abandon_text(units)
        self.state, self.stop = "closed", None
        self.closing = {"verdict": Verdict.OK.value, "at_ms": at_ms, "forced_by": by, "reason": reason,
                        "missing": missing_rows(self.bill), "message_zh": zh, "message_en": en, "abandoned": True}
        return self._record("abandon", Verdict.OK, at_ms, zh, en, by=by, reason=reason, abandoned=True)

    def release(self, at_ms: int, *, by: str, reason: str) -> ScanResult:
        """A supervisor's override of a hold (``STOP_NO_STOCK``) or a duplicate-pack stop
        (``ALREADY_PACKED``): the session opens. A refund stop is never released."""
        if self.state == "closed":
            return self._record("release", Verdict.NO_SESSION, at_ms, "本包裹已封箱", "This parcel is closed", by=by)
        if self.stop is None:
            return self._record("release", Verdict.OPENED, at_ms, "包裹已在打包中", "The parcel is already open", by=by)
        if self.stop["verdict"] in _NEVER_RELEASED or not (by.strip() and reason.strip()):
            return self._stopped("release", at_ms, by=by, reason=reason, refused=True)
        self.state, self.stop = "open", None
        who, why = shown(by), shown(reason, 60)
        return self._record("release", Verdict.OPENED, at_ms, f"主管 {who} 放行（{why}）：继续打包",
                            f"Released by {who} ({why}): carry on packing", by=by, reason=reason)

    def weight_check(self, weight_g: int, tolerance_g: int, tolerance_pct: float, *, tare_g: int = 0,
                     at_ms: int = 0) -> ScanResult:
        """Compare the scale with the scanned contents (+ ``tare_g`` for box and filler).

        The allowance is the larger of ``tolerance_g`` and ``tolerance_pct`` % of the expected
        weight. An unknown unit weight cannot be checked: ``OK`` with ``detail["checked"]`` false.
        """
        contents = self.expected_weight_g
        if contents is None:
            return self._record("weight", Verdict.OK, at_ms, "无法核重：有商品缺重量资料",
                                "Weight not checked: a unit weight is unknown", weight_g=weight_g, checked=False)
        expected = contents + tare_g
        allowed = max(tolerance_g, round(expected * tolerance_pct / 100))
        fields: dict[str, Any] = {"weight_g": weight_g, "expected_g": expected, "allowed_g": allowed, "checked": True}
        if abs(weight_g - expected) > allowed:
            return self._record("weight", Verdict.WEIGHT_MISMATCH, at_ms,
                                f"重量不符：称重 {weight_g} g，应为 {expected} g（±{allowed} g），请核对包裹",
                                f"Weight mismatch: {weight_g} g, expected {expected} g (±{allowed} g); "
                                "check the parcel", **fields)
        return self._record("weight", Verdict.OK, at_ms, f"重量正常：{weight_g} g", f"Weight OK: {weight_g} g",
                            **fields)

    def change_operator(self, operator: str, at_ms: int) -> None:
        """Hand the parcel to another badge (recorded in the timeline)."""
        self._event("operator", at_ms, "", previous=self.operator, operator_new=operator)
        self.operator = operator

    def expected(self) -> list[dict[str, Any]]:
        """The outstanding components, as in ``ScanResult.expected``."""
        return missing_rows(self.bill)

    def _closed(self, verdict: Verdict, at_ms: int, zh: str, en: str, missing: list[dict[str, Any]],
                forced_by: str, reason: str) -> ScanResult:
        self.state = "closed"
        self.closing = {"verdict": verdict.value, "at_ms": at_ms, "forced_by": forced_by, "reason": reason,
                        "missing": copy.deepcopy(missing), "message_zh": zh, "message_en": en}
        return self._record("close", verdict, at_ms, zh, en, missing=missing, forced_by=forced_by, reason=reason)

    def _stopped(self, event: str, at_ms: int, **fields: Any) -> ScanResult:
        assert self.stop is not None
        stop = self.stop
        return self._record(event, Verdict(stop["verdict"]), at_ms, stop["message_zh"], stop["message_en"],
                            shortfalls=dict(self.bill.shortfalls), **fields)

    def _event(self, event: str, at_ms: int, verdict: str, **fields: Any) -> dict[str, Any]:
        entry = {"seq": len(self.timeline) + 1, "event": event, "at_ms": at_ms, "operator": self.operator,
                 "verdict": verdict, **{k: copy.deepcopy(v) if isinstance(v, (dict, list)) else v
                                        for k, v in fields.items()}}
        self.timeline.append(entry)
        return entry

    def _record(self, event: str, verdict: Verdict, at_ms: int, zh: str, en: str, **fields: Any) -> ScanResult:
        self._event(event, at_ms, verdict.value, **fields)
        return ScanResult.of(verdict, self.session_id, self.state, zh, en, at_ms, fields, expected=self.expected(),
                             packed_units=self._packed_units(), total_units=self._total_units())


def open_session(session_id: str, station: str, operator: str, tenant: str, bill: Bill, opened_at_ms: int, *,
                 order_states: Mapping[str, str], unit_weights_g: Mapping[str, int | None] | None = None,
                 unknown_skus: Collection[str] = (), hold: Mapping[str, str] | None = None
                 ) -> tuple[PackSession, ScanResult]:
    """Open a pack session on ``bill`` and give the opening verdict.

    Args:
        order_states: each member order's status name (``Status`` values are fine).
        unit_weights_g: unit weight per SKU (``bill.unit_weights_g``) for ``weight_check``.
        unknown_skus: the bill's SKUs the catalog lacks (``bill.unknown_skus``), shown at open.
        hold: a stop of the caller's, after the opening's own (a cross-border order's
            incomplete declaration: ``DECLARATION_INCOMPLETE``, ``gateway._customs``): held.

    Returns:
        The session and ``OPENED``, ``STOP_REFUND``, ``ALREADY_PACKED`` or ``STOP_NO_STOCK``.
    """
    session = PackSession(session_id, station, operator, tenant, bill, opened_at_ms, order_states=order_states,
                          unit_weights_g=unit_weights_g, unknown_skus=unknown_skus)
    members = [*bill.orders, *(o for o in session.order_states if o not in bill.orders)]
    refunded = [o for o in members if session.order_states.get(o) in REFUND_STATES]
    packed = [o for o in members if session.order_states.get(o) in PACKED_STATES]
    fields: dict[str, Any] = {"group_id": bill.group_id, "orders": list(bill.orders),
                              "station": station, "unknown_skus": list(session.unknown_skus)}
    session.stop = opening_stop(refunded, packed, bill.shortfalls, session.order_states) or (
        dict(hold) if hold else None)
    if session.stop is not None:
        session.state = "held" if session.stop["verdict"] in _HELD else "stopped"
        return session, session._stopped("open", opened_at_ms, **fields)
    zh, en = opening_text(len(bill.orders), session._total_units(), session.unknown_skus)
    return session, session._record("open", Verdict.OPENED, opened_at_ms, zh, en, **fields)


__all__ = ["PACKED_STATES", "REFUND_STATES", "PackSession", "ScanResult", "SessionState", "open_session"]
