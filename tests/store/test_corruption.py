"""Damage to real RocksDB files is found before anything is served, named by file, and
``gateway store repair`` says what was lost."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gateway._appliance.repair import repair_store
from gateway._settings import load_settings
from gateway._store import (
    StepWrite,
    StoreDamagedError,
    StoreSettings,
    check_at_start,
    open_store,
    store_settings,
)
from tests._support import ROOT, write_config


def fill(path: Path, steps: int = 2000, flush: bool = True) -> None:
    with open_store(StoreSettings(path=path)) as store:
        for n in range(steps):
            store.commit(StepWrite(events=[{"tenant": "t1", "fingerprint": n, "pad": "x" * 200}],
                                   audit=[{"tenant": "t1", "order_id": f"o{n}", "pad": os.urandom(40).hex()}]))
        if flush:
            store._live_db().flush()


def flip(file: Path, at: float = 1 / 3) -> None:
    with file.open("r+b") as handle:
        handle.seek(int(file.stat().st_size * at))
        handle.write(b"\xff" * 32)


def test_a_flipped_block_in_a_table_is_found_at_start_naming_the_file(tmp_path):
    path = tmp_path / "db"
    fill(path)
    table = max(path.glob("*.sst"), key=lambda p: p.stat().st_size)
    flip(table)
    with open_store(StoreSettings(path=path)) as store:
        problems = check_at_start(store)
    assert problems and table.name in problems[0].files[0]
    assert "gateway store repair" in str(problems[0]) and "--accept-damaged-store" in str(problems[0])


def test_a_truncated_table_refuses_to_open_naming_the_file(tmp_path):
    path = tmp_path / "db"
    fill(path)
    table = max(path.glob("*.sst"), key=lambda p: p.stat().st_size)
    os.truncate(table, table.stat().st_size // 2)
    with pytest.raises(StoreDamagedError) as caught:
        open_store(StoreSettings(path=path))
    assert table.name in str(caught.value)


WRITER = textwrap.dedent("""
    import os, sys
    from gateway._store import StepWrite, StoreSettings, open_store
    store = open_store(StoreSettings(path=sys.argv[1]))
    for n in range(3000):
        store.commit(StepWrite(events=[{"tenant": "t1", "fingerprint": n, "pad": "x" * 200}],
                               audit=[{"tenant": "t1", "order_id": f"o{n}"}]))
    os._exit(0)  # a crash: the acknowledged commits are in the WAL only
""")


@pytest.mark.parametrize("damage", ["truncate", "garble"])
def test_a_damaged_write_ahead_log_is_found_at_start_and_repair_reports_the_loss(tmp_path, damage):
    config = write_config(tmp_path, port=1)
    settings = load_settings(config)
    path = store_settings(settings).path
    subprocess.run([sys.executable, "-c", WRITER, str(path)], check=True, cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    log = next(path.glob("*.log"))
    if damage == "truncate":
        os.truncate(log, log.stat().st_size // 2)
    else:
        flip(log, 0.5)
    with pytest.raises(StoreDamagedError) as caught:
        open_store(StoreSettings(path=path))
    assert log.name in str(caught.value) and "acknowledged writes are missing" in str(caught.value)
    assert log.exists() and log.stat().st_size > 0  # nothing was changed: repair still has it

    report = repair_store(settings, lambda line: None)
    assert Path(report["copied_to"]).is_dir()
    entry = report["tenants"]["t1"]
    assert entry["events"] < 3000 and entry["chain_ok"]
    assert report["writes_lost"] > 0
    with open_store(StoreSettings(path=path)) as store:  # the loss was accepted: it opens again
        assert store.verify_audit_chain("t1").ok


def test_the_operator_can_accept_a_damaged_log(tmp_path):
    path = tmp_path / "db"
    subprocess.run([sys.executable, "-c", WRITER, str(path)], check=True, cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    log = next(path.glob("*.log"))
    os.truncate(log, log.stat().st_size // 3)
    with open_store(StoreSettings(path=path), accept_damage=True) as store:
        assert 0 < store._event_seq["t1"] < 3000
    with open_store(StoreSettings(path=path)) as store:  # accepted once: the mark starts again
        assert store.verify_audit_chain("t1").ok


def test_a_clean_crash_and_a_clean_close_are_not_damage(tmp_path):
    path = tmp_path / "db"
    subprocess.run([sys.executable, "-c", WRITER, str(path)], check=True, cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    with open_store(StoreSettings(path=path)) as store:
        assert store._event_seq["t1"] == 3000
        assert check_at_start(store) == []
    fill(path, 10, flush=False)
    with open_store(StoreSettings(path=path)) as store:
        assert check_at_start(store) == []
