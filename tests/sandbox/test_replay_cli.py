"""``gateway export`` and ``gateway replay`` end to end, on a real store in tmp_path.

What the issue asks of replay: a wrong refund mapping is caught (exit 1, the orders and the
rule named), identical rules give no difference (exit 0), a broken candidate is refused like
the live loader refuses it (exit 2, file:line: key), the same input gives the same bytes,
export -> replay agrees with reading the store directly, and neither command writes to the
live store or calls the upstream (a real HTTP upstream on 127.0.0.1 records every call).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from gateway._store import StoreSettings, open_store
from gateway._store.backup import open_read_only, summary
from gateway.cli import main
from tests._support.upstream import Upstream
from tests.sandbox.world import RULES, TENANT, World, candidate, make_world

WRONG_REFUND = {'REFUNDING = "REFUND_INITIATED"': 'REFUNDING = "CANCELLED"'}


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def world(tmp_path: Path, upstream: Upstream) -> World:
    return make_world(tmp_path, upstream.url)


def replay_json(world: World, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, bytes, str]:
    status = main(["replay", "--config", str(world.config), "--json", *args])
    out, err = capsys.readouterr()
    return status, out.encode(), err


def export(world: World, target: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict[str, object]]:
    assert main(["export", "--config", str(world.config), "--tenant", TENANT, "-o", str(target), *extra]) == 0
    capsys.readouterr()
    return [orjson.loads(line) for line in target.read_bytes().splitlines()]


def test_wrong_refund_state_is_caught_with_orders_and_rule(world: World, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    bad = candidate(tmp_path, WRONG_REFUND)
    status, out, err = replay_json(world, "--from-store", "--tenant", TENANT, "--rules", str(bad), capsys=capsys)
    assert status == 1
    report = orjson.loads(out)
    changed = {row["order_id"]: row for row in report["orders_changed_list"]}
    assert set(changed) == {"douyin|A0002", "douyin|A0005", "douyin|A0007"}
    assert changed["douyin|A0002"]["before"]["status"] == "REFUND_INITIATED"
    assert changed["douyin|A0002"]["after"]["status"] == "CANCELLED"
    assert {"status", "forwarded"} <= set(changed["douyin|A0002"]["changes"])
    # the withdrawn refund would not come back to review
    assert changed["douyin|A0007"]["before"]["status"] == "PENDING_REVIEW"
    assert report["by_rule"] == [{"rule": "erp.toml@v2:status.REFUNDING", "orders": 3,
                                  "changes": {"status": 3, "forwarded": 3}}]
    assert report["candidate"]["changed_files"] == ["erp.toml"]
    assert "ETA" in err  # the progress bar


def test_text_report_names_rule_and_orders(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = candidate(tmp_path, WRONG_REFUND)
    status = main(["replay", "--config", str(world.config), "--from-store", "--tenant", TENANT, "--rules", str(bad),
                   "--lang", "en"])
    out = capsys.readouterr().out
    assert status == 1
    assert "erp.toml@v2:status.REFUNDING: 3 orders" in out
    assert "douyin|A0005" in out and "REFUND_INITIATED -> CANCELLED" in out
    status = main(["replay", "--config", str(world.config), "--from-store", "--tenant", TENANT, "--rules", str(bad)])
    assert "结果会改变的订单: 3" in capsys.readouterr().out


def test_identical_rules_give_an_empty_diff(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    same = tmp_path / "same"
    same.mkdir()
    shutil.copy(RULES / "erp.toml", same / "erp.toml")
    status, out, _ = replay_json(world, "--from-store", "--tenant", TENANT, "--rules", str(same), capsys=capsys)
    report = orjson.loads(out)
    assert status == 0, report
    assert report["orders_changed"] == 0 and report["events_changed"] == 0 and report["orders"] == 18
    # a version bump alone changes nothing either
    bumped = candidate(tmp_path, {}, version=7)
    status, out, _ = replay_json(world, "--from-store", "--tenant", TENANT, "--rules", str(bumped), capsys=capsys)
    assert status == 0 and orjson.loads(out)["orders_changed"] == 0


def test_broken_candidate_is_refused_with_file_line_key(world: World, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    bad = candidate(tmp_path, {'REFUNDING = "REFUND_INITIATED"': 'REFUNDING = "REFUND_STARTED"'})
    status = main(["replay", "--config", str(world.config), "--from-store", "--tenant", TENANT, "--rules", str(bad)])
    err = capsys.readouterr().err
    assert status == 2
    line = next(n for n, text in enumerate((bad / "erp.toml").read_text().splitlines(), 1) if "REFUND_STARTED" in text)
    assert f"{bad / 'erp.toml'}:{line}: status.REFUNDING" in err
    assert "gateway-sandbox-" not in err  # names the operator's file, not a temporary copy


def test_missing_input_is_an_error(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = candidate(tmp_path, {})
    assert main(["replay", str(tmp_path / "nope.jsonl"), "--config", str(world.config), "--rules", str(good)]) == 2
    assert "cannot open the recorded inputs" in capsys.readouterr().err
    (tmp_path / "broken.jsonl").write_text('{"tenant": "acme"}\n')
    assert main(["replay", str(tmp_path / "broken.jsonl"), "--config", str(world.config), "--rules", str(good)]) == 2
    assert "broken.jsonl:1: source" in capsys.readouterr().err


def test_same_input_same_bytes(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = candidate(tmp_path, WRONG_REFUND)
    events = tmp_path / "events.jsonl"
    export(world, events, capsys)
    first = replay_json(world, str(events), "--rules", str(bad), capsys=capsys)[1]
    second = replay_json(world, str(events), "--rules", str(bad), capsys=capsys)[1]
    assert first == second and first


def test_same_bytes_across_processes(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two processes with different hash seeds: set and dict orders must not leak into the report."""
    bad = candidate(tmp_path, WRONG_REFUND)
    events = tmp_path / "events.jsonl"
    export(world, events, capsys)
    outputs = []
    for seed in ("1", "2"):
        done = subprocess.run([sys.executable, "-m", "gateway", "replay", str(events), "--config", str(world.config),
                               "--rules", str(bad), "--json"], capture_output=True, timeout=120,
                              env={**os.environ, "PYTHONHASHSEED": seed})
        assert done.returncode == 1, done.stderr
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] and orjson.loads(outputs[0])["orders_changed"] == 3


