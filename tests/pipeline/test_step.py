"""The processing step (pure): what one group of events writes, per outcome."""

from __future__ import annotations

from gateway._model import CODE_RESUME, CODE_UNKNOWN, OrderState, Status
from gateway._pipeline import Outcome, plan_step
from gateway._times import iso_ms
from tests._support.steps import T0, World, ev

S = Status


def test_new_order_writes_order_event_audit_outbox_in_one_step():
    world = World()
    plan = world.plan([ev(1, data={"amount": 12.5}, buyer=77)])
    write = plan.write
    assert [r.outcome for r in plan.results] == [Outcome.NEW]
    assert len(write.orders) == len(write.events) == len(write.audit) == len(write.outbox) == 1
    order = write.orders[0]
    assert order.status is S.PAID and order.seq == 1 and order.data == {"amount": 12.5}
    audit = write.audit[0]
    fields = {c["field"]: (c["old"], c["new"]) for c in audit["changes"]}
    assert fields["status"] == (None, "PAID")
    assert fields["data.amount"] == (None, 12.5)
    assert audit["rule"] == "erp.toml@v1:status.PAID" and audit["actor"] == "source:erp"
    outbox = write.outbox[0]
    assert outbox["event_id"] == f"{1001:016x}"
    assert outbox["status"] == "PAID" and outbox["prev_status"] is None and outbox["seq"] == 1
    assert outbox["occurred_at"] == iso_ms(T0)
    assert write.buyer_index == [("t1", 77, order.created_at_ms, "douyin|1")]
    assert write.events[0]["raw"] == {"n": 1}


def test_duplicates_write_nothing_within_a_group_and_across_groups():
    world = World()
    plan = world.plan([ev(1), ev(1)])
    assert [r.outcome for r in plan.results] == [Outcome.NEW, Outcome.DUPLICATE]
    assert len(plan.write.events) == 1
    again = world.plan([ev(1)])
    assert [r.outcome for r in again.results] == [Outcome.DUPLICATE]
    assert again.write.events == again.write.orders == again.write.audit == []


def test_order_progresses_and_seq_counts_reported_events():
    world = World()
    world.plan([ev(1, status=S.PAID)])
    plan = world.plan([ev(2, status=S.PENDING_REVIEW), ev(3, status=S.PACKED)])
    assert [r.outcome for r in plan.results] == [Outcome.APPLIED, Outcome.APPLIED]
    assert [o["seq"] for o in plan.write.outbox] == [2, 3]
    assert [o["prev_status"] for o in plan.write.outbox] == ["PAID", "PENDING_REVIEW"]
    assert world.orders[("t1", "douyin|1")].status is S.PACKED


def test_late_event_is_recorded_counted_and_does_not_regress():
    world = World()
    world.plan([ev(1, status=S.FULFILLMENT_STARTED)])
    plan = world.plan([ev(2, status=S.PAID, data={"amount": 9})])
    result = plan.results[0]
    assert result.outcome == Outcome.LATE
    assert "FULFILLMENT_STARTED -> PAID refused" in result.reason
    order = world.orders[("t1", "douyin|1")]
    assert order.status is S.FULFILLMENT_STARTED and order.late_events == 1
    assert plan.write.outbox == []  # upstream is not told about a refused regression
    assert plan.write.audit[0]["decision"] == "late" and "refused" in plan.write.audit[0]["note"]
    assert order.data == {"amount": 9}  # empty fields are still filled from a late event
    assert plan.write.events[0]["outcome"] == "late"


def test_late_event_does_not_overwrite_existing_data():
    world = World()
    world.plan([ev(1, status=S.SHIPPED, waybill="SF1", data={"amount": 10})])
    world.plan([ev(2, status=S.PAID, waybill="SF-OLD", data={"amount": 99})])
    order = world.orders[("t1", "douyin|1")]
    assert order.waybill == "SF1" and order.data == {"amount": 10}


def test_unknown_status_is_quarantined_not_dropped():
    world = World()
    plan = world.plan([ev(1, code=CODE_UNKNOWN)])
    assert plan.results[0].outcome == Outcome.QUARANTINED
    assert plan.results[0].reason == "unknown_status"
    assert len(plan.write.quarantine) == 1 and len(plan.write.events) == 1
    assert plan.write.quarantine[0]["raw"] == {"n": 1}
    assert plan.write.orders == [] and plan.write.outbox == []


