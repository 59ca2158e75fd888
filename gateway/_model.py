"""The one event model every input is normalised into, and the standard order states.

Status codes are small integers so the accelerated core (``core_ext``) can return them
without building Python objects; ``Status.from_code`` turns them back. The codes are part
of the stored format: append new states at the end, never renumber.

Special codes returned by the core for a raw status it could not map:

* ``CODE_UNKNOWN`` (-1): the raw status is not in the source's mapping rules -> the event
  is quarantined (kept and visible), never dropped.
* ``CODE_MISSING`` (-2): the event has no status field at all -> quarantined as well.
* ``CODE_RESUME`` (100): the rule target ``@resume``: the order returns to the state it
  had before it was put on hold or a refund was opened (e.g. the buyer withdrew the
  refund request).
* ``CODE_NO_CHANGE`` (101): the rule target ``@none``: the event is recorded (fields,
  audit, outbox) but does not change the order status (e.g. "address changed").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Status(enum.StrEnum):
    """Standard order states (DESIGN section 3)."""

    CREATED = "CREATED"
    PAID = "PAID"
    PENDING_REVIEW = "PENDING_REVIEW"
    READY_TO_PACK = "READY_TO_PACK"
    PACKING = "PACKING"
    PACKED = "PACKED"
    SHIPPED = "SHIPPED"
    FULFILLMENT_STARTED = "FULFILLMENT_STARTED"
    IN_TRANSIT = "IN_TRANSIT"
    DELIVERED = "DELIVERED"
    REFUND_INITIATED = "REFUND_INITIATED"
    REFUNDED = "REFUNDED"
    CANCELLED = "CANCELLED"
    ON_HOLD = "ON_HOLD"

    @property
    def code(self) -> int:
        """The stable integer code used by ``core_ext`` and the store."""
        return _CODE_OF[self]

    @classmethod
    def from_code(cls, code: int) -> Status:
        """The state with integer ``code``.

        Raises:
            ValueError: ``code`` is not a state code (special codes included).
        """
        try:
            return _STATUS_OF[code]
        except (IndexError, TypeError) as exc:
            raise ValueError(f"not a status code: {code!r}") from exc


_STATUS_OF: tuple[Status, ...] = tuple(Status)
_CODE_OF: dict[Status, int] = {status: index for index, status in enumerate(_STATUS_OF)}

CODE_UNKNOWN = -1
CODE_MISSING = -2
CODE_RESUME = 100
CODE_NO_CHANGE = 101

#: Rule-file spellings of the pseudo targets.
PSEUDO_TARGETS: dict[str, int] = {"@resume": CODE_RESUME, "@none": CODE_NO_CHANGE}


def target_code(name: str) -> int:
    """The integer code of a rule target: a ``Status`` name or a pseudo target.

    Raises:
        ValueError: ``name`` is neither.
    """
    if name in PSEUDO_TARGETS:
        return PSEUDO_TARGETS[name]
    return Status(name).code


@dataclass(slots=True)
class Event:
    """One normalised input: a webhook message, an ERP row, a logistics push or a scan.

    Attributes:
        tenant: the tenant (seller / shop group) the event belongs to.
        source: the rule-file name of the sender (``douyin``, ``erp``, ``kuaidi100``...).
        source_event_id: the sender's id of this delivery (message id, or a composite the
            rules define where the sender has none).
        order_id: the order key, ``channel|platform order id`` (e.g. ``douyin|691..``);
            empty when the event names only a waybill.
        type: the sender's event type (Douyin tag, TMC topic...) or the source kind.
        raw_status: the raw status exactly as the rules read it (composite parts joined
            with ``|``).
        status_code: a ``Status`` code or one of the special ``CODE_*`` values.
        occurred_at_ms: when the source says it happened (epoch ms, UTC); 0 if unknown.
        received_at_ms: when the gateway received it (epoch ms, UTC).
        fingerprint: ``core_ext.fingerprint`` of the event (de-duplication key).
        buyer_key: ``core_ext`` buyer-group key; 0 when the event names no buyer.
        waybill: carrier waybill number, or empty.
        data: the standard data fields the rules extracted (amounts, lines, receiver...).
        rule: which rule produced the status, ``"douyin.toml@v3:status.101"``.
        raw: the decoded input as the adapter unwrapped it; kept in the event log so
            recorded events can be replayed against other rules.
        release_of: the quarantine seq this event re-processes after a rule fix
            (``gateway._pipeline.quarantine``); 0 for an event as received.
        actor: who caused it when that is a person (a pack station's ``operator:<badge>``
            at ``station:<name>``); ``""`` names the source (``source:<source>``).
        detail: facts about the event that are not order fields (a pack scan's verdict,
            barcode, session): kept in the event log, the audit record and the upstream
            entry (``detail``), never merged into the order's ``data``.
        buyer_aliases: keys of the event's OTHER identities of the kinds an agent searches
            by (a Tmall nick beside the open uid, a phone beside a device id): indexed so
            the after-sales lookup finds the order by them; never used for grouping.

    A value: nothing changes an ``Event`` once built (a release is a
    ``dataclasses.replace`` copy). It is not declared ``frozen`` only because a frozen
    dataclass sets each field through ``object.__setattr__``, which made building one
    (once per event received) ~3x slower.
    """

    tenant: str
    source: str
    source_event_id: str
    order_id: str
    type: str
    raw_status: str
    status_code: int
    occurred_at_ms: int
    received_at_ms: int
    fingerprint: int
    buyer_key: int = 0
    waybill: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    rule: str = ""
    raw: dict[str, Any] | None = None
    release_of: int = 0
    actor: str = ""
    detail: dict[str, Any] | None = None
    buyer_aliases: tuple[int, ...] = ()

    @property
    def status(self) -> Status | None:
        """The mapped standard state, or ``None`` for a special code."""
        if 0 <= self.status_code < len(_STATUS_OF):
            return _STATUS_OF[self.status_code]
        return None

    @property
    def quarantined(self) -> bool:
        """True when the raw status could not be mapped (unknown or missing)."""
        return self.status_code in (CODE_UNKNOWN, CODE_MISSING)


@dataclass(slots=True)
class OrderState:
    """The current, reconciled view of one order; the value of the ``orders`` keyspace.

    Mutable on purpose: the processing step copies it (``copy``), changes the copy and
    hands the copy to the store, so the cached original is untouched until the write
    batch is durable.

    Attributes:
        tenant: owner tenant.
        order_id: ``channel|platform order id``.
        status: current standard state; ``None`` only before the first mapped event.
        resume_status: the state to return to on ``@resume`` (set when the order enters
            ``ON_HOLD`` or ``REFUND_INITIATED``).
        seq: number of events applied to this order (the per-order ``seq`` upstream sees).
        created_at_ms / updated_at_ms: gateway clock, epoch ms.
        last_occurred_at_ms: newest source timestamp applied.
        buyer_key: buyer-group key (0 unknown).
        waybill: carrier waybill number (empty before shipping).
        data: standard data fields (amounts, lines, receiver ...), latest value wins.
        source_status: last raw status seen per source, for cross-system consistency.
        late_events: events recorded but not applied because they would move the order
            backwards or were superseded by a higher version (counted, and each one is in
            the audit trail).
        pack_group: the cross-channel pack group the order ships in (the group's id is
            the order id of its earliest member); ``""`` when it ships alone. Set by the
            processing step (``gateway._pipeline.grouping``).
        source_version: per source, the highest message ``version`` applied to the order
            (Youzan pushes carry one); a lower version from that source is superseded.
    """

    tenant: str
    order_id: str
    status: Status | None = None
    resume_status: Status | None = None
    seq: int = 0
    created_at_ms: int = 0
    updated_at_ms: int = 0
    last_occurred_at_ms: int = 0
    buyer_key: int = 0
    waybill: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    source_status: dict[str, str] = field(default_factory=dict)
    late_events: int = 0
    pack_group: str = ""
    source_version: dict[str, int | float] = field(default_factory=dict)

    def copy(self) -> OrderState:
        """A copy safe to mutate (``data``, ``source_status`` and ``source_version`` are copied too)."""
        return OrderState(
            self.tenant, self.order_id, self.status, self.resume_status, self.seq,
            self.created_at_ms, self.updated_at_ms, self.last_occurred_at_ms, self.buyer_key,
            self.waybill, dict(self.data), dict(self.source_status), self.late_events,
            self.pack_group, dict(self.source_version),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (states as their names)."""
        return {
            "tenant": self.tenant,
            "order_id": self.order_id,
            "status": self.status.value if self.status else None,
            "resume_status": self.resume_status.value if self.resume_status else None,
            "seq": self.seq,
            "created_at_ms": self.created_at_ms,
            "updated_at_ms": self.updated_at_ms,
            "last_occurred_at_ms": self.last_occurred_at_ms,
            "buyer_key": self.buyer_key,
            "waybill": self.waybill,
            "data": self.data,
            "source_status": self.source_status,
            "late_events": self.late_events,
            "pack_group": self.pack_group,
            "source_version": self.source_version,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> OrderState:
        """Inverse of ``to_dict``; records written before a field existed get its default."""
        return cls(
            tenant=raw["tenant"],
            order_id=raw["order_id"],
            status=Status(raw["status"]) if raw.get("status") else None,
            resume_status=Status(raw["resume_status"]) if raw.get("resume_status") else None,
            seq=raw.get("seq", 0),
            created_at_ms=raw.get("created_at_ms", 0),
            updated_at_ms=raw.get("updated_at_ms", 0),
            last_occurred_at_ms=raw.get("last_occurred_at_ms", 0),
            buyer_key=raw.get("buyer_key", 0),
            waybill=raw.get("waybill", ""),
            data=raw.get("data") or {},
            source_status=raw.get("source_status") or {},
            late_events=raw.get("late_events", 0),
            pack_group=raw.get("pack_group") or "",
            source_version=raw.get("source_version") or {},
        )
