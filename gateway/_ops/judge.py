"""Judging one order, pure: does every system agree on it, was it fresh, can its audit trail
rebuild it. Values in, values out; ``gateway._ops.scan`` feeds it every order of a tenant.

**Consistency.** ``OrderState.source_status`` keeps the last raw status each system reported
(``{"douyin": "206", "erp": "READY_TO_PACK"}``). Each is mapped through the *live* rules
(``StatusReader``: the source's ``StatusMap``, wildcards included). A raw status that maps to
no state (``@none``, ``@resume``, unknown now, or a source without a rule file such as the pack
stations' ``station``) states nothing and is left out. Systems legitimately stand at different
points of the same flow (the platform says paid while the ERP is packing), so "agree" is not
equality; two statements *disagree* when one of them would act wrongly on the other's truth:

=========================  ===================================================  =======================
code                       one system says                                      another says
=========================  ===================================================  =======================
``withdrawn_vs_preparing``  REFUND_INITIATED, REFUNDED or CANCELLED             CREATED .. PACKED
``cancelled_vs_shipped``   CANCELLED                                            SHIPPED .. DELIVERED
=========================  ===================================================  =======================

A refund after shipping (the platform says REFUNDED, the carrier DELIVERED) is an ordinary
return, not a disagreement. ON_HOLD agrees with everything.

**Freshness.** ``lag = updated_at_ms - last_occurred_at_ms``: how long after the newest source
time the order carries the gateway last wrote it (gateway clock against source clock). Fresh
when ``lag <= freshness_s``; a negative lag (a source clock ahead of ours) is fresh. An order
without a source time (``last_occurred_at_ms == 0``) is not judged. A later write that is not a
source event (a late event, a pack-group change) moves ``updated_at_ms`` too: such an order can
only look staler than it is, never fresher.

**Traceability** (the digest). Every field change the pipeline makes is listed in the order's
audit record as ``{"field", "old", "new"}`` (``status``, ``resume_status``, ``waybill``,
``buyer_key``, ``pack_group``, ``data.<name>``). With ``h(field, value)`` a 64-bit hash,
``sum(h(f, new) - h(f, old))`` over an order's changes telescopes to
``sum(h(f, current) - h(f, empty))``: one integer per order, computed once from the audit chain
(``changes_digest``) and once from the stored order (``order_digest``). They are equal exactly
when the chain of recorded changes leads from nothing to what is stored, i.e. no change is
missing from the trail (up to a 2**-64 collision).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import xxhash

from gateway._model import Status
from gateway._rules import RuleSet

S = Status
WITHDRAWN: frozenset[Status] = frozenset({S.REFUND_INITIATED, S.REFUNDED, S.CANCELLED})
PREPARING: frozenset[Status] = frozenset({S.CREATED, S.PAID, S.PENDING_REVIEW, S.READY_TO_PACK, S.PACKING,
                                          S.PACKED})
SHIPPED: frozenset[Status] = frozenset({S.SHIPPED, S.FULFILLMENT_STARTED, S.IN_TRANSIT, S.DELIVERED})
#: Paid and not yet shipped: what ``unshipped_24h`` watches.
PAID_UNSHIPPED: frozenset[str] = frozenset(s.value for s in PREPARING - {S.CREATED})

_MASK = (1 << 64) - 1
_SORTED = orjson.OPT_SORT_KEYS
_EMPTY_AS_NONE = frozenset({"waybill", "pack_group", "buyer_key", "status", "resume_status"})
_STATUS_COUNT = len(Status)


class StatusReader:
    """Raw statuses of each source mapped through one rule set, memoised (one scan's worth).

    Args:
        rules: the live rule set (``RuleHolder.current``).
    """

    def __init__(self, rules: RuleSet) -> None:
        self._rules = rules
        self._known: dict[tuple[str, str], Status | None] = {}

    def status(self, source: str, raw_status: str) -> Status | None:
        """The state ``raw_status`` of ``source`` maps to, ``None`` when it states none."""
        key = (source, raw_status)
        try:
            return self._known[key]
        except KeyError:
            pass
        rules = self._rules.get(source)
        code = rules.spec.status_map.lookup(raw_status) if rules is not None else -1
        found = Status.from_code(code) if 0 <= code < _STATUS_COUNT else None
        self._known[key] = found
        return found

    def views(self, source_status: Mapping[str, str]) -> dict[str, Status]:
        """``{source: state}`` of the sources whose last raw status states one."""
        found = {}
        for source, raw in source_status.items():
            status = self.status(source, raw) if isinstance(raw, str) else None
            if status is not None:
                found[source] = status
        return found


def disagreement(views: Mapping[str, Status]) -> tuple[str, str, str] | None:
    """``(code, source_a, source_b)`` of the first disagreement (see the module docstring),
    ``None`` when every system agrees. Sources are compared in name order (stable)."""
    if len(views) < 2:
        return None
    ordered = sorted(views.items())
    for source, status in ordered:
        if status in WITHDRAWN:
            for other, other_status in ordered:
                if other_status in PREPARING:
                    return "withdrawn_vs_preparing", source, other
        if status is S.CANCELLED:
            for other, other_status in ordered:
                if other_status in SHIPPED:
                    return "cancelled_vs_shipped", source, other
    return None


def freshness_lag_ms(order: Mapping[str, Any]) -> int | None:
    """The order's lag behind its newest source time, ``None`` when it has no source time."""
    occurred = order.get("last_occurred_at_ms") or 0
    if not isinstance(occurred, int) or occurred <= 0:
        return None
    updated = order.get("updated_at_ms") or 0
    return (updated if isinstance(updated, int) else 0) - occurred


def _h(field: str, value: Any) -> int:
    if field in _EMPTY_AS_NONE and not value:
        value = None  # the order stores "" / 0 where the audit trail says null
    return xxhash.xxh64_intdigest(field.encode() + b"\0" + orjson.dumps(value, option=_SORTED))


def changes_digest(changes: Iterable[Mapping[str, Any]]) -> int:
    """``sum(h(field, new) - h(field, old))`` of one audit record's changes (mod 2**64)."""
    total = 0
    for change in changes:
        field = change.get("field")
        if isinstance(field, str):
            total += _h(field, change.get("new")) - _h(field, change.get("old"))
    return total & _MASK


def order_digest(order: Mapping[str, Any]) -> int:
    """``sum(h(field, current) - h(field, empty))`` over a stored order's tracked fields."""
    total = 0
    for field in ("status", "resume_status", "waybill", "buyer_key", "pack_group"):
        value = order.get(field)
        if value:
            total += _h(field, value) - _h(field, None)
    data = order.get("data")
    if isinstance(data, dict):
        for name, value in data.items():
            if value is not None:
                total += _h(f"data.{name}", value) - _h(f"data.{name}", None)
    return total & _MASK


def add_digest(a: int, b: int) -> int:
    """``a + b`` mod 2**64."""
    return (a + b) & _MASK


__all__ = ["PAID_UNSHIPPED", "PREPARING", "SHIPPED", "WITHDRAWN", "StatusReader", "add_digest", "changes_digest",
           "disagreement", "freshness_lag_ms", "order_digest"]