def test_export_replay_round_trip(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "events.jsonl"
    lines = export(world, events, capsys)
    assert len(lines) == 34
    first = lines[0]
    assert first["tenant"] == TENANT and first["source"] == "erp" and first["received_at_ms"] > 0
    assert first["raw"]["buyer"]["phone"].startswith("#bk:")  # never a phone number in clear
    bad = candidate(tmp_path, WRONG_REFUND)
    from_file = replay_json(world, str(events), "--rules", str(bad), capsys=capsys)
    from_store = replay_json(world, "--from-store", "--tenant", TENANT, "--rules", str(bad), capsys=capsys)
    assert from_file[0] == from_store[0] == 1
    assert from_file[1] == from_store[1]
    # a window and a source filter the export
    assert export(world, tmp_path / "none.jsonl", capsys, "--source", "douyin") == []
    assert len(export(world, tmp_path / "late.jsonl", capsys, "--since", "2025-12-05T10:00:20+08:00")) == 34 - 20


def test_replay_never_writes_the_store_nor_calls_upstream(world: World, tmp_path: Path, upstream: Upstream,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    with open_read_only(world.store_path) as store:
        before = summary(store)
    assert before["outbox_seq"] > 0  # there is something the upstream could be sent
    files_before = _files(world.store_path)
    bad = candidate(tmp_path, WRONG_REFUND)
    events = tmp_path / "events.jsonl"
    export(world, events, capsys)
    assert replay_json(world, str(events), "--rules", str(bad), capsys=capsys)[0] == 1
    assert replay_json(world, "--from-store", "--tenant", TENANT, "--rules", str(bad), capsys=capsys)[0] == 1
    with open_read_only(world.store_path) as store:
        after = summary(store)
    assert after == before  # same RocksDB sequence number, event/audit seqs and outbox
    assert _files(world.store_path) == files_before
    assert upstream.attempts == [] and upstream.batches == []


def _files(store: Path) -> dict[str, tuple[int, bytes]]:
    """(mtime, content of rocksdict's own settings file) of every file of the store.

    rocksdict rewrites ``rocksdict-config.json`` at every open, read-only ones too, with the
    same content: its bytes are compared, not its time. Every RocksDB file keeps its time.
    """
    return {p.name: (0, p.read_bytes()) if p.name == "rocksdict-config.json" else (p.stat().st_mtime_ns, b"")
            for p in store.iterdir()}


def test_replay_reads_a_store_the_gateway_holds_open(world: World, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    bad = candidate(tmp_path, WRONG_REFUND)
    with open_store(StoreSettings(path=world.store_path, sync="os")) as live:
        latest = live._live_db().latest_sequence_number()
        status, out, _ = replay_json(world, "--from-store", "--tenant", TENANT, "--rules", str(bad), capsys=capsys)
        assert status == 1 and orjson.loads(out)["orders_changed"] == 3
        assert live._live_db().latest_sequence_number() == latest
