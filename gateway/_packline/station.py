"""One pack station: its scans become verdicts, durable before they are shown.

A station handles one thing at a time, in arrival order: a scan from one of its scanners,
or an interrupt (an order of its open session changed: a refund, a cancel, a refunded
line). What a scan is, in this order:

1. unreadable (the driver's ``Scan.error``) -> ``UNKNOWN_BARCODE``, never a crash;
2. a badge: ``[packline] badge_prefix`` signs an operator in; ``supervisor_prefix`` arms a
   supervisor override for ``OVERRIDE_S`` (the next close code forces a partial close,
   recorded with the supervisor's badge and the reason "forced at station");
3. a control code: ``close_code``, ``cancel_code`` (abandon the open session: its orders go
   back to ``READY_TO_PACK``), ``reprint_code`` (a new job for the last label);
4. with a session open: a catalog product -> the session's verdict (``OK``, ``WRONG_ITEM``,
   ``EXTRA``, ``DUPLICATE_UNIT``...); with ``close_mode = "next_order"`` an order barcode
   closes the open session first;
5. an order id (with or without its channel: ``douyin|69..`` or ``69..``) or a waybill ->
   opens a session for the order's pack group (``OPENED``, or ``STOP_REFUND``,
   ``ALREADY_PACKED``, ``STOP_NO_STOCK``, ``DECLARATION_INCOMPLETE`` when it must not be packed);
6. anything else -> ``UNKNOWN_BARCODE`` (or ``NO_SESSION`` for a product with no session).

No scan without an operator: before a badge, scans answer ``NOT_SIGNED_IN``.

Every verdict is committed through the pipeline at station priority (the outbox reserve)
before the display shows it: one event per order it concerns (``pack_open`` moves the group
to ``PACKING``, ``packed`` to ``PACKED``, ``pack_scan`` and ``pack_exception`` change no
status; each with ``actor = operator:<badge>@station:<name>`` and the verdict in
``detail``), and in the same write batch the session record, so a gateway killed
mid-session resumes it at the next start. A scan that concerns no order (a badge, an
unknown code with no session) is an audit record of the pack-line tenant.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import xxhash

from devices.scan import Scan
from gateway._model import CODE_NO_CHANGE, Event, OrderState, Status
from gateway._packline.values import Verdict
from gateway._store import StepWrite

log = logging.getLogger(__name__)

#: A supervisor badge arms an override for this long.
OVERRIDE_S = 60.0
#: Statuses after which an order must not be packed (again).
WITHDRAWN = frozenset({Status.REFUND_INITIATED, Status.REFUNDED, Status.CANCELLED})
#: The channels an order barcode without one is tried on, in order.
CHANNELS = ("douyin", "tmall", "pinduoduo", "xiaohongshu", "youzan", "jd", "erp")


def event_fingerprint(*parts: object) -> int:
    """A stable fingerprint for a station event (``xxh64`` of its identity)."""
    return xxhash.xxh64_intdigest("|".join(str(p) for p in ("station", *parts)).encode())


def station_event(tenant: str, station: str, operator: str, order_id: str, kind: str, status: Status | None,
                  identity: str, at_ms: int, now_ms: int, detail: dict[str, Any]) -> Event:
    """One pipeline event of the station (see the module docstring)."""
    return Event(
        tenant=tenant, source="station", source_event_id=identity, order_id=order_id, type=kind,
        raw_status=str(detail.get("verdict", kind)), status_code=status.code if status else CODE_NO_CHANGE,
        occurred_at_ms=at_ms, received_at_ms=now_ms, fingerprint=event_fingerprint(identity, order_id),
        rule="station@builtin", actor=f"operator:{operator or '-'}@station:{station}", detail=detail,
    )


def station_audit(tenant: str, station: str, operator: str, at_ms: int, verdict: str, detail: dict[str, Any],
                  order_id: str = "") -> dict[str, Any]:
    """An audit record for a station verdict that concerns no order event."""
    return {"tenant": tenant, "at_ms": at_ms, "actor": f"operator:{operator or '-'}@station:{station}",
            "source": "station", "event_id": "", "rule": "station@builtin", "order_id": order_id,
            "decision": "station_scan", "changes": [], "note": verdict, "detail": detail}


@dataclass
class Outcome:
    """What one scan or interrupt produced: the verdict to show and what to commit first."""

    verdict: Verdict
    message_zh: str
    message_en: str
    code: str = ""
    component_id: str | None = None
    events: list[Event] = field(default_factory=list)
    extra: StepWrite = field(default_factory=StepWrite)
    after: list[Callable[[], None]] = field(default_factory=list)  # run once durable (queue a label...)
    detail: dict[str, Any] = field(default_factory=dict)

    def view(self, at_ms: int) -> dict[str, Any]:
        return {"verdict": self.verdict.value, "message_zh": self.message_zh, "message_en": self.message_en,
                "code": self.code, "component_id": self.component_id, "at_ms": at_ms, "alarm": self.verdict.alarm,
                **({"detail": self.detail} if self.detail else {})}


def classify(scan: Scan, *, badge_prefix: str, supervisor_prefix: str, close_code: str, cancel_code: str,
             reprint_code: str) -> str:
    """``unreadable``, ``badge``, ``supervisor``, ``close``, ``cancel``, ``reprint`` or ``code``."""
    if scan.error is not None or not scan.text.strip():
        return "unreadable"
    text = scan.text.strip()
    if close_code and text == close_code:
        return "close"
    if cancel_code and text == cancel_code:
        return "cancel"
    if reprint_code and text == reprint_code:
        return "reprint"
    if supervisor_prefix and text.startswith(supervisor_prefix) and len(text) > len(supervisor_prefix):
        return "supervisor"
    if badge_prefix and text.startswith(badge_prefix) and len(text) > len(badge_prefix):
        return "badge"
    return "code"


def order_candidates(code: str) -> list[str]:
    """The order keys an order barcode may stand for: itself when it names its channel,
    else ``<channel>|<code>`` for each of ``CHANNELS``."""
    text = code.strip()
    if "|" in text:
        return [text]
    return [f"{channel}|{text}" for channel in CHANNELS]


def group_members(order: OrderState, buyer_orders: Callable[[str, int, int], list[tuple[int, str]]],
                  get_order: Callable[[str, str], OrderState | None]) -> list[OrderState]:
    """The orders of ``order``'s pack group, primary (the group id) first, then by first
    seen; just ``[order]`` when it ships alone."""
    group = order.pack_group
    if not group or not order.buyer_key:
        return [order]
    members: dict[str, OrderState] = {order.order_id: order}
    for _, order_id in buyer_orders(order.tenant, order.buyer_key, 0):
        other = get_order(order.tenant, order_id)
        if other is not None and other.pack_group == group:
            members[order_id] = other
    ordered = sorted(members.values(), key=lambda o: (o.order_id != group, o.created_at_ms, o.order_id))
    return ordered


__all__ = ["CHANNELS", "OVERRIDE_S", "WITHDRAWN", "Outcome", "classify", "event_fingerprint", "group_members",
           "order_candidates", "station_audit", "station_event"]
