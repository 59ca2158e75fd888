"""Catalog files and ERP catalog events: parsing, validation, and their store records."""

from __future__ import annotations

import orjson
import pytest
from biip.checksums import gs1_standard_check_digit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway._packline.catalog import (
    CSV_COLUMNS,
    CatalogImportError,
    catalog_to_csv,
    catalog_write,
    claim_barcodes,
    fresher_levels,
    load_catalog,
    load_stock,
    packed_stock_write,
    parse_catalog,
    parse_catalog_update,
    product_to_json,
    stock_age_s,
)
from gateway._packline.values import MAX_KIT_DEPTH, PRODUCT_KINDS, Catalog, KitPart, Product, StockLevel
from gateway._store import StoreSettings, open_store
from tests._support import garbage_json

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
