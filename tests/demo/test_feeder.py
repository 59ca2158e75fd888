"""The demo ERP (no I/O): seeded orders from the demo catalog, a pick list for the packers,
shipping after packing, refunds; and the self-packing flow when no packer runs."""

from __future__ import annotations

from gateway._demo.catalog import GIFT_BOX_SKU, ITEM_SKUS
from gateway._demo.feeder import FIRST_WAVE, WAVE, DemoErp


def statuses(batch):
    return [(e["platform"] + "|" + e["order_no"], e["status"]) for e in batch]


def test_the_same_seed_gives_the_same_orders():
    one, two = DemoErp(seed=3, run="a-", packers=True), DemoErp(seed=3, run="a-", packers=True)
    for _ in range(10):
        first, second = one.next_batch(), two.next_batch()
        assert [{k: v for k, v in e.items() if k != "occurred_at"} for e in first] == [
            {k: v for k, v in e.items() if k != "occurred_at"} for e in second]


def test_lines_use_the_demo_catalog_and_amounts_are_their_prices():
    erp = DemoErp(seed=11, packers=True)
    events = [e for _ in range(20) for e in erp.next_batch()]
    assert events
    for event in events:
        assert all(line["sku"] in ITEM_SKUS or line["sku"] == GIFT_BOX_SKU for line in event["lines"])
        assert event.get("gift_box") in (None, GIFT_BOX_SKU)


def test_the_first_wave_is_released_at_once_and_packers_take_it():
    erp = DemoErp(seed=5, packers=True)
    batch = erp.next_batch()
    audited = [order for order, status in statuses(batch) if status == "AUDITED"]
    assert len(audited) >= FIRST_WAVE
    picks = []
    while (pick := erp.next_pick()) is not None:
        picks.append(pick)
    assert len(picks) == FIRST_WAVE
    assert sorted(o for orders, _ in picks for o in orders) == sorted(audited)
    orders, slip = picks[0]
    assert orders[0].endswith("|" + slip)  # the pick slip carries the bare order number


def test_a_packed_order_ships_and_a_refunded_one_is_refunded():
    erp = DemoErp(seed=5, packers=True)
    erp.next_batch()
    (packed, _), (refunded, _) = erp.next_pick(), erp.next_pick()
    erp.packed(packed)
    event = erp.refund(refunded[0])
    assert event is not None and event["status"] == "REFUNDING"
    later = statuses(erp.next_batch()) + statuses(erp.next_batch())
    assert (packed[0], "SENT") in later and (refunded[0], "REFUNDED") in later
    assert erp.refund("douyin|nope") is None


def test_new_orders_wait_while_the_wave_is_full():
    erp = DemoErp(seed=9, packers=True)
    for _ in range(30):
        erp.next_batch()  # nobody packs
    waiting = sum(1 for o in erp.open_orders.values() if o.waiting or "AUDITED" in o.todo)
    assert waiting <= WAVE + FIRST_WAVE + 2


def test_without_packers_the_erp_packs_by_itself():
    erp = DemoErp(seed=1)
    seen = [status for _ in range(12) for _, status in statuses(erp.next_batch())]
    assert "PACKED" in seen and "SENT" in seen
    assert erp.next_pick() is None
