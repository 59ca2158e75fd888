"""Tests of ``gateway._store.store`` against a real RocksDB in a temporary directory."""

from __future__ import annotations

import hashlib
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest
from rocksdict import Options, Rdict

from gateway._errors import StoreError
from gateway._model import OrderState, Status
from gateway._store.store import (
    COLUMN_FAMILIES,
    AuditVerification,
    OutboxStats,
    StepWrite,
    Store,
    StoreSettings,
    open_store,
)

ROOT = Path(__file__).resolve().parents[2]


def be64(n: int) -> bytes:
    return struct.pack(">Q", n)


def open_at(path: Path, **settings: Any) -> Store:
    return open_store(StoreSettings(path=path, **settings))


def raw_db(path: Path) -> Rdict:
    """A raw handle on a closed store's database (all column families must be opened)."""
    return Rdict(str(path), options=Options(raw_mode=True),
                 column_families={name: Options(raw_mode=True) for name in COLUMN_FAMILIES})


def order(tenant: str, order_id: str, **fields: Any) -> OrderState:
    return OrderState(tenant, order_id, **fields)


def event(tenant: str, fingerprint: int, **fields: Any) -> dict[str, Any]:
    return {"tenant": tenant, "fingerprint": fingerprint, **fields}


def audit(tenant: str, order_id: str, note: str = "") -> dict[str, Any]:
    # an enum member and a float: the chain must verify after they round-trip as JSON
    return {"tenant": tenant, "order_id": order_id, "actor": "source:test", "decision": Status.PAID,
            "changes": [{"field": "data.amount", "old": 0.1, "new": 12.5e-3}], "note": note}


