"""Cross-channel grouping: one buyer's orders on several channels ship as one pack group."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway._model import OrderState, Status, target_code
from gateway._pipeline import Outcome, plan_step
from gateway._pipeline.grouping import channel_of, is_open, merge_event_id, packing_started
from gateway._rules import load_rules, normalise_batch
from gateway._store import StoreSettings, open_store
from tests._support import RULES
from tests._support.steps import T0, World, ev

S = Status
MINUTE = 60_000
WINDOW = 30 * MINUTE


@pytest.fixture(scope="module")
def erp():
    return load_rules(RULES).get("erp")


def douyin_main_and_trial_kit(phone="138 0013 8000"):
    """The seed case's first order: main item + trial kit on Douyin, reported by the ERP feed."""
    return {
        "event_id": "erp-dy-1", "platform": "douyin", "order_no": "6919001", "status": "WAIT_AUDIT",
        "occurred_at": "2026-11-25T10:00:00+08:00", "buyer": {"phone": phone, "name": "Li"},
        "amount": 159.0, "lines": [{"sku": "SERUM-50ML", "qty": 1}, {"sku": "TRIAL-KIT-5", "qty": 1}],
    }


def miniprogram_gift_box(phone="+86 138-0013-8000", at="2026-11-25T10:02:00+08:00", **extra):
    """Two minutes later: a gift box on the Youzan mini-program shop, reported by the ERP feed."""
    event = {
        "event_id": "erp-yz-1", "platform": "youzan", "order_no": "E20261125100200001", "status": "PAID",
        "occurred_at": at, "buyer": {"phone": phone}, "amount": 39.0,
        "lines": [{"sku": "GIFT-BOX-RED", "qty": 1}], "gift_box": "GIFT-BOX-RED",
    }
    event.update(extra)
    return event


def test_seed_case_gift_box_on_the_mini_program_joins_the_douyin_order(erp):
    world = World()
    world.plan(normalise_batch(erp, "t1", [douyin_main_and_trial_kit()], T0), now_ms=T0)
    plan = world.plan(normalise_batch(erp, "t1", [miniprogram_gift_box()], T0 + 2 * MINUTE),
                      now_ms=T0 + 2 * MINUTE)
    assert [r.outcome for r in plan.results] == [Outcome.NEW]
    douyin = world.orders[("t1", "douyin|6919001")]
    youzan = world.orders[("t1", "youzan|E20261125100200001")]
    assert douyin.pack_group == youzan.pack_group == "douyin|6919001"  # the earliest order names it

    merge = [o for o in plan.write.outbox if o["type"] == "merge_pack"]
    assert len(merge) == 1
    instruction = merge[0]
    assert instruction["order_id"] == "douyin|6919001" and instruction["tenant"] == "t1"
    assert instruction["data"] == {"pack_group": "douyin|6919001",
                                   "orders": ["douyin|6919001", "youzan|E20261125100200001"], "replaces": []}
    assert instruction["seq"] == douyin.seq == 2  # the primary's reported events: its order, the merge
    assert instruction["status"] == instruction["prev_status"] == "PENDING_REVIEW"
    assert instruction["occurred_at"] == "2026-11-25T02:02:00.000Z"
    assert instruction["event_id"] == merge_event_id("t1", "douyin|6919001", instruction["data"]["orders"])

    grouped = [a for a in plan.write.audit if a["decision"] == "merge_pack"]
    assert sorted(a["order_id"] for a in grouped) == ["douyin|6919001", "youzan|E20261125100200001"]
    for record in grouped:
        assert record["changes"] == [{"field": "pack_group", "old": None, "new": "douyin|6919001"}]
        assert record["event_id"] == instruction["event_id"] and record["actor"] == "gateway:merge-pack"


def test_replaying_the_same_events_gives_the_same_instruction_id(erp):
    ids = []
    for _ in range(2):
        world = World()
        world.plan(normalise_batch(erp, "t1", [douyin_main_and_trial_kit()], T0), now_ms=T0)
        world.plan(normalise_batch(erp, "t1", [miniprogram_gift_box()], T0), now_ms=T0 + 2 * MINUTE)
        ids.append([o["event_id"] for o in world.outbox if o["type"] == "merge_pack"])
    assert ids[0] == ids[1] and len(ids[0]) == 1


