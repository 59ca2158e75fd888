"""Catalog files and ERP catalog events (``gateway._packline.catalog``): the checks across rows
(GTINs, barcode ownership, kits, SKUs), ERP product and stock events."""

from __future__ import annotations

import orjson
import pytest

from gateway._packline.catalog import (
    CatalogImportError,
    claim_barcodes,
    parse_catalog,
    parse_catalog_update,
)
from gateway._packline.values import MAX_KIT_DEPTH, Catalog, KitPart, Product, StockLevel

NOW = 1_796_000_000_000
EAN13 = "4006381333931"
UPC_A = "036000291452"
EAN8 = "96385074"
GTIN14 = "10036000291459"


SAMPLE_CSV = (
    "\ufeffsku,name,kind,barcodes,weight_g,parts,serialised,stock\n"
    f"A1,保温杯 500ml,item,{EAN13}|A1-INT,420,,1,\n"
    f"GIFT-BAG,帆布袋,gift,{UPC_A},80,,,250\n"
    "\n"
    "SET-1,杯+袋套装,item,,,A1*1|GIFT-BAG*2,,\n"
    f"TRIAL,\"试用装, 3 片\",trial,{EAN8},15,,否,-2\n"
)


def problems_of(source, fmt=None, **kwargs) -> list[str]:
    with pytest.raises(CatalogImportError) as caught:
        parse_catalog(source, fmt, **kwargs)
    assert str(caught.value) == "\n".join(str(p) for p in caught.value.problems)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize("code", [EAN13, UPC_A, EAN8, GTIN14, "0" + EAN13, "A1-INT", "1234567890", "12345"])
def test_valid_gtins_and_internal_codes_are_taken(code):
    assert parse_catalog(f"sku,barcodes\nA1,{code}\n").products[0].barcodes == (code,)


@pytest.mark.parametrize("code", ["4006381333932", "036000291453", "96385075", "10036000291458"])
def test_a_gtin_with_a_wrong_check_digit_is_refused(code):
    assert "校验位不对" in problems_of(f"sku,barcodes\nA1,{code}\n")[0]


def test_a_barcode_belongs_to_one_sku_in_the_file_and_the_catalog():
    # an EAN-13 and its GTIN-14 are the same barcode
    assert "已用于第 2 行的 SKU A1" in problems_of(f"sku,barcodes\nA1,{EAN13}\nB1,0{EAN13}\n")[0]
    existing = Catalog([Product("OLD", barcodes=(EAN13,))])
    assert problems_of(f"sku,barcodes\nA1,{EAN13}\n", existing=existing, name="c.csv") == [
        f"c.csv:2:barcodes: 条码 {EAN13} 已属于商品库中的 SKU OLD：先从那个 SKU 上去掉它，或在同一文件中一起修改"]
    moved = parse_catalog(f"sku,barcodes\nA1,{EAN13}\nOLD,OLD-INT\n", existing=existing)  # both changed together
    assert Catalog(existing).with_products(moved.products).by_barcode(EAN13).sku == "A1"
    assert parse_catalog(f"sku,name,barcodes\nOLD,renamed,{EAN13}\n", existing=existing).products[0].name == "renamed"


def test_kit_parts_cycles_and_depth():
    existing = Catalog([Product("P1"), Product("K-OLD", parts=(KitPart("P1", 1),))])
    assert parse_catalog("sku,parts\nK,K-OLD*2|P1\n", existing=existing).products[0].parts == (
        KitPart("K-OLD", 2), KitPart("P1", 1))
    assert problems_of("sku,parts\nK1,K2\nK2,K1\n", name="c.csv") == [
        "c.csv:2:parts: 套装循环引用：K1 -> K2 -> K1", "c.csv:3:parts: 套装循环引用：K2 -> K1 -> K2"]
    assert problems_of("sku,parts\nK,K*2\n", name="c.csv") == ["c.csv:2:parts: 套装循环引用：K -> K"]
    # the file turns a part of a catalog kit into a kit of that kit
    assert problems_of("sku,parts\nP1,K-OLD\n", existing=existing, name="c.csv") == [
        "c.csv:2:parts: 套装循环引用：P1 -> K-OLD -> P1"]
    chain = [f"K{i},K{i + 1}" for i in range(MAX_KIT_DEPTH)] + [f"K{MAX_KIT_DEPTH},"]
    assert len(parse_catalog("sku,parts\n" + "\n".join(chain)).products) == MAX_KIT_DEPTH + 1
    deeper = "sku,parts\nTOP,K0\n" + "\n".join(chain)
    assert problems_of(deeper, name="c.csv") == [
        "c.csv:2:parts: 套装嵌套超过 4 层：TOP -> K0 -> K1 -> K2 -> K3 -> K4"]
    assert "数量必须是正整数" in problems_of("sku,parts\nK,P1*99999999999\n", existing=existing)[0]
    assert problems_of("sku,parts,stock\nK,P1*1|P1*2,5\n", existing=existing, name="c.csv") == [
        "c.csv:2:stock: 套装没有自己的库存（组件有）：请把库存写到组件上",
        "c.csv:2:parts: 组件 P1 写了两次：请合并数量"]


