"""A pack session in the store: the head and one record per timeline entry
(``gateway._packline.session_records``). Real RocksDB in tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway._model import OrderState, Status
from gateway._packline.bill import build_bill
from gateway._packline.session import PackSession, open_session
from gateway._packline.session_records import SESSION, STEP, read_session, session_writes
from gateway._packline.values import Catalog, Product
from gateway._store import StepWrite, Store, StoreSettings, open_store

SOAP = Product("SOAP", "香皂", barcodes=("6901234567892",))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(StoreSettings(path=tmp_path / "db", sync="os")) as opened:
        yield opened


def opened(units: int) -> PackSession:
    order = OrderState("t1", "douyin|A1", Status.READY_TO_PACK, data={"lines": [{"sku": "SOAP", "qty": units}]})
    bill = build_bill(order.order_id, [order], Catalog([SOAP]), [], None)
    session, _ = open_session("S1-1000", "S1", "badge-7", "t1", bill, 1000,
                              order_states={order.order_id: "READY_TO_PACK"})
    return session


def test_each_scan_writes_the_head_and_only_its_new_timeline_entry(store: Store) -> None:
    session = opened(50)
    store.commit(StepWrite(records=session_writes(session, 0)))
    for n in range(40):
        working = session.copy()
        working.scan_item(SOAP, SOAP.barcodes[0], None, 2000 + n)
        writes = session_writes(working, len(session.timeline))
        assert [(kind, record_id) for _, kind, record_id, _ in writes] == [
            (SESSION, "S1-1000"), (STEP, f"S1-1000/{len(working.timeline):06d}")]
        store.commit(StepWrite(records=writes))
        session = working
    head = store.get_record("t1", SESSION, "S1-1000")
    assert head is not None and "timeline" not in head and head["timeline_len"] == 41
    assert read_session(store, "t1", "S1-1000") == session.to_dict()


def test_a_session_read_back_continues_where_it_stopped(store: Store) -> None:
    session = opened(3)
    session.scan_item(SOAP, SOAP.barcodes[0], None, 2000)
    store.commit(StepWrite(records=session_writes(session, 0)))
    stored = read_session(store, "t1", "S1-1000")
    assert stored is not None
    resumed = PackSession.from_dict(stored)
    for at in (3000, 4000):
        resumed.scan_item(SOAP, SOAP.barcodes[0], None, at)
    assert resumed.complete and [e["event"] for e in resumed.timeline] == ["open", "scan", "scan", "scan"]


def test_entries_past_the_heads_length_are_not_part_of_the_session(store: Store) -> None:
    session = opened(5)
    longer = session.copy()
    longer.scan_item(SOAP, SOAP.barcodes[0], None, 2000)
    store.commit(StepWrite(records=session_writes(longer, 0)))  # a step that went another way...
    store.commit(StepWrite(records=session_writes(session, 0)))  # ...and the session as it stands
    assert read_session(store, "t1", "S1-1000") == session.to_dict()


def test_a_session_stored_whole_by_an_older_gateway_reads_as_it_was(store: Store) -> None:
    session = opened(2)
    session.scan_item(SOAP, SOAP.barcodes[0], None, 2000)
    store.commit(StepWrite(records=[("t1", SESSION, "S1-1000", session.to_dict())]))
    assert read_session(store, "t1", "S1-1000") == session.to_dict()
    assert read_session(store, "t1", "S1-9999") is None


def test_sessions_whose_ids_share_a_beginning_keep_their_own_entries(store: Store) -> None:
    first, second = opened(2), opened(2)
    second.session_id = "S1-10000"
    second.scan_item(SOAP, SOAP.barcodes[0], None, 2000)
    store.commit(StepWrite(records=session_writes(first, 0) + session_writes(second, 0)))
    assert read_session(store, "t1", "S1-1000") == first.to_dict()
    assert read_session(store, "t1", "S1-10000") == second.to_dict()