def test_seed_case_through_the_real_store(erp, tmp_path):
    """The buyer index of RocksDB feeds the step exactly like the test double does."""
    with open_store(StoreSettings(path=tmp_path / "db")) as store:
        def step(raw, now):
            plan = plan_step(normalise_batch(erp, "t1", [raw], now), store.get_order, store.seen_fingerprint,
                             store.order_for_waybill, store.orders_for_buyer, now, merge_window_ms=WINDOW)
            store.commit(plan.write)
            return plan

        step(douyin_main_and_trial_kit(), T0)
        plan = step(miniprogram_gift_box(), T0 + 2 * MINUTE)
        assert [o["type"] for o in plan.write.outbox] == ["erp", "merge_pack"]
        assert store.get_order("t1", "douyin|6919001").pack_group == "douyin|6919001"
        assert store.get_order("t1", "youzan|E20261125100200001").pack_group == "douyin|6919001"
        assert [a["decision"] for a in store.iter_audit("t1", "douyin|6919001")] == ["new", "merge_pack"]
        assert store.verify_audit_chain("t1").ok


def test_both_orders_in_one_step_group_too(erp):
    world = World()
    plan = world.plan(normalise_batch(erp, "t1", [douyin_main_and_trial_kit(), miniprogram_gift_box()], T0))
    assert [o["type"] for o in plan.write.outbox] == ["erp", "erp", "merge_pack"]
    assert world.orders[("t1", "youzan|E20261125100200001")].pack_group == "douyin|6919001"


# -- negative cases -------------------------------------------------------------------


def two_orders(world, first, second, gap_ms=2 * MINUTE):
    world.plan([first], now_ms=T0)
    return world.plan([second], now_ms=T0 + gap_ms)


def merges(plan):
    return [o for o in plan.write.outbox if o["type"] == "merge_pack"]


def test_outside_the_window_no_group():
    world = World(merge_window_ms=WINDOW)
    plan = two_orders(world, ev(1, "douyin|1", buyer=7), ev(2, "youzan|2", buyer=7), gap_ms=WINDOW + 1)
    assert merges(plan) == [] and world.orders[("t1", "youzan|2")].pack_group == ""
    world = World(merge_window_ms=WINDOW)
    plan = two_orders(world, ev(1, "douyin|1", buyer=7), ev(2, "youzan|2", buyer=7), gap_ms=WINDOW)
    assert len(merges(plan)) == 1  # the window's edge is inside


def test_same_channel_no_group():
    world = World()
    plan = two_orders(world, ev(1, "douyin|1", buyer=7), ev(2, "douyin|2", buyer=7))
    assert merges(plan) == [] and world.orders[("t1", "douyin|1")].pack_group == ""


@pytest.mark.parametrize("status", [S.PACKING, S.PACKED, S.SHIPPED, S.CANCELLED, S.REFUND_INITIATED])
def test_order_already_packing_or_withdrawn_is_not_merged(status):
    world = World()
    world.plan([ev(1, "douyin|1", S.READY_TO_PACK, buyer=7)], now_ms=T0)
    world.plan([ev(2, "douyin|1", status)], now_ms=T0 + MINUTE)
    plan = world.plan([ev(3, "youzan|2", buyer=7)], now_ms=T0 + 2 * MINUTE)
    assert merges(plan) == []
    assert world.orders[("t1", "douyin|1")].pack_group == ""


def test_new_order_already_packing_is_not_merged():
    world = World()
    plan = two_orders(world, ev(1, "douyin|1", buyer=7), ev(2, "youzan|2", S.PACKING, buyer=7))
    assert merges(plan) == []


def test_different_buyer_no_group(erp):
    world = World()
    world.plan(normalise_batch(erp, "t1", [douyin_main_and_trial_kit()], T0), now_ms=T0)
    plan = world.plan(normalise_batch(erp, "t1", [miniprogram_gift_box(phone="139 0000 1111")], T0),
                      now_ms=T0 + 2 * MINUTE)
    assert merges(plan) == []


def test_different_tenant_no_group(erp):
    world = World()
    world.plan(normalise_batch(erp, "t1", [douyin_main_and_trial_kit()], T0), now_ms=T0)
    plan = world.plan(normalise_batch(erp, "t2", [miniprogram_gift_box()], T0), now_ms=T0 + 2 * MINUTE)
    assert merges(plan) == []
    # even with an identical buyer key the index is per tenant
    world = World()
    plan = two_orders(world, ev(1, "douyin|1", buyer=7, tenant="a"), ev(2, "youzan|2", buyer=7, tenant="b"))
    assert merges(plan) == []


