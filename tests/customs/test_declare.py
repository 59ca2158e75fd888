"""One order's declaration: cross-border or not, where each value came from, what is missing."""

from __future__ import annotations

from gateway._customs import (
    CrossBorder,
    cross_border,
    declaration_event,
    declare,
    hold_stop,
    parse_master,
)
from gateway._customs.records import MasterData, apply_master
from gateway._model import CODE_NO_CHANGE
from tests.customs.support import PRODUCTS_CSV, SUPPLIERS_CSV, order, seed_config

POLICY = CrossBorder(shops=("HK-SHOP",), warehouses=("BONDED-*",))


def test_which_orders_are_cross_border():
    assert cross_border({"destination_country": "jp"}, POLICY) == ("JP", "destination:JP")
    assert cross_border({"receiver_country": "CN"}, POLICY) is None
    assert cross_border({"cross_border": True, "destination_country": "CN"}, POLICY) == ("CN", "flag:cross_border")
    assert cross_border({"cross_border": "是"}, POLICY) == ("", "flag:cross_border")
    assert cross_border({"shop_id": "HK-SHOP"}, POLICY) == ("", "shop:HK-SHOP")
    assert cross_border({"warehouse": "BONDED-NB"}, POLICY) == ("", "warehouse:BONDED-NB")
    assert cross_border({"warehouse": "SH-1", "cross_border": False}, POLICY) is None


def test_the_shipped_erp_rules_carry_the_receivers_country_to_the_check():
    from pathlib import Path

    from gateway._rules import load_rules, normalise_batch

    rules = load_rules(Path(__file__).resolve().parents[2] / "config" / "rules").get("erp")
    assert rules is not None
    base = {"platform": "douyin", "status": "PAID", "occurred_at": "2026-12-01T10:00:00+08:00",
            "lines": [{"sku": "S1", "qty": 1}]}
    abroad, home = normalise_batch(rules, "t", [
        {**base, "event_id": "e1", "order_no": "A1", "receiver": {"country": "US"}},
        {**base, "event_id": "e2", "order_no": "A2", "receiver": {"country": "CN"}}], 1)
    assert cross_border(abroad.data, CrossBorder()) == ("US", "destination:US")
    assert cross_border(home.data, CrossBorder()) is None


def _master(config, suppliers=SUPPLIERS_CSV, products=PRODUCTS_CSV) -> MasterData:
    master = MasterData()
    apply_master(master, "suppliers", parse_master(suppliers, "suppliers", config))
    apply_master(master, "products", parse_master(products, "products", config))
    return master


def test_the_seeds_collagen_case_takes_the_suppliers_animal_extract_declaration(tmp_path):
    config = seed_config(tmp_path)
    master = _master(config, SUPPLIERS_CSV.replace("Marine Bio,,", "Marine Bio,是,"))
    declared = declare(order(warehouse="BONDED-NB"), config, master.products, master.suppliers)
    assert declared is not None and declared.complete, declared
    [line] = declared.lines
    # The product record says false; the collagen rule overrides it with the supplier's declaration.
    assert line["values"]["contains_animal_extract"] is True
    assert line["sources"]["contains_animal_extract"] == (
        "supplier:SUP-A#contains_animal_extract (rule collagen-animal-extract)")
    assert line["sources"]["manufacturer"].startswith("supplier:SUP-A#manufacturer")
    assert line["values"]["raw_material_origin"] == "NO"
    assert line["sources"]["hs_code"] == "product:A1"
    assert "material_composition" not in line["values"]  # apparel only
    assert "battery_type" not in line["values"]  # electronics and toys only


def test_a_missing_value_names_the_supplier_record_that_fills_it(tmp_path):
    config = seed_config(tmp_path)
    master = _master(config)
    declared = declare(order(warehouse="BONDED-NB"), config, master.products, master.suppliers)
    assert declared is not None and not declared.complete
    [need] = declared.missing
    assert (need.sku, need.attribute, need.fill_kind, need.fill_id, need.field, need.rule, need.reason) == (
        "A1", "contains_animal_extract", "supplier", "SUP-A", "contains_animal_extract", "collagen-animal-extract",
        "empty")
    stop = hold_stop([declared], config)
    assert stop is not None and stop["verdict"] == "DECLARATION_INCOMPLETE"
    assert "供应商 SUP-A" in stop["message_zh"] and "supplier SUP-A" in stop["message_en"]


def test_an_unknown_product_asks_for_its_import_and_a_domestic_order_needs_nothing(tmp_path):
    config = seed_config(tmp_path)
    master = _master(config)
    declared = declare(order(lines=[{"sku": "NEW-1", "qty": 2}], destination_country="US"), config,
                       master.products, master.suppliers)
    assert declared is not None and {n.reason for n in declared.missing} == {"no_product"}
    assert len(declared.missing) == 7  # the attributes of every product: no category known
    assert declare(order(), config, master.products, master.suppliers) is None


def test_a_value_imported_for_the_orders_line_wins(tmp_path):
    config = seed_config(tmp_path)
    master = _master(config)
    declared = declare(order(warehouse="BONDED-NB"), config, master.products, master.suppliers,
                       {"A1": {"contains_animal_extract": False, "specification": "30ml"}})
    assert declared is not None and declared.complete
    assert declared.lines[0]["values"]["specification"] == "30ml"
    assert declared.lines[0]["sources"]["specification"] == "order"


def test_the_declaration_event_changes_no_status_and_keeps_its_id_for_the_same_values(tmp_path):
    config = seed_config(tmp_path)
    master = _master(config, SUPPLIERS_CSV.replace("Marine Bio,,", "Marine Bio,是,"))
    declared = declare(order(warehouse="BONDED-NB"), config, master.products, master.suppliers)
    assert declared is not None
    first, again = declaration_event(declared, 1000, 1001), declaration_event(declared, 5000, 5001)
    assert first.type == "declaration" and first.status_code == CODE_NO_CHANGE and first.source == "customs"
    assert first.fingerprint == again.fingerprint
    assert first.detail is not None and first.detail["declaration"]["lines"][0]["values"]["brand"] == "润颜"
