"""The Order Credibility Index over a real store: each part on a seeded mix, the drill-down
naming exactly the orders that pull a part down, the trend record per hour, the cost."""

from __future__ import annotations

import gc

import pytest

from gateway._ops import OciSettings, OpsState, measure_oci, read_trend
from gateway._ops.oci import TREND_KIND, combined_score, hour_of
from gateway._ops.serve import compute_report
from gateway._ops.settings import BoardSettings
from gateway._store import StepWrite
from tests.ops.seed import HOUR, NOW, RULESET, S, Seeder, open_at


def seed_mix(store):
    """10 orders: 2 processed 200 s after their source event (stale), 1 whose platform says
    refund while the ERP says ready to pack, 1 changed without an audit record."""
    seed = Seeder(store)
    for n in range(10):
        occurred = NOW - 2 * HOUR + n * 1000
        lag = 200_000 if n in (3, 7) else 10_000
        seed.event(f"douyin|{n}", S.READY_TO_PACK, occurred=occurred, processed=occurred + lag)
    seed.event("douyin|5", S.REFUND_INITIATED, source="douyin", occurred=NOW - HOUR, processed=NOW - HOUR + 2000)
    tampered = store.get_order("t1", "douyin|8").copy()
    tampered.waybill = "SF-NO-AUDIT"  # written around the pipeline: no audit record says so
    store.commit(StepWrite(orders=[tampered]))
    return seed


def test_each_part_on_a_seeded_mix_and_the_drilldown_names_those_orders(tmp_path):
    with open_at(tmp_path / "db") as store:
        seed_mix(store)
        report = compute_report(store, RULESET, "t1", OciSettings(), BoardSettings(), NOW)
    oci = report.oci
    assert oci.orders == 10 and oci.chain_ok
    assert oci.parts == {"freshness": 0.8, "consistency": 0.9, "traceability": 0.9}
    assert oci.score == pytest.approx((0.8 + 0.9 + 0.9) / 3)
    assert [o for o, _ in report.drilldown["freshness"]] == ["douyin|3", "douyin|7"]
    assert report.drilldown["freshness"][0][1]["lag_s"] == 200.0
    assert [o for o, _ in report.drilldown["consistency"]] == ["douyin|5"]
    assert report.drilldown["consistency"][0][1]["statuses"] == {"douyin": "REFUND_INITIATED",
                                                                 "erp": "READY_TO_PACK"}
    assert [o for o, _ in report.drilldown["traceability"]] == ["douyin|8"]


def test_weights_and_the_freshness_limit_are_settings(tmp_path):
    with open_at(tmp_path / "db") as store:
        seed_mix(store)
        settings = OciSettings(freshness_s=300, weight_freshness=2, weight_consistency=0, weight_traceability=1)
        oci = compute_report(store, RULESET, "t1", settings, BoardSettings(), NOW).oci
    assert oci.parts["freshness"] == 1.0
    assert oci.score == pytest.approx((2 * 1.0 + 0.9) / 3)


def test_a_broken_chain_makes_the_orders_it_changed_untraceable(tmp_path):
    from rocksdict import Options, Rdict

    from gateway._store.store import COLUMN_FAMILIES

    path = tmp_path / "db"
    with open_at(path) as store:
        seed = Seeder(store)
        for n in range(4):
            seed.event(f"douyin|{n}", S.PAID, occurred=NOW - HOUR, processed=NOW - HOUR + 1000)
    raw = Rdict(str(path), options=Options(raw_mode=True),
                column_families={name: Options(raw_mode=True) for name in COLUMN_FAMILIES})
    audit = raw.get_column_family("audit")
    key = b"t1\0" + (3).to_bytes(8, "big")  # the third order's record
    audit[key] = audit[key].replace(b'"new":13,', b'"new":99,')
    del audit
    raw.close()
    del raw
    gc.collect()  # the handles hold the LOCK until collected
    with open_at(path) as store:
        report = compute_report(store, RULESET, "t1", OciSettings(), BoardSettings(), NOW)
    assert not report.oci.chain_ok and report.oci.chain_first_bad_seq == 3
    assert [o for o, _ in report.drilldown["traceability"]] == ["douyin|2", "douyin|3"]
    assert report.drilldown["traceability"][0][1]["chain_broken_at_seq"] == 3


