"""The processing step: normalised events in, one ``StepWrite`` out. Pure — no I/O.

``plan_step`` decides, for every event of a group, what it does to its order (through
the state machine), and collects everything the store must write for it in ONE write
batch: the new order versions, the event-log records, one audit record per event, the
outbox entries for the upstream ERP, the quarantine records and the index entries.
Reads go through callables (``get_order``, ``seen_fingerprint``, ``resolve_waybill``,
``orders_for_buyer``) so the step is tested with plain dicts and the daemon passes the
store's cached readers.

Per event, in order:

1. **Duplicate** (fingerprint already stored, or earlier in the same group): nothing is
   written; the sender gets its success reply (retries are normal).
2. **Quarantine**: unknown or missing raw status, or a logistics event whose waybill
   belongs to no known order. The event goes to the event log and the quarantine
   keyspace with the reason; no order changes. Visible in the API and metrics.
3. **Superseded** (reported as ``LATE``): the event's data carries a numeric ``version``
   (Youzan pushes do) lower than the highest version already applied to the order from
   the same source (``OrderState.source_version``). It goes to the event log and gets an
   audit record (decision ``late``, note ``superseded: ...``); the order's fields, status
   and versions stay as they are (only ``late_events`` counts it) and nothing is queued
   upstream. An equal version is processed normally. A version is an int, a float or a
   string of ASCII digits; anything else is no version.
4. Otherwise the state machine decides (``NEW``, ``APPLIED``, ``UNCHANGED``, ``LATE``):
   the order's fields change accordingly, an audit record lists every field change
   (field, old, new) with the rule that caused it, and — unless the event was late — an
   outbox entry in the upstream contract shape (DESIGN section 6) is queued.
   A waybill the event names that is already bound to **another** order is recorded on this
   order but not re-linked (the waybill index keeps its first order): the audit record carries
   ``alarm = "waybill_reused"`` and ``reused = {"waybill", "bound_to"}`` (reused waybill numbers cause
   false refund stops in tools that key on them); the pack line raises an alert for it.
5. **Cross-channel grouping**: when the event gave the order a buyer key, the buyer's
   other orders first seen within ``merge_window_ms`` (either side) that are on another
   channel and not yet packing (CREATED, PAID, PENDING_REVIEW, READY_TO_PACK, or ON_HOLD
   from one of those) form one pack group with it. Its id is the order id of the member
   first seen earliest; every order whose ``pack_group`` changes gets an audit record
   (decision ``merge_pack``), and ONE outbox entry of type ``merge_pack`` is queued on the
   group's primary order with ``data = {"pack_group", "orders", "replaces"}``. Orders met
   in the same step group too. The full rule is in ``gateway._pipeline.grouping``.

A *released* event (``Event.release_of`` > 0: a quarantined event re-read under fixed rules,
``gateway._pipeline.quarantine``) skips the duplicate check (its fingerprint was stored when it was
quarantined); if it maps now it is processed like any other event, its quarantine record is
deleted in the same write batch and its audit note says so; if it still does not map,
nothing is written and the record stays.

Upstream contract of an outbox entry: ``event_id`` is the event fingerprint as 16 hex
digits (stable across retries and re-processing: the idempotency key), ``seq`` counts the
order's reported events, ``status``/``prev_status`` are standard states, ``occurred_at``
is ISO 8601 UTC with milliseconds, ``data`` holds the fields this event changed. A
``merge_pack`` entry's ``event_id`` is ``_grouping.merge_event_id`` (stable for the same
group and members), its ``status``/``prev_status`` are the primary order's current state
and its ``occurred_at`` that of the event that completed the group.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from gateway._model import CODE_MISSING, CODE_UNKNOWN, Event, OrderState, Status
from gateway._pipeline.grouping import (
    WITHDRAWN,
    BuyerReader,
    find_pack_group,
    leave_pack_group,
)
from gateway._pipeline.step_groups import write_group_left, write_pack_group
from gateway._rules import Decision, decide
from gateway._store import StepWrite
from gateway._times import iso_ms

OrderReader = Callable[[str, str], OrderState | None]
FingerprintReader = Callable[[str, int], bool]
WaybillReader = Callable[[str, str], str | None]

#: Default of ``[pipeline] merge_window_s``, in ms.
DEFAULT_MERGE_WINDOW_MS = 1_800_000


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


def _quarantine_reason(event: Event) -> str:
    if event.status_code == CODE_UNKNOWN:
        return "unknown_status"
    if event.status_code == CODE_MISSING:
        return "missing_status"
    return "unknown_waybill"


def _version(value: Any) -> int | float | None:
    """A message version: an int, a finite float or a string of ASCII digits; else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit():
            return int(text)
    return None


