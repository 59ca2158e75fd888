"""The catalog in the store (``gateway._packline.catalog_store``): records and audit in a real
RocksDB, ERP stock order, what packing uses."""

from __future__ import annotations

from gateway._packline.catalog import parse_catalog
from gateway._packline.catalog_store import (
    catalog_write,
    fresher_levels,
    load_catalog,
    load_stock,
    packed_stock_write,
    stock_age_s,
)
from gateway._packline.values import StockLevel
from gateway._store import StoreSettings, open_store
from tests.packline.test_catalog import NOW, SAMPLE_CSV


def test_an_older_erp_figure_does_not_overwrite_a_newer_one():
    current = {"G1": StockLevel("G1", 5, 2000)}
    fresh, stale = fresher_levels(current, [StockLevel("G1", 9, 1000), StockLevel("G2", 1, 1000)])
    assert fresh == [StockLevel("G2", 1, 1000)] and stale == ["G1"]
    assert fresher_levels(current, [StockLevel("G1", 9, 2000)])[0] == [StockLevel("G1", 9, 2000)]


def test_packing_decrements_tracked_stock_and_keeps_the_erp_figures_age():
    levels = {"G1": StockLevel("G1", 5, NOW - 60_000, "erp")}
    write = packed_stock_write("t1", levels, {"G1": 2, "G-UNTRACKED": 1}, NOW)
    assert write.records == [("t1", "stock", "G1", StockLevel("G1", 3, NOW - 60_000, "packing").to_dict())]
    assert not write.audit
    assert stock_age_s(levels["G1"], NOW) == 60.0
    assert stock_age_s(StockLevel("G1", 5, 0), NOW) is None


def test_the_store_round_trip_and_the_audit_record(tmp_path):
    parsed = parse_catalog(SAMPLE_CSV, now_ms=NOW)
    write = catalog_write("t1", parsed.products, parsed.stock, actor="cli:ops", note="import c.csv", now_ms=NOW)
    assert write.audit == [{"tenant": "t1", "at_ms": NOW, "actor": "cli:ops", "source": "catalog", "event_id": "",
                            "rule": "", "order_id": "", "decision": "catalog_import", "changes": [],
                            "note": "import c.csv"}]
    erp = catalog_write("t1", [], [StockLevel("GIFT-BAG", 9, NOW + 1)], actor="source:erp", note="stock",
                        now_ms=NOW + 1, event_id="st-1")
    with open_store(StoreSettings(path=tmp_path / "db")) as store:
        store.commit(write)
        store.commit(erp)
        store.commit(packed_stock_write("t1", load_stock(store, "t1"), {"GIFT-BAG": 4}, NOW + 2))
        catalog = load_catalog(store, "t1")
        assert sorted(p.sku for p in catalog) == ["A1", "GIFT-BAG", "SET-1", "TRIAL"]
        assert catalog.product("SET-1") == parsed.products[2]
        assert load_stock(store, "t1")["GIFT-BAG"] == StockLevel("GIFT-BAG", 5, NOW + 1, "packing")
        assert store.get_record("t1", "catalog_event", "st-1")["products"] == 0
        assert len(load_catalog(store, "t2")) == 0
        assert [a["decision"] for a in store.iter_audit("t1")] == ["catalog_import", "catalog_update"]
        assert store.verify_audit_chain("t1").ok