def test_orders_written_during_the_scan_are_not_judged_for_traceability(tmp_path):
    with open_at(tmp_path / "db") as store:
        Seeder(store).event("douyin|1", S.PAID, occurred=NOW - 1000, processed=NOW - 500)
        oci = compute_report(store, RULESET, "t1", OciSettings(), BoardSettings(), NOW).oci
    assert oci.in_flux == 1 and oci.judged["traceability"] == 0 and oci.parts["traceability"] is None
    assert oci.score == pytest.approx(1.0)


def test_the_window_judges_only_recent_orders(tmp_path):
    with open_at(tmp_path / "db") as store:
        seed = Seeder(store)
        seed.event("douyin|old", S.PAID, occurred=NOW - 10 * HOUR, processed=NOW - 10 * HOUR + 500_000)
        seed.event("douyin|new", S.PAID, occurred=NOW - HOUR, processed=NOW - HOUR + 1000)
        oci = compute_report(store, RULESET, "t1", OciSettings(window_s=3 * 3600), BoardSettings(), NOW).oci
    assert oci.orders == 2 and oci.in_window == 1 and oci.parts["freshness"] == 1.0


def test_combined_score_leaves_out_parts_without_a_value():
    weights = {"freshness": 1.0, "consistency": 3.0, "traceability": 1.0}
    assert combined_score({"freshness": 0.5, "consistency": None, "traceability": 1.0}, weights) == 0.75
    assert combined_score({"freshness": None, "consistency": None, "traceability": None}, weights) is None


@pytest.mark.parametrize(("values", "key"), [
    ({"freshness_s": 0}, "freshness_s"), ({"weight_consistency": -1}, "weight_consistency"),
    ({"weight_freshness": 0, "weight_consistency": 0, "weight_traceability": 0}, "weight_traceability"),
    ({"interval_s": 5}, "interval_s"), ({"drilldown_max": 0}, "drilldown_max"),
    ({"window_s": float("nan")}, "window_s"),
])
def test_bad_settings_name_their_key(values, key):
    with pytest.raises(ValueError, match=f"^{key}:"):
        OciSettings(**values)


async def test_each_computation_keeps_one_trend_record_per_hour(tmp_path):
    clock = [NOW]
    with open_at(tmp_path / "db") as store:
        seed_mix(store)
        state = OpsState(store, lambda: RULESET, OciSettings(trend_keep_hours=2), clock=lambda: clock[0])
        for step_ms in (0, 10 * 60_000, HOUR, 2 * HOUR, 3 * HOUR):
            clock[0] = NOW + step_ms
            await state.refresh("t1")
        ids = [record_id for _, record_id, _ in store.iter_records(TREND_KIND, "t1")]
        points = read_trend(store, "t1", 48, clock[0])
    hours = [hour_of(NOW + h * HOUR) for h in (1, 2, 3)]  # the first hour aged out (keep 2 h)
    assert ids == [f"{h:013d}" for h in hours]
    assert [p["hour_ms"] for p in points] == hours
    assert points[-1]["computed_at_ms"] == NOW + 3 * HOUR and points[-1]["freshness"] == 0.8


def test_measure_oci_reports_the_cost_per_100k_orders(tmp_path):
    with open_at(tmp_path / "db") as store:
        seed_mix(store)
        figures = measure_oci(store, "t1", RULESET)
    assert figures["orders"] == 10 and figures["seconds_per_100k_orders"] > 0
    assert set(figures["passes_s"]) >= {"verify_chain", "audit_pass", "orders_pass"}
    assert figures["oci"]["consistency"] == 0.9
