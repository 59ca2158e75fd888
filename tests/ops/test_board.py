"""The anomaly board over a real store: every kind found where the store keeps it, with its
reason in both languages, its age and a link to the order; an acknowledgement survives a
restart; conditions that ended leave the board."""

from __future__ import annotations

from gateway._ops import KINDS, OpsState, read_acks
from gateway._ops.serve import compute_report
from gateway._ops.settings import BoardSettings, OciSettings
from tests.ops.seed import HOUR, NOW, RULESET, S, Seeder, open_at

MINUTE = 60_000


def seed_every_kind(store):
    seed = Seeder(store)
    seed.event("douyin|late", S.PAID, occurred=NOW - 25 * HOUR, processed=NOW - 25 * HOUR + 1000)
    seed.event("douyin|young", S.PAID, occurred=NOW - 2 * HOUR, processed=NOW - 2 * HOUR + 1000)
    seed.event("douyin|first", S.READY_TO_PACK, occurred=NOW - 30 * HOUR, processed=NOW - 30 * HOUR, buyer=77)
    seed.event("douyin|again", S.READY_TO_PACK, occurred=NOW - 10 * HOUR, processed=NOW - 10 * HOUR, buyer=77)
    seed.event("douyin|split", S.READY_TO_PACK, occurred=NOW - 3 * HOUR, processed=NOW - 3 * HOUR)
    seed.event("douyin|split", S.REFUNDED, source="douyin", occurred=NOW - 2 * HOUR, processed=NOW - 2 * HOUR)
    seed.event("douyin|odd", None, occurred=NOW - 5 * HOUR, processed=NOW - 5 * HOUR, unknown="NEVER_HEARD_OF")
    seed.event("douyin|refunded", S.SHIPPED, occurred=NOW - 9 * HOUR, processed=NOW - 9 * HOUR, waybill="SF1")
    seed.event("douyin|refunded", S.REFUND_INITIATED, source="douyin", occurred=NOW - HOUR, processed=NOW - HOUR)
    seed.event("douyin|gift", S.READY_TO_PACK, occurred=NOW - 4 * HOUR, processed=NOW - 4 * HOUR)
    seed.event("douyin|hold", S.READY_TO_PACK, occurred=NOW - 4 * HOUR, processed=NOW - 4 * HOUR)
    seed.event("douyin|review", S.READY_TO_PACK, occurred=NOW - 6 * HOUR, processed=NOW - 6 * HOUR)
    seed.event("douyin|review", S.ON_HOLD, occurred=NOW - 5 * HOUR, processed=NOW - 5 * HOUR)
    seed.event("douyin|customs", S.READY_TO_PACK, occurred=NOW - 2 * HOUR, processed=NOW - 2 * HOUR)
    seed.records(
        ("customs_hold", "douyin|customs", {"order_id": "douyin|customs", "group_id": "douyin|customs",
                                             "at_ms": NOW - 2 * HOUR, "station": "",
                                             "missing": [{"sku": "A1", "attribute": "hs_code", "fill_target": "product",
                                                          "fill_id": "A1", "field": "hs_code"}]}),
        ("parcel", "douyin|nowaybill", {"group_id": "douyin|nowaybill", "order_ids": ["douyin|nowaybill"],
                                         "packed_at_ms": NOW - 20 * MINUTE, "waybill": "", "station": "A1"}),
        ("parcel", "douyin|recent", {"group_id": "douyin|recent", "order_ids": ["douyin|recent"],
                                      "packed_at_ms": NOW - 5 * MINUTE, "waybill": ""}),
        ("intercept", "douyin|refunded", {"order_id": "douyin|refunded", "waybill": "SF1",
                                           "group_id": "douyin|refunded", "refund_status": "REFUND_INITIATED",
                                           "pickup_state": "picked_up", "labelled_at_ms": NOW - 9 * HOUR}),
        ("plan", "douyin|gift", {"group_id": "douyin|gift", "orders": ["douyin|gift"], "gifts": [],
                                  "shortfalls": {"GIFT-BAG": 2}, "planned_at_ms": NOW - 4 * HOUR}),
        ("hold", "douyin|gift", {"group_id": "douyin|gift", "orders": ["douyin|gift"], "reason": "STOP_NO_STOCK",
                                  "shortfalls": {"GIFT-BAG": 2}, "at_ms": NOW - 4 * HOUR}),
        ("hold", "douyin|hold", {"group_id": "douyin|hold", "orders": ["douyin|hold"], "reason": "WEIGHT_CHECK",
                                  "at_ms": NOW - 3 * HOUR}),
    )
    seq = store.commit(_outbox_step()).outbox_seqs[0]
    store.dead_letter([(seq, {"status": 422, "response": "unknown sku X9", "at_ms": NOW - 7 * HOUR})])


def _outbox_step():
    from gateway._store import StepWrite

    return StepWrite(outbox=[{"tenant": "t1", "event_id": "ff", "order_id": "douyin|dead", "type": "erp"}])


