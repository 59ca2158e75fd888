"""The demo's cross-border order: its pieces (pure), and ``make run`` end to end.

The end-to-end test starts the gateway in-process on the shipped ``config/gateway.toml`` (a tmp
data_dir, port 0; the simulators on their configured loopback ports), as the packer's
end-to-end test does, and checks the story of ``gateway._demo.customs`` within 60 s: the
cross-border order is held at a station with ``DECLARATION_INCOMPLETE``, is on the
pre-declaration board naming supplier ``SUP-MB``'s record, is completed by the clerk's import
(the ``declaration`` record and event) and is then packed (a session ``CLOSED``).
"""

from __future__ import annotations

import trio

from gateway._customs import DECLARATION, HOLD, board, load_customs, parse_master, parse_values
from gateway._daemon import serve_gateway
from gateway._demo.catalog import ITEM_SKUS, barcode_of
from gateway._demo.customs import (
    CROSS_BORDER_SKU,
    DESTINATION,
    SUPPLIER,
    SUPPLIER_DECLARATIONS,
    customs_master_files,
    filled_fill_file,
)
from gateway._demo.feeder import FIRST_WAVE, DemoErp
from gateway._packline.session_records import read_session
from gateway._settings import default_config_path, load_settings, with_overrides

FILL = ("target,id,sku,attribute,value,orders,label\n"
        f"supplier,{SUPPLIER},,contains_animal_extract,,tmall|TM1,是否含动物提取物 / contains animal extracts\n"
        "product,SKU-9,,hs_code,,tmall|TM2,HS 编码 / HS code\n")


def test_the_first_pick_is_the_cross_border_order_shipping_abroad():
    erp = DemoErp(seed=5, packers=True)
    batch = erp.next_batch()
    first = batch[0]
    assert first["status"] == "AUDITED" and first["receiver"] == {"country": DESTINATION}
    assert first["lines"] == [{"sku": CROSS_BORDER_SKU, "qty": 1}]
    assert [e for e in batch if "receiver" in e] == [first]  # only this one is cross-border
    orders, slip = erp.next_pick()
    assert orders == (f"tmall|{first['order_no']}",) and slip == first["order_no"]
    assert 1 + sum(1 for _ in iter(erp.next_pick, None)) == FIRST_WAVE
    assert CROSS_BORDER_SKU in ITEM_SKUS and barcode_of(CROSS_BORDER_SKU)
    later = [e for _ in range(10) for e in erp.next_batch()]
    assert all(e["order_no"] == first["order_no"] for e in later if "receiver" in e)  # only ever that one


def test_the_master_data_leaves_exactly_the_suppliers_declaration_missing():
    config = load_customs(default_config_path().parent / "customs")
    products, suppliers = customs_master_files()
    [product] = parse_master(products, "products", config)
    [supplier] = parse_master(suppliers, "suppliers", config)
    assert product.key == CROSS_BORDER_SKU and product.plain["supplier"] == SUPPLIER
    assert supplier.fields["contains_animal_extract"] is None  # cleared at every start


def test_the_clerk_fills_only_what_it_knows_and_the_real_import_reads_it():
    text, filled = filled_fill_file(FILL, SUPPLIER_DECLARATIONS)
    assert filled == 1
    assert text == f"target,id,sku,attribute,value\nsupplier,{SUPPLIER},,contains_animal_extract,是\n"
    config = load_customs(default_config_path().parent / "customs")
    [row] = parse_values(text, config)
    assert (row.target, row.id, row.attribute, row.value) == ("supplier", SUPPLIER, "contains_animal_extract", True)
    assert filled_fill_file(FILL, {}) == ("target,id,sku,attribute,value\n", 0)


async def test_make_run_holds_the_cross_border_order_then_packs_it_within_60_seconds(tmp_path):
    settings = with_overrides(load_settings(default_config_path()), gateway={"data_dir": str(tmp_path / "data")},
                              http={"port": 0})
    customs = load_customs(settings.customs_path)
    assert customs.enabled
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        services = await nursery.start(serve_gateway, settings, shutdown)
        store = services.store

        def sessions():
            return [read_session(store, "demo", session_id) for _, session_id, _ in store.iter_records("session", "demo")]

        def held():
            return [s for s in sessions() if any(e.get("verdict") == "DECLARATION_INCOMPLETE"
                                                 for e in s.get("timeline", ()))]

        with trio.fail_after(60):
            while not held():  # noqa: ASYNC110  (the store has no event to wait on)
                await trio.sleep(0.2)
            [order_id] = held()[0]["orders"]
            assert order_id.startswith("tmall|")
            # On the pre-declaration board (what GET .../customs/board serves), naming the record.
            [entry] = [d for d in board(store, customs, "demo") if d.order_id == order_id]
            assert entry.destination == DESTINATION and entry.because == f"destination:{DESTINATION}"
            assert [(n.attribute, n.fill_kind, n.fill_id, n.field) for n in entry.missing] == [
                ("contains_animal_extract", "supplier", SUPPLIER, "contains_animal_extract")]
            hold = store.get_record("demo", HOLD, order_id)
            assert hold is not None and hold["missing"][0]["fill_id"] == SUPPLIER

            def packed():
                return [s for s in sessions() if order_id in s["orders"]
                        and (s.get("closing") or {}).get("verdict") == "CLOSED"]

            while not packed():  # noqa: ASYNC110
                await trio.sleep(0.2)
        declared = store.get_record("demo", DECLARATION, order_id)
        assert declared is not None and declared["destination"] == DESTINATION
        [line] = declared["lines"]
        assert line["values"]["contains_animal_extract"] is True
        assert line["sources"]["contains_animal_extract"].startswith(f"supplier:{SUPPLIER}")
        [parcel] = packed()
        assert [e["verdict"] for e in parcel["timeline"]][0] == "OPENED"  # released: opened normally
        assert all(d.order_id != order_id or d.complete for d in board(store, customs, "demo"))
        shutdown.set()
