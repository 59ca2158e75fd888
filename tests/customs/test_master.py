"""Import files: every problem named by row and column; hypothesis for the parsers and values."""

from __future__ import annotations

import csv
import io
import json
import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway._customs import (
    Attribute,
    CustomsImportError,
    check_value,
    load_customs,
    parse_master,
    parse_values,
)
from tests.customs.support import PRODUCTS_CSV, SEED, SUPPLIERS_CSV

CONFIG = load_customs(SEED)


def _problems(data, kind="products", name="p.csv"):
    with pytest.raises(CustomsImportError) as caught:
        if kind == "values":
            parse_values(data, CONFIG, name=name)
        else:
            parse_master(data, kind, CONFIG, name=name)
    return {(p.row, p.column): p for p in caught.value.problems}


def test_good_files_read_into_rows_with_typed_values():
    [supplier] = parse_master(SUPPLIERS_CSV, "suppliers", CONFIG)
    assert supplier.key == "SUP-A" and supplier.fields["raw_material_origin"] == "NO"
    assert supplier.fields["contains_animal_extract"] is None  # an empty cell clears
    [product] = parse_master(PRODUCTS_CSV.encode("utf-8-sig"), "products", CONFIG)
    assert product.plain == {"name": "胶原蛋白面霜 Collagen cream", "category": "cosmetics", "supplier": "SUP-A"}
    assert product.fields["net_weight_g"] == 50 and product.fields["contains_animal_extract"] is False
    assert product.fields["cosmetic_ingredients"] == "水, 甘油, 水解胶原蛋白"


def test_every_problem_names_its_row_and_column_and_says_what_to_do():
    text = ("sku,name,net_weight_g,origin_country,declaration_unit,contains_animal_extract\n"
            "A1,ok,50,CN,瓶,否\n"
            "A2,bad,fifty,China,bottle,maybe\n"
            ",no sku,1,CN,瓶,是\n"
            "A1,again,1,CN,瓶,是\n")
    found = _problems(text)
    assert set(found) == {(3, "net_weight_g"), (3, "origin_country"), (3, "declaration_unit"),
                          (3, "contains_animal_extract"), (4, "sku"), (5, "sku")}
    weight = found[(3, "net_weight_g")]
    assert str(weight) == "p.csv:3:net_weight_g: 净重（克）：必须是数字，而不是 'fifty'"
    assert weight.message_en == "net weight (g): must be a number, not 'fifty'"
    assert "ISO 3166-1" in found[(3, "origin_country")].message_en
    assert "瓶" in found[(3, "declaration_unit")].message
    assert "row 2" in found[(5, "sku")].message_en


def test_an_unknown_column_is_refused_at_the_header():
    found = _problems("sku,weigth_g\nA1,5\n")
    assert list(found) == [(1, "weigth_g")] and "net_weight_g" in found[(1, "weigth_g")].message_en


def test_json_problems_name_the_index_and_key():
    body = orjson.dumps({"products": [{"sku": "A1", "net_weight_g": -1}, {"sku": 7, "brand": ["x"]}, "x"]})
    found = _problems(body, name="p.json")
    assert set(found) == {(0, "net_weight_g"), (1, "brand"), (2, "")}


def test_values_rows_are_checked_against_their_attribute():
    text = ("target,id,sku,attribute,value\n"
            "supplier,SUP-A,,contains_animal_extract,是\n"
            "order,douyin|X1,,specification,50ml\n"
            "warehouse,W1,,brand,x\n"
            "product,A1,,hs_code,12\n"
            "product,A1,,colour,red\n")
    found = _problems(text, "values", "fill.csv")
    assert set(found) == {(3, "sku"), (4, "target"), (5, "value"), (6, "attribute")}
    rows = parse_values(text.splitlines()[0] + "\n" + text.splitlines()[1] + "\n", CONFIG)
    assert rows[0].value is True and rows[0].target == "supplier"


def test_a_file_that_is_not_utf8_is_refused_with_what_to_do():
    found = _problems("sku,name\nA1,面霜\n".encode("gb18030"))
    assert "UTF-8" in next(iter(found.values())).message


# -- hypothesis ---------------------------------------------------------------------------

_CELL = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_CELL, min_size=1, max_size=5), max_size=6))
def test_any_csv_either_parses_or_is_refused_with_rows_and_columns(table):
    out = io.StringIO()
    csv.writer(out).writerows([["sku", "name", "net_weight_g", "origin_country", "brand"], *table])
    try:
        rows = parse_master(out.getvalue(), "products", CONFIG, name="h.csv")
    except CustomsImportError as exc:
        assert exc.problems
        assert all(p.file == "h.csv" and (p.row is None or p.row >= 1) for p in exc.problems)
        return
    assert len({r.key for r in rows}) == len(rows)


_SCALAR = st.none() | st.booleans() | st.integers() | st.floats() | _CELL
_ROW = st.dictionaries(st.sampled_from(["target", "id", "sku", "attribute", "value", "other"]),
                       _SCALAR | st.sampled_from(["supplier", "product", "order", "hs_code", "brand", "A1"]),
                       max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.lists(_ROW, max_size=5) | st.recursive(_SCALAR, lambda inner: st.lists(inner, max_size=3)
                                                 | st.dictionaries(_CELL, inner, max_size=3), max_leaves=8))
def test_any_json_either_parses_or_is_refused(body):
    try:
        rows = parse_values(json.dumps(body), CONFIG, name="h.json")
    except CustomsImportError as exc:
        assert exc.problems or exc.more
        assert all(p.file == "h.json" for p in exc.problems)
        return
    for row in rows:
        assert row.target in ("product", "supplier", "order") and row.id and row.value is not None


_NUMBER = Attribute("w", "重", "weight", "number", min=0, max=100)
_COUNTRY = Attribute("c", "国", "country", "country")
_FLAG = Attribute("f", "是否", "flag", "bool")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), _CELL))
def test_a_checked_value_is_in_range_or_refused_with_a_reason(raw):
    for attribute in (_NUMBER, _COUNTRY, _FLAG):
        value, why = check_value(attribute, raw)
        assert value is None or why is None
        if why is not None:
            assert why[0] and why[1]
        if value is not None and attribute is _NUMBER:
            assert 0 <= value <= 100 and math.isfinite(value)
        if value is not None and attribute is _COUNTRY:
            assert len(value) == 2 and value.isupper()
        if value is not None and attribute is _FLAG:
            assert isinstance(value, bool)
        again, _ = check_value(attribute, value)
        assert again == value  # a stored value reads back as itself
