"""The standard order state machine: an explicit transition table, and the decision rule.

Orders move forward through the fulfilment flow::

    CREATED -> PAID -> PENDING_REVIEW -> READY_TO_PACK -> PACKING -> PACKED
            -> SHIPPED -> FULFILLMENT_STARTED -> IN_TRANSIT -> DELIVERED

Systems report at different speeds, so a state may be skipped (the carrier's "picked up"
can arrive before the seller's "shipped"): every forward jump is listed explicitly in
``TRANSITIONS``. Side states:

* ``ON_HOLD`` (review hold, address problem) and ``REFUND_INITIATED`` remember the state
  they interrupted (``OrderState.resume_status``); the rule target ``@resume`` returns
  there (a withdrawn refund request, a released hold).
* ``REFUNDED`` and ``CANCELLED`` are terminal, but a delivered order may still open a refund
  (after-sale return).
* ``PACKING -> READY_TO_PACK`` is the one backward edge: an aborted pack session.

Anything not in the table is *late or out of order* (a "paid" push arriving after the
carrier's pickup, a "shipped" after "delivered"). Such an event never moves the order
backwards: ``decide`` returns ``Decision.LATE``, the caller records it in the audit trail
and counts it (``OrderState.late_events`` and a metric), and still fills data fields that
are empty on the order (a late "shipped" push may carry the only copy of the waybill).

The first event of an order that has never been seen is accepted in whatever state it
names: the gateway often meets an order mid-flow (it was installed after the order was
placed, or the thin platform push arrives before the ERP's full order).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from gateway._model import CODE_NO_CHANGE, CODE_RESUME, Status

S = Status

_FLOW: tuple[Status, ...] = (
    S.CREATED, S.PAID, S.PENDING_REVIEW, S.READY_TO_PACK, S.PACKING, S.PACKED,
    S.SHIPPED, S.FULFILLMENT_STARTED, S.IN_TRANSIT, S.DELIVERED,
)


def _after(state: Status) -> frozenset[Status]:
    return frozenset(_FLOW[_FLOW.index(state) + 1:])


#: Holding states remember where the order was; ``@resume`` returns there.
HOLDING: frozenset[Status] = frozenset({S.ON_HOLD, S.REFUND_INITIATED})

#: Before the parcel leaves the warehouse an order can still be cancelled or held
#: (the refund interception guard stops a parcel in these states).
PRE_SHIP: frozenset[Status] = frozenset(
    {S.CREATED, S.PAID, S.PENDING_REVIEW, S.READY_TO_PACK, S.PACKING, S.PACKED}
)

#: The explicit table: ``TRANSITIONS[current]`` is every state the order may move to.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.CREATED: _after(S.CREATED) | {S.CANCELLED, S.ON_HOLD},
    S.PAID: _after(S.PAID) | {S.REFUND_INITIATED, S.CANCELLED, S.ON_HOLD},
    S.PENDING_REVIEW: _after(S.PENDING_REVIEW) | {S.REFUND_INITIATED, S.CANCELLED, S.ON_HOLD},
    S.READY_TO_PACK: _after(S.READY_TO_PACK) | {S.REFUND_INITIATED, S.CANCELLED, S.ON_HOLD},
    S.PACKING: _after(S.PACKING) | {S.READY_TO_PACK, S.REFUND_INITIATED, S.CANCELLED, S.ON_HOLD},
    S.PACKED: _after(S.PACKED) | {S.REFUND_INITIATED, S.CANCELLED, S.ON_HOLD},
    S.SHIPPED: _after(S.SHIPPED) | {S.REFUND_INITIATED},
    S.FULFILLMENT_STARTED: _after(S.FULFILLMENT_STARTED) | {S.REFUND_INITIATED},
    S.IN_TRANSIT: _after(S.IN_TRANSIT) | {S.REFUND_INITIATED},
    S.DELIVERED: frozenset({S.REFUND_INITIATED}),
    S.ON_HOLD: frozenset({S.PENDING_REVIEW, S.READY_TO_PACK, S.REFUND_INITIATED, S.CANCELLED}),
    S.REFUND_INITIATED: frozenset({S.REFUNDED, S.CANCELLED, S.ON_HOLD}),
    S.REFUNDED: frozenset(),
    S.CANCELLED: frozenset(),
}


class Decision(enum.Enum):
    """What applying one event's target does to an order."""

    NEW = "new"              # first event of an unknown order: accepted as is
    APPLIED = "applied"      # the status moves along a listed edge
    UNCHANGED = "unchanged"  # same status or ``@none``: data fields only
    LATE = "late"            # not in the table: recorded and counted, status kept


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of ``decide``.

    Attributes:
        decision: see ``Decision``.
        status: the order's status after the event (unchanged for LATE/UNCHANGED).
        resume_status: the order's ``resume_status`` after the event.
        refused: for LATE, the state the event asked for (``@resume`` reported as the
            state it would have resumed to, or ``None`` when there was nothing to resume).
    """

    decision: Decision
    status: Status | None
    resume_status: Status | None
    refused: Status | None = None


def can_transition(current: Status, target: Status) -> bool:
    """True when ``current -> target`` is listed in ``TRANSITIONS``."""
    return target in TRANSITIONS[current]


def decide(current: Status | None, resume_status: Status | None, target_code: int) -> Verdict:
    """Decide what one event does to an order. Pure: no I/O, no mutation.

    Args:
        current: the order's status, ``None`` for an order never seen.
        resume_status: the order's remembered pre-hold state.
        target_code: a ``Status`` code, ``CODE_RESUME`` or ``CODE_NO_CHANGE``.

    Returns:
        The verdict; the caller applies it and writes the audit record.

    Raises:
        ValueError: ``target_code`` is a quarantine code (unknown/missing status): those
            events never reach the state machine.
    """
    if target_code == CODE_NO_CHANGE:
        return Verdict(Decision.UNCHANGED, current, resume_status)
    if target_code == CODE_RESUME:
        if current in HOLDING and resume_status is not None:
            return Verdict(Decision.APPLIED, resume_status, None)
        return Verdict(Decision.LATE, current, resume_status, refused=resume_status)
    target = Status.from_code(target_code)
    if current is None:
        return Verdict(Decision.NEW, target, None)
    if target == current:
        return Verdict(Decision.UNCHANGED, current, resume_status)
    if target not in TRANSITIONS[current]:
        return Verdict(Decision.LATE, current, resume_status, refused=target)
    if target in HOLDING and current not in HOLDING:
        resume_status = current
    elif target not in HOLDING:
        resume_status = None
    return Verdict(Decision.APPLIED, target, resume_status)


__all__ = ["HOLDING", "PRE_SHIP", "TRANSITIONS", "Decision", "Verdict", "can_transition", "decide"]