def board_of(store, **board):
    return compute_report(store, RULESET, "t1", OciSettings(), BoardSettings(**board), NOW).board


def test_every_kind_is_found_with_its_reason_age_and_link(tmp_path):
    with open_at(tmp_path / "db") as store:
        seed_every_kind(store)
        board = board_of(store)
    found = {(a.kind, a.order_id) for a in board}
    assert found == {
        ("unshipped_24h", "douyin|late"), ("unshipped_24h", "douyin|first"),
        ("repeat_order_72h", "douyin|again"),
        ("status_disagrees", "douyin|split"),
        ("quarantined", "douyin|odd"),
        ("dead_letter", "douyin|dead"),
        ("waybill_timeout", "douyin|nowaybill"),
        ("intercept", "douyin|refunded"),
        ("gift_shortfall", "douyin|gift"),
        ("held", "douyin|hold"), ("held", "douyin|review"),
        ("declaration_incomplete", "douyin|customs"),
    }
    assert {a.kind for a in board} == set(KINDS)
    assert [a.since_ms for a in board] == sorted(a.since_ms for a in board)  # oldest first
    by_kind = {a.kind: a for a in board}
    for anomaly in board:
        view = anomaly.to_dict(NOW, None)
        assert view["reason"] and view["reason_en"] and view["age_s"] >= 0 and view["ack"] is None
        assert view["link"] == "/api/v1/tenants/t1/orders/" + anomaly.order_id.replace("|", "%7C")
    split = by_kind["status_disagrees"]
    assert split.code == "withdrawn_vs_preparing" and "REFUNDED" in split.reason and "READY_TO_PACK" in split.reason
    assert by_kind["repeat_order_72h"].detail["earlier_order_id"] == "douyin|first"
    assert by_kind["intercept"].detail["pickup_state"] == "picked_up" and "已揽收" in by_kind["intercept"].reason
    assert by_kind["quarantined"].code == "unknown_status" and "NEVER_HEARD_OF" in by_kind["quarantined"].reason
    assert by_kind["dead_letter"].to_dict(NOW, None)["age_s"] == 7 * 3600
    assert by_kind["gift_shortfall"].detail["shortfalls"] == {"GIFT-BAG": 2}
    assert by_kind["unshipped_24h"].to_dict(NOW, None)["age_s"] >= 24 * 3600


def test_conditions_that_ended_leave_the_board(tmp_path):
    with open_at(tmp_path / "db") as store:
        seed = Seeder(store)
        seed.event("douyin|gift", S.READY_TO_PACK, occurred=NOW - 4 * HOUR, processed=NOW - 4 * HOUR)
        seed.records(("plan", "douyin|gift", {"group_id": "douyin|gift", "orders": ["douyin|gift"],
                                              "shortfalls": {"GIFT-BAG": 1}, "planned_at_ms": NOW - 4 * HOUR}),
                     ("parcel", "douyin|p", {"order_ids": ["douyin|p"], "packed_at_ms": NOW - HOUR, "waybill": ""}))
        assert {a.kind for a in board_of(store)} == {"gift_shortfall", "waybill_timeout"}
        seed.records(("parcel", "douyin|gift", {"order_ids": ["douyin|gift"], "packed_at_ms": NOW, "waybill": "SF2"}),
                     ("parcel", "douyin|p", {"order_ids": ["douyin|p"], "packed_at_ms": NOW - HOUR, "waybill": "SF3"}))
        assert board_of(store) == []
        assert board_of(store, waybill_timeout_s=7200.0) == []


async def test_an_acknowledgement_records_who_and_when_and_survives_a_restart(tmp_path):
    path = tmp_path / "db"
    with open_at(path) as store:
        seed_every_kind(store)
        state = OpsState(store, lambda: RULESET, clock=lambda: NOW + 1000)
        anomaly, ack = await state.acknowledge("t1", "intercept:douyin|refunded", "王主管")
        assert ack == {"anomaly_id": "intercept:douyin|refunded", "kind": "intercept",
                       "order_id": "douyin|refunded", "by": "王主管", "at_ms": NOW + 1000}
        assert await state.acknowledge("t1", "intercept:douyin|nope", "x") is None
        audit = [a for a in store.iter_audit("t1", "douyin|refunded") if a["decision"] == "anomaly_ack"]
        assert audit[0]["actor"] == "api:王主管" and store.verify_audit_chain("t1").ok
    with open_at(path) as store:
        acks = read_acks(store, "t1")
        assert acks["intercept:douyin|refunded"]["by"] == "王主管"
        board = board_of(store)
        view = next(a for a in board if a.anomaly_id == "intercept:douyin|refunded").to_dict(NOW, acks.get(
            "intercept:douyin|refunded"))
        assert view["ack"] == {"by": "王主管", "at_ms": NOW + 1000}
        # the ack record does not disturb traceability: the chain still rebuilds every order
        report = compute_report(store, RULESET, "t1", OciSettings(), BoardSettings(), NOW + HOUR)
        assert report.oci.parts["traceability"] == 1.0
