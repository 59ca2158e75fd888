"""Catalog files (``gateway._packline.catalog_files``): CSV and JSON read cell by cell, every problem
named by file, row and column, garbage refused only as ``CatalogImportError``, valid catalogs
round-tripping through both formats."""

from __future__ import annotations

import orjson
import pytest
from biip.checksums import gs1_standard_check_digit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway._packline.catalog import CatalogImportError, parse_catalog, parse_catalog_update
from gateway._packline.catalog_files import CSV_COLUMNS, catalog_to_csv, product_to_json
from gateway._packline.values import PRODUCT_KINDS, Catalog, KitPart, Product, StockLevel
from tests._support import garbage_json
from tests.packline.test_catalog import EAN8, EAN13, NOW, SAMPLE_CSV, UPC_A, problems_of


def test_a_csv_catalog_with_bom_kits_gifts_and_stock():
    parsed = parse_catalog(SAMPLE_CSV.encode(), name="c.csv", now_ms=NOW)
    assert parsed.products == (
        Product("A1", "保温杯 500ml", "item", (EAN13, "A1-INT"), 420, (), True),
        Product("GIFT-BAG", "帆布袋", "gift", (UPC_A,), 80),
        Product("SET-1", "杯+袋套装", "item", (), None, (KitPart("A1", 1), KitPart("GIFT-BAG", 2))),
        Product("TRIAL", "试用装, 3 片", "trial", (EAN8,), 15),
    )
    assert parsed.stock == (StockLevel("GIFT-BAG", 250, NOW, "import"), StockLevel("TRIAL", -2, NOW, "import"))
    catalog = Catalog(parsed.products)
    assert catalog.by_barcode("0" + EAN13).sku == "A1"  # indexed as GTIN-14
    assert catalog.expand("SET-1", 3) == [("A1", 3), ("GIFT-BAG", 6)]


def test_the_json_forms_read_like_the_csv(tmp_path):
    products = [{"sku": "A1", "name": "保温杯 500ml", "barcodes": [EAN13, "A1-INT"], "weight_g": 420,
                 "serialised": True},
                {"sku": 1002, "kind": "gift", "barcodes": [UPC_A], "stock": 250},
                {"sku": "SET-1", "parts": [{"sku": "A1"}, {"sku": "1002", "quantity": 2}]}]
    listed = parse_catalog(orjson.dumps(products), "json", now_ms=NOW)
    assert [p.sku for p in listed.products] == ["A1", "1002", "SET-1"]
    assert listed.products[2].parts == (KitPart("A1", 1), KitPart("1002", 2))
    path = tmp_path / "catalog.json"
    path.write_bytes(b"\xef\xbb\xbf" + orjson.dumps({"products": products[:2], "stock": [{"sku": "A1", "quantity": 7}]}))
    wrapped = parse_catalog(path, now_ms=NOW)  # format from the name, BOM skipped
    assert [s.sku for s in wrapped.stock] == ["1002", "A1"]


def test_every_csv_problem_is_named_by_physical_line_and_column():
    text = ("sku,name,kind,barcodes,weight_g,parts,serialised,stock\n"
            "A1,\"two\nlines\",thing,4006381333932,-3,,maybe,1.5\n"   # lines 2-3
            "A1,dup,item,,,,,\n"                                         # line 4
            "B1,,item,A1-X,,,,\n"
            "C1,,item,A1-X,,B1*0|ZZ,,\n")                                # line 6
    assert problems_of(text, name="c.csv") == [
        "c.csv:2:weight_g: weight_g 必须是不小于 0 的整数（克）或留空，而不是 '-3'",
        "c.csv:2:serialised: serialised 必须是 1/0、true/false、yes/no、是/否 或留空，而不是 'maybe'",
        "c.csv:2:stock: 库存必须是整数，而不是 '1.5'",
        "c.csv:2:kind: kind 必须是 item、gift、gift_box、trial 之一，而不是 'thing'",
        "c.csv:2:barcodes: 条码 4006381333932 是 13 位数字，按 GTIN 校验位不对（Invalid GTIN check digit for "
        "'4006381333932': Expected 1, got 2.）：请核对条码；内部码请加字母前缀",
        "c.csv:4:sku: SKU A1 在第 2 行已经出现过：每个 SKU 只能有一行",
        "c.csv:6:parts: 数量必须是正整数，而不是 'B1*0'",
        "c.csv:6:barcodes: 套装本身不扫码（扫的是组件）：请把条码写到组件上",
        "c.csv:6:barcodes: 条码 A1-X 已用于第 5 行的 SKU B1：一个条码只能属于一个 SKU",
        "c.csv:6:parts: 组件 ZZ 不在本文件中，也不在商品库中：请先导入它",
    ]


def test_the_english_twin_and_the_header_rules():
    with pytest.raises(CatalogImportError) as caught:
        parse_catalog("sku,name,colour\nA1,x,red\n", name="c.csv")
    assert caught.value.problems[0].text("en") == (
        "c.csv:1:colour: unknown column 'colour': the columns are " + ", ".join(CSV_COLUMNS))
    assert problems_of("name,kind\nx,item\n", name="c.csv") == [
        "c.csv:1:sku: 缺少表头：第一行必须是列名，至少包含 sku"]
    assert problems_of(b"sku\n\xff\n", name="c.csv") == [
        "c.csv:-:-: 文件不是 UTF-8 编码（byte 4）：请另存为 UTF-8 后重新导入"]
    assert problems_of("sku,name\nA1,x,extra\n", name="c.csv") == ["c.csv:2:-: 这一行的单元格比表头多"]
    assert parse_catalog("sku\nA1\n").products == (Product("A1"),)  # only sku is required


