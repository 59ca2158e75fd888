"""One side of a replay: dict-backed state that ``plan_step`` reads and its writes update.

``plan_step`` is pure and reads through callables; a ``Side`` provides them from plain
dicts (orders, fingerprints seen, waybill and buyer indexes) and applies each planned
``StepPlan`` to them, keeping only what the diff compares: each order's final state, its
forwarded (outbox) entries as a digest with a short summary, and the events held in
quarantine. Nothing here touches the store, the upstream or a device: the state lives in
memory and dies with the replay.

As in the live committer, a logistics event quarantined because its waybill was unknown is
released as soon as a later step indexes that waybill. Every event a side holds gets a
quarantine seq of the side's own (as the store numbers its quarantine records); ``note_held``
ties it to the recorded line that brought it, so a release line (``release_of``: that line's
seq) finds it on this side (``holding``), whatever the side's numbering, and a step of the
re-read event with ``release_of`` set to the side's seq releases it (``apply``).
"""

from __future__ import annotations

import bisect
import dataclasses
import zlib
from collections.abc import Iterator
from typing import Any

import orjson

from gateway._model import Event, OrderState
from gateway._pipeline import EventResult, plan_step
from gateway._pipeline.step import Outcome, StepPlan
from gateway._sandbox.configs import Configuration

#: Forwarded entries kept per order for the report's examples (the digest covers them all).
SUMMARY_ENTRIES = 12


#: One forwarded entry as the report shows it, kept unformatted: ``(type, prev status, status)``,
#: or ``("merge_pack", pack group)`` (``summary_text`` formats it when a report asks).
Sent = tuple[Any, ...]
#: What one order sent upstream on one side: ``(count, CRC of every entry, the first few)``.
#: A new tuple per entry, never mutated: two sides that sent the same share the same object.
Forwarded = tuple[int, int, tuple[Sent, ...]]
NOTHING_SENT: Forwarded = (0, 0, ())

#: What one side made of one recorded line: (order id, outcome, status, reason).
View = tuple[str, str, str, str]


