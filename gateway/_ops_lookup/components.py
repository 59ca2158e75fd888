"""Each component of an order, its state, and the scans that prove it. Pure.

``order_components`` takes an order and what the pack line stored about it
(``gateway._ops_lookup.records.PackRecords``) and returns its components and sessions as the
after-sales view shows them.

Where the components come from: the newest pack session of the order that was not
abandoned (its bill is the one the parcel was packed against, component ids included);
before any session, the bill is rebuilt with ``build_bill`` from the order's data, the
catalog entries of its SKUs and the gifts its plan granted: the same inputs give the same
component ids (``gateway._packline.bill``), so a scan found later still points at them.

How a component's state is decided, first match wins::

    status "removed" in the bill, or the order withdrawn before packing  removed
    status "shipped" in the bill (with its waybill)                        shipped
    a later parcel (2, 3 ...)                                              pending (batch N / parcel N)
    no session                       order shipped by the ERP: shipped; else pending
    session open / held / stopped                                          packing / held / stopped
    session closed: all units scanned   waybill and order shipped: shipped; else packed
                    units short (a supervisor's partial close)             missing

The parcel's waybill is the parcel record's (the pack line copies the order's waybill into
it when it arrives) or else the order's own.

Evidence: every OK scan of the component in every session of the order becomes a
``ScanProof``; when the session's evidence record is there, the scan carries its offset into
the clip and a playback URI trimmed to start at the second of the scan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from devices.isapi import trim_playback_uri
from gateway._model import OrderState, Status
from gateway._ops_lookup.records import PackRecords
from gateway._ops_lookup.texts import component_label, keyword_matches, state_words
from gateway._ops_lookup.values import ComponentState, ComponentView, ScanProof, SessionRef
from gateway._packline.bill import build_bill
from gateway._packline.values import BillComponent, Catalog, GiftGrant

#: Order states after the parcel left the warehouse.
SHIPPED_STATES = frozenset({Status.SHIPPED, Status.FULFILLMENT_STARTED, Status.IN_TRANSIT, Status.DELIVERED})
#: Order states that withdraw it before shipping.
WITHDRAWN_STATES = frozenset({Status.REFUND_INITIATED, Status.REFUNDED, Status.CANCELLED})


def order_components(order: OrderState, records: PackRecords, keyword: str = ""
                     ) -> tuple[tuple[ComponentView, ...], tuple[SessionRef, ...]]:
    """The order's components (bill order) and the sessions that packed it (oldest first)."""
    live = [s for s in records.sessions if not (s.get("closing") or {}).get("abandoned")]
    session = live[-1] if live else None
    if session is not None:
        bill = [BillComponent.from_dict(c) for c in session["bill"]["components"] if c["order_id"] == order.order_id]
    else:
        bill = _rebuilt_bill(order, records)
    waybill = _parcel_waybill(order, records, session)
    scans = _scans_by_component(order.order_id, live, records)
    views = []
    for component in bill:
        product = records.products.get(component.sku)
        name = component.name or (product.name if product is not None else "")
        state = _state(component, order, session, waybill)
        shown_waybill = component.waybill or (waybill if state in ("packed", "shipped") else "")
        stop = (session or {}).get("stop") or {}
        zh_state, en_state = state_words(
            state, parcel=component.parcel, waybill=shown_waybill, batch=_batch(order, component),
            packed=component.packed, quantity=component.quantity, station=(session or {}).get("station", ""),
            stop_zh=stop.get("message_zh", ""), stop_en=stop.get("message_en", ""),
            order_withdrawn=order.status in WITHDRAWN_STATES)
        zh_label, en_label = component_label(name, component.kind, component.quantity)
        proofs = scans.get(component.component_id, ())
        snapshot = _snapshot_of(proofs, records)
        views.append(ComponentView(
            component.component_id, component.order_id, component.sku, name, component.kind, component.origin,
            component.quantity, component.packed, component.parcel, state, shown_waybill,
            _batch(order, component), f"{zh_label} {zh_state}", f"{en_label} {en_state}",
            keyword_matches(keyword, sku=component.sku, name=name, kind=component.kind, origin=component.origin),
            proofs, snapshot))
    return tuple(views), tuple(_session_ref(s, records) for s in live)


def _rebuilt_bill(order: OrderState, records: PackRecords) -> list[BillComponent]:
    """The order's part of its bill, rebuilt: lines, ERP gifts and gift box, planned gifts."""
    grants = [GiftGrant(str(gift.get("rule", "")), order.order_id, str(gift["sku"]), int(gift.get("quantity", 1)),
                        "later" if int(gift.get("parcel", 1)) > 1 else "now")
              for gift in (records.plan or {}).get("gifts", ())
              if isinstance(gift, dict) and gift.get("order_id") == order.order_id and gift.get("sku")]
    bill = build_bill(records.group_id, [order], Catalog(records.products.values()), grants, None)
    return bill.components


def _parcel_waybill(order: OrderState, records: PackRecords, session: Mapping[str, Any] | None) -> str:
    parcel = records.parcel
    if parcel is not None and session is not None and parcel.get("session_id") == session.get("session_id"):
        return str(parcel.get("waybill") or order.waybill)
    return order.waybill


