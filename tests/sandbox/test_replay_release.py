"""Quarantine releases in a replay, on a real store recorded through the real pipeline.

The store: the sandbox world's traffic, then (through ``Pipeline.submit``, the committer a
webhook uses) two orders whose ``CHECKING`` status the shipped ERP rules do not know
(quarantined), one status nobody will ever map, and a carrier event that waits for its
waybill (released by the pipeline itself when the waybill comes). Then operations staff fix
``erp.toml`` (``CHECKING = "PENDING_REVIEW"``), the holder reloads, and they release the
quarantine as ``POST .../quarantine/release`` does (``plan_release`` + ``submit``); later a
refund arrives for one of the released orders.

What must hold: the export carries one release line per release record, naming the
event-log seq of the quarantined record; on identical rules the replay is empty and ends as
the store did; a candidate that maps the status from the start makes a no-op of the release;
a source replayed as recorded (no rules on either side) is released as the store released it;
sharing runs changes nothing; old exports without release lines still read.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio

from gateway._metrics import Metrics
from gateway._model import Status
from gateway._pipeline import Pipeline, plan_release
from gateway._rules import RuleHolder, normalise_batch
from gateway._sandbox import ExportFilter, iter_export, iter_replay, load_candidate, load_live, report_bytes
from gateway._sandbox.diff import compare
from gateway._sandbox.engine import Replay
from gateway._sandbox.recorded import RecordedInputError, ReleaseTracker, parse_line
from gateway._sandbox.released import NOT_HELD
from gateway._sandbox.report import build_report
from gateway._settings import load_settings
from gateway._store import Store, open_store, store_settings
from gateway._store.backup import open_read_only
from gateway.cli import main
from tests.sandbox.world import RULES, T0, TENANT, World, erp, make_world

FIX = ('[status]\n', '[status]\nCHECKING = "PENDING_REVIEW"\n')
T1 = T0 + 3_600_000  # an hour after the world's traffic


def fixed_erp(version: int = 2) -> str:
    text = (RULES / "erp.toml").read_text(encoding="utf-8")
    return text.replace("version = 1", f"version = {version}", 1).replace(*FIX, 1)


def carrier(n: int, waybill: str) -> dict[str, Any]:
    return {"event_id": f"erp-{n:06d}-w", "waybill": waybill, "status": "IN_TRANSIT",
            "occurred_at": "2025-12-05T12:00:00+08:00"}


async def record_releases(world: World) -> None:
    """The scenario of the module docstring, on ``world``'s store, through the real pipeline."""
    settings = load_settings(world.config)
    holder = RuleHolder(world.rules)
    store = open_store(store_settings(settings))
    try:
        pipeline = Pipeline(store, settings.pipeline, Metrics(), rules=lambda: holder.current)
        async with trio.open_nursery() as nursery:
            await nursery.start(pipeline.serve)
            at = T1

            async def send(*bodies: dict[str, Any]) -> list[str]:
                nonlocal at
                at += 1000
                events = normalise_batch(holder.current.rules["erp"], TENANT, list(bodies), at)
                return [result.outcome for result in (await pipeline.submit(events)).results]

            assert await send(erp(500, "Q0001", "PAID", phone="13900000001")) == ["new"]
            assert await send(erp(501, "Q0001", "CHECKING")) == ["quarantined"]
            assert await send(erp(502, "Q0002", "PAID"), erp(503, "Q0002", "CHECKING")) == ["new", "quarantined"]
            assert await send(erp(504, "Q0003", "PAID"), erp(505, "Q0003", "NEVER_MAPPED")) == ["new", "quarantined"]
            assert await send(carrier(506, "SF0001")) == ["quarantined"]  # the carrier is early
            assert await send(erp(507, "Q0002", "SENT", waybill="SF0001")) == ["applied"]
            for _ in range(100):  # the pipeline releases the carrier event in a group of its own
                if store.quarantine_count(TENANT) == 3:
                    break
                await trio.sleep(0.01)
            assert store.quarantine_count(TENANT) == 3
            # operations staff fix the rule, the holder reloads, they release (as the API does)
            (world.rules / "erp.toml").write_text(fixed_erp(), encoding="utf-8")
            assert holder.reload().ok
            at += 1000
            release = plan_release(store, holder.current, TENANT, None, at)
            assert len(release.events) == 2 and [k["reason"] for k in release.kept] == [
                "raw status 'NEVER_MAPPED' is still unknown"]
            outcomes = [result.outcome for result in (await pipeline.submit(release.events)).results]
            assert outcomes == ["applied", "late"]  # Q0002 is SHIPPED already: PENDING_REVIEW comes late
            assert await send(erp(508, "Q0001", "REFUNDING")) == ["applied"]
            pipeline.close()
            nursery.cancel_scope.cancel()
    finally:
        store.close()