def test_json_problems_name_the_index_and_the_key():
    body = [{"sku": "A", "barcodes": [6901234567892], "parts": [{"sku": "B", "quantity": 0}], "weight_g": 1.5,
             "colour": "red", "serialised": "yes"}, 5, {"name": "no sku"}]
    assert problems_of(orjson.dumps(body), "json", name="b.json") == [
        "b.json:0:colour: 未知的键 'colour'：可用的键是 " + ", ".join(CSV_COLUMNS),
        "b.json:0:barcodes[0]: 必须是字符串",
        "b.json:0:weight_g: weight_g 必须是不小于 0 的整数（克）或留空，而不是 1.5",
        "b.json:0:parts[0].quantity: 数量必须是正整数，而不是 0",
        "b.json:0:serialised: 必须是true 或 false",
        "b.json:1:-: 每一项必须是 JSON 对象",
        "b.json:2:sku: sku 不能为空",
    ]
    assert problems_of(b'[{"sku": "A",\n "name": ', "json", name="b.json") == [
        "b.json:2:-: 不是有效的 JSON：unexpected end of data"]
    stock = {"products": [{"sku": "A"}], "stock": [{"sku": "A", "quantity": 1}, {"sku": "Q", "quantity": "3"},
                                                    {"sku": "NOPE", "quantity": 3}]}
    assert problems_of(orjson.dumps(stock), name="s.json") == [
        "s.json:1:stock.quantity: 库存必须是整数，而不是 '3'",
        "s.json:2:stock.sku: SKU NOPE 不在本文件中，也不在商品库中：先导入商品再设库存",
    ]


# -- hypothesis: garbage never escapes as anything but CatalogImportError; valid catalogs round-trip --


_CELL = st.sampled_from(["", "A1", "K1", "x", EAN13, "4006381333932", "A1*2|K1", "K1*0", "K1*x", "1", "是",
                         "-5", "gift", "thing", "|", "*", '"', "\x00", "1e3", "12345678901234567890"]) | st.text(max_size=6)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_CELL, max_size=10), max_size=8), st.sampled_from([",".join(CSV_COLUMNS), "sku,parts",
                                                                          "sku,name,colour", ""]))
def test_random_csv_only_raises_catalog_import_error(rows, header):
    text = header + "\n" + "\n".join(",".join(r) for r in rows)
    try:
        parse_catalog(text, "csv", existing=Catalog([Product("K1", parts=(KitPart("A1", 1),)), Product("A1")]))
    except CatalogImportError:
        pass


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(garbage_json([*CSV_COLUMNS, "products", "stock", "quantity", "event_id", "type", "updated_at"]),
                 st.text(max_size=40), st.binary(max_size=40).map(lambda b: b.decode("latin-1"))))
def test_random_json_only_raises_catalog_import_error(text):
    try:
        parse_catalog(text, "json")
    except CatalogImportError:
        pass
    try:
        parse_catalog(text.encode("utf-8", "surrogatepass"))
    except CatalogImportError:
        pass
    try:
        parse_catalog_update(orjson.loads(text))
    except (CatalogImportError, orjson.JSONDecodeError):
        pass


@given(st.binary(max_size=60))
def test_random_bytes_only_raise_catalog_import_error(data):
    for fmt in ("csv", "json", None):
        try:
            parse_catalog(data, fmt)
        except CatalogImportError:
            pass


def _gtin(payload: str) -> str:
    return payload + str(gs1_standard_check_digit(payload))


@st.composite
def catalogs(draw):
    skus = draw(st.lists(st.from_regex(r"[A-Z0-9][A-Za-z0-9_.-]{0,11}", fullmatch=True), min_size=1, max_size=8,
                         unique=True))
    codes = iter(draw(st.lists(st.one_of(st.from_regex(r"[0-9]{12}", fullmatch=True).map(_gtin),
                                         st.from_regex(r"[0-9]{7}", fullmatch=True).map(_gtin),
                                         st.from_regex(r"INT-[A-Z0-9]{1,8}", fullmatch=True)),
                               min_size=20, max_size=20, unique_by=lambda c: c.zfill(14))))
    products: list[Product] = []
    stock: dict[str, StockLevel] = {}
    for index, sku in enumerate(skus):
        name = " ".join(draw(st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=12)).split())
        plain = [p.sku for p in products if not p.parts]
        if plain and draw(st.booleans()):
            chosen = draw(st.lists(st.sampled_from(plain), min_size=1, max_size=3, unique=True))
            parts = tuple(KitPart(s, draw(st.integers(1, 5))) for s in chosen)
            barcodes: tuple[str, ...] = ()
        else:
            parts = ()
            barcodes = tuple(next(codes) for _ in range(draw(st.integers(0, 2))))
            if draw(st.booleans()):
                stock[sku] = StockLevel(sku, draw(st.integers(-5, 10**6)), NOW, "import")
        products.append(Product(sku, name, draw(st.sampled_from(PRODUCT_KINDS)), barcodes,
                                draw(st.none() | st.integers(0, 10**6)), parts, draw(st.booleans())))
        del index
    return products, stock


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(catalogs())
def test_valid_catalogs_round_trip_through_csv_and_json(catalog):
    products, stock = catalog
    from_csv = parse_catalog(catalog_to_csv(products, stock), "csv", now_ms=NOW)
    assert list(from_csv.products) == products
    assert {s.sku: s for s in from_csv.stock} == stock
    rows = [{**product_to_json(p), **({"stock": stock[p.sku].quantity} if p.sku in stock else {})}
            for p in products]
    from_json = parse_catalog(orjson.dumps(rows), "json", now_ms=NOW)
    assert list(from_json.products) == products and {s.sku: s for s in from_json.stock} == stock
