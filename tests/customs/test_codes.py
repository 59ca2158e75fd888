"""``[cross_border] codes``: a platform's cross-border code (Douyin's ``biz``) read from the order's data.

The parser (file:line: key on every bad value, hypothesis for what it accepts) and the check
(``cross_border``: after the flags, before the destination, the shops and the warehouses).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway._customs import CrossBorder, cross_border, load_customs
from gateway._customs.config import parse_attributes
from gateway._errors import ConfigError
from gateway._settings.toml import TomlDocument
from tests.customs.support import SEED

SHIPPED_CODES = 'codes = { biz = ["21", "22", "23", "102"] }'


def _edited(tmp_path: Path, new: str) -> Path:
    """The shipped configuration with its ``codes`` line replaced by ``new`` (lines allowed)."""
    target = shutil.copytree(SEED, tmp_path / "customs")
    path = target / "attributes.toml"
    text = path.read_text(encoding="utf-8")
    assert SHIPPED_CODES in text
    path.write_text(text.replace(SHIPPED_CODES, new, 1), encoding="utf-8")
    return target


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


def test_the_shipped_configuration_reads_douyins_business_sources():
    assert load_customs(SEED).cross_border.codes == (("biz", ("21", "22", "23", "102")),)
    assert CrossBorder().codes == ()  # none unless configured


def test_numbers_dotted_keys_and_a_table_of_its_own(tmp_path):
    target = _edited(tmp_path, 'codes = { biz = [21, "22"], receiver.kind = ["abroad"], "order.src" = [7] }')
    assert load_customs(target).cross_border.codes == (
        ("biz", ("21", "22")), ("receiver.kind", ("abroad",)), ("order.src", ("7",)))
    target = _edited(tmp_path / "b", "")
    path = target / "attributes.toml"
    path.write_text(path.read_text(encoding="utf-8") + '\n[cross_border.codes]\nbiz = ["23"]\n', encoding="utf-8")
    assert load_customs(target).cross_border.codes == (("biz", ("23",)),)


@pytest.mark.parametrize(("new", "key", "says"), [
    ('codes = ["21", "22"]', "cross_border.codes", "must be a table"),
    ('codes = "biz"', "cross_border.codes", "must be a table"),
    ('codes = { biz = "21" }', "cross_border.codes.biz", "non-empty list"),
    ('codes = { biz = 21 }', "cross_border.codes.biz", "non-empty list"),
    ('codes = { biz = [] }', "cross_border.codes.biz", "non-empty list"),
    ('codes = { biz = ["21", 2.5] }', "cross_border.codes.biz[1]", "string or a whole number"),
    ('codes = { biz = [true] }', "cross_border.codes.biz[0]", "string or a whole number"),
    ('codes = { biz = ["21", " "] }', "cross_border.codes.biz[1]", "string or a whole number"),
    ('codes = { biz = [["21"]] }', "cross_border.codes.biz[0]", "string or a whole number"),
    ('codes = { receiver.kind = {} }', "cross_border.codes.receiver.kind", "non-empty list"),
    ('codes = { "" = ["21"] }', "cross_border.codes.", "must not be empty"),
    ('code = { biz = ["21"] }', "cross_border.code", "unknown key"),
])
def test_a_broken_codes_value_is_refused_with_file_line_and_key(tmp_path, new, key, says):
    target = _edited(tmp_path, new)
    with pytest.raises(ConfigError) as caught:
        load_customs(target)
    error, path = caught.value, target / "attributes.toml"
    assert (error.path, error.key) == (str(path), key)
    assert error.line == _line_of(path, new)
    assert says in error.message
    assert str(error).startswith(f"{path}:{error.line}: {key}: ")


def test_a_bad_value_in_a_table_of_its_own_names_its_line(tmp_path):
    target = _edited(tmp_path, "")
    path = target / "attributes.toml"
    path.write_text(path.read_text(encoding="utf-8") + '\n[cross_border.codes]\nbiz = ["21"]\nsrc = [1.5]\n',
                    encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_customs(target)
    assert caught.value.key == "cross_border.codes.src[0]"
    assert caught.value.line == _line_of(path, "src = [1.5]")


_CHARS = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"), exclude_characters='"\\.')
_KEY = st.text(_CHARS, min_size=1, max_size=8).filter(str.strip)
_CODE = st.one_of(st.integers(-10**6, 10**6), st.text(_CHARS, min_size=1, max_size=8).filter(str.strip))


@settings(max_examples=200, deadline=None)
@given(table=st.dictionaries(_KEY, st.lists(_CODE, min_size=1, max_size=4), max_size=4))
def test_any_table_of_strings_and_whole_numbers_reads_back_as_text(table):
    inline = ", ".join(f'"{key}" = [{", ".join(str(c) if isinstance(c, int) else f"{chr(34)}{c}{chr(34)}" for c in codes)}]'
                       for key, codes in table.items())
    text = f'[cross_border]\ncodes = {{ {inline} }}\n[attributes.a]\nlabel = "a"\nlabel_en = "a"\ntype = "text"\n'
    _, border = parse_attributes(TomlDocument("attributes.toml", text))
    assert border.codes == tuple((key.strip(), tuple(str(c).strip() for c in codes)) for key, codes in table.items())


POLICY = CrossBorder(codes=(("biz", ("21", "102")), ("order.kind", ("global",))), shops=("HK",))


def test_a_listed_code_makes_the_order_cross_border():
    assert cross_border({"biz": 21}, POLICY) == ("", "code:biz=21")
    assert cross_border({"biz": "102"}, POLICY) == ("", "code:biz=102")
    assert cross_border({"order": {"kind": "global"}}, POLICY) == ("", "code:order.kind=global")
    assert cross_border({"biz": 21, "destination_country": "jp"}, POLICY) == ("JP", "code:biz=21")


def test_flags_come_first_then_codes_then_the_rest():
    assert cross_border({"biz": 21, "cross_border": True}, POLICY) == ("", "flag:cross_border")
    assert cross_border({"biz": 21, "shop_id": "HK"}, POLICY) == ("", "code:biz=21")
    assert cross_border({"biz": 2, "shop_id": "HK"}, POLICY) == ("", "shop:HK")


@pytest.mark.parametrize("data", [{}, {"biz": 0}, {"biz": 2}, {"biz": 210}, {"biz": True}, {"biz": [21]},
                                  {"biz": {"21": 1}}, {"biz": None}, {"order": "global"}, {"order": {"kind": "GLOBAL"}}])
def test_other_values_are_domestic(data):
    assert cross_border(data, POLICY) is None