@pytest.fixture
async def world(tmp_path: Path) -> World:
    made = make_world(tmp_path)
    await record_releases(made)
    return made


def lines_of(world: World, read: Callable[[Store, ExportFilter], Any] = iter_export) -> list[dict[str, Any]]:
    with open_read_only(world.store_path) as store:
        return [dict(line) for line in read(store, ExportFilter(TENANT))]


def replay(lines: list[dict[str, Any]], live_dir: Path, candidate_dir: Path, *, share: bool = True) -> Replay:
    engine = Replay(load_live(live_dir, 1_800_000), load_candidate(live_dir, candidate_dir, 1_800_000), share=share)
    engine.feed([orjson.loads(orjson.dumps(line)) for line in lines])
    return engine


def candidate_dir(root: Path, text: str, name: str = "erp.toml") -> Path:
    directory = root / "candidate"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text, encoding="utf-8")
    return directory


async def test_the_export_writes_a_release_line_naming_the_quarantined_record(world: World) -> None:
    lines = lines_of(world)
    releases = [line for line in lines if "release_of" in line]
    assert len(releases) == 3  # the carrier event (by the pipeline) and the two manual ones
    by_seq = {line["seq"]: line for line in lines}
    for release in releases:
        original = by_seq[release["release_of"]]
        assert original["recorded"]["outcome"] == "quarantined" and "release_of" not in original
        assert release["raw"] == original["raw"] and release["seq"] > original["seq"]
        assert release["recorded"]["fingerprint"] == original["recorded"]["fingerprint"]
    assert [by_seq[r["release_of"]]["raw"].get("order_no") for r in releases] == [None, "Q0001", "Q0002"]
    assert [r["quarantine_seq"] for r in releases] == [4, 1, 2]  # the store's own quarantine seqs
    assert releases[1]["recorded"]["status"] == "PENDING_REVIEW"
    # --from-store reads the same release lines; the other lines are the records themselves
    assert [line for line in lines_of(world, iter_replay) if "release_of" in line] == releases