def test_window_zero_turns_grouping_off():
    world = World(merge_window_ms=0)
    plan = two_orders(world, ev(1, "douyin|1", buyer=7), ev(2, "youzan|2", buyer=7), gap_ms=0)
    assert merges(plan) == []


def test_stale_index_entry_of_an_order_that_changed_buyer_is_ignored():
    world = World()
    world.plan([ev(1, "douyin|1", buyer=7)], now_ms=T0)
    world.plan([ev(2, "douyin|1", S.PENDING_REVIEW, buyer=8)], now_ms=T0 + MINUTE)  # corrected buyer
    plan = world.plan([ev(3, "youzan|2", buyer=7)], now_ms=T0 + 2 * MINUTE)
    assert merges(plan) == []


def test_a_buyer_key_shared_by_more_than_fifty_orders_in_the_window_is_not_grouped():
    world = World()
    world.plan([ev(n, f"youzan|{n}", buyer=7) for n in range(51)], now_ms=T0)  # e.g. a masked phone
    plan = world.plan([ev(99, "douyin|99", buyer=7)], now_ms=T0 + MINUTE)
    assert merges(plan) == []
    world = World()
    world.plan([ev(n, f"youzan|{n}", buyer=7) for n in range(50)], now_ms=T0)
    assert len(merges(world.plan([ev(99, "douyin|99", buyer=7)], now_ms=T0 + MINUTE))) == 1


# -- growing groups -------------------------------------------------------------------


def test_a_third_order_joins_without_renaming_the_group():
    world = World()
    two_orders(world, ev(1, "douyin|1", buyer=7), ev(2, "youzan|2", buyer=7))
    plan = world.plan([ev(3, "tmall|3", buyer=7)], now_ms=T0 + 5 * MINUTE)
    [instruction] = merges(plan)
    assert instruction["data"]["orders"] == ["douyin|1", "youzan|2", "tmall|3"]
    assert instruction["order_id"] == "douyin|1" and instruction["seq"] == 3
    assert [a["order_id"] for a in plan.write.audit if a["decision"] == "merge_pack"] == ["tmall|3"]
    # a member reached through its group although outside the newcomer's window
    world = World(merge_window_ms=WINDOW)
    two_orders(world, ev(1, "douyin|1", buyer=7), ev(2, "youzan|2", buyer=7), gap_ms=20 * MINUTE)
    plan = world.plan([ev(3, "youzan|3", buyer=7)], now_ms=T0 + 40 * MINUTE)
    assert merges(plan)[0]["data"]["orders"] == ["douyin|1", "youzan|2", "youzan|3"]


def test_same_channel_order_joins_an_existing_cross_channel_group():
    world = World()
    two_orders(world, ev(1, "douyin|1", buyer=7), ev(2, "youzan|2", buyer=7))
    world.plan([ev(3, "douyin|3", buyer=7)], now_ms=T0 + 3 * MINUTE)
    assert world.orders[("t1", "douyin|3")].pack_group == "douyin|1"


def test_a_group_whose_packing_started_is_closed():
    world = World()
    two_orders(world, ev(1, "douyin|1", buyer=7), ev(2, "youzan|2", buyer=7))
    world.plan([ev(3, "douyin|1", S.PACKING)], now_ms=T0 + 3 * MINUTE)
    plan = world.plan([ev(4, "tmall|4", buyer=7)], now_ms=T0 + 4 * MINUTE)
    assert merges(plan) == []
    assert world.orders[("t1", "tmall|4")].pack_group == ""


def test_order_on_hold_before_packing_is_merged():
    world = World()
    world.plan([ev(1, "douyin|1", S.PENDING_REVIEW, buyer=7)], now_ms=T0)
    world.plan([ev(2, "douyin|1", S.ON_HOLD)], now_ms=T0 + MINUTE)
    plan = world.plan([ev(3, "youzan|2", buyer=7)], now_ms=T0 + 2 * MINUTE)
    assert len(merges(plan)) == 1