def _state(component: BillComponent, order: OrderState, session: Mapping[str, Any] | None,
           waybill: str) -> ComponentState:
    if component.status == "removed":
        return "removed"
    if component.status == "shipped":
        return "shipped"
    if component.parcel > 1:
        return "pending"
    if session is None:
        if order.status in WITHDRAWN_STATES:
            return "removed"
        return "shipped" if order.status in SHIPPED_STATES and order.waybill else "pending"
    state = session.get("state", "")
    if state == "open":
        return "packing"
    if state in ("held", "stopped"):
        return "held" if state == "held" else "stopped"
    if component.packed < component.quantity:
        return "missing"
    return "shipped" if waybill and order.status in SHIPPED_STATES else "packed"


def _batch(order: OrderState, component: BillComponent) -> int:
    """The pre-sale batch (``"parcel": N`` on the order line) of a line's component, else 0."""
    if component.parcel <= 1 or not (component.origin == "line" or component.origin.startswith("kit:")):
        return 0
    sku = component.origin[4:] if component.origin.startswith("kit:") else component.sku
    for line in order.data.get("lines") or ():
        if isinstance(line, dict) and line.get("sku") == sku:
            batch = _whole(line.get("parcel"))
            if batch is not None and batch > 1:
                return batch
    return 0


def _whole(value: object) -> int | None:
    """``2``, ``2.0`` or ``"2"`` as 2 (the ERP's JSON is loose about numbers), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value) < 12:
        return int(value)
    return None


def _scans_by_component(order_id: str, sessions: Sequence[Mapping[str, Any]], records: PackRecords
                        ) -> dict[str, tuple[ScanProof, ...]]:
    """Every OK scan of the order's components, with the clip reference where there is one."""
    found: dict[str, list[ScanProof]] = {}
    for session in sessions:
        session_id = session["session_id"]
        evidence = records.evidence.get(session_id)
        clip = (evidence or {}).get("clip") or None
        if evidence is not None:
            entries = evidence.get("scans", ())
        else:
            entries = [e for e in session.get("timeline", ()) if e.get("event") == "scan"]
        for entry in entries:
            cid = entry.get("component_id")
            if entry.get("verdict") != "OK" or not cid or not str(cid).startswith(order_id + "#"):
                continue
            uri = entry.get("playback_uri")
            segment_offset = entry.get("segment_offset_s")
            found.setdefault(cid, []).append(ScanProof(
                session_id, str(session.get("station", "")), str(entry.get("operator") or session.get("operator", "")),
                int(entry.get("at_ms", 0)), str(entry.get("code", "")), entry.get("offset_s"), uri, segment_offset,
                clip_at_second(uri, segment_offset), bool(clip["complete"]) if clip else None,
                session_id in records.pending))
    return {cid: tuple(proofs) for cid, proofs in found.items()}


def clip_at_second(playback_uri: str | None, segment_offset_s: float | None) -> str | None:
    """``playback_uri`` (a segment, NVR clock) trimmed to start at the whole second
    ``segment_offset_s`` into it; ``None`` when either is missing or the URI has no times."""
    if not playback_uri or segment_offset_s is None:
        return None
    times = dict(part.split("=", 1) for part in playback_uri.partition("?")[2].split("&") if "=" in part)
    lowered = {key.lower(): value for key, value in times.items()}
    start, end = _compact_time(lowered.get("starttime")), _compact_time(lowered.get("endtime"))
    if start is None or end is None:
        return None
    at = min(end, start + timedelta(seconds=int(max(0.0, segment_offset_s))))
    return trim_playback_uri(playback_uri, at, end)


def _compact_time(text: str | None) -> datetime | None:
    """``20261125T100000Z`` (ISAPI's compact UTC time) as a datetime; ``None`` if it is not one
    (``strptime`` would cost a tenth of a lookup)."""
    if text is None or len(text) != 16 or text[8] != "T" or text[15] != "Z" or not (text[:8] + text[9:15]).isdigit():
        return None
    try:
        return datetime(int(text[:4]), int(text[4:6]), int(text[6:8]), int(text[9:11]), int(text[11:13]),
                        int(text[13:15]), tzinfo=UTC)
    except ValueError:
        return None


def _snapshot_of(proofs: Sequence[ScanProof], records: PackRecords) -> dict[str, Any] | None:
    """The snapshot at close of the session that scanned the component last."""
    for proof in reversed(proofs):
        snapshot = (records.evidence.get(proof.session_id) or {}).get("snapshot")
        if snapshot:
            return dict(snapshot)
    return None


def _session_ref(session: Mapping[str, Any], records: PackRecords) -> SessionRef:
    session_id = session["session_id"]
    evidence = records.evidence.get(session_id)
    closing = session.get("closing") or {}
    found: Literal["found", "pending", "none"] = (
        "found" if evidence is not None else ("pending" if session_id in records.pending else "none"))
    return SessionRef(session_id, str(session.get("station", "")), str(session.get("operator", "")),
                      int(session.get("opened_at_ms", 0)), int(session.get("closed_at_ms") or 0),
                      str(session.get("state", "")), str(closing.get("verdict", "")),
                      (evidence or {}).get("clip"), (evidence or {}).get("snapshot"), found)


__all__ = ["SHIPPED_STATES", "WITHDRAWN_STATES", "clip_at_second", "order_components"]
