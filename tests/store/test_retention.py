"""Retention: finished old orders go with everything that is only theirs; the rest stays and the
audit chain still verifies (``gateway._store.retention``). Real RocksDB in tmp_path."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

import core_ext
from gateway._pipeline import plan_step
from gateway._rules import load_rules, normalise_batch
from gateway._store import StepWrite, Store, StoreSettings, open_store
from gateway._store.check import verify_audit_tail
from gateway._store.retention import prune_tenant

RULES = Path(__file__).resolve().parents[2] / "config" / "rules"
DAY = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01
T = "shop"


def _events(order: int, statuses: list[str], clock: int, phone: str = "") -> list[dict[str, Any]]:
    return [{"event_id": f"e-{order}-{n}-{status}", "platform": "douyin", "order_no": f"R{order:04d}",
             "status": status, "occurred_at": datetime.fromtimestamp(clock / 1000, UTC).isoformat(),
             "buyer": {"phone": phone or f"1380000{order:04d}"}, "amount": 10.0,
             "lines": [{"sku": "A", "qty": 1}], **({"waybill": f"SF{order:08d}"} if status == "SENT" else {})}
            for n, status in enumerate(statuses)]


def ingest(store: Store, batch: list[dict[str, Any]], clock: int) -> None:
    rules = load_rules(RULES).get("erp")
    assert rules is not None
    events = normalise_batch(rules, T, batch, clock)
    plan = plan_step(events, store.get_order, store.seen_fingerprint, store.order_for_waybill,
                     store.orders_for_buyer, clock)
    store.commit(plan.write)


def pack(store: Store, order: int, snapshot: Path) -> None:
    order_id, session = f"douyin|R{order:04d}", f"S-{order}"
    snapshot.write_bytes(b"jpeg")
    store.commit(StepWrite(records=[
        (T, "parcel", order_id, {"order_ids": [order_id], "session_id": session, "waybill": f"SF{order:08d}"}),
        (T, "session", session, {"session_id": session, "orders": [order_id], "timeline_len": 2}),
        (T, "session_step", f"{session}/000001", {"seq": 1}), (T, "session_step", f"{session}/000002", {"seq": 2}),
        (T, "session_step", f"{session}0/000001", {"seq": 1}),  # of session S-10, S-20...: not this one's
        (T, "print", f"{session}/1", {"job_id": f"{session}/1"}),
        (T, "evidence", f"{order_id}|{session}", {"snapshot": {"path": str(snapshot)}})]))


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with open_store(StoreSettings(path=tmp_path / "db", sync="os")) as opened:
        yield opened


def seed(store: Store, tmp_path: Path) -> None:
    """Orders 1-3 delivered long ago, 4 refund still open (old), 5 delivered recently; 1 packed."""
    old = T0
    ingest(store, [e for n in (1, 2, 3) for e in _events(n, ["PAID", "AUDITED", "SENT", "SIGNED"], old)], old)
    ingest(store, _events(4, ["PAID", "AUDITED", "SENT", "SIGNED", "REFUNDING"], old + 1000), old + 1000)
    pack(store, 1, tmp_path / "snap-1.jpg")
    ingest(store, _events(6, ["PAID"], old + 2000), old + 2000)
    ingest(store, [{**e, "event_id": "cancel-6"} for e in _events(6, ["CANCELLED"], old + 3000)], old + 3000)
    ingest(store, _events(5, ["PAID", "AUDITED", "SENT", "SIGNED"], old + 300 * DAY), old + 300 * DAY)


def test_old_finished_orders_go_with_their_events_indexes_and_records(store: Store, tmp_path: Path) -> None:
    seed(store, tmp_path)
    events_before = sum(1 for _ in store.iter_events(T))
    report = prune_tenant(store, T, T0 + 200 * DAY, T0 + 400 * DAY)
    assert report.orders_deleted == 4  # 1, 2, 3 delivered and 6 cancelled
    for order in (1, 2, 3):
        assert store.get_order(T, f"douyin|R{order:04d}") is None
        assert store.order_for_waybill(T, f"SF{order:08d}") is None
        key = core_ext.buyer_key(T, "phone", f"1380000{order:04d}")
        assert store.orders_for_buyer(T, key, 0) == []
    assert store.get_order(T, "douyin|R0006") is None
    assert store.get_record(T, "parcel", "douyin|R0001") is None
    assert store.get_record(T, "session", "S-1") is None
    assert [record_id for _, record_id, _ in store.iter_records("session_step", T)] == ["S-10/000001"]
    assert store.get_record(T, "print", "S-1/1") is None
    assert list(store.iter_records("evidence", T)) == []
    assert not (tmp_path / "snap-1.jpg").exists() and report.files_deleted == 1
    remaining = list(store.iter_events(T))
    assert {e["order_id"] for e in remaining} == {"douyin|R0004", "douyin|R0005"}
    assert report.events_deleted == events_before - len(remaining)
    # kept: the open refund (old) and the recent delivery, with their events and audit trail
    assert store.get_order(T, "douyin|R0004") is not None
    assert store.get_order(T, "douyin|R0005") is not None
    assert report.kept_old == {"REFUND_INITIATED": 1}
    assert len(list(store.iter_audit(T, "douyin|R0004"))) == 5
    # the chain's start was pruned up to the cutoff but for the open refund's records; it verifies
    assert report.audit_kept == 5 and report.audit_stopped_by == "newer than the cutoff"
    assert report.audit_deleted > 0 and store.audit_anchor(T).kept == 5
    assert store.verify_audit_chain(T).ok
    assert verify_audit_tail(store, T, 3).ok and verify_audit_tail(store, T, 10_000).ok


def test_a_dry_run_changes_nothing_and_reports_the_same(store: Store, tmp_path: Path) -> None:
    seed(store, tmp_path)
    before = store._db.latest_sequence_number()  # type: ignore[union-attr]
    dry = prune_tenant(store, T, T0 + 200 * DAY, T0 + 400 * DAY, dry_run=True)
    assert store._db.latest_sequence_number() == before  # type: ignore[union-attr]
    assert (tmp_path / "snap-1.jpg").exists()
    real = prune_tenant(store, T, T0 + 200 * DAY, T0 + 400 * DAY)
    assert (dry.orders_deleted, dry.events_deleted, dry.audit_deleted, dry.audit_floor) == (
        real.orders_deleted, real.events_deleted, real.audit_deleted, real.audit_floor)


def test_a_resolved_dispute_is_deleted_later_and_the_chain_moves_on(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with open_store(StoreSettings(path=path, sync="os")) as store:
        seed(store, tmp_path)
        first = prune_tenant(store, T, T0 + 200 * DAY, T0 + 400 * DAY)
        ingest(store, [{**e, "event_id": "closed-4"} for e in _events(4, ["REFUND_CLOSED"], T0 + 10 * DAY)],
               T0 + 10 * DAY)
    with open_store(StoreSettings(path=path, sync="os")) as store:  # reopened: counters, anchor, chain
        assert store.verify_audit_chain(T).ok
        second = prune_tenant(store, T, T0 + 200 * DAY, T0 + 400 * DAY)
        assert second.orders_deleted == 1 and store.get_order(T, "douyin|R0004") is None
        assert second.audit_floor == first.audit_floor  # order 5, delivered recently, is after the cutoff
        assert first.audit_kept == 5 and second.audit_kept == 0  # order 4's records went with it
        assert list(store.iter_audit(T, "douyin|R0004")) == []
        assert store.verify_audit_chain(T).ok
        ingest(store, _events(7, ["PAID"], T0 + 401 * DAY), T0 + 401 * DAY)  # writing goes on
        assert store.verify_audit_chain(T).ok


def test_tampering_with_the_anchor_or_the_retention_record_is_detected(store: Store, tmp_path: Path) -> None:
    seed(store, tmp_path)
    prune_tenant(store, T, T0 + 200 * DAY, T0 + 400 * DAY)
    anchor = store.audit_anchor(T)
    cfs = store._cfs
    assert cfs is not None
    anchor_key = T.encode() + b"\0audit_floor"
    stored = cfs["meta"][anchor_key]
    cfs["meta"][anchor_key] = orjson.dumps({**anchor._asdict(), "floor": anchor.floor + 1})
    assert not store.verify_audit_chain(T).ok  # records hidden by raising the floor
    del cfs["meta"][anchor_key]
    assert not store.verify_audit_chain(T).ok  # the pruned start without its anchor
    cfs["meta"][anchor_key] = stored
    assert store.verify_audit_chain(T).ok
    kept_seq = int(next(iter(store.iter_audit(T, "douyin|R0004")))["seq"])
    key = T.encode() + b"\0" + kept_seq.to_bytes(8, "big")
    original = cfs["audit"][key]
    del cfs["audit"][key]
    assert not store.verify_audit_chain(T).ok  # a kept record before the start removed
    changed = original.replace(b'"douyin|R0004"', b'"douyin|R0005"', 1)
    assert changed != original
    cfs["audit"][key] = changed
    assert not store.verify_audit_chain(T).ok  # ... or changed
    cfs["audit"][key] = original
    assert store.verify_audit_chain(T).ok


def test_commit_if_refuses_when_the_precondition_fails(store: Store) -> None:
    ingest(store, _events(1, ["PAID"], T0), T0)
    assert store.commit_if(StepWrite(raw=[("orders", T.encode() + b"\0douyin|R0001", None)]), lambda: False) is None
    assert store.get_order(T, "douyin|R0001") is not None


def test_nothing_old_means_nothing_deleted(store: Store, tmp_path: Path) -> None:
    seed(store, tmp_path)
    report = prune_tenant(store, T, T0 - DAY, T0 + 400 * DAY)
    assert (report.orders_deleted, report.events_deleted, report.audit_deleted) == (0, 0, 0)
    assert store.audit_anchor(T).floor == 1 and store.audit_anchor(T).kept == 0
    assert store.verify_audit_chain(T).ok


def test_the_cli_dry_run_then_the_pass_on_a_stopped_gateway(tmp_path: Path, capsys: Any) -> None:
    from gateway._settings import load_settings
    from gateway._store import store_settings
    from gateway.cli import main
    from tests._support import write_config

    config = write_config(tmp_path, port=1)
    settings = load_settings(config)
    with open_store(store_settings(settings)) as store:
        seed(store, tmp_path)
    days = (time.time_ns() // 1_000_000 - (T0 + 200 * DAY)) // DAY  # older than day 200 of 2026
    assert main(["store", "retention", "--dry-run", "--days", str(days), "--config", str(config), "--json"]) == 0
    dry = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert dry[0]["dry_run"] and dry[0]["orders_deleted"] >= 4 and dry[0]["kept_old"] == {"REFUND_INITIATED": 1}
    with open_store(store_settings(settings)) as store:
        assert store.get_order(T, "douyin|R0001") is not None  # the dry run wrote nothing
    assert main(["store", "retention", "--days", str(days), "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "tenant shop: deleted" in out and "REFUND_INITIATED" in out
    with open_store(store_settings(settings)) as store:
        assert store.get_order(T, "douyin|R0001") is None
        assert store.get_order(T, "douyin|R0004") is not None
        assert store.verify_audit_chain(T).ok
        assert store.get_record("", "retention", T)["orders_deleted"] >= 4


def test_retention_days_below_sixty_is_refused_with_file_line_and_key(tmp_path: Path) -> None:
    from gateway._errors import ConfigError
    from gateway._settings import load_settings

    config = tmp_path / "gateway.toml"
    config.write_text('[gateway]\ndata_dir = "d"\n\n[store]\nretention_days = 7\n')
    with pytest.raises(ConfigError, match=r"gateway.toml:5.*retention_days.*at least 60"):
        load_settings(config)