def plan_step(
    events: Iterable[Event],
    get_order: OrderReader,
    seen_fingerprint: FingerprintReader,
    resolve_waybill: WaybillReader,
    orders_for_buyer: BuyerReader,
    now_ms: int,
    *,
    merge_window_ms: int = DEFAULT_MERGE_WINDOW_MS,
    records: bool = True,
) -> StepPlan:
    """Plan one processing step for a group of events (possibly from several requests).

    Args:
        events: normalised events, processed in order.
        get_order: ``(tenant, order_id) -> OrderState | None``; the returned object is
            never mutated (the step works on copies).
        seen_fingerprint: ``(tenant, fingerprint) -> bool`` for events already stored.
        resolve_waybill: ``(tenant, waybill) -> order_id | None``.
        orders_for_buyer: ``(tenant, buyer_key, since_ms) -> [(time_ms, order_id)]``, the
            buyer index, oldest first (``Store.orders_for_buyer``).
        now_ms: the gateway clock for ``updated_at_ms`` and audit times.
        merge_window_ms: the cross-channel grouping window (``[pipeline] merge_window_s``);
            0 turns grouping off.
        records: ``False`` (a replay, ``gateway._sandbox``; never the committer): the same
            decisions, orders, index entries, quarantine records, outbox entries and results,
            but no audit record of an event (pack-group changes keep theirs) and no event-log
            record but a quarantined event's (every event not reported ``duplicate`` is stored).

    Returns:
        The ``StepPlan``; nothing has been written yet.
    """
    plan = StepPlan()
    write = plan.write
    touched: dict[tuple[str, str], OrderState] = {}
    seen_here: set[tuple[str, int]] = set()
    waybills_here: dict[tuple[str, str], str] = {}
    buyers_here: dict[tuple[str, int], list[tuple[int, str]]] = {}

    def peek(tenant: str, order_id: str) -> OrderState | None:
        working = touched.get((tenant, order_id))
        return working if working is not None else get_order(tenant, order_id)

    def touch(tenant: str, order_id: str) -> OrderState:
        working = touched.get((tenant, order_id))
        if working is None:
            stored = get_order(tenant, order_id)
            if stored is None:  # the buyer index named it, so it exists: a bug
                raise LookupError(f"order {order_id!r} of tenant {tenant!r} vanished")
            working = touched[(tenant, order_id)] = stored.copy()
        return working

    def buyer_orders(tenant: str, buyer: int, since_ms: int) -> list[tuple[int, str]]:
        found = orders_for_buyer(tenant, buyer, since_ms)
        pending = buyers_here.get((tenant, buyer))
        if pending:
            found = [*found, *(entry for entry in pending if entry[0] >= since_ms)]
        return found

    for event in events:
        tenant = event.tenant
        fp_key = (tenant, event.fingerprint)
        event_id = f"{event.fingerprint:016x}"
        released = event.release_of
        # A released quarantined event is in the dedup keyspace already (as quarantined).
        if fp_key in seen_here or (not released and seen_fingerprint(tenant, event.fingerprint)):
            plan.results.append(EventResult(event_id, event.order_id, Outcome.DUPLICATE))
            continue
        seen_here.add(fp_key)
        order_id = event.order_id
        if not order_id and event.waybill:
            order_id = waybills_here.get((tenant, event.waybill)) or resolve_waybill(tenant, event.waybill) or ""
        log = _log_record(event, event_id, order_id) if records else None
        if released:
            if event.quarantined or not order_id:  # still not mappable: the record stays as it is
                plan.results.append(EventResult(event_id, order_id, Outcome.QUARANTINED,
                                                reason=_quarantine_reason(event)))
                continue
            write.quarantine_release.append((tenant, released))
            if log is not None:
                log["released_from_quarantine"] = released
        if event.quarantined or not order_id:
            reason = _quarantine_reason(event)
            if log is None:  # records=False: a quarantine record is still built from the log record
                log = _log_record(event, event_id, order_id)
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
        version = _version(event.data.get("version")) if "version" in event.data else None
        if version is not None:
            applied = order.source_version.get(event.source)
            if applied is not None and version < applied:
                note = f"superseded: {event.source} version {version} < {applied} already applied; nothing changed"
                order.late_events += 1
                if log is not None:
                    log["order_id"] = order_id
                    log["outcome"] = Outcome.LATE
                    write.events.append(log)
                    write.audit.append({
                        "tenant": tenant, "at_ms": now_ms, "actor": f"source:{event.source}",
                        "source": event.source, "event_id": event_id, "rule": event.rule,
                        "order_id": order_id, "decision": Outcome.LATE, "changes": [], "note": note,
                    })
                plan.results.append(EventResult(event_id, order_id, Outcome.LATE, order.status, reason=note))
                continue
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
        reused = ""
        if event.waybill and order.waybill != event.waybill and (not late or not order.waybill):
            changes.append({"field": "waybill", "old": order.waybill or None, "new": event.waybill})
            order.waybill = event.waybill
            owner = waybills_here.get((tenant, event.waybill)) or resolve_waybill(tenant, event.waybill)
            if owner and owner != order_id:  # reused numbers cause false refund stops: an alarm, not a re-link
                reused = owner
            else:
                write.waybill_index.append((tenant, event.waybill, order_id))
                waybills_here[(tenant, event.waybill)] = order_id
        new_buyer = bool(event.buyer_key) and order.buyer_key != event.buyer_key
        if new_buyer:
            changes.append({"field": "buyer_key", "old": order.buyer_key or None, "new": event.buyer_key})
            order.buyer_key = event.buyer_key
            write.buyer_index.append((tenant, event.buyer_key, order.created_at_ms, order_id))
            buyers_here.setdefault((tenant, event.buyer_key), []).append((order.created_at_ms, order_id))
        if event.buyer_aliases and (new_buyer or order.seq == 0):  # for the lookup only: never grouped
            write.buyer_index.extend((tenant, alias, order.created_at_ms, order_id) for alias in event.buyer_aliases)
        if version is not None:
            applied = order.source_version.get(event.source)
            if applied is None or version > applied:
                order.source_version[event.source] = version
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
        note = ""
        if late:
            refused = verdict.refused.value if verdict.refused else "@resume"
            current = order.status
            note = f"late or out-of-order: {current} -> {refused} refused"
        if released:
            note = f"released from quarantine (seq {released}) under {event.rule}" + (f"; {note}" if note else "")
        if log is not None:
            log["order_id"] = order_id
            log["outcome"] = outcome
            write.events.append(log)
            write.audit.append(_audit_record(event, event_id, order_id, outcome, changes, note, reused, now_ms))
        if not late:
            entry = {
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
            }
            if event.detail:
                entry["detail"] = event.detail
            write.outbox.append(entry)
        if new_buyer or (prev_status in WITHDRAWN and order.status not in WITHDRAWN):  # new, or back from a refund
            group = find_pack_group(order, buyer_orders, peek, merge_window_ms)
            if group is not None:
                write_pack_group(group, tenant, touch, write, event, now_ms, merge_window_ms)
        elif order.pack_group and order.status in WITHDRAWN and prev_status not in WITHDRAWN:
            left = leave_pack_group(order, buyer_orders, peek)
            if left is not None:
                write_group_left(left, tenant, touch, write, event, now_ms)
        plan.results.append(EventResult(
            event_id, order_id, outcome, order.status,
            reason=note,
        ))
    write.orders.extend(touched.values())
    return plan


