"""The processing step: normalised events in, one ``StepWrite`` out. Pure — no I/O.

``plan_step`` decides, for every event of a group, what it does to its order (through
the state machine), and collects everything the store must write for it in ONE write
batch: the new order versions, the event-log records, one audit record per event, the
outbox entries for the upstream ERP, the quarantine records and the index entries.
Reads go through two callables (``get_order``, ``seen_fingerprint``) so the step is
tested with plain dicts and the daemon passes the store's cached readers.

Per event, in order:

1. **Duplicate** (fingerprint already stored, or earlier in the same group): nothing is
   written; the sender gets its success reply (retries are normal).
2. **Quarantine**: unknown or missing raw status, or a logistics event whose waybill
   belongs to no known order. The event goes to the event log and the quarantine
   keyspace with the reason; no order changes. Visible in the API and metrics.
3. Otherwise the state machine decides (``NEW``, ``APPLIED``, ``UNCHANGED``, ``LATE``):
   the order's fields change accordingly, an audit record lists every field change
   (field, old, new) with the rule that caused it, and — unless the event was late — an
   outbox entry in the upstream contract shape (DESIGN section 6) is queued.

Upstream contract of an outbox entry: ``event_id`` is the event fingerprint as 16 hex
digits (stable across retries and re-processing: the idempotency key), ``seq`` counts the
order's reported events, ``status``/``prev_status`` are standard states, ``occurred_at``
is ISO 8601 UTC with milliseconds, ``data`` holds the fields this event changed.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from gateway._model import CODE_MISSING, CODE_UNKNOWN, Event, OrderState, Status
from gateway._statemachine import Decision, decide
from gateway._store import StepWrite

OrderReader = Callable[[str, str], OrderState | None]
FingerprintReader = Callable[[str, int], bool]


class Outcome:
    """Per-event outcome names, as reported to senders and counted in metrics."""

    APPLIED = "applied"
    NEW = "new"
    UNCHANGED = "unchanged"
    LATE = "late"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"


@dataclass(slots=True)
class EventResult:
    """What happened to one event (reported back to its sender)."""

    event_id: str
    order_id: str
    outcome: str
    status: str | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event_id": self.event_id, "order_id": self.order_id, "outcome": self.outcome}
        if self.status:
            out["status"] = self.status
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass
class StepPlan:
    """A planned step: what to write, and the per-event results in input order."""

    write: StepWrite = field(default_factory=StepWrite)
    results: list[EventResult] = field(default_factory=list)


@functools.lru_cache(maxsize=4096)
def _iso_seconds(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def iso_ms(epoch_ms: int) -> str:
    """``1764036000123`` -> ``"2025-11-25T02:00:00.123Z"``; 0 -> ``""``."""
    if not epoch_ms:
        return ""
    seconds, millis = divmod(epoch_ms, 1000)
    return f"{_iso_seconds(seconds)}.{millis:03d}Z"


def _quarantine_reason(event: Event) -> str:
    if event.status_code == CODE_UNKNOWN:
        return "unknown_status"
    if event.status_code == CODE_MISSING:
        return "missing_status"
    return "unknown_waybill"


def plan_step(
    events: Iterable[Event],
    get_order: OrderReader,
    seen_fingerprint: FingerprintReader,
    resolve_waybill: Callable[[str, str], str | None],
    now_ms: int,
) -> StepPlan:
    """Plan one processing step for a group of events (possibly from several requests).

    Args:
        events: normalised events, processed in order.
        get_order: ``(tenant, order_id) -> OrderState | None``; the returned object is
            never mutated (the step works on copies).
        seen_fingerprint: ``(tenant, fingerprint) -> bool`` for events already stored.
        resolve_waybill: ``(tenant, waybill) -> order_id | None``.
        now_ms: the gateway clock for ``updated_at_ms`` and audit times.

    Returns:
        The ``StepPlan``; nothing has been written yet.
    """
    plan = StepPlan()
    write = plan.write
    touched: dict[tuple[str, str], OrderState] = {}
    seen_here: set[tuple[str, int]] = set()
    waybills_here: dict[tuple[str, str], str] = {}
    for event in events:
        tenant = event.tenant
        fp_key = (tenant, event.fingerprint)
        event_id = f"{event.fingerprint:016x}"
        if fp_key in seen_here or seen_fingerprint(tenant, event.fingerprint):
            plan.results.append(EventResult(event_id, event.order_id, Outcome.DUPLICATE))
            continue
        seen_here.add(fp_key)
        order_id = event.order_id
        if not order_id and event.waybill:
            order_id = waybills_here.get((tenant, event.waybill)) or resolve_waybill(tenant, event.waybill) or ""
        log = {
            "tenant": tenant,
            "fingerprint": event.fingerprint,
            "event_id": event_id,
            "source": event.source,
            "source_event_id": event.source_event_id,
            "order_id": order_id,
            "type": event.type,
            "raw_status": event.raw_status,
            "status": event.status,
            "occurred_at_ms": event.occurred_at_ms,
            "received_at_ms": event.received_at_ms,
            "rule": event.rule,
            "raw": event.raw,
        }
        if event.quarantined or not order_id:
            reason = _quarantine_reason(event)
            log["outcome"] = Outcome.QUARANTINED
            write.events.append(log)
            write.quarantine.append({**log, "reason": reason, "waybill": event.waybill})
            plan.results.append(EventResult(event_id, order_id, Outcome.QUARANTINED, reason=reason))
            continue

        key = (tenant, order_id)
        order = touched.get(key)
        if order is None:
            stored = get_order(tenant, order_id)
            order = stored.copy() if stored else OrderState(tenant, order_id, created_at_ms=now_ms)
            touched[key] = order
        prev_status = order.status
        verdict = decide(order.status, order.resume_status, event.status_code)
        changes: list[dict[str, Any]] = []
        late = verdict.decision is Decision.LATE

        if verdict.status is not order.status:
            changes.append(_change("status", order.status, verdict.status))
            order.status = verdict.status
        if verdict.resume_status is not order.resume_status:
            changes.append(_change("resume_status", order.resume_status, verdict.resume_status))
            order.resume_status = verdict.resume_status
        for name, value in event.data.items():
            old = order.data.get(name)
            if old != value and (not late or old is None):
                changes.append({"field": f"data.{name}", "old": old, "new": value})
                order.data[name] = value
        if event.waybill and order.waybill != event.waybill and (not late or not order.waybill):
            changes.append({"field": "waybill", "old": order.waybill or None, "new": event.waybill})
            order.waybill = event.waybill
            write.waybill_index.append((tenant, event.waybill, order_id))
            waybills_here[(tenant, event.waybill)] = order_id
        if event.buyer_key and order.buyer_key != event.buyer_key:
            changes.append({"field": "buyer_key", "old": order.buyer_key or None, "new": event.buyer_key})
            order.buyer_key = event.buyer_key
            write.buyer_index.append((tenant, event.buyer_key, order.created_at_ms, order_id))
        order.source_status[event.source] = event.raw_status
        order.updated_at_ms = now_ms
        if late:
            order.late_events += 1
        else:
            order.seq += 1
            if event.occurred_at_ms > order.last_occurred_at_ms:
                order.last_occurred_at_ms = event.occurred_at_ms

        outcome = Outcome.LATE if late else (Outcome.NEW if verdict.decision is Decision.NEW else (
            Outcome.APPLIED if verdict.decision is Decision.APPLIED else Outcome.UNCHANGED))
        log["order_id"] = order_id
        log["outcome"] = outcome
        write.events.append(log)
        note = ""
        if late:
            refused = verdict.refused.value if verdict.refused else "@resume"
            current = order.status
            note = f"late or out-of-order: {current} -> {refused} refused"
        write.audit.append({
            "tenant": tenant,
            "at_ms": now_ms,
            "actor": f"source:{event.source}",
            "source": event.source,
            "event_id": event_id,
            "rule": event.rule,
            "order_id": order_id,
            "decision": outcome,
            "changes": changes,
            "note": note,
        })
        if not late:
            write.outbox.append({
                "tenant": tenant,
                "event_id": event_id,
                "order_id": order_id,
                "seq": order.seq,
                "type": event.type,
                "source": event.source,
                "status": order.status,
                "prev_status": prev_status,
                "occurred_at": iso_ms(event.occurred_at_ms),
                "data": {c["field"]: c["new"] for c in changes if c["field"] not in ("status", "resume_status")},
            })
        plan.results.append(EventResult(
            event_id, order_id, outcome, order.status,
            reason=note,
        ))
    write.orders.extend(touched.values())
    return plan


def _change(name: str, old: Status | None, new: Status | None) -> dict[str, Any]:
    return {"field": name, "old": old, "new": new}