def test_a_member_in_refund_neither_closes_the_group_nor_is_listed():
    world = World(merge_window_ms=WINDOW)
    two_orders(world, ev(1, "douyin|1", buyer=7), ev(2, "youzan|2", buyer=7))
    world.plan([ev(3, "youzan|2", S.REFUND_INITIATED)], now_ms=T0 + 3 * MINUTE)
    plan = world.plan([ev(4, "tmall|4", buyer=7)], now_ms=T0 + 4 * MINUTE)
    assert merges(plan)[0]["data"]["orders"] == ["douyin|1", "tmall|4"]
    assert world.orders[("t1", "tmall|4")].pack_group == "douyin|1"


def test_two_groups_meeting_keep_the_earlier_id():
    world = World(merge_window_ms=WINDOW)
    two_orders(world, ev(1, "douyin|1", buyer=7), ev(2, "youzan|2", buyer=7), gap_ms=0)
    world.plan([ev(3, "xiaohongshu|5", buyer=0)], now_ms=T0 + 20 * MINUTE)  # no buyer known yet
    world.plan([ev(4, "tmall|3", buyer=7), ev(5, "pinduoduo|4", buyer=7)], now_ms=T0 + 40 * MINUTE)
    assert world.orders[("t1", "tmall|3")].pack_group == "pinduoduo|4"  # out of the first group's window
    # the buyer of the order first seen at minute 20 becomes known: it bridges both groups
    plan = world.plan([ev(6, "xiaohongshu|5", S.PENDING_REVIEW, buyer=7)], now_ms=T0 + 45 * MINUTE)
    [instruction] = merges(plan)
    assert instruction["data"] == {
        "pack_group": "douyin|1", "replaces": ["pinduoduo|4"],
        "orders": ["douyin|1", "youzan|2", "xiaohongshu|5", "pinduoduo|4", "tmall|3"]}
    groups = {o: world.orders[("t1", o)].pack_group for o in instruction["data"]["orders"]}
    assert set(groups.values()) == {"douyin|1"}
    relabelled = sorted(a["order_id"] for a in plan.write.audit if a["decision"] == "merge_pack")
    assert relabelled == ["pinduoduo|4", "tmall|3", "xiaohongshu|5"]


def test_eligibility_helpers():
    order = OrderState("t1", "douyin|1", S.ON_HOLD, resume_status=S.PACKING)
    assert not is_open(order) and packing_started(order)
    order = OrderState("t1", "douyin|1", S.ON_HOLD, resume_status=S.READY_TO_PACK)
    assert is_open(order) and not packing_started(order)
    assert channel_of("douyin|69|1") == "douyin"


# -- properties -----------------------------------------------------------------------

CHANNELS = ["douyin", "youzan", "tmall", "pinduoduo", "xiaohongshu"]
orders_of_one_buyer = st.lists(
    st.tuples(st.sampled_from(CHANNELS), st.integers(0, 999)), min_size=1, max_size=8, unique=True,
).map(lambda pairs: [f"{channel}|{number}" for channel, number in pairs])


def final_groups(order_ids, one_step):
    world = World()
    events = [ev(n, order_id, buyer=7) for n, order_id in enumerate(order_ids)]
    if one_step:
        world.plan(events, now_ms=T0)
    else:
        for event in events:
            world.plan([event], now_ms=T0)
    return {order_id: world.orders[("t1", order_id)].pack_group for order_id in order_ids}, world


@settings(max_examples=60, deadline=None)
@given(orders_of_one_buyer, st.randoms(use_true_random=False), st.booleans())
def test_group_id_is_independent_of_arrival_order(order_ids, random, one_step):
    expected, world = final_groups(sorted(order_ids), one_step)
    shuffled = list(order_ids)
    random.shuffle(shuffled)
    got, shuffled_world = final_groups(shuffled, one_step)
    assert got == expected
    spans_channels = len({channel_of(o) for o in order_ids}) > 1
    assert set(got.values()) == ({min(order_ids)} if spans_channels else {""})
    if spans_channels:  # the last instruction lists the whole group
        last = [o for o in shuffled_world.outbox if o["type"] == "merge_pack"][-1]
        assert sorted(last["data"]["orders"]) == sorted(order_ids)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(CHANNELS), min_size=2, max_size=5))
def test_merge_event_id_is_stable_and_depends_on_members(channels):
    members = [f"{c}|{n}" for n, c in enumerate(channels)]
    assert merge_event_id("t1", members[0], members) == merge_event_id("t1", members[0], list(members))
    assert merge_event_id("t1", members[0], members) != merge_event_id("t1", members[0], members[:-1])
    assert merge_event_id("t1", members[0], members) != merge_event_id("t2", members[0], members)