def test_skus_and_names_are_cleaned_or_refused():
    parsed = parse_catalog(orjson.dumps([{"sku": "  A1 ", "name": "保温杯\n  500ml "}]))
    assert parsed.products[0].sku == "A1" and parsed.products[0].name == "保温杯 500ml"
    assert "不允许的字符" in problems_of(orjson.dumps([{"sku": "A|1"}]))[0]
    assert "控制字符" in problems_of(orjson.dumps([{"sku": "A1", "name": "x\x00y"}]))[0]


def test_erp_product_and_stock_events():
    existing = Catalog([Product("OLD", barcodes=(EAN13, "OLD-INT"))])
    update = parse_catalog_update({"event_id": "cat-1", "type": "product", "source": "erp-x",
                                   "products": [{"sku": "A1", "barcodes": [EAN13]}]}, existing=existing)
    assert update.event_id == "cat-1" and update.products == [Product("A1", barcodes=(EAN13,))]
    assert claim_barcodes(existing, update.products) == [Product("OLD", barcodes=("OLD-INT",))]  # the ERP wins
    stock = parse_catalog_update({"event_id": "st-1", "type": "stock", "occurred_at": "2026-11-25T10:00:00+08:00",
                                  "stock": [{"sku": "G1", "quantity": 5},
                                            {"sku": "G2", "quantity": -1, "updated_at": 1_795_000_000_000}]},
                                 now_ms=NOW)
    assert stock.stock == [StockLevel("G1", 5, 1_795_572_000_000, "erp"), StockLevel("G2", -1, 1_795_000_000_000)]
    assert parse_catalog_update({"event_id": "st-2", "type": "stock", "stock": [{"sku": "G1", "quantity": 1}]},
                                now_ms=NOW).stock[0].updated_at_ms == NOW


def test_erp_event_problems_name_the_key_path():
    with pytest.raises(CatalogImportError) as caught:
        parse_catalog_update({"event_id": "e9", "type": "product",
                              "products": [{"sku": "A"}, {"sku": "B", "kind": "x", "barcodes": ["A-1", 7],
                                                          "parts": [{"sku": "NOPE", "quantity": 1}]}]})
    assert [str(p) for p in caught.value.problems] == [
        "event e9:-:products[1].barcodes[1]: 必须是字符串",
        "event e9:-:products[1].kind: kind 必须是 item、gift、gift_box、trial 之一，而不是 'x'",
        "event e9:-:products[1].barcodes: 套装本身不扫码（扫的是组件）：请把条码写到组件上",
        "event e9:-:products[1].parts: 组件 NOPE 不在本文件中，也不在商品库中：请先导入它",
    ]
    for body, where in [([], "event:-:-"),
                        ({"event_id": "e", "type": "product", "products": [{"sku": "A", "stock": 1}]},
                         "event e:-:products[0].stock"), ({"type": "stock", "stock": []}, "event:-:event_id"),
                        ({"event_id": "e", "type": "price"}, "event e:-:type"),
                        ({"event_id": "e", "type": "stock", "stock": {}}, "event e:-:stock"),
                        ({"event_id": "e", "type": "stock", "stock": [{"sku": "A", "quantity": 1, "updated_at": "x"}]},
                         "event e:-:stock[0].updated_at"),
                        ({"event_id": "e", "type": "stock", "stock": [{"sku": "A", "quantity": 1.5}]},
                         "event e:-:stock[0].quantity")]:
        with pytest.raises(CatalogImportError) as caught:
            parse_catalog_update(body)
        assert str(caught.value.problems[0]).startswith(where + ": "), caught.value
