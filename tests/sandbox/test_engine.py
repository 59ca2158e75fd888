"""The replay engine and the comparison, on recorded lines in memory (no store needed).

The engine plans a run once when both sides would plan it alike (``Replay(share=True)``);
every scenario here is replayed both ways and must give the same report, byte for byte:
that is what proves the shortcut exact. The scenarios cover what a candidate can change:
status mapping (refunds), data paths, the pack-group window, gift rules, waybill-only
carrier events that wait in quarantine, and events of a source without rules (a station).
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from gateway._sandbox import load_candidate, load_live, report_bytes, run_replay
from gateway._sandbox.diff import compare
from gateway._sandbox.engine import Replay
from gateway._sandbox.report import build_report
from tests.sandbox.world import RULES, T0, candidate, erp

TENANT = "demo"  # the shipped gift rules are the demo tenant's
WINDOW_MS = 1_800_000


def line(seq: int, raw: dict[str, Any], at_ms: int, source: str = "erp",
         recorded: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"seq": seq, "tenant": TENANT, "source": source, "received_at_ms": at_ms, "raw": raw,
            "recorded": recorded or {}}


def traffic(seed: int = 7, orders: int = 60) -> list[dict[str, Any]]:
    """Mixed traffic: two channels per buyer, refunds, withdrawals, waybills, carrier events."""
    rng = random.Random(seed)
    lines: list[dict[str, Any]] = []
    n = 0
    at = T0

    def add(raw: dict[str, Any], gap_ms: int = 1000, source: str = "erp",
            recorded: dict[str, Any] | None = None) -> None:
        nonlocal n, at
        n += 1
        at += gap_ms
        lines.append(line(n, raw, at, source, recorded))

    for order in range(orders):
        platform = rng.choice(["douyin", "tmall"])
        phone = f"1390000{order % 20:04d}"  # 20 buyers: several orders each, across channels
        lines_of = [{"sku": rng.choice(["SKU-101", "SKU-2", "SKU-150"]), "qty": rng.randint(1, 3)}]
        amount = float(rng.choice([99, 199, 320]))
        add(erp(n, f"O{order:04d}", "PAID", platform=platform, phone=phone, amount=amount, lines=lines_of,
                remark=f"r{order}"), gap_ms=rng.choice([1000, 30_000, 120_000]))
        add(erp(n, f"O{order:04d}", "WAIT_AUDIT", platform=platform))
        if rng.random() < 0.3:  # the carrier reports before the ERP gives the waybill: quarantined, released
            add({"event_id": f"erp-{n:06d}-w", "waybill": f"SF{order:08d}", "status": "IN_TRANSIT",
                 "occurred_at": "2025-12-05T12:00:00+08:00"})
        if rng.random() < 0.5:
            add(erp(n, f"O{order:04d}", "SENT", platform=platform, waybill=f"SF{order:08d}"))
        if rng.random() < 0.3:
            add(erp(n, f"O{order:04d}", "REFUNDING", platform=platform))
            if rng.random() < 0.5:
                add(erp(n, f"O{order:04d}", "REFUND_CLOSED", platform=platform))
        if rng.random() < 0.1:  # a pack station's scan: no rules, rebuilt as recorded
            add({}, source="station", recorded={
                "source_event_id": f"scan-{n}", "order_id": f"{platform}|O{order:04d}", "type": "pack_scan",
                "raw_status": "ok", "status": None, "outcome": "applied", "occurred_at_ms": at,
                "fingerprint": 10_000 + n, "rule": "station@builtin", "detail": {"verdict": "ok"}})
    # one request carrying several events
    at += 1000
    for i in range(5):
        n += 1
        lines.append(line(n, erp(n, f"M{i:04d}", "PAID", phone="13900000001"), at))
    return lines


def replay(lines: list[dict[str, Any]], candidate_dir: Path, *, window_ms: int = WINDOW_MS,
           share: bool = True) -> dict[str, Any]:
    live = load_live(RULES, WINDOW_MS)
    cand = load_candidate(RULES, candidate_dir, window_ms)
    engine = Replay(live, cand, share=share)
    engine.feed([dict(item, raw=_copy(item["raw"])) for item in lines])
    return build_report(engine, compare(engine))


def _copy(raw: Any) -> Any:
    import orjson

    return orjson.loads(orjson.dumps(raw))


def gift_candidate(root: Path) -> Path:
    directory = root / "gifts-candidate"
    (directory / "gifts").mkdir(parents=True)
    text = (RULES / "gifts" / "demo.toml").read_text(encoding="utf-8")
    (directory / "gifts" / "demo.toml").write_text(
        text.replace("version = 1", "version = 2").replace("min_total = 299.0", "min_total = 150.0"),
        encoding="utf-8")
    return directory


def same_candidate(root: Path) -> Path:
    directory = root / "same"
    directory.mkdir()
    shutil.copy(RULES / "erp.toml", directory / "erp.toml")
    return directory


@pytest.mark.parametrize("kind", ["refund", "data", "window", "gifts", "same", "status_and_path"])
def test_sharing_is_exact(tmp_path: Path, kind: str) -> None:
    lines = traffic()
    window = WINDOW_MS
    if kind == "refund":
        directory = candidate(tmp_path, {'REFUNDING = "REFUND_INITIATED"': 'REFUNDING = "CANCELLED"'})
    elif kind == "data":
        directory = candidate(tmp_path, {'remark = "remark"': 'remark = "shop_id"'})
    elif kind == "status_and_path":
        directory = candidate(tmp_path, {'SENT = "SHIPPED"': 'SENT = "IN_TRANSIT"', 'waybill = "waybill"': 'waybill = "carrier"'})
    elif kind == "window":
        directory, window = same_candidate(tmp_path), 0
    elif kind == "gifts":
        directory = gift_candidate(tmp_path)
    else:
        directory = same_candidate(tmp_path)
    shared = replay(lines, directory, window_ms=window)
    apart = replay(lines, directory, window_ms=window, share=False)
    assert report_bytes(shared) == report_bytes(apart)
    assert (shared["orders_changed"] == 0) == (kind == "same")


def test_refund_rule_names_the_rule(tmp_path: Path) -> None:
    report = replay(traffic(), candidate(tmp_path, {'REFUNDING = "REFUND_INITIATED"': 'REFUNDING = "CANCELLED"'}))
    assert report["by_rule"][0]["rule"] == "erp.toml@v2:status.REFUNDING"
    assert all(change["rule"] == "erp.toml@v2:status.REFUNDING" for change in report["orders_changed_list"])
    assert report["changes"]["status"] > 0


def test_pack_group_window_is_charged_to_the_setting(tmp_path: Path) -> None:
    report = replay(traffic(), same_candidate(tmp_path), window_ms=0)
    assert report["changes"]["pack_group"] > 0
    rules = {row["rule"] for row in report["by_rule"]}
    assert rules == {"pipeline.merge_window_s=1800->0"}
    example = next(c for c in report["orders_changed_list"] if "pack_group" in c["changes"])
    assert example["before"]["pack_group"] and example["after"]["pack_group"] is None


def test_gift_rule_change_shows_in_the_bill(tmp_path: Path) -> None:
    report = replay(traffic(), gift_candidate(tmp_path))
    assert report["changes"]["bill"] > 0 and report["changes"]["status"] == 0
    assert {row["rule"] for row in report["by_rule"]} == {"gifts/demo:box-299"}
    example = next(c for c in report["orders_changed_list"] if "bill" in c["changes"])
    assert any("GIFTBOX-1" in row for row in example["after"]["bill"])
    assert not any("GIFTBOX-1" in row for row in example["before"]["bill"])


def test_unknown_status_goes_to_quarantine(tmp_path: Path) -> None:
    directory = candidate(tmp_path, {'REFUNDING = "REFUND_INITIATED"': '# REFUNDING dropped'})
    report = replay(traffic(), directory)
    assert report["changes"]["quarantine"] > 0
    example = next(c for c in report["orders_changed_list"] if "quarantine" in c["changes"])
    assert example["before"]["quarantined"] == [] and example["after"]["quarantined"][0].endswith(":unknown_status")


def test_run_replay_is_deterministic(tmp_path: Path) -> None:
    directory = candidate(tmp_path, {'REFUNDING = "REFUND_INITIATED"': 'REFUNDING = "CANCELLED"'})
    live = load_live(RULES, WINDOW_MS)
    cand = load_candidate(RULES, directory, WINDOW_MS)
    seen: list[int] = []
    first = run_replay(traffic(), live, cand, progress=seen.append)
    second = run_replay(traffic(), live, cand)
    assert report_bytes(first) == report_bytes(second)
    assert seen[-1] == len(traffic())


def test_a_line_without_input_is_refused_by_a_side_with_rules(tmp_path: Path) -> None:
    lines = traffic(orders=4)
    lines.insert(3, line(999, None, lines[2]["received_at_ms"]))  # type: ignore[arg-type]
    report = replay(lines, candidate(tmp_path, {'REFUNDING = "REFUND_INITIATED"': 'REFUNDING = "CANCELLED"'}))
    assert report["events"] == len(lines)