def _log_record(event: Event, event_id: str, order_id: str) -> dict[str, Any]:
    """The event-log record of ``event`` (its ``outcome`` is set once decided)."""
    log = {
        "tenant": event.tenant,
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
    if event.detail:
        log["detail"] = event.detail
    return log


def _audit_record(event: Event, event_id: str, order_id: str, outcome: str, changes: list[dict[str, Any]],
                  note: str, reused: str, now_ms: int) -> dict[str, Any]:
    """The audit record of an event the state machine decided (``reused``: the waybill's owner)."""
    audit = {
        "tenant": event.tenant,
        "at_ms": now_ms,
        "actor": event.actor or f"source:{event.source}",
        "source": event.source,
        "event_id": event_id,
        "rule": event.rule,
        "order_id": order_id,
        "decision": outcome,
        "changes": changes,
        "note": note,
    }
    if event.detail:
        audit["detail"] = event.detail
    if reused:
        audit["alarm"] = "waybill_reused"
        audit["reused"] = {"waybill": event.waybill, "bound_to": reused}
        audit["note"] = (f"waybill {event.waybill} is already bound to {reused}: kept there, not re-linked"
                         + (f"; {note}" if note else ""))
    return audit


def _change(name: str, old: Status | None, new: Status | None) -> dict[str, Any]:
    return {"field": name, "old": old, "new": new}