class Side:
    """The in-memory state of one configuration during a replay."""

    def __init__(self, configuration: Configuration) -> None:
        self.configuration = configuration
        self.orders: dict[tuple[str, str], OrderState] = {}
        self.seen: set[tuple[str, int]] = set()
        self.waybills: dict[tuple[str, str], str] = {}
        self.buyers: dict[tuple[str, int], list[tuple[int, str]]] = {}
        self.forwarded: dict[tuple[str, str], Forwarded] = {}
        #: Orders written by ``apply`` since the caller last cleared it.
        self.touched: set[tuple[str, str]] = set()
        #: Lines planned on this side alone (the others were shared with the live side).
        self.planned = 0
        #: event id -> (tenant, order id, reason) of events held in quarantine at the end.
        self.quarantined: dict[str, tuple[str, str, str]] = {}
        self._waiting: dict[tuple[str, str], list[tuple[int, Event]]] = {}
        self._release_seq = 0
        #: (tenant, the side's quarantine seq) -> event id, of the events held now.
        self._held: dict[tuple[str, int], str] = {}
        #: event id -> the side's quarantine seq; (tenant, seq) -> the waybill it waits for.
        self._seq_of: dict[str, int] = {}
        self._waits_on: dict[tuple[str, int], tuple[str, str]] = {}
        #: (tenant, recorded line seq) -> event id, of the lines whose event this side holds, and back.
        self._held_lines: dict[tuple[str, int], str] = {}
        self._line_of: dict[str, tuple[str, int]] = {}

    def __repr__(self) -> str:
        return f"<Side {self.configuration.label}: {len(self.orders)} orders, {len(self.quarantined)} quarantined>"

    # -- the readers plan_step takes -------------------------------------------------------

    def get_order(self, tenant: str, order_id: str) -> OrderState | None:
        return self.orders.get((tenant, order_id))

    def seen_fingerprint(self, tenant: str, fingerprint: int) -> bool:
        return (tenant, fingerprint) in self.seen

    def order_for_waybill(self, tenant: str, waybill: str) -> str | None:
        return self.waybills.get((tenant, waybill))

    def orders_for_buyer(self, tenant: str, buyer_key: int, since_ms: int) -> list[tuple[int, str]]:
        entries = self.buyers.get((tenant, buyer_key))
        if not entries:
            return []
        return entries[bisect.bisect_left(entries, (since_ms, "")):]

    # -- steps -------------------------------------------------------------------------------

    def plan(self, events: list[Event], now_ms: int) -> StepPlan:
        """Plan ``events`` against this side's state; nothing is applied yet.

        The step runs without the records a replay never reads (``plan_step(records=False)``:
        no audit records, no event-log record but a quarantined event's), the same decisions.
        """
        return plan_step(events, self.get_order, self.seen_fingerprint, self.order_for_waybill,
                         self.orders_for_buyer, now_ms, merge_window_ms=self.configuration.merge_window_ms,
                         records=False)

    def note_held(self, tenant: str, line_seq: int, event: Event) -> None:
        """The event of recorded line ``line_seq`` was quarantined on this side just now."""
        event_id = f"{event.fingerprint:016x}"
        if line_seq and event_id in self._seq_of:
            self._held_lines[(tenant, line_seq)] = event_id
            self._line_of[event_id] = (tenant, line_seq)

    def holding(self, tenant: str, line_seq: int) -> tuple[int, str]:
        """``(the side's quarantine seq, order id)`` of the event of recorded line ``line_seq``
        if this side holds it in quarantine now, else ``(0, "")``."""
        event_id = self._held_lines.get((tenant, line_seq))
        seq = self._seq_of.get(event_id, 0) if event_id is not None else 0
        if not seq or event_id is None:
            return 0, ""
        return seq, self.quarantined[event_id][1]

    def waiting_for(self, tenant: str, waybill: str) -> bool:
        """True when quarantined events wait for this waybill."""
        return (tenant, waybill) in self._waiting

    def step(self, events: list[Event], now_ms: int) -> list[EventResult]:
        """Plan ``events`` against this side's state, apply the write, release waiting events.

        Returns:
            One result per event of ``events`` (released events are not reported: they
            show in the final state).
        """
        plan = self.plan(events, now_ms)
        indexed = self.apply(plan, events)
        while indexed:
            released = [event for waybill in indexed for event in self._pop_waiting(waybill)]
            if not released:
                break
            indexed = self.apply(self.plan(released, now_ms), released)
        return plan.results

    def apply(self, plan: StepPlan, events: list[Event]) -> list[tuple[str, str]]:
        """Apply the write of ``plan`` (planned from ``events``); returns the waybills it indexed."""
        write = plan.write
        orders, touched = self.orders, self.touched
        for order in write.orders:
            key = (order.tenant, order.order_id)
            orders[key] = order
            touched.add(key)
        self.seen.update(_stored(events, plan))
        for tenant, seq in write.quarantine_release:
            event_id = self._held.pop((tenant, seq), None)
            if event_id is not None:
                self.quarantined.pop(event_id, None)
                self._seq_of.pop(event_id, None)
                line = self._line_of.pop(event_id, None)
                if line is not None:
                    del self._held_lines[line]
            waits_on = self._waits_on.pop((tenant, seq), None)
            if waits_on is not None and waits_on in self._waiting:  # released by a release line, not its waybill
                left = [entry for entry in self._waiting[waits_on] if entry[0] != seq]
                if left:
                    self._waiting[waits_on] = left
                else:
                    del self._waiting[waits_on]
        if write.quarantine:
            by_id = {f"{e.fingerprint:016x}": e for e in events}
            for record in write.quarantine:
                self._hold(record, by_id.get(record["event_id"]))
        for tenant, waybill, order_id in write.waybill_index:
            self.waybills.setdefault((tenant, waybill), order_id)
        for tenant, buyer_key, time_ms, order_id in write.buyer_index:
            bisect.insort(self.buyers.setdefault((tenant, buyer_key), []), (time_ms, order_id))
        forwarded = self.forwarded
        for entry in write.outbox:
            key = (entry["tenant"], entry["order_id"])
            forwarded[key] = _sent(forwarded.get(key, NOTHING_SENT), entry)
        return [(tenant, waybill) for tenant, waybill, _ in write.waybill_index]

    def apply_shared(self, other: Side, plan: StepPlan, events: list[Event]) -> None:
        """Apply a plan made on this side to this side AND ``other``, whose state it
        would have changed the same way (no quarantine, no waybill anyone waits for): the
        same order objects and forwarded tuples go into both, so equality is identity."""
        write = plan.write
        mine_orders, their_orders = self.orders, other.orders
        for order in write.orders:
            key = (order.tenant, order.order_id)
            mine_orders[key] = their_orders[key] = order
        stored = list(_stored(events, plan))
        self.seen.update(stored)
        other.seen.update(stored)
        for tenant, waybill, order_id in write.waybill_index:
            self.waybills.setdefault((tenant, waybill), order_id)
            other.waybills.setdefault((tenant, waybill), order_id)
        for tenant, buyer_key, time_ms, order_id in write.buyer_index:
            bisect.insort(self.buyers.setdefault((tenant, buyer_key), []), (time_ms, order_id))
            bisect.insort(other.buyers.setdefault((tenant, buyer_key), []), (time_ms, order_id))
        mine, theirs = self.forwarded, other.forwarded
        for entry in write.outbox:
            # The same entry goes to both sides, so it is counted without hashing: the CRC only
            # has to tell apart what the sides sent differently, and this they sent alike.
            key = (entry["tenant"], entry["order_id"])
            count, digest, summary = before = mine.get(key, NOTHING_SENT)
            after = (count + 1, digest, summary + (_summary(entry),) if len(summary) < SUMMARY_ENTRIES else summary)
            mine[key] = after
            theirs[key] = after if theirs.get(key, NOTHING_SENT) is before else _sent(theirs[key], entry)

    def _hold(self, record: dict[str, Any], event: Event | None) -> None:
        event_id = record["event_id"]
        tenant = record["tenant"]
        self.quarantined[event_id] = (tenant, record.get("order_id") or "", record.get("reason", ""))
        self._release_seq += 1
        seq = self._release_seq
        self._held[(tenant, seq)] = event_id
        self._seq_of[event_id] = seq
        if record.get("reason") == "unknown_waybill" and record.get("waybill") and event is not None:
            waybill = (tenant, record["waybill"])
            self._waiting.setdefault(waybill, []).append((seq, event))
            self._waits_on[(tenant, seq)] = waybill

    def _pop_waiting(self, waybill: tuple[str, str]) -> list[Event]:
        waiting = self._waiting.pop(waybill, [])
        return [dataclasses.replace(event, release_of=seq) for seq, event in waiting]


