"""Gift rules (``gateway._rules.gifts``): the values and the pure evaluation; the file format
and its checks are tested in ``test_gift_file``."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway._rules import describe, load_rules
from gateway._rules.gifts import (
    GiftFile,
    GiftGrant,
    GiftOrder,
    GiftRule,
    GiftRules,
    evaluate_gifts,
)
from tests._support import RULES
from tests.rules.test_gift_file import DAY_MS, DOUBLE_11_MS, PROMO, parse_gifts


def rule(name: str = "r", **kwargs: Any) -> GiftRules:
    """A one-rule set, as the loader would build it from a file ``t`` at version 1."""
    kwargs.setdefault("tenant", "")
    kwargs.setdefault("gift_sku", "GIFT-1")
    return GiftRules(files=(values_file(GiftRule(rule_id=f"t@v1:{name}", name=name, **kwargs)),))


def values_file(*rules: GiftRule) -> GiftFile:
    return GiftFile(Path("t.toml"), 1, "", rules)


def order(order_id: str, total: float = 0.0, *lines: tuple[str, int], paid_at_ms: int = DOUBLE_11_MS) -> GiftOrder:
    return GiftOrder(order_id, order_id.partition("|")[0], total, tuple(lines), paid_at_ms)


# -- the seed's case and the threshold ------------------------------------------------------------

def test_a_299_threshold_unlocks_the_gift_box_only_at_or_over_299():
    gifts = rule("box-299", gift_sku="GIFTBOX-1", min_total=299.0)
    assert evaluate_gifts(gifts, "demo", [order("douyin|1", 298.99)]) == []
    assert evaluate_gifts(gifts, "demo", [order("douyin|1", 299.0)]) == [
        GiftGrant("t@v1:box-299", "douyin|1", "GIFTBOX-1", 1, "now")]
    assert len(evaluate_gifts(gifts, "demo", [order("douyin|1", 1299.5)])) == 1


@given(fen=st.integers(0, 10_000_000))
def test_the_threshold_is_exact_to_the_fen(fen):
    gifts = rule(min_total=299.0)
    granted = evaluate_gifts(gifts, "demo", [order("tmall|1", fen / 100)])
    assert bool(granted) == (fen >= 29_900)


@given(a=st.integers(0, 40_000), b=st.integers(0, 40_000))
def test_a_group_threshold_sums_its_members_to_the_fen(a, b):
    gifts = rule(min_total=299.0, scope="group")
    granted = evaluate_gifts(gifts, "demo", [order("douyin|1", a / 100), order("youzan|2", b / 100)])
    assert bool(granted) == (a + b >= 29_900)
    if granted:  # the largest contributor owns it; a tie goes to the earlier member
        assert granted[0].order_id == ("douyin|1" if a >= b else "youzan|2")


# -- scope ----------------------------------------------------------------------------------------

def test_group_scope_sums_a_merged_douyin_and_mini_program_group():
    douyin, mini = order("douyin|DY1", 199.0, ("SKU-300", 1)), order("youzan|YZ1", 100.0, ("SKU-301", 1))
    assert evaluate_gifts(rule(min_total=299.0, scope="group"), "demo", [douyin, mini]) == [
        GiftGrant("t@v1:r", "douyin|DY1", "GIFT-1")]
    assert evaluate_gifts(rule(min_total=299.0, scope="order"), "demo", [douyin, mini]) == []


def test_a_group_grant_follows_the_goods_for_sku_conditions():
    gifts = rule(scope="group", min_total=100.0, skus_any=("SKU-1*",))
    members = [order("tmall|1", 500.0, ("SKU-900", 1)), order("douyin|2", 20.0, ("SKU-150", 1)),
               order("douyin|3", 20.0, ("SKU-160", 1))]
    assert [g.order_id for g in evaluate_gifts(gifts, "demo", members)] == ["douyin|2"]


def test_scope_order_grants_each_order_that_qualifies():
    gifts = rule(skus_any=("SKU-1*",))
    members = [order("douyin|1", 1, ("SKU-100", 1)), order("douyin|2", 1, ("SKU-200", 1)),
               order("douyin|3", 1, ("SKU-199", 2))]
    assert [g.order_id for g in evaluate_gifts(gifts, "demo", members)] == ["douyin|1", "douyin|3"]


# -- filters --------------------------------------------------------------------------------------

def test_channel_filter():
    gifts = rule(channels=("douyin", "tmall"))
    members = [order("douyin|1"), order("pinduoduo|2"), order("tmall|3"), GiftOrder("no-bar", "", 0, (), 1)]
    assert [g.order_id for g in evaluate_gifts(gifts, "demo", members)] == ["douyin|1", "tmall|3"]


def test_a_group_counts_only_the_members_of_its_channels():
    gifts = rule(channels=("douyin",), min_total=299.0, scope="group")
    assert evaluate_gifts(gifts, "demo", [order("douyin|1", 199.0), order("youzan|2", 100.0)]) == []
    assert len(evaluate_gifts(gifts, "demo", [order("douyin|1", 199.0), order("douyin|2", 100.0)])) == 1


def test_the_campaign_window_reads_the_paid_time_starts_included_ends_excluded():
    gifts = rule(starts_ms=DOUBLE_11_MS, ends_ms=DOUBLE_11_MS + DAY_MS)
    for paid, expected in [(DOUBLE_11_MS - 1, False), (DOUBLE_11_MS, True), (DOUBLE_11_MS + DAY_MS - 1, True),
                           (DOUBLE_11_MS + DAY_MS, False), (0, False)]:  # 0: unknown, outside every window
        assert bool(evaluate_gifts(gifts, "demo", [order("douyin|1", paid_at_ms=paid)])) is expected, paid
    assert len(evaluate_gifts(rule(starts_ms=DOUBLE_11_MS), "d", [order("douyin|1", paid_at_ms=10**13)])) == 1
    assert evaluate_gifts(rule(ends_ms=DOUBLE_11_MS), "d", [order("douyin|1", paid_at_ms=DOUBLE_11_MS)]) == []


def test_tenant_filter():
    both = GiftRules((values_file(
        GiftRule("t@v1:a", "a", "demo", "GIFT-A"), GiftRule("t@v1:b", "b", "", "GIFT-B"),
        GiftRule("t@v1:c", "c", "other", "GIFT-C")),))
    assert [g.sku for g in evaluate_gifts(both, "demo", [order("douyin|1")])] == ["GIFT-A", "GIFT-B"]
    assert [g.sku for g in evaluate_gifts(both, "other", [order("douyin|1")])] == ["GIFT-B", "GIFT-C"]


# -- quantities -----------------------------------------------------------------------------------

def test_per_unit_grants_per_matching_unit():
    gifts = rule(skus_any=("SKU-1*",), per_unit=True, quantity=2, ships="later")
    grants = evaluate_gifts(gifts, "demo", [order("douyin|1", 0, ("SKU-100", 3), ("SKU-900", 5), ("SKU-110", 1))])
    assert grants == [GiftGrant("t@v1:r", "douyin|1", "GIFT-1", 8, "later")]
    assert evaluate_gifts(gifts, "demo", [order("douyin|1", 0, ("SKU-900", 5))]) == []
    everything = rule(per_unit=True)  # no pattern: every unit counts
    assert evaluate_gifts(everything, "d", [order("douyin|1", 0, ("A", 2), ("B", 1))])[0].quantity == 3


def test_per_unit_in_a_group_is_one_grant_for_the_pooled_units():
    gifts = rule(skus_any=("SKU-1*",), per_unit=True, scope="group")
    grants = evaluate_gifts(gifts, "d", [order("tmall|1", 0, ("X", 1)), order("douyin|2", 0, ("SKU-1", 2)),
                                         order("youzan|3", 0, ("SKU-12", 3))])
    assert grants == [GiftGrant("t@v1:r", "douyin|2", "GIFT-1", 5)]


def test_skus_all_and_min_quantity():
    pair = rule(skus_all=("SKU-A", "SKU-B*"))
    assert evaluate_gifts(pair, "d", [order("douyin|1", 0, ("SKU-A", 1))]) == []
    assert len(evaluate_gifts(pair, "d", [order("douyin|1", 0, ("SKU-A", 1), ("SKU-B2", 1))])) == 1
    three = rule(skus_any=("SKU-1*",), min_quantity=3)
    assert evaluate_gifts(three, "d", [order("douyin|1", 0, ("SKU-1", 2), ("X", 9))]) == []
    assert len(evaluate_gifts(three, "d", [order("douyin|1", 0, ("SKU-1", 2), ("SKU-12", 1))])) == 1


def test_the_same_gift_from_two_rules_is_two_grants():
    gifts = GiftRules((values_file(GiftRule("t@v1:a", "a", "", "GIFT-1", min_total=10.0),
                                   GiftRule("t@v1:b", "b", "", "GIFT-1", skus_any=("S*",))),))
    grants = evaluate_gifts(gifts, "d", [order("douyin|1", 20.0, ("S1", 1))])
    assert [(g.rule, g.sku) for g in grants] == [("t@v1:a", "GIFT-1"), ("t@v1:b", "GIFT-1")]


# -- orders from order data -----------------------------------------------------------------------

def test_gift_order_from_order_data():
    data = {"amount": "299.00", "lines": [{"sku": "SKU-100", "qty": 2}, {"sku": " SKU-200 ", "quantity": "3"},
                                          {"sku": "", "qty": 1}, {"qty": 1}, {"sku": "X", "qty": 0},
                                          {"sku": "Y", "qty": True}, {"sku": "Z", "qty": 1.5}, "junk",
                                          {"sku": "W", "qty": 4.0}]}
    built = GiftOrder.from_order_data("tmall|TB1", data, 123)
    assert built == GiftOrder("tmall|TB1", "tmall", 299.0, (("SKU-100", 2), ("SKU-200", 3), ("W", 4)), 123)
    assert GiftOrder.from_order_data("x", {"amount": "free", "lines": "none"}, 0) == GiftOrder("x", "", 0.0, (), 0)
    assert GiftOrder.from_order_data("x", {"amount": "nan"}, 0).total == 0.0
    assert GiftOrder.from_order_data("x", {"amount": 129}, 0).total == 129.0


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                               st.sampled_from(["sku", "qty", "quantity", "x"]), inner, max_size=4), max_leaves=12)


@given(data=st.dictionaries(st.sampled_from(["amount", "lines", "other"]), json_values), order_id=st.text(max_size=12))
def test_any_order_data_builds_an_order(data, order_id):
    built = GiftOrder.from_order_data(order_id, data, 0)
    assert all(isinstance(sku, str) and sku and qty >= 1 for sku, qty in built.lines)


def test_the_grant_moved_below_the_packline_and_round_trips():
    # Imported here: the pack line sits above the rules, so these tests must not need it to load.
    values = importlib.import_module("gateway._packline.values")
    assert values.GiftGrant is GiftGrant and "GiftGrant" in values.__all__ and "ShipWhen" in values.__all__
    grant = GiftGrant("demo@v1:box-299", "douyin|1", "GIFTBOX-1", 2, "later")
    assert GiftGrant.from_dict(grant.to_dict()) == grant


# -- random orders never crash evaluation ---------------------------------------------------------

skus = st.sampled_from(["SKU-100", "SKU-150", "SKU-199", "SKU-200", "GIFTBOX-1", "", "[x"]) | st.text(max_size=6)
gift_orders = st.builds(
    GiftOrder, order_id=st.sampled_from(["douyin|1", "youzan|2", "tmall|3", "x"]),
    channel=st.sampled_from(["douyin", "youzan", "tmall", ""]), total=st.floats(),
    lines=st.lists(st.tuples(skus, st.integers(-3, 10**6)), max_size=5).map(tuple),
    paid_at_ms=st.integers(-(10**15), 10**15))


PER_UNIT_GROUP = '[[gift]]\nname = "pu"\ngift_sku = "G"\nscope = "group"\nper_unit = true\nmin_quantity = 2\n'
EVERY_RULE = GiftRules((*load_rules(RULES).gifts.files, *parse_gifts(PROMO + PER_UNIT_GROUP).files))


@given(orders=st.lists(gift_orders, max_size=6), tenant=st.sampled_from(["demo", "t1", ""]))
def test_random_orders_never_crash_evaluation(orders, tenant):
    grants = evaluate_gifts(EVERY_RULE, tenant, orders)
    assert grants == evaluate_gifts(EVERY_RULE, tenant, orders)  # deterministic
    ids = {o.order_id for o in orders}
    assert all(g.quantity >= 1 and g.order_id in ids for g in grants)


# -- the shipped rules ---------------------------------------------------------------------------

def test_the_shipped_demo_gifts_load():
    ruleset = load_rules(RULES)
    assert [r.rule_id for r in ruleset.gifts] == ["demo@v1:box-299", "demo@v1:trial-sku-1xx"]
    assert "gifts/demo.toml" in describe(ruleset)
    grants = evaluate_gifts(ruleset.gifts, "demo", [
        GiftOrder.from_order_data("douyin|DY1", {"amount": 199.0, "lines": [{"sku": "SKU-150", "qty": 1}]}, 1),
        GiftOrder.from_order_data("youzan|YZ1", {"amount": "100", "lines": [{"sku": "SKU-950", "qty": 1}]}, 1)])
    assert grants == [GiftGrant("demo@v1:box-299", "douyin|DY1", "GIFTBOX-1", 1, "now"),
                      GiftGrant("demo@v1:trial-sku-1xx", "douyin|DY1", "TRIAL-1", 1, "later")]
    assert evaluate_gifts(ruleset.gifts, "t1", [order("douyin|1", 999.0, ("SKU-100", 1))]) == []
