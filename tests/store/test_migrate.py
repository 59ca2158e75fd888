"""Store format versions: a newer store is refused with what to do, an older one is backed
up and migrated in place through the registry (a test migration: there is no real one yet)."""

from __future__ import annotations

import pytest
from rocksdict import Options, Rdict

from gateway._store import FORMAT_VERSION, MIGRATIONS, StepWrite, StoreFormatError, StoreSettings, open_store
from gateway._store.base import COLUMN_FAMILIES, StoreBase


def set_format(path, value: bytes) -> None:
    db = Rdict(str(path), options=Options(raw_mode=True),
               column_families={name: Options(raw_mode=True) for name in COLUMN_FAMILIES})
    db.get_column_family("meta")[b"format"] = value
    db.close()


@pytest.fixture
def old_store(tmp_path):
    path = tmp_path / "rocksdb"
    with open_store(StoreSettings(path=path)) as store:
        store.commit(StepWrite(events=[{"tenant": "t1", "fingerprint": 1}], audit=[{"tenant": "t1", "n": 1}]))
    older = int(FORMAT_VERSION) - 1
    set_format(path, str(older).encode())
    return path, older


def test_a_newer_format_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "rocksdb"
    open_store(StoreSettings(path=path)).close()
    newer = str(int(FORMAT_VERSION) + 1).encode()
    set_format(path, newer)
    with pytest.raises(StoreFormatError, match="newer than this gateway") as caught:
        open_store(StoreSettings(path=path))
    assert "Upgrade the gateway" in str(caught.value) and caught.value.found == newer
    set_format(path, b"not-a-number")
    with pytest.raises(StoreFormatError, match="not one this gateway knows"):
        open_store(StoreSettings(path=path))


def test_an_older_format_is_backed_up_then_migrated(old_store, monkeypatch):
    path, older = old_store
    seen: list[int] = []

    def bump(store: StoreBase) -> None:
        seen.append(store._audit_seq.get("t1", 0))  # before the counters are rebuilt
        batch_value = store._get("events", b"t1\0" + (1).to_bytes(8, "big"))
        assert batch_value is not None

    monkeypatch.setitem(MIGRATIONS, older, bump)
    with open_store(StoreSettings(path=path)) as store:
        assert store._get("meta", b"format") == FORMAT_VERSION
        assert store.verify_audit_chain("t1").ok and store._event_seq == {"t1": 1}
    assert seen == [0]
    backups = list(path.parent.glob(f"rocksdb.before-migrate-v{older}-*"))
    assert len(backups) == 1 and (backups[0] / "CURRENT").exists()
    with open_store(StoreSettings(path=path)):
        assert seen == [0]  # migrated once


def test_a_format_without_a_migration_is_refused_and_left_alone(old_store):
    path, older = old_store
    with pytest.raises(StoreFormatError, match=f"no migration from format {older}"):
        open_store(StoreSettings(path=path))
    assert not list(path.parent.glob("rocksdb.before-migrate-*"))
