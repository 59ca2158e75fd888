"""The after-sales view's value types: a buyer's orders, each component's status and its proof.

Plain frozen values built by ``gateway._ops_lookup.lookup`` and ``gateway._ops_lookup.proof``
and turned into JSON by ``to_dict``. Every text an agent reads comes twice: ``*_zh``
(zh-CN, shown by default) and ``*_en``. A phone number never appears in any of them: the
lookup echoes it masked (``138****8000``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

#: What the after-sales view says a component is doing, in the order of a parcel's life.
ComponentState = Literal["pending", "held", "stopped", "packing", "missing", "packed", "shipped", "removed"]

#: Which identifier found the buyer.
MatchedBy = Literal["phone", "order_id", "waybill", "nick"]


@dataclass(frozen=True, slots=True)
class ScanProof:
    """One OK scan of a component, tied to the NVR clip that filmed it.

    Attributes:
        session_id / station / operator: the pack session, where and by whom.
        scanned_at_ms: when the unit was scanned (gateway clock, epoch ms).
        code: the barcode scanned.
        offset_s: seconds from the clip's first frame to the scan (``None``: no clip yet).
        playback_uri: the NVR segment that shows the scan, as the NVR wrote it.
        segment_offset_s: seconds into that segment.
        clip_at_uri: the segment's playback URI trimmed to start at the second of the
            scan: open it and the scan is the first thing shown.
        clip_complete: the clip has no recording gap (``None``: no clip).
        evidence_pending: the session's clip is still being searched on the NVR.
    """

    session_id: str
    station: str
    operator: str
    scanned_at_ms: int
    code: str = ""
    offset_s: float | None = None
    playback_uri: str | None = None
    segment_offset_s: float | None = None
    clip_at_uri: str | None = None
    clip_complete: bool | None = None
    evidence_pending: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ComponentView:
    """One component of an order (an order line, a kit part, a gift, a gift box, a trial kit).

    Attributes:
        component_id: ``<order_id>#<n>``, as the pack line's bill numbers it.
        sku / name / kind / origin / quantity / packed: as in the bill.
        parcel: 1 = the first parcel; 2, 3 ... a later one.
        state: see ``ComponentState``.
        waybill: the waybill it left with (or will leave with), ``""`` when none yet.
        batch: the pre-sale batch the order line names (``"parcel": N``), 0 when none.
        text_zh / text_en: the status in words, e.g. ``试用装 已随 SF123 发出``.
        highlight: the lookup's keyword matches it.
        scans: the OK scans of its units, with their clip references.
        snapshot: the snapshot taken when its parcel was closed (``path``, ``sha256``,
            ``bytes``), ``None`` when there is none.
    """

    component_id: str
    order_id: str
    sku: str
    name: str
    kind: str
    origin: str
    quantity: int
    packed: int
    parcel: int
    state: ComponentState
    waybill: str
    batch: int
    text_zh: str
    text_en: str
    highlight: bool = False
    scans: tuple[ScanProof, ...] = ()
    snapshot: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__slots__ if name not in ("scans", "snapshot")}
        data["scans"] = [scan.to_dict() for scan in self.scans]
        data["snapshot"] = dict(self.snapshot) if self.snapshot else None
        return data


@dataclass(frozen=True, slots=True)
class SessionRef:
    """A pack session that packed (or is packing) the order, with its evidence.

    Attributes:
        state / verdict: the session's state and its close verdict (``CLOSED``,
            ``PARTIAL_CLOSE``; ``""`` while open).
        clip: the clip reference (``start_ms``, ``end_ms``, ``complete``, ``segments``) or ``None``.
        snapshot: the snapshot at close (``path``, ``sha256``, ``bytes``) or ``None``.
        evidence: ``found``, ``pending`` (the NVR is searched again), or ``none`` (the
            station has no camera, or the session is still open).
    """

    session_id: str
    station: str
    operator: str
    opened_at_ms: int
    closed_at_ms: int
    state: str
    verdict: str
    clip: dict[str, Any] | None = None
    snapshot: dict[str, Any] | None = None
    evidence: Literal["found", "pending", "none"] = "none"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class OrderView:
    """One order as the after-sales agent sees it.

    Attributes:
        channel / platform_order_id: the two halves of ``order_id`` (``douyin|691...``).
        status / status_zh / status_en: the standard state and its words.
        first_seen_ms: when the gateway first saw the order (the buyer index's time; the
            30-day window is counted on it).
        paid_at_ms: when it was paid, when a source reports it (``data.paid_at_ms``),
            else ``None``.
        amounts: the order's amount fields in yuan (``amount``, ``pay_amount``, ``refund_amount``).
        waybills: the order's waybill and its parcels' waybills, first one first.
    """

    order_id: str
    channel: str
    platform_order_id: str
    status: str
    status_zh: str
    status_en: str
    first_seen_ms: int
    updated_at_ms: int
    paid_at_ms: int | None
    amounts: dict[str, float]
    waybills: tuple[str, ...]
    pack_group: str
    components: tuple[ComponentView, ...]
    sessions: tuple[SessionRef, ...]

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__slots__ if name not in ("components", "sessions")}
        data["waybills"] = list(self.waybills)
        data["components"] = [c.to_dict() for c in self.components]
        data["sessions"] = [s.to_dict() for s in self.sessions]
        return data


@dataclass(frozen=True, slots=True)
class BuyerLookup:
    """The answer to "what did this buyer order, and where is each thing?".

    Attributes:
        matched_by / query: which identifier was given, as echoed (a phone masked).
        buyer_keys: the buyer-group keys the orders were found under (as strings: JSON
            readers lose precision on 64-bit integers).
        since_ms / now_ms: the window (orders first seen at or after ``since_ms``).
        orders: newest first.
        keyword / highlighted: the keyword and how many components it marked.
        notes_zh / notes_en: what the agent should know (an order found but outside the
            window, a shared identity ...).
    """

    tenant: str
    matched_by: MatchedBy
    query: str
    buyer_keys: tuple[str, ...]
    since_ms: int
    now_ms: int
    orders: tuple[OrderView, ...]
    keyword: str = ""
    highlighted: int = 0
    notes_zh: tuple[str, ...] = field(default=())
    notes_en: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "matched_by": self.matched_by, "query": self.query,
                "buyer_keys": list(self.buyer_keys), "since_ms": self.since_ms, "now_ms": self.now_ms,
                "keyword": self.keyword, "highlighted": self.highlighted,
                "notes_zh": list(self.notes_zh), "notes_en": list(self.notes_en),
                "orders": [order.to_dict() for order in self.orders]}


__all__ = ["BuyerLookup", "ComponentState", "ComponentView", "MatchedBy", "OrderView", "ScanProof", "SessionRef"]
