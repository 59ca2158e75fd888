"""``gateway backup | restore | store repair | store verify`` and ``run --accept-damaged-store``,
through the real CLI entry point on real stores (the gateway stopped)."""

from __future__ import annotations

import os

import orjson

from gateway._settings import load_settings
from gateway._store import StepWrite, open_store, store_settings
from gateway.cli import build_parser, main
from tests._support import write_config


def _config(tmp_path):
    config = write_config(tmp_path, port=1)  # nothing answers there: the commands go to the store
    settings = load_settings(config)
    with open_store(store_settings(settings)) as store:
        store.commit(StepWrite(events=[{"tenant": "t1", "fingerprint": n} for n in range(10)],
                               audit=[{"tenant": "t1", "n": n} for n in range(10)]))
    return config, settings


def test_backup_then_restore_over_the_store_in_use(tmp_path, capsys):
    config, settings = _config(tmp_path)
    target = tmp_path / "backup"
    assert main(["backup", str(target), "--config", str(config), "--json"]) == 0
    figures = orjson.loads(capsys.readouterr().out)
    assert figures["taken"] == "offline" and figures["tenants"]["t1"]["last_event_seq"] == 10
    with open_store(store_settings(settings)) as store:  # written after the backup: gone after the restore
        store.commit(StepWrite(events=[{"tenant": "t1", "fingerprint": 99}]))
    assert main(["restore", str(target), "--config", str(config), "--yes"]) == 0
    out = capsys.readouterr().out
    assert "previous store is kept in" in out
    assert len(list((tmp_path / "data").glob("store.before-restore-*"))) == 1
    with open_store(store_settings(settings)) as store:
        assert [e["fingerprint"] for e in store.iter_events("t1")] == list(range(10))


def test_restore_without_yes_and_without_a_terminal_changes_nothing(tmp_path, capsys):
    config, _ = _config(tmp_path)
    assert main(["backup", str(tmp_path / "b"), "--config", str(config)]) == 0
    assert main(["restore", str(tmp_path / "b"), "--config", str(config)]) == 1
    assert "--yes" in capsys.readouterr().err
    assert not list((tmp_path / "data").glob("store.*"))


def test_backup_refuses_a_directory_inside_the_data_directory(tmp_path, capsys):
    config, _ = _config(tmp_path)
    assert main(["backup", str(tmp_path / "data" / "bk"), "--config", str(config)]) == 1
    assert "inside the data directory" in capsys.readouterr().err


def test_a_damaged_store_refuses_to_run_verify_finds_it_and_repair_reports(tmp_path, capsys):
    config, settings = _config(tmp_path)
    path = store_settings(settings).path
    with open_store(store_settings(settings)) as store:
        for n in range(500):
            store.commit(StepWrite(events=[{"tenant": "t1", "fingerprint": 100 + n, "pad": os.urandom(64).hex()}]))
        store._live_db().flush()
    table = max(path.glob("*.sst"), key=lambda p: p.stat().st_size)
    with table.open("r+b") as handle:
        handle.seek(table.stat().st_size // 3)
        handle.write(b"\xff" * 32)
    assert main(["run", "--config", str(config), "--port", "0", "--no-demo"]) == 3
    err = capsys.readouterr().err
    assert table.name in err and "gateway store repair" in err
    assert main(["store", "verify", "--config", str(config)]) == 3
    assert table.name in capsys.readouterr().out
    assert main(["store", "repair", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "store repaired" in out and "tenant t1" in out and table.name in out
    assert main(["store", "verify", "--config", str(config)]) == 0


def test_run_takes_the_override():
    args = build_parser().parse_args(["run", "--accept-damaged-store"])
    assert args.accept_damaged_store is True
