"""The replay's speed shortcuts change no result.

* ``iter_replay`` (event-log records as lines) gives the same report bytes as the export
  lines of ``iter_export``, from a real store;
* ``runs.remapped`` (the candidate's status codes looked up per raw status, memoised) gives
  the events the candidate's own ``normalise_batch`` gives;
* ``collector_paused`` pauses the collector and leaves it as it found it.
"""

from __future__ import annotations

import gc
from pathlib import Path

from gateway._rules import normalise_batch
from gateway._sandbox import load_candidate, load_live, report_bytes, run_replay
from gateway._sandbox.engine import collector_paused
from gateway._sandbox.recorded import ExportFilter, iter_export, iter_replay
from gateway._sandbox.runs import alike, remapped
from gateway._store.backup import open_read_only
from tests.sandbox.test_engine import TENANT as ENGINE_TENANT
from tests.sandbox.test_engine import WINDOW_MS, traffic
from tests.sandbox.world import RULES, TENANT, candidate, make_world


def test_records_and_export_lines_give_the_same_report(tmp_path: Path) -> None:
    world = make_world(tmp_path / "world")
    directory = candidate(tmp_path, {'REFUNDING = "REFUND_INITIATED"': 'REFUNDING = "CANCELLED"'})
    live = load_live(world.rules, WINDOW_MS)
    cand = load_candidate(world.rules, directory, WINDOW_MS)
    with open_read_only(world.store_path) as store:
        exported = run_replay(iter_export(store, ExportFilter(TENANT)), live, cand)
        records = list(iter_replay(store, ExportFilter(TENANT)))
    assert records and all("recorded" not in record for record in records)
    assert exported["orders_changed"] > 0
    assert report_bytes(run_replay(records, live, cand)) == report_bytes(exported)


def test_remapped_gives_the_candidates_own_events(tmp_path: Path) -> None:
    directory = candidate(tmp_path, {'REFUNDING = "REFUND_INITIATED"': 'REFUNDING = "CANCELLED"',
                                     'WAIT_AUDIT = "PENDING_REVIEW"': '# WAIT_AUDIT dropped'})
    live_rules = load_live(RULES, WINDOW_MS).rules.get("erp")
    cand_rules = load_candidate(RULES, directory, WINDOW_MS).rules.get("erp")
    assert live_rules is not None and cand_rules is not None
    lines = [line for line in traffic(seed=3, orders=50) if line["source"] == "erp"]
    lines.append(dict(lines[0], raw={"event_id": "no-status", "platform": "douyin", "order_no": "X1"}))
    memo: dict[str, tuple[int, str]] = {}
    for start in range(0, len(lines), 7):  # runs of several lines; the memo is kept across them
        run = lines[start:start + 7]
        now = run[0]["received_at_ms"]
        made_live = normalise_batch(live_rules, ENGINE_TENANT, [dict(line["raw"]) for line in run], now)
        own = normalise_batch(cand_rules, ENGINE_TENANT, [dict(line["raw"]) for line in run], now)
        made = remapped(cand_rules, ENGINE_TENANT, run, list(made_live), now, memo)
        for old, new, expected in zip(made_live, made, own, strict=True):
            assert not isinstance(new, str)
            assert alike(new, expected) and new.rule.partition(":")[2] == expected.rule.partition(":")[2]
            if new.status_code != old.status_code:
                assert new.rule == expected.rule
            else:
                assert new is old
    assert memo and any(code < 0 for code, _ in memo.values())  # the dropped status: unknown


def test_collector_paused_restores_the_collector() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
