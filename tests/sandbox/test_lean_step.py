"""``plan_step(records=False)``, the replay's step, decides exactly what the committer's step decides.

Both modes are run in lockstep over the same dict-backed state (updated from the full
write, as the store would be) on mixed traffic: new orders, duplicates, unknown statuses,
carrier events waiting for their waybill and released later, superseded versions, a
reused waybill, cross-channel pack groups and withdrawals. Everything but the records a
replay never reads must be equal; those must be absent.
"""

from __future__ import annotations

import bisect
import dataclasses
from typing import Any

from gateway._model import Event, OrderState
from gateway._pipeline import plan_step
from gateway._pipeline.step import Outcome, StepPlan
from gateway._rules import load_rules, normalise_batch
from tests.sandbox.test_engine import TENANT, traffic
from tests.sandbox.world import RULES, T0, erp


class State:
    """What the store holds, in dicts (the readers ``plan_step`` takes)."""

    def __init__(self) -> None:
        self.orders: dict[tuple[str, str], OrderState] = {}
        self.seen: set[tuple[str, int]] = set()
        self.waybills: dict[tuple[str, str], str] = {}
        self.buyers: dict[tuple[str, int], list[tuple[int, str]]] = {}

    def plan(self, events: list[Event], now_ms: int, records: bool) -> StepPlan:
        return plan_step(events, lambda t, o: self.orders.get((t, o)), lambda t, f: (t, f) in self.seen,
                         lambda t, w: self.waybills.get((t, w)),
                         lambda t, b, since: [e for e in self.buyers.get((t, b), []) if e[0] >= since],
                         now_ms, records=records)

    def commit(self, plan: StepPlan) -> None:
        write = plan.write
        for order in write.orders:
            self.orders[(order.tenant, order.order_id)] = order
        self.seen.update((record["tenant"], record["fingerprint"]) for record in write.events)
        for tenant, waybill, order_id in write.waybill_index:
            self.waybills.setdefault((tenant, waybill), order_id)
        for tenant, buyer, time_ms, order_id in write.buyer_index:
            bisect.insort(self.buyers.setdefault((tenant, buyer), []), (time_ms, order_id))


def _runs() -> list[tuple[int, list[Event]]]:
    """Steps of mixed traffic, with hand-made duplicates, versions, a reused waybill and a release."""
    rules = load_rules(RULES).get("erp")
    assert rules is not None
    steps: list[tuple[int, list[Event]]] = []
    for item in traffic(seed=11, orders=40):
        if item["source"] == "erp":
            steps.append((item["received_at_ms"], normalise_batch(rules, TENANT, [dict(item["raw"])],
                                                                  item["received_at_ms"])))
    at = T0 + 10_000_000
    versioned = normalise_batch(rules, TENANT, [erp(9001, "V0001", "PAID", remark="v")], at)[0]
    steps.append((at, [dataclasses.replace(versioned, data={**versioned.data, "version": 5})]))
    older = dataclasses.replace(versioned, fingerprint=versioned.fingerprint + 1, data={"version": 3})
    steps.append((at + 1, [older, older]))  # superseded, then a duplicate within the step
    holder = normalise_batch(rules, TENANT, [erp(9004, "V0004", "SENT", waybill="SF-DUP")], at + 2)
    reused = normalise_batch(rules, TENANT, [erp(9002, "V0002", "SENT", waybill="SF-DUP")], at + 2)
    steps.append((at + 2, holder + reused + reused))  # a waybill another order holds; and a duplicate
    carrier = normalise_batch(rules, TENANT, [{"event_id": "w-1", "waybill": "SF-LATE", "status": "IN_TRANSIT"}], at + 3)
    steps.append((at + 3, carrier))  # no order knows the waybill: quarantined
    steps.append((at + 4, normalise_batch(rules, TENANT, [erp(9003, "V0003", "SENT", waybill="SF-LATE")], at + 4)))
    steps.append((at + 5, [dataclasses.replace(carrier[0], release_of=1)]))  # re-read: now it maps
    return steps


def _without_records(plan: StepPlan) -> dict[str, Any]:
    write = plan.write
    return {"orders": [order.to_dict() for order in write.orders], "outbox": write.outbox,
            "quarantine": write.quarantine, "waybill_index": write.waybill_index,
            "buyer_index": write.buyer_index, "quarantine_release": write.quarantine_release,
            "results": [result.to_dict() for result in plan.results],
            "merge_audit": [record for record in write.audit if record["decision"] == "merge_pack"]}


def test_records_false_plans_the_same_state() -> None:
    state = State()
    outcomes: set[str] = set()
    seen_cases: set[str] = set()
    for now_ms, events in _runs():
        full = state.plan(events, now_ms, records=True)
        lean = state.plan(events, now_ms, records=False)
        assert _without_records(lean) == _without_records(full)
        assert all(record["decision"] == "merge_pack" for record in lean.write.audit)
        assert lean.write.events == [record for record in full.write.events if record["outcome"] == "quarantined"]
        # every event not reported a duplicate is stored: what a replay keeps of the event log
        stored = {(e.tenant, e.fingerprint) for e, r in zip(events, full.results, strict=True)
                  if r.outcome != Outcome.DUPLICATE}
        assert {(record["tenant"], record["fingerprint"]) for record in full.write.events} <= stored
        assert stored - {(r["tenant"], r["fingerprint"]) for r in full.write.events} <= state.seen
        outcomes.update(result.outcome for result in full.results)
        seen_cases.update(["released"] if full.write.quarantine_release else [])
        seen_cases.update(["reused"] if any(record.get("alarm") for record in full.write.audit) else [])
        seen_cases.update(["superseded"] if any("superseded" in r.reason for r in full.results) else [])
        state.commit(full)
    assert outcomes >= {"new", "applied", "duplicate", "quarantined", "late"}
    assert seen_cases == {"released", "reused", "superseded"}
    assert any(order.pack_group for order in state.orders.values())