def _sent(before: Forwarded, entry: dict[str, Any]) -> Forwarded:
    count, digest, summary = before
    digest = zlib.crc32(orjson.dumps(entry, option=orjson.OPT_SORT_KEYS), digest)
    return (count + 1, digest, summary + (_summary(entry),) if len(summary) < SUMMARY_ENTRIES else summary)


def _summary(entry: dict[str, Any]) -> Sent:
    """What the report shows of one forwarded entry (``summary_text``)."""
    if entry.get("type") == "merge_pack":
        return ("merge_pack", entry.get("data", {}).get("pack_group", ""))
    return (entry.get("type"), entry.get("prev_status"), entry.get("status"))


def summary_text(sent: Sent) -> str:
    """``type:PREV->STATUS`` (or ``merge_pack:<group>``) for one forwarded entry."""
    if len(sent) == 2:
        return f"merge_pack:{sent[1]}"
    return f"{sent[0]}:{sent[1]}->{sent[2]}"


def _stored(events: list[Event], plan: StepPlan) -> Iterator[tuple[str, int]]:
    """The dedup keys of the events the plan stores: every one not reported a duplicate."""
    duplicate = Outcome.DUPLICATE
    return ((event.tenant, event.fingerprint) for event, result in zip(events, plan.results, strict=True)
            if result.outcome != duplicate)


__all__ = ["NOTHING_SENT", "SUMMARY_ENTRIES", "Forwarded", "Sent", "Side", "View", "summary_text"]