def test_logistics_event_finds_its_order_by_waybill():
    world = World()
    world.plan([ev(1, status=S.SHIPPED, waybill="SF123")])
    plan = world.plan([ev(2, order="", status=S.FULFILLMENT_STARTED, source="kuaidi100", waybill="SF123")])
    assert plan.results[0].outcome == Outcome.APPLIED
    assert plan.results[0].order_id == "douyin|1"
    unknown = world.plan([ev(3, order="", status=S.IN_TRANSIT, source="kuaidi100", waybill="NOPE")])
    assert unknown.results[0].outcome == Outcome.QUARANTINED
    assert unknown.results[0].reason == "unknown_waybill"


def test_waybill_learned_earlier_in_the_same_group_resolves():
    world = World()
    plan = world.plan([ev(1, status=S.SHIPPED, waybill="SF9"),
                       ev(2, order="", status=S.IN_TRANSIT, source="kuaidi100", waybill="SF9")])
    assert [r.outcome for r in plan.results] == [Outcome.NEW, Outcome.APPLIED]
    assert len(plan.write.orders) == 1 and plan.write.orders[0].status is S.IN_TRANSIT


def test_a_waybill_bound_to_another_order_is_an_alarm_not_a_re_link():
    world = World()
    world.plan([ev(1, status=S.SHIPPED, waybill="SF77")])
    plan = world.plan([ev(2, order="douyin|2", status=S.SHIPPED, waybill="SF77")])
    assert plan.write.waybill_index == []  # SF77 stays with douyin|1
    assert plan.write.orders[0].waybill == "SF77"  # what the sender said is kept on the order
    audit = plan.write.audit[0]
    assert audit["alarm"] == "waybill_reused" and audit["reused"] == {"waybill": "SF77", "bound_to": "douyin|1"}
    assert "already bound to douyin|1" in audit["note"]
    logistics = world.plan([ev(3, order="", status=S.IN_TRANSIT, source="kuaidi100", waybill="SF77")])
    assert logistics.results[0].order_id == "douyin|1"  # the carrier's scans still reach the first order
    same = world.plan([ev(4, order="douyin|1", status=S.IN_TRANSIT, waybill="SF77")])
    assert "alarm" not in same.write.audit[0]


def test_refund_then_resume():
    world = World()
    world.plan([ev(1, status=S.READY_TO_PACK)])
    world.plan([ev(2, status=S.REFUND_INITIATED)])
    plan = world.plan([ev(3, code=CODE_RESUME)])
    assert plan.results[0].outcome == Outcome.APPLIED
    assert world.orders[("t1", "douyin|1")].status is S.READY_TO_PACK


def test_tenants_never_share_orders_or_dedup():
    world = World()
    world.plan([ev(1, tenant="a")])
    plan = world.plan([ev(1, tenant="b")])
    assert plan.results[0].outcome == Outcome.NEW
    assert ("a", "douyin|1") in world.orders and ("b", "douyin|1") in world.orders


def test_cached_orders_are_never_mutated_before_commit():
    world = World()
    world.plan([ev(1, status=S.PAID, data={"a": 1})])
    cached = world.orders[("t1", "douyin|1")]
    before = cached.to_dict()
    plan_step([ev(2, status=S.PACKED, data={"a": 2})], lambda t, o: cached, lambda t, f: False,
              lambda t, w: None, lambda t, b, s: [], T0)
    assert cached.to_dict() == before


def test_iso_ms():
    assert iso_ms(0) == ""
    assert iso_ms(1_764_036_000_123) == "2025-11-25T02:00:00.123Z"


# -- version supersedence (Youzan pushes carry "version") ---------------------------


def yz(n, version, status=S.PAID, *, order="youzan|E1", source="youzan", data=None):
    return ev(n, order=order, status=status, source=source, data={"version": version, **(data or {})})


