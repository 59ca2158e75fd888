"""The demo catalog: valid EAN-13s, one barcode per SKU, a CSV the real import accepts."""

from __future__ import annotations

from gateway._demo.catalog import (
    DEMO_PRODUCTS,
    GIFT_BOX_SKU,
    ITEM_SKUS,
    barcode_of,
    demo_catalog_csv,
    ean13_check_digit,
    price_of,
    product_of_barcode,
)
from gateway._packline.catalog import parse_catalog


def test_every_barcode_is_an_ean13_with_its_check_digit():
    assert ean13_check_digit("400638133393") == "1"  # a published GTIN
    for product in DEMO_PRODUCTS:
        if product.parts:
            assert product.barcode == ""  # a kit is scanned as its parts
            continue
        code = product.barcode
        assert len(code) == 13 and code.isdigit() and code[-1] == ean13_check_digit(code[:12]), product
        assert barcode_of(product.sku) == code and product_of_barcode(code) == product
    codes = [p.barcode for p in DEMO_PRODUCTS if p.barcode]
    assert len(codes) == len(set(codes))


def test_the_csv_is_accepted_by_the_real_import():
    parsed = parse_catalog(demo_catalog_csv(), "csv", name="demo.csv")
    skus = {product.sku for product in parsed.products}
    assert set(ITEM_SKUS) | {GIFT_BOX_SKU, "TRIAL-1"} <= skus
    assert {level.sku for level in parsed.stock} == {GIFT_BOX_SKU, "TRIAL-1"}


def test_prices_reach_the_gift_rule_with_a_few_items():
    assert all(price_of(sku) > 0 for sku in ITEM_SKUS)
    assert price_of("SKU-101") + price_of("SKU-115") >= 299
    assert price_of("nope") == 0.0 and barcode_of("nope") is None