def full_step(tenant: str = "t1", n: int = 0) -> StepWrite:
    return StepWrite(
        orders=[order(tenant, f"o{n}", status=Status.PAID, seq=1, buyer_key=7, waybill=f"WB{n}",
                      data={"amount": 12.5}, source_status={"douyin": "paid"})],
        events=[event(tenant, 1000 + n, order_id=f"o{n}", raw={"x": [1, 2]})],
        audit=[audit(tenant, f"o{n}")],
        outbox=[{"tenant": tenant, "event_id": f"{n:016x}", "order_id": f"o{n}"}],
        quarantine=[{"tenant": tenant, "raw_status": "WEIRD", "n": n}],
        buyer_index=[(tenant, 7, 1_000 + n, f"o{n}")],
        waybill_index=[(tenant, f"WB{n}", f"o{n}")],
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(path: Path) -> Any:
    with open_at(path) as opened:
        yield opened


def test_round_trip_of_every_keyspace(path: Path) -> None:
    step = full_step()
    with open_at(path) as store:
        result = store.commit(step)
        assert (result.event_seqs, result.audit_seqs, result.outbox_seqs, result.quarantine_seqs) == \
            ([1], [1], [1], [1])
        assert store.get_order("t1", "o0") == step.orders[0]
    for cold in (False, True):  # the second pass reads RocksDB, not the caches
        with open_at(path) as store:
            if not cold:
                store.commit(StepWrite())
            assert store.get_order("t1", "o0") == step.orders[0]
            assert store.get_order("t1", "nope") is None
            assert store.seen_fingerprint("t1", 1000)
            assert list(store.iter_events("t1")) == [{**step.events[0], "seq": 1}]
            [record] = store.iter_audit("t1")
            assert {k: record[k] for k in step.audit[0]} == step.audit[0]
            assert record["seq"] == 1 and record["prev"] == ""
            [queued] = store.iter_outbox()
            assert isinstance(queued.pop("queued_at_ms"), int)  # the store stamps when it was queued
            assert queued == {**step.outbox[0], "outbox_seq": 1}
            assert list(store.iter_quarantine("t1")) == [{**step.quarantine[0], "seq": 1}]
            assert store.quarantine_count("t1") == store.quarantine_count() == 1
            assert store.order_for_waybill("t1", "WB0") == "o0"
            assert store.orders_for_buyer("t1", 7, 0) == [(1000, "o0")]
            assert store.tenants() == ["t1"]


def test_stored_layout_matches_the_documented_keys(path: Path) -> None:
    step = full_step()
    with open_at(path) as store:
        store.commit(step)
    assert set(Rdict.list_cf(str(path), Options(raw_mode=True))) == {"default", *COLUMN_FAMILIES}
    db = raw_db(path)
    try:
        def column(name: str) -> dict[Any, Any]:
            return dict(db.get_column_family(name).items())

        assert orjson.loads(column("orders")[b"t1\0o0"]) == step.orders[0].to_dict()
        assert orjson.loads(column("events")[b"t1\0" + be64(1)]) == step.events[0]
        assert column("dedup") == {b"t1\0" + be64(1000): be64(1)}
        queued = orjson.loads(column("outbox")[be64(1)])
        assert isinstance(queued.pop("queued_at_ms"), int)
        assert queued == step.outbox[0]
        assert orjson.loads(column("quarantine")[b"t1\0" + be64(1)]) == step.quarantine[0]
        assert column("idx_buyer") == {b"t1\0" + be64(7) + be64(1000) + b"o0": b""}
        assert column("idx_waybill") == {b"t1\0WB0": b"o0"}
        assert column("meta")[b"format"] == b"1"
    finally:
        db.close()


def test_records_are_not_mutated(store: Store) -> None:
    step = full_step()
    before = orjson.dumps([step.events, step.audit, step.outbox, step.quarantine])
    store.commit(step)
    assert orjson.dumps([step.events, step.audit, step.outbox, step.quarantine]) == before


def test_seqs_continue_after_reopen(path: Path) -> None:
    with open_at(path) as store:
        store.commit(full_step("t1", 0))
        store.commit(full_step("t2", 1))
        result = store.commit(full_step("t1", 2))
        assert (result.event_seqs, result.audit_seqs, result.outbox_seqs, result.quarantine_seqs) == \
            ([2], [2], [3], [2])
    with open_at(path) as store:
        result = store.commit(full_step("t1", 3))
        assert (result.event_seqs, result.audit_seqs, result.outbox_seqs, result.quarantine_seqs) == \
            ([3], [3], [4], [3])
        result = store.commit(full_step("t2", 4))
        assert (result.event_seqs, result.audit_seqs, result.outbox_seqs, result.quarantine_seqs) == \
            ([2], [2], [5], [2])
        assert store.verify_audit_chain("t1").ok and store.verify_audit_chain("t2").ok
        assert [r["seq"] for r in store.iter_events("t1", after_seq=1)] == [2, 3]


def test_seqs_in_one_step_are_per_tenant(store: Store) -> None:
    step = StepWrite(events=[event(t, i) for i, t in enumerate(["a", "b", "a", "a", "b"])],
                     audit=[audit(t, "o") for t in ["b", "a", "b"]])
    result = store.commit(step)
    assert result.event_seqs == [1, 1, 2, 3, 2]
    assert result.audit_seqs == [1, 1, 2]
    assert store.verify_audit_chain("a").ok and store.verify_audit_chain("b").ok


def test_outbox_and_quarantine_seqs_are_never_reused(path: Path) -> None:
    with open_at(path) as store:
        store.commit(full_step("t1", 0))
        store.commit(full_step("t1", 1))
        store.delete_outbox([1, 2])
        store.commit(StepWrite(quarantine_release=[("t1", 1), ("t1", 2)]))
        assert store.outbox_stats() == OutboxStats(0, 0, None)
        assert store.quarantine_count("t1") == 0
    with open_at(path) as store:
        result = store.commit(full_step("t1", 2))
        assert result.outbox_seqs == [3] and result.quarantine_seqs == [3]


def test_tenant_isolation_with_prefix_extension(store: Store) -> None:
    for n, tenant in enumerate(["a", "ab", "a-b", "b"]):
        step = full_step(tenant, 0)
        step.events.append(event(tenant, 5000 + n))
        store.commit(step)
    assert [r["tenant"] for r in store.iter_events("a")] == ["a", "a"]
    assert {r["tenant"] for r in store.iter_audit("a")} == {"a"}
    assert [r["tenant"] for r in store.iter_quarantine("a")] == ["a"]
    assert store.orders_for_buyer("a", 7, 0) == [(1000, "o0")]
    assert store.seen_fingerprint("a", 5000) and not store.seen_fingerprint("a", 5001)
    assert store.quarantine_count("a") == 1 and store.quarantine_count() == 4
    assert store.tenants() == ["a", "a-b", "ab", "b"]
    assert store.get_order("ab", "o0") is not None and store.get_order("x", "o0") is None
    assert store.verify_audit_chain("a") == AuditVerification(True, 1, None, "")


def test_invalid_tenant_names(store: Store) -> None:
    store.commit(full_step("a", 0))
    for name in ["a\0o0", "", "a b", "x" * 65]:
        assert store.get_order(name, "o0") is None
        assert list(store.iter_events(name)) == []
        assert not store.seen_fingerprint(name, 1000)
    with pytest.raises(ValueError, match="invalid tenant"):
        store.commit(full_step("a\0b", 1))
    assert store.commit(full_step("a", 2)).event_seqs == [2]  # the refused step left no trace


def test_dedup_across_reopen(path: Path) -> None:
    top = 2**64 - 1
    with open_at(path) as store:
        assert not store.seen_fingerprint("t1", 42)
        store.commit(StepWrite(events=[event("t1", 42), event("t1", top), event("t1", 0)]))
        assert store.seen_fingerprint("t1", 42) and store.seen_fingerprint("t1", top)
        assert not store.seen_fingerprint("t2", 42)
    for recent in (1_000_000, 0):
        with open_at(path, recent_fingerprints=recent) as store:
            assert store.seen_fingerprint("t1", 42) and store.seen_fingerprint("t1", top)
            assert store.seen_fingerprint("t1", 0)
            assert not store.seen_fingerprint("t1", 43) and not store.seen_fingerprint("t2", 42)


def test_recent_fingerprints_stay_bounded(path: Path) -> None:
    with open_at(path, recent_fingerprints=10) as store:
        for n in range(20):
            store.commit(StepWrite(events=[event("t1", n)]))
        in_memory = sum(len(s) for s in (*store._recent.values(), *store._recent_old.values()))
        assert in_memory <= 10
        assert all(store.seen_fingerprint("t1", n) for n in range(20))


def test_buyer_index_time_filter(store: Store) -> None:
    top = 2**64 - 1
    store.commit(StepWrite(buyer_index=[
        ("t1", 7, 3_000, "o3"), ("t1", 7, 1_000, "o1"), ("t1", 7, 2_000, "o2"),
        ("t1", 6, 2_500, "other"), ("t1", 8, 2_500, "other"), ("t1", top, 5, "last"), ("t2", 7, 2_500, "t2"),
    ]))
    assert store.orders_for_buyer("t1", 7, 0) == [(1_000, "o1"), (2_000, "o2"), (3_000, "o3")]
    assert store.orders_for_buyer("t1", 7, 2_000) == [(2_000, "o2"), (3_000, "o3")]
    assert store.orders_for_buyer("t1", 7, 3_001) == []
    assert store.orders_for_buyer("t1", top, 0) == [(5, "last")]
    assert store.orders_for_buyer("t1", 9, 0) == []


def test_waybill_index(store: Store) -> None:
    store.commit(StepWrite(waybill_index=[("t1", "SF100", "o1"), ("t2", "SF100", "x")]))
    assert store.order_for_waybill("t1", "SF100") == "o1"
    store.commit(StepWrite(waybill_index=[("t1", "SF100", "o2")]))
    assert store.order_for_waybill("t1", "SF100") == "o2"
    assert store.order_for_waybill("t2", "SF100") == "x"
    assert store.order_for_waybill("t1", "SF1") is None


def _chain_step(tenant: str, count: int) -> StepWrite:
    return StepWrite(audit=[audit(tenant, f"o{i % 2}", note=f"note-{i}") for i in range(count)])


def test_audit_chain_links_and_hashes(store: Store) -> None:
    store.commit(_chain_step("t1", 3))
    records = list(store.iter_audit("t1"))
    prev = ""
    for seq, record in enumerate(records, 1):
        content = {k: v for k, v in record.items() if k != "hash"}
        assert record["seq"] == seq and record["prev"] == prev
        expected = hashlib.sha256(prev.encode() + orjson.dumps(content, option=orjson.OPT_SORT_KEYS))
        assert record["hash"] == expected.hexdigest()
        prev = record["hash"]
    assert [r["note"] for r in store.iter_audit("t1", "o1")] == ["note-1"]
    assert store.verify_audit_chain("t1") == AuditVerification(True, 3, None, "")
    assert store.verify_audit_chain("nobody") == AuditVerification(True, 0, None, "")


def _drop_audit_index(path: Path) -> None:
    db = raw_db(path)
    try:
        index = db.get_column_family("idx_audit")
        for key in list(index.keys()):
            del index[key]
        del db.get_column_family("meta")[b"audit_index"]
    finally:
        db.close()


def test_an_orders_audit_records_come_from_its_index_and_an_older_store_is_indexed_at_open(path: Path) -> None:
    """The proof and the order view read one order's records through ``idx_audit``, not the
    whole chain; a store written before the index existed gets it at its next open."""
    with open_at(path) as store:
        store.commit(_chain_step("t1", 7))
        store.commit(StepWrite(audit=[audit("t1", "o1|x", note="prefix-neighbour"), audit("t2", "o1", note="t2")]))
        expected = [r for r in store.iter_audit("t1") if r["order_id"] == "o1"]
        assert [r["note"] for r in store.iter_audit("t1", "o1")] == ["note-1", "note-3", "note-5"]
        assert list(store.iter_audit("t1", "o1")) == expected
        assert [r["note"] for r in store.iter_audit("t2", "o1")] == ["t2"]
        assert list(store.iter_audit("t1", "nothing")) == []
        store.commit(StepWrite(audit=[audit("t1", "", note="no order: a catalog import")]))
        assert [r["note"] for r in store.iter_audit("t1", "")] == ["no order: a catalog import"]
    _drop_audit_index(path)  # as an older gateway left it: no index, no marker
    with open_at(path) as store:
        assert list(store.iter_audit("t1", "o1")) == expected
        assert [r["note"] for r in store.iter_audit("t1", "o1|x")] == ["prefix-neighbour"]


def _tamper(path: Path, key: bytes, change: Any) -> None:
    db = raw_db(path)
    try:
        column = db.get_column_family("audit")
        value = change(column[key])
        if value is None:
            del column[key]
        else:
            column[key] = value
    finally:
        db.close()


@pytest.mark.parametrize("how", ["content", "hash", "undecodable", "deleted"])
def test_tampered_audit_record_is_detected(path: Path, how: str) -> None:
    with open_at(path) as store:
        store.commit(_chain_step("t1", 5))
        store.commit(_chain_step("t2", 5))
        store.commit(_chain_step("t1", 2))
    changes = {
        "content": lambda v: v.replace(b"note-3", b"note-X"),
        "hash": lambda v: v[:-3] + (b"0" if v[-3:-2] != b"0" else b"1") + v[-2:],
        "undecodable": lambda v: v[:10] + b"\xff" + v[11:],
        "deleted": lambda v: None,
    }
    _tamper(path, b"t1\0" + be64(4), changes[how])
    with open_at(path) as store:
        result = store.verify_audit_chain("t1")
        assert not result.ok and result.first_bad_seq == 4 and result.records == 3, result
        assert result.reason
        assert store.verify_audit_chain("t2").ok  # chains are per tenant


def test_truncated_audit_tail_is_detected_while_running(store: Store) -> None:
    store.commit(_chain_step("t1", 3))
    store._cfs["audit"].delete(b"t1\0" + be64(3))  # type: ignore[index]
    result = store.verify_audit_chain("t1")
    assert not result.ok and result.first_bad_seq == 3 and result.records == 2


QUEUED_STAMP = len(b',"queued_at_ms":1795661762867')  # what the store appends to an outbox record


def test_outbox_order_and_stats(path: Path) -> None:
    records = [{"tenant": "t1", "n": n, "pad": "x" * n} for n in range(6)]
    sizes = [len(orjson.dumps(r)) + QUEUED_STAMP for r in records]
    with open_at(path) as store:
        assert store.outbox_stats() == OutboxStats(0, 0, None)
        store.commit(StepWrite(outbox=records[:4]))
        store.commit(StepWrite(outbox=records[4:]))
        assert [r["n"] for r in store.iter_outbox()] == list(range(6))
        assert [r["outbox_seq"] for r in store.iter_outbox(after_seq=2, limit=2)] == [3, 4]
        assert store.outbox_stats() == OutboxStats(6, sum(sizes), 1)
        store.delete_outbox([1, 3, 99, 3])
        expected = OutboxStats(4, sum(sizes) - sizes[0] - sizes[2], 2)
        assert store.outbox_stats() == expected
        assert [r["outbox_seq"] for r in store.iter_outbox()] == [2, 4, 5, 6]
    with open_at(path) as store:
        assert store.outbox_stats() == expected
        store.delete_outbox(range(1, 7))
        assert store.outbox_stats() == OutboxStats(0, 0, None)
        assert list(store.iter_outbox()) == []
        store.commit(StepWrite(outbox=records[:1]))
        assert store.outbox_stats() == OutboxStats(1, sizes[0], 7)


def test_outbox_ledger_compacts(store: Store) -> None:
    for _ in range(3):
        store.commit(StepWrite(outbox=[{"tenant": "t1"}] * 4000))
    store.delete_outbox(range(1, 9001))
    stats = store.outbox_stats()
    assert stats == OutboxStats(3000, 3000 * (len(b'{"tenant":"t1"}') + QUEUED_STAMP), 9001)
    assert len(store._outbox.sizes) < 12_000
    assert [r["outbox_seq"] for r in store.iter_outbox(limit=3)] == [9001, 9002, 9003]


def test_long_scans_cross_chunks(store: Store) -> None:
    store.commit(StepWrite(events=[event("t1", n, n=n) for n in range(1300)],
                           outbox=[{"tenant": "t1", "n": n} for n in range(1300)]))
    assert [r["seq"] for r in store.iter_events("t1")] == list(range(1, 1301))
    assert [r["n"] for r in store.iter_outbox(after_seq=10, limit=700)] == list(range(10, 710))


def test_quarantine_release(path: Path) -> None:
    with open_at(path) as store:
        store.commit(StepWrite(quarantine=[{"tenant": "t1", "n": n} for n in range(3)]))
        store.commit(StepWrite(quarantine_release=[("t1", 2), ("t1", 2), ("t1", 9), ("t2", 1)]))
        assert [r["seq"] for r in store.iter_quarantine("t1")] == [1, 3]
        assert store.quarantine_count("t1") == 2
    with open_at(path) as store:
        assert store.quarantine_count("t1") == 2 and store.quarantine_count() == 2


def test_order_cache_is_bounded_and_falls_back_to_disk(path: Path) -> None:
    with open_at(path, cache_orders=2) as store:
        orders = [order("t1", f"o{n}", seq=n) for n in range(5)]
        store.commit(StepWrite(orders=orders))
        assert len(store._orders) == 2
        assert store.get_order("t1", "o0") == orders[0]
        assert len(store._orders) == 2
        updated = order("t1", "o0", seq=9)
        store.commit(StepWrite(orders=[updated]))
        assert store.get_order("t1", "o0") is updated


class _FailingDB:
    """Stands in for the Rdict: every write fails like a RocksDB I/O error."""

    def write(self, *args: Any) -> None:
        raise Exception("IO error: No space left on device")


def test_failed_commit_changes_nothing(store: Store) -> None:
    store.commit(full_step("t1", 0))
    before = (dict(store._event_seq), dict(store._audit_seq), dict(store._audit_head),
              store._outbox_seq, store.outbox_stats(), store.quarantine_count())
    real, store._db = store._db, _FailingDB()  # type: ignore[assignment]
    with pytest.raises(StoreError, match="No space left") as caught:
        store.commit(full_step("t1", 1))
    assert isinstance(caught.value.__cause__, Exception)
    with pytest.raises(StoreError):
        store.delete_outbox([1])
    store._db = real
    after = (dict(store._event_seq), dict(store._audit_seq), dict(store._audit_head),
             store._outbox_seq, store.outbox_stats(), store.quarantine_count())
    assert after == before
    assert store.get_order("t1", "o1") is None and not store.seen_fingerprint("t1", 1001)
    result = store.commit(full_step("t1", 2))
    assert (result.event_seqs, result.audit_seqs, result.outbox_seqs) == ([2], [2], [2])
    assert store.verify_audit_chain("t1").ok


def test_closed_store_raises_store_error(path: Path) -> None:
    store = open_at(path)
    store.commit(full_step())
    store.close()
    store.close()  # idempotent
    assert "closed" in repr(store)
    with pytest.raises(StoreError, match="closed"):
        store.commit(full_step("t1", 1))
    with pytest.raises(StoreError, match="closed"):
        store.get_order("t1", "o0")
    with pytest.raises(StoreError, match="closed"):
        list(store.iter_events("t1"))
    with pytest.raises(StoreError, match="closed"):
        store.delete_outbox([1])
    assert store.outbox_stats().count == 1
    with open_at(path) as again:
        assert again.commit(full_step("t1", 1)).event_seqs == [2]


def test_abandoned_iterator_does_not_keep_the_database_open(path: Path) -> None:
    store = open_at(path)
    store.commit(StepWrite(events=[event("t1", n) for n in range(600)]))
    pending = store.iter_events("t1")
    assert next(pending)["seq"] == 1
    store.close()
    with open_at(path) as again:
        assert again.get_order("t1", "x") is None
    with pytest.raises(StoreError):
        for _ in pending:
            pass


def test_second_open_in_this_process_is_refused(store: Store, path: Path) -> None:
    with pytest.raises(StoreError, match="locked"):
        open_at(path)
    store.commit(full_step())  # the first handle is unaffected


def test_open_locked_by_another_process_is_refused(path: Path) -> None:
    holder = textwrap.dedent(f"""
        import sys
        from gateway._store.store import StoreSettings, open_store
        store = open_store(StoreSettings(path={str(path)!r}))
        print("READY", flush=True)
        sys.stdin.read()
        store.close()
    """)
    proc = subprocess.Popen([sys.executable, "-c", holder], cwd=ROOT, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
        with pytest.raises(StoreError, match="store is locked by another process"):
            open_at(path)
    finally:
        proc.communicate("", timeout=30)
    with open_at(path) as store:
        assert store.tenants() == []


def test_foreign_format_is_refused(path: Path) -> None:
    open_at(path).close()
    db = raw_db(path)
    db.get_column_family("meta")[b"format"] = b"9"
    db.close()
    with pytest.raises(StoreError, match="format"):
        open_at(path)


def test_unopenable_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError):
        open_at(blocker / "store")


def test_settings_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sync"):
        StoreSettings(path=tmp_path, sync="never")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cache_orders"):
        StoreSettings(path=tmp_path, cache_orders=-1)
    assert StoreSettings(path=str(tmp_path)).path == tmp_path  # type: ignore[arg-type]


def test_os_sync_mode_round_trips(path: Path) -> None:
    with open_at(path, sync="os") as store:
        store.commit(full_step())
        assert "sync=os" in repr(store)
    with open_at(path, sync="os") as store:
        assert store.get_order("t1", "o0") is not None


def test_read_outbox_respects_limits_and_never_blocks_on_a_big_record(store: Store) -> None:
    store.commit(StepWrite(outbox=[{"tenant": "t1", "n": 0, "pad": "x" * 5000}]
                           + [{"tenant": "t1", "n": n} for n in range(1, 10)]))
    first = store.read_outbox(limit=5, max_bytes=100)
    assert [seq for seq, _ in first] == [1]  # alone, though over max_bytes
    assert [orjson.loads(v)["n"] for _, v in store.read_outbox(limit=3, max_bytes=10**6, after_seq=1)] == [1, 2, 3]
    store.delete_outbox([1, 2])
    assert [seq for seq, _ in store.read_outbox(limit=2, max_bytes=10**6)] == [3, 4]
    assert isinstance(store.outbox_oldest_queued_ms(), int)


class _WatchedFsync:
    """Wraps the store's database: records what a concurrent reader sees during each WAL fsync."""

    def __init__(self, store: Store) -> None:
        self.store, self.db, self.seen_during_fsync = store, store._db, []

    def flush_wal(self, sync: bool) -> None:
        self.seen_during_fsync.append([seq for seq, _ in self.store.read_outbox(100, 10**6)])
        self.db.flush_wal(sync)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


@pytest.mark.parametrize("sync", ["group", "os"])
def test_a_commit_is_fsynced_before_it_returns_and_the_forwarder_never_reads_ahead_of_it(
        path: Path, sync: str) -> None:
    with open_at(path, sync=sync) as store:
        store.commit(StepWrite(outbox=[{"tenant": "t1", "n": 0}]))
        watched = _WatchedFsync(store)
        store._db = watched  # type: ignore[assignment]
        try:
            store.commit(StepWrite(outbox=[{"tenant": "t1", "n": 1}, {"tenant": "t1", "n": 2}]))
        finally:
            store._db = watched.db
        # group: one fsync, during which the new records (written, not yet durable) stay unread
        assert watched.seen_during_fsync == ([[1]] if sync == "group" else [])
        assert [seq for seq, _ in store.read_outbox(100, 10**6)] == [1, 2, 3]


def test_dead_letters_move_atomically_and_requeue_at_the_tail(path: Path) -> None:
    records = [{"tenant": "t1", "event_id": f"{n:016x}", "n": n} for n in range(5)]
    with open_at(path) as store:
        store.commit(StepWrite(outbox=records))
        store.dead_letter([(2, {"status": 400, "response": "bad sku"}), (99, {"status": 400})])
        assert store.dead_count() == 1
        assert [seq for seq, _ in store.read_outbox(10, 10**6)] == [1, 3, 4, 5]
        [letter] = store.iter_dead()
        assert letter["outbox_seq"] == 2 and letter["status"] == 400 and letter["response"] == "bad sku"
        assert letter["event"]["n"] == 1
        assert store.outbox_stats().count == 4
    with open_at(path) as store:  # survives a reopen; seqs are not reused
        assert store.dead_count() == 1
        store.delete_outbox([1, 3, 4, 5])
        assert store.requeue_dead([12345]) == []
        assert store.requeue_dead() == [6]
        assert store.dead_count() == 0 and list(store.iter_dead()) == []
        [(seq, value)] = store.read_outbox(10, 10**6)
        requeued = orjson.loads(value)
        assert seq == 6 and requeued["event_id"] == records[1]["event_id"] and requeued["n"] == 1
    with open_at(path) as store:
        assert store.outbox_stats().count == 1 and store.dead_count() == 0
        store.commit(StepWrite(outbox=records[:1]))
        assert [seq for seq, _ in store.read_outbox(10, 10**6)] == [6, 7]


def scanned_buyer(store: Store, tenant: str, buyer: int, since_ms: int) -> list[tuple[int, str]]:
    """The answer of a full index read, bypassing the in-memory shortcut."""
    saved = store._buyers_complete_after_ms
    store._buyers_complete_after_ms = 2**63
    try:
        return store.orders_for_buyer(tenant, buyer, since_ms)
    finally:
        store._buyers_complete_after_ms = saved


def test_buyer_lookups_from_memory_agree_with_the_index_across_reopen_and_forgetting(path, monkeypatch):
    import random
    import time as clock

    import gateway._store.recovery as recovery_module

    monkeypatch.setattr(recovery_module, "_BUYER_GENERATION", 7)  # forget generations often
    rnd = random.Random(5)
    now = clock.time_ns() // 1_000_000
    order = 0
    for _ in range(3):  # three opens of the same store
        with open_at(path) as store:
            for _ in range(40):
                entries = []
                for _ in range(rnd.randint(1, 4)):
                    order += 1
                    entries.append(("t1", rnd.randint(1, 30), now - rnd.randint(0, 100_000), f"o{order}"))
                store.commit(StepWrite(buyer_index=entries))
                for _ in range(5):
                    buyer, since = rnd.randint(1, 40), now - rnd.randint(0, 120_000)
                    assert store.orders_for_buyer("t1", buyer, since) == scanned_buyer(store, "t1", buyer, since)


def test_a_buyer_never_indexed_costs_no_read(store, monkeypatch):
    import time as clock

    now = clock.time_ns() // 1_000_000
    store.commit(StepWrite(buyer_index=[("t1", 7, now, "o1")]))
    monkeypatch.setattr(store, "_scan", lambda *a, **k: pytest.fail("the index was read"))
    assert store.orders_for_buyer("t1", 8, now - 60_000) == []
    assert store.orders_for_buyer("t2", 7, now - 60_000) == []


def test_reopen_rebuilds_the_counters_and_refuses_after_close(path: Path) -> None:
    store = open_at(path)
    store.commit(full_step())
    store.commit(StepWrite(outbox=[{"tenant": "t1", "n": 1}]))
    store.dead_letter([(2, {"status": 400})])
    before = (store.outbox_stats(), store.dead_count(), store.quarantine_count("t1"),
              store.verify_audit_chain("t1"))
    store.reopen()
    assert (store.outbox_stats(), store.dead_count(), store.quarantine_count("t1"),
            store.verify_audit_chain("t1")) == before
    store.commit(StepWrite(outbox=[{"tenant": "t1", "n": 2}]))  # seqs continue
    assert [seq for seq, _ in store.read_outbox(10, 10**6)] == [1, 3]
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.reopen()


def test_a_non_blocking_delete_never_waits_behind_another_write(store: Store) -> None:
    store.commit(StepWrite(outbox=[{"tenant": "t1", "n": n} for n in range(3)]))
    with store._write_lock:  # as while a group commit runs in its thread
        assert store.delete_outbox([1], blocking=False) is False
    assert store.outbox_stats().count == 3
    assert store.delete_outbox([1], blocking=False) is True
    assert store.outbox_stats().count == 2


def test_events_waiting_for_their_waybill_are_tracked_across_reopen(path: Path) -> None:
    def waiting(n: int, waybill: str) -> dict[str, Any]:
        return {"tenant": "t1", "source": "kuaidi100", "reason": "unknown_waybill", "waybill": waybill, "n": n}

    with open_at(path) as store:
        store.commit(StepWrite(quarantine=[waiting(1, "SF1"), waiting(2, "SF2"), waiting(3, "SF1"),
                                           {"tenant": "t1", "reason": "unknown_status", "waybill": "SF1"}]))
        assert store.waiting_for_waybills([("t1", "SF1"), ("t2", "SF1")]) == {"t1": [1, 3]}
        store.commit(StepWrite(quarantine_release=[("t1", 1)]))
        assert store.waiting_for_waybills([("t1", "SF1")]) == {"t1": [3]}
        assert [r["n"] for r in store.quarantine_records("t1", [3, 1, 99])] == [3]
    with open_at(path) as store:  # rebuilt from the keys at open
        assert store.waiting_for_waybills([("t1", "SF1"), ("t1", "SF2")]) == {"t1": [3, 2]}


def test_packline_records_commit_with_the_step_and_stay_per_tenant(path: Path) -> None:
    with open_store(StoreSettings(path=path)) as store:
        store.commit(StepWrite(records=[
            ("t1", "session", "s-1", {"state": "open"}),
            ("t1", "session", "s-2", {"state": "closed"}),
            ("t2", "session", "s-1", {"state": "open"}),
            ("", "station", "A1", {"session": "s-1"}),
        ]))
        assert store.get_record("t1", "session", "s-1") == {"state": "open"}
        assert store.get_record("t3", "session", "s-1") is None
        assert [(t, i) for t, i, _ in store.iter_records("session", "t1")] == [("t1", "s-1"), ("t1", "s-2")]
        assert [(t, i) for t, i, _ in store.iter_records("session")] == [
            ("t1", "s-1"), ("t1", "s-2"), ("t2", "s-1")]
        assert [i for _, i, _ in store.iter_records("session", "t1", id_prefix="s-2")] == ["s-2"]
        assert [(t, i) for t, i, _ in store.iter_records("station", "")] == [("", "A1")]
        store.commit(StepWrite(records=[("t1", "session", "s-1", None)]))
        assert store.get_record("t1", "session", "s-1") is None
    with open_store(StoreSettings(path=path)) as store:  # durable
        assert store.get_record("t2", "session", "s-1") == {"state": "open"}
        with pytest.raises(ValueError):
            store.commit(StepWrite(records=[("bad tenant", "session", "x", {})]))