def test_lower_version_is_superseded_recorded_and_changes_nothing():
    world = World()
    world.plan([yz(1, 5, S.PENDING_REVIEW, data={"trade_status": "WAIT_SELLER_SEND_GOODS"})])
    before = world.orders[("t1", "youzan|E1")].to_dict()
    plan = world.plan([yz(2, 3, S.CANCELLED, data={"trade_status": "TRADE_CLOSED", "remark": "x"})])
    result = plan.results[0]
    assert result.outcome == Outcome.LATE and result.reason.startswith("superseded")
    assert result.status is S.PENDING_REVIEW
    assert plan.write.outbox == []
    assert plan.write.events[0]["outcome"] == "late"  # the event log keeps it (raw input too)
    audit = plan.write.audit[0]
    assert audit["decision"] == "late" and audit["changes"] == []
    assert "youzan version 3 < 5" in audit["note"]
    after = world.orders[("t1", "youzan|E1")].to_dict()
    assert after.pop("late_events") == before.pop("late_events") + 1  # counted, like any late event
    assert after == before  # no field, status, version or timestamp change


def test_higher_and_equal_versions_apply_and_the_highest_is_kept():
    world = World()
    world.plan([yz(1, 5, S.PAID)])
    plan = world.plan([yz(2, 7, S.PENDING_REVIEW), yz(3, 7, S.READY_TO_PACK, data={"remark": "r"})])
    assert [r.outcome for r in plan.results] == [Outcome.APPLIED, Outcome.APPLIED]
    order = world.orders[("t1", "youzan|E1")]
    assert order.status is S.READY_TO_PACK and order.source_version == {"youzan": 7}
    assert world.plan([yz(4, 6, S.PAID)]).results[0].reason.startswith("superseded")


def test_versions_are_compared_per_source():
    world = World()
    world.plan([yz(1, 1_700_000_000, S.PENDING_REVIEW)])
    # the ERP's own counter is small; it is not compared with Youzan's version
    plan = world.plan([yz(2, 3, S.READY_TO_PACK, source="erp")])
    assert plan.results[0].outcome == Outcome.APPLIED
    assert world.orders[("t1", "youzan|E1")].source_version == {"youzan": 1_700_000_000, "erp": 3}


def test_superseded_within_one_step_and_non_numeric_versions_are_ignored():
    world = World()
    plan = world.plan([yz(1, "12", S.PAID), yz(2, 11.5, S.CANCELLED), yz(3, "v2", S.PENDING_REVIEW),
                       yz(4, True, S.READY_TO_PACK)])
    assert [r.outcome for r in plan.results] == [Outcome.NEW, Outcome.LATE, Outcome.APPLIED, Outcome.APPLIED]
    order = world.orders[("t1", "youzan|E1")]
    assert order.status is S.READY_TO_PACK and order.source_version == {"youzan": 12}


def test_an_order_without_versions_is_unaffected_by_the_first_version():
    world = World()
    world.plan([ev(1, order="youzan|E1", status=S.PAID, source="youzan")])
    plan = world.plan([yz(2, 1, S.PENDING_REVIEW)])
    assert plan.results[0].outcome == Outcome.APPLIED


def test_order_state_round_trips_and_reads_records_written_before_the_new_fields():
    order = OrderState("t1", "douyin|1", S.PAID, pack_group="douyin|1", source_version={"youzan": 4})
    assert OrderState.from_dict(order.to_dict()) == order
    old_record = order.to_dict()
    del old_record["pack_group"], old_record["source_version"]
    restored = OrderState.from_dict(old_record)
    assert restored.pack_group == "" and restored.source_version == {}
    copy = order.copy()
    copy.source_version["youzan"] = 9
    assert order.source_version == {"youzan": 4}


def test_youzan_push_with_a_lower_version_through_the_shipped_rules_is_superseded():
    from gateway._rules import load_rules, normalise_batch
    from tests._support import RULES

    youzan = load_rules(RULES).get("youzan")

    def push(msg_id, kind, version):
        return {"client_id": "c", "kdt_id": 56232, "id": "E20261125", "type": kind, "status": "",
                "msg": {"tid": "E20261125", "update_time": "2026-11-25 10:00:00"},
                "msg_id": msg_id, "version": version, "sendCount": 1}

    world = World()
    world.plan(normalise_batch(youzan, "t1", [push("m2", "trade_TradeBuyerPay", 1764036005)], T0))
    # an older close message arrives last: the state machine alone would accept PENDING_REVIEW -> CANCELLED
    plan = world.plan(normalise_batch(youzan, "t1", [push("m1", "trade_TradeClose", 1764036001)], T0))
    assert plan.results[0].outcome == Outcome.LATE and plan.results[0].reason.startswith("superseded")
    order = world.orders[("t1", "youzan|E20261125")]
    assert order.status is S.PENDING_REVIEW and order.source_version == {"youzan": 1764036005}