async def test_identical_rules_replay_empty_and_end_as_the_store(world: World, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    lines = lines_of(world)
    same = candidate_dir(tmp_path, (world.rules / "erp.toml").read_text(encoding="utf-8"))
    engine = replay(lines, world.rules, same)
    report = build_report(engine, compare(engine))
    assert report["events"] == len(lines) and report["releases"] == 3
    assert report["events_changed"] == 0 and report["orders_changed"] == 0
    live = engine.live
    with open_read_only(world.store_path) as store:
        assert len(live.orders) == sum(1 for _ in store.iter_raw_orders(TENANT))
        for (tenant, order_id), order in live.orders.items():
            stored = store.get_order(tenant, order_id)
            assert stored is not None and stored.status == order.status, order_id
        assert set(live.quarantined) == {q["event_id"] for q in store.iter_quarantine(TENANT)}
    # the CLI, from the export file and from the store: exit 0, no difference
    export = tmp_path / "export.jsonl"
    export.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    for source in ([str(export)], ["--from-store", "--tenant", TENANT]):
        assert main(["replay", "--config", str(world.config), "--json", *source, "--rules", str(same)]) == 0
        report = orjson.loads(capsys.readouterr().out)
        assert report["releases"] == 3 and report["events_changed"] == 0


async def test_a_candidate_mapping_the_status_from_the_start_makes_a_no_op_of_the_release(
        world: World, tmp_path: Path) -> None:
    lines = lines_of(world)
    unfixed = tmp_path / "unfixed"  # the live rules as they were when the events came
    shutil.copytree(RULES, unfixed)
    engine = replay(lines, unfixed, candidate_dir(tmp_path, fixed_erp(3)))
    report = build_report(engine, compare(engine))
    q1 = (TENANT, "douyin|Q0001")
    assert engine.candidate.orders[q1].status == Status.REFUND_INITIATED
    assert not [held for held in engine.candidate.quarantined.values() if held[1] == q1[1]]
    # the live side holds it: re-read under its own rules, CHECKING is still unknown, so it stays
    assert [held[2] for held in engine.live.quarantined.values() if held[1] == q1[1]] == ["unknown_status"]
    releases = [change for change in report["event_examples"] if change["after"]["outcome"] == NOT_HELD]
    assert {change["before"]["order_id"] for change in releases} == {"douyin|Q0001", "douyin|Q0002"}
    assert all(change["before"]["outcome"] == "quarantined" for change in releases)
    assert {change["rule"] for change in releases} == {"erp.toml@v3:status.CHECKING"}
    changed = {change["order_id"]: change for change in report["orders_changed_list"]}
    assert changed["douyin|Q0001"]["rule"] == "erp.toml@v3:status.CHECKING"
    assert changed["douyin|Q0001"]["before"]["quarantined"] and not changed["douyin|Q0001"]["after"]["quarantined"]
    apart = replay(lines, unfixed, candidate_dir(tmp_path, fixed_erp(3)), share=False)
    assert report_bytes(build_report(apart, compare(apart))) == report_bytes(report)


async def test_a_source_without_rules_is_released_as_the_store_released_it(world: World, tmp_path: Path) -> None:
    """Without an erp.toml on either side, ERP events are rebuilt as recorded: the quarantined
    one is held, and the release line (its recorded status) releases it, as the store did."""
    lines = lines_of(world)
    no_erp = tmp_path / "no-erp"
    shutil.copytree(RULES, no_erp)
    (no_erp / "erp.toml").unlink()
    same = candidate_dir(tmp_path, (RULES / "douyin.toml").read_text(encoding="utf-8"), "douyin.toml")
    for share in (True, False):
        engine = replay(lines, no_erp, same, share=share)
        report = build_report(engine, compare(engine))
        assert report["orders_changed"] == 0 and report["events_changed"] == 0
        with open_read_only(world.store_path) as store:
            # the scenario's orders (rebuilt events carry no data, buyer key or waybill, and a
            # withdrawn refund's resume is no recorded status: the world's other orders are not
            # compared); Q0002's carrier event, held without its waybill, is released by its line
            for order_id in ("douyin|Q0001", "douyin|Q0002", "douyin|Q0003"):
                stored, order = store.get_order(TENANT, order_id), engine.live.orders[(TENANT, order_id)]
                assert stored is not None
                assert (stored.status, stored.seq, stored.late_events) == (
                    order.status, order.seq, order.late_events), order_id
            assert set(engine.live.quarantined) == {q["event_id"] for q in store.iter_quarantine(TENANT)}
        assert engine.live.orders[(TENANT, "douyin|Q0001")].status == Status.REFUND_INITIATED
        assert engine.live.orders[(TENANT, "douyin|Q0002")].late_events == 1  # the release came late, as in the store


async def test_the_replay_is_deterministic_and_old_exports_still_read(world: World, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    lines = lines_of(world)
    unfixed = tmp_path / "unfixed"
    shutil.copytree(RULES, unfixed)
    first = replay(lines, unfixed, candidate_dir(tmp_path, fixed_erp(3)))
    second = replay(lines, unfixed, candidate_dir(tmp_path, fixed_erp(3)))
    assert report_bytes(build_report(first, compare(first))) == report_bytes(build_report(second, compare(second)))
    # an export written before release lines existed: none of them; it reads and replays
    old = tmp_path / "old.jsonl"
    old.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines if "release_of" not in line))
    same = candidate_dir(tmp_path / "same", (world.rules / "erp.toml").read_text(encoding="utf-8"))
    assert main(["replay", "--config", str(world.config), "--json", str(old), "--rules", str(same)]) == 0
    report = orjson.loads(capsys.readouterr().out)
    assert report["releases"] == 0 and report["events"] == len(lines) - 3
    # a broken release line is named
    with pytest.raises(RecordedInputError, match="x.jsonl:3: release_of"):
        parse_line(orjson.dumps({"tenant": TENANT, "source": "erp", "received_at_ms": 1, "release_of": "7"}),
                   "x.jsonl:3")


def test_the_tracker_falls_back_to_counting_when_the_event_id_changed() -> None:
    """A rule fix that also changed the event-id paths gives the released event another
    fingerprint: the quarantine seq (the count of quarantined records) still finds it."""
    tracker = ReleaseTracker()
    for seq, event_id in ((3, "aa"), (5, "bb"), (9, "cc")):
        tracker.quarantined({"seq": seq, "event_id": event_id, "outcome": "quarantined"})

    def release(seq: int, event_id: str, quarantine_seq: int) -> dict[str, Any] | None:
        return tracker.released({"seq": seq, "tenant": TENANT, "source": "erp", "received_at_ms": T1,
                                 "event_id": event_id, "released_from_quarantine": quarantine_seq, "raw": {}})

    found = release(10, "cc", 3)
    assert found is not None and (found["release_of"], found["quarantine_seq"]) == (9, 3)  # by event id
    found = release(11, "zz", 2)
    assert found is not None and found["release_of"] == 5  # by count: the event id changed
    assert release(12, "aa", 1) is not None and release(13, "aa", 1) is None  # once only
    assert release(14, "yy", 7) is None  # pruned long ago: nothing a replay could find held