# -- leaving a group (rule 7) ------------------------------------------------------------------


def three_orders(world):
    two_orders(world, ev(1, "douyin|1", buyer=7), ev(2, "youzan|2", buyer=7))
    world.plan([ev(3, "tmall|3", buyer=7)], now_ms=T0 + 3 * MINUTE)
    assert {world.orders[("t1", o)].pack_group for o in ("douyin|1", "youzan|2", "tmall|3")} == {"douyin|1"}


def labels(world, *order_ids):
    return [world.orders[("t1", o)].pack_group for o in order_ids]


def test_a_refunded_gift_box_dissolves_a_two_order_group():
    world = World()
    two_orders(world, ev(1, "douyin|1", buyer=7), ev(2, "youzan|2", buyer=7))
    plan = world.plan([ev(3, "youzan|2", S.REFUND_INITIATED)], now_ms=T0 + 5 * MINUTE)
    [instruction] = merges(plan)
    assert instruction["order_id"] == "douyin|1"
    assert instruction["data"] == {"pack_group": "douyin|1", "orders": [], "replaces": [],
                                   "removed": ["youzan|2", "douyin|1"], "dissolved": True}
    assert labels(world, "douyin|1", "youzan|2") == ["", ""]
    left = [a for a in plan.write.audit if a["decision"] == "merge_pack"]
    assert sorted(a["order_id"] for a in left) == ["douyin|1", "youzan|2"] and "dissolved" in left[0]["note"]


def test_a_cancelled_member_leaves_and_the_rest_stay_grouped():
    world = World()
    three_orders(world)
    plan = world.plan([ev(4, "youzan|2", S.CANCELLED)], now_ms=T0 + 5 * MINUTE)
    [instruction] = merges(plan)
    assert instruction["data"] == {"pack_group": "douyin|1", "orders": ["douyin|1", "tmall|3"], "replaces": [],
                                   "removed": ["youzan|2"], "dissolved": False}
    assert labels(world, "douyin|1", "youzan|2", "tmall|3") == ["douyin|1", "", "douyin|1"]


def test_when_the_primary_leaves_the_earliest_remaining_order_names_the_group():
    world = World()
    three_orders(world)
    plan = world.plan([ev(4, "douyin|1", S.CANCELLED)], now_ms=T0 + 5 * MINUTE)
    [instruction] = merges(plan)
    assert instruction["order_id"] == "youzan|2"
    assert instruction["data"]["pack_group"] == "youzan|2" and instruction["data"]["replaces"] == ["douyin|1"]
    assert labels(world, "douyin|1", "youzan|2", "tmall|3") == ["", "youzan|2", "youzan|2"]


def test_nothing_changes_once_packing_of_the_group_started():
    world = World()
    two_orders(world, ev(1, "douyin|1", buyer=7), ev(2, "youzan|2", buyer=7))
    world.plan([ev(3, "douyin|1", S.PACKING)], now_ms=T0 + 3 * MINUTE)
    plan = world.plan([ev(4, "youzan|2", S.REFUND_INITIATED)], now_ms=T0 + 4 * MINUTE)
    assert merges(plan) == []  # the parcel is on the bench: refund interception is the pack line's job
    assert labels(world, "youzan|2") == ["douyin|1"]


def test_leaving_is_replay_stable():
    def run():
        world = World()
        three_orders(world)
        return merges(world.plan([ev(4, "youzan|2", S.CANCELLED)], now_ms=T0 + 5 * MINUTE))[0]["event_id"]

    assert run() == run()


def test_an_order_whose_refund_is_withdrawn_rejoins_the_group():
    world = World()
    two_orders(world, ev(1, "douyin|1", buyer=7), ev(2, "youzan|2", buyer=7))
    world.plan([ev(3, "youzan|2", S.REFUND_INITIATED)], now_ms=T0 + 5 * MINUTE)
    assert labels(world, "douyin|1", "youzan|2") == ["", ""]  # dissolved
    plan = world.plan([ev(4, "youzan|2", code=target_code("@resume"))], now_ms=T0 + 6 * MINUTE)
    assert world.orders[("t1", "youzan|2")].status is S.PAID
    [instruction] = merges(plan)
    assert instruction["data"]["orders"] == ["douyin|1", "youzan|2"]
    assert labels(world, "douyin|1", "youzan|2") == ["douyin|1", "douyin|1"]
