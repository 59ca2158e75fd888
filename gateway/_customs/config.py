"""The customs configuration: required attributes, which orders are cross-border, fill rules.

Two files in ``[customs] dir`` (``config/customs`` in the embedded default)::

    attributes.toml     [cross_border] and one [attributes.<id>] table per required attribute
    fill_rules.toml     optional: [[rule]] tables, tried in file order

``[cross_border]`` decides which orders need a declaration, from the order's data only (the
fields the mapping rules put on the order: ``[data]`` of ``config/rules/*.toml``)::

    home_country = "CN"                 an order shipping elsewhere is cross-border
    country_fields = ["destination_country"]   order data paths holding the destination
                                        (ISO alpha-2); the first one present is the destination
    flag_fields = ["cross_border"]      order data paths of a platform's cross-border flag
                                        (true, 1, "yes"...); a flag makes the order
                                        cross-border whatever its destination
    codes = { biz = ["21", "22"] }      order data path = the values (strings; whole numbers
                                        are read as their digits) that mean cross-border, for
                                        platforms that say it with a code (Douyin's business
                                        source biz); a dotted key (a.b = [...]) is the path a.b
    shops = []                          shop_id values of cross-border shops
    warehouses = []                     warehouse values (globs) of bonded warehouses

``[attributes.<id>]``: ``label``, ``label_en``, ``type`` (text, enum, bool, number, country),
``values``, ``pattern``, ``min``, ``max``, ``max_length``, ``hint``, ``hint_en`` and
``[attributes.<id>.applies_to]`` with ``skus`` (globs), ``categories``, ``names`` (regular
expressions) and ``destinations`` (country codes): see ``gateway._customs.attributes``.

``[[rule]]`` (a fill rule): ``name`` (unique), ``attribute`` (an id above), ``from``
(``product`` or ``supplier``: the product's own master record or its supplier's), ``field``
(the record's field holding the value; default: the attribute's id), and when it applies:
``name_matches`` (a regular expression on the product name, case ignored), ``categories``,
``skus`` (globs); none = every product needing the attribute; ``overrides`` (default false):
the rule's record is the only source for the products it applies to (the product record's
own value does not count, e.g. a collagen product's "no animal extract" without the
supplier's declaration). A rule's value is checked against the attribute's type when the
declaration is made.

Where a value comes from, first found: a value imported for the order's line, an
``overrides`` rule (and nothing else when one applies), the product record's own value, any
other rule (file order).

Every problem is a ``ConfigError`` naming ``file:line: key`` (``gateway._settings.toml``).
A directory that does not exist is ``CustomsConfig()``: nothing is required.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gateway._customs.attributes import COUNTRIES, TYPES, AppliesTo, Attribute, AttributeType
from gateway._errors import ConfigError
from gateway._settings.toml import KeyPath, TomlDocument, check_keys

ATTRIBUTES_FILE = "attributes.toml"
FILL_RULES_FILE = "fill_rules.toml"
_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_ATTRIBUTE_KEYS = ("label", "label_en", "type", "values", "pattern", "min", "max", "max_length", "hint", "hint_en",
                   "applies_to")
_APPLIES_KEYS = ("skus", "categories", "names", "destinations")
_BORDER_KEYS = ("home_country", "country_fields", "flag_fields", "codes", "shops", "warehouses")
_BORDER_LISTS = ("country_fields", "flag_fields", "shops", "warehouses")
_RULE_KEYS = ("name", "attribute", "from", "field", "name_matches", "categories", "skus", "overrides")


@dataclass(frozen=True)
class CrossBorder:
    """``[cross_border]``: which orders need a declaration (see the module docstring).

    ``codes`` keeps the file's order: ``(("biz", ("21", "22", "23", "102")),)`` for
    ``codes = { biz = ["21", "22", "23", "102"] }``; the values are compared as text.
    """

    home_country: str = "CN"
    country_fields: tuple[str, ...] = ("destination_country", "receiver_country")
    flag_fields: tuple[str, ...] = ("cross_border",)
    shops: tuple[str, ...] = ()
    warehouses: tuple[str, ...] = ()
    codes: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class FillRule:
    """One ``[[rule]]``: where a missing attribute's value is taken from."""

    name: str
    attribute: str
    source: Literal["product", "supplier"]
    field: str
    name_matches: str = ""
    categories: tuple[str, ...] = ()
    skus: tuple[str, ...] = ()
    overrides: bool = False

    def applies(self, sku: str, category: str, name: str) -> bool:
        """True when the rule is for this product."""
        if self.name_matches and not re.search(self.name_matches, name, re.IGNORECASE):
            return False
        if self.categories and category not in self.categories:
            return False
        return not self.skus or any(fnmatch.fnmatchcase(sku, glob) for glob in self.skus)


@dataclass(frozen=True)
class CustomsConfig:
    """The whole customs configuration (empty: nothing required, the check is off)."""

    attributes: Mapping[str, Attribute] = field(default_factory=dict)
    cross_border: CrossBorder = field(default_factory=CrossBorder)
    rules: tuple[FillRule, ...] = ()
    source: str = ""  # the directory it was read from ("" for none)

    @property
    def enabled(self) -> bool:
        return bool(self.attributes)

    def record_fields(self, source: str) -> tuple[str, ...]:
        """The fields a ``product`` / ``supplier`` master record may carry: every attribute id
        and every field a rule reads from that kind of record."""
        extra = [r.field for r in self.rules if r.source == source and r.field not in self.attributes]
        return (*self.attributes, *dict.fromkeys(extra))

    def field_attribute(self, source: str, name: str) -> Attribute | None:
        """The attribute whose type a ``source`` record's field ``name`` has: the attribute of
        that id, else the one a rule reads the field for; ``None``: not a declaration field."""
        if name in self.attributes:
            return self.attributes[name]
        for rule in self.rules:
            if rule.source == source and rule.field == name:
                return self.attributes[rule.attribute]
        return None


def _strings(doc: TomlDocument, value: Any, at: KeyPath) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise doc.error(at, "must be a list of non-empty strings")
    return tuple(v.strip() for v in value)


def _text(doc: TomlDocument, table: Mapping[str, Any], key: str, at: KeyPath, default: str = "") -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise doc.error((*at, key), "must be a string")
    return value


def _regex(doc: TomlDocument, pattern: str, at: KeyPath) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise doc.error(at, f"not a valid regular expression: {exc}") from None
    return pattern


def _countries(doc: TomlDocument, value: Any, at: KeyPath) -> tuple[str, ...]:
    codes = _strings(doc, value, at)
    for index, code in enumerate(codes):
        if code not in COUNTRIES:
            raise doc.error((*at, index), f"{code!r} is not an ISO 3166-1 alpha-2 country code (upper case, e.g. US)")
    return codes


def _number(doc: TomlDocument, table: Mapping[str, Any], key: str, at: KeyPath) -> float | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise doc.error((*at, key), "must be a number")
    return float(value)


def _applies(doc: TomlDocument, raw: Any, at: KeyPath) -> AppliesTo:
    if not isinstance(raw, dict):
        raise doc.error(at, "must be a table (skus, categories, names, destinations)")
    check_keys(doc, raw, at, _APPLIES_KEYS)
    names = _strings(doc, raw.get("names", []), (*at, "names"))
    for index, pattern in enumerate(names):
        _regex(doc, pattern, (*at, "names", index))
    return AppliesTo(_strings(doc, raw.get("skus", []), (*at, "skus")),
                     _strings(doc, raw.get("categories", []), (*at, "categories")), names,
                     _countries(doc, raw.get("destinations", []), (*at, "destinations")))


def _attribute(doc: TomlDocument, attribute_id: str, raw: Any) -> Attribute:
    at: KeyPath = ("attributes", attribute_id)
    if not _ID.match(attribute_id):
        raise doc.error(at, "an attribute id is 1-64 of a-z 0-9 _ starting with a letter (it is a column name)")
    if not isinstance(raw, dict):
        raise doc.error(at, "must be a table")
    check_keys(doc, raw, at, _ATTRIBUTE_KEYS, required=("label", "label_en", "type"))
    kind = raw["type"]
    if kind not in TYPES:
        raise doc.error((*at, "type"), f"must be one of {', '.join(TYPES)}, not {kind!r}")
    values = _strings(doc, raw.get("values", []), (*at, "values"))
    if kind == "enum" and not values:
        raise doc.error((*at, "values"), "an enum needs its allowed values")
    if kind in ("bool", "number") and values:
        raise doc.error((*at, "values"), f"a {kind} takes no values list (use min/max for a number)")
    if kind == "country":
        _countries(doc, raw.get("values", []), (*at, "values"))
    pattern = _regex(doc, _text(doc, raw, "pattern", at), (*at, "pattern"))
    if pattern and kind != "text":
        raise doc.error((*at, "pattern"), "only a text attribute takes a pattern")
    low, high = _number(doc, raw, "min", at), _number(doc, raw, "max", at)
    if (low is not None or high is not None) and kind != "number":
        raise doc.error((*at, "min" if low is not None else "max"), "only a number attribute takes min/max")
    if low is not None and high is not None and low > high:
        raise doc.error((*at, "min"), f"min {low} is above max {high}")
    length = raw.get("max_length", 200)
    if isinstance(length, bool) or not isinstance(length, int) or not 0 < length <= 10_000:
        raise doc.error((*at, "max_length"), "must be a whole number 1..10000")
    typed: AttributeType = kind
    return Attribute(attribute_id, _text(doc, raw, "label", at), _text(doc, raw, "label_en", at), typed, values,
                     pattern, low, high, length, _text(doc, raw, "hint", at), _text(doc, raw, "hint_en", at),
                     _applies(doc, raw.get("applies_to", {}), (*at, "applies_to")))


def _cross_border(doc: TomlDocument, raw: Any) -> CrossBorder:
    at: KeyPath = ("cross_border",)
    if not isinstance(raw, dict):
        raise doc.error(at, "must be a table")
    check_keys(doc, raw, at, _BORDER_KEYS)
    home = _text(doc, raw, "home_country", at, "CN")
    if home not in COUNTRIES:
        raise doc.error((*at, "home_country"), f"{home!r} is not an ISO 3166-1 alpha-2 country code (e.g. CN)")
    defaults = CrossBorder()
    lists = {key: _strings(doc, raw.get(key, list(getattr(defaults, key))), (*at, key)) for key in _BORDER_LISTS}
    return CrossBorder(home, **lists, codes=_codes(doc, raw.get("codes", {}), (*at, "codes")))


def _codes(doc: TomlDocument, raw: Any, at: KeyPath, prefix: str = "") -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``codes``: order data path -> the values meaning cross-border. A nested table is what a
    dotted key (``receiver.kind = [...]``) parses to: its keys continue the path."""
    if not isinstance(raw, dict):
        raise doc.error(at, 'must be a table of order data path = [values], e.g. codes = { biz = ["21", "22"] }')
    out: list[tuple[str, tuple[str, ...]]] = []
    for key, value in raw.items():
        path, here = f"{prefix}{key.strip()}", (*at, key)
        if not key.strip():
            raise doc.error(here, "an order data path must not be empty")
        if isinstance(value, dict) and value:
            out.extend(_codes(doc, value, here, f"{path}."))
            continue
        if not isinstance(value, list) or not value:
            raise doc.error(here, 'must be a non-empty list of the values (strings or whole numbers), e.g. ["21", "22"]')
        codes: list[str] = []
        for index, code in enumerate(value):
            if isinstance(code, bool) or not isinstance(code, str | int) or not str(code).strip():
                raise doc.error((*here, index), f"must be a non-empty string or a whole number, not {code!r}")
            codes.append(str(code).strip())
        out.append((path, tuple(codes)))
    return tuple(out)


def parse_attributes(doc: TomlDocument) -> tuple[dict[str, Attribute], CrossBorder]:
    """The attributes and the cross-border policy of a parsed ``attributes.toml``.

    Raises:
        ConfigError: ``file:line: key: what is wrong``.
    """
    check_keys(doc, doc.data, (), ("cross_border", "attributes"), required=("attributes",))
    table = doc.data["attributes"]
    if not isinstance(table, dict) or not table:
        raise doc.error(("attributes",), "must hold at least one [attributes.<id>] table")
    attributes = {attribute_id: _attribute(doc, attribute_id, raw) for attribute_id, raw in table.items()}
    return attributes, _cross_border(doc, doc.data.get("cross_border", {}))


def parse_rules(doc: TomlDocument, attributes: Mapping[str, Attribute]) -> tuple[FillRule, ...]:
    """The fill rules of a parsed ``fill_rules.toml``, against the known ``attributes``.

    Raises:
        ConfigError: ``file:line: key: what is wrong``.
    """
    check_keys(doc, doc.data, (), ("rule",))
    raw_rules = doc.data.get("rule", [])
    if not isinstance(raw_rules, list):
        raise doc.error(("rule",), "write each rule as a [[rule]] table")
    rules: list[FillRule] = []
    for index, raw in enumerate(raw_rules):
        at: KeyPath = ("rule", index)
        if not isinstance(raw, dict):
            raise doc.error(at, "must be a table")
        check_keys(doc, raw, at, _RULE_KEYS, required=("name", "attribute", "from"))
        name = _text(doc, raw, "name", at).strip()
        if not name or any(r.name == name for r in rules):
            raise doc.error((*at, "name"), f"a rule needs a name of its own ({name!r} is empty or used twice)")
        attribute = _text(doc, raw, "attribute", at)
        if attribute not in attributes:
            raise doc.error((*at, "attribute"), f"unknown attribute {attribute!r}: the attributes are "
                                                f"{', '.join(attributes)}")
        source = raw["from"]
        if source not in ("product", "supplier"):
            raise doc.error((*at, "from"), f"must be 'product' or 'supplier', not {source!r}")
        record_field = _text(doc, raw, "field", at, attribute)
        if not _ID.match(record_field) or record_field in ("sku", "name", "category", "supplier"):
            raise doc.error((*at, "field"), "a field is 1-64 of a-z 0-9 _ (a column name), not sku, name, "
                                            "category or supplier")
        overrides = raw.get("overrides", False)
        if not isinstance(overrides, bool):
            raise doc.error((*at, "overrides"), "must be true or false")
        rules.append(FillRule(name, attribute, source, record_field,
                              _regex(doc, _text(doc, raw, "name_matches", at), (*at, "name_matches")),
                              _strings(doc, raw.get("categories", []), (*at, "categories")),
                              _strings(doc, raw.get("skus", []), (*at, "skus")), overrides))
    return tuple(rules)


def load_customs(directory: str | Path) -> CustomsConfig:
    """Read ``attributes.toml`` and ``fill_rules.toml`` from ``directory``.

    Returns:
        The configuration; ``CustomsConfig()`` (nothing required) when the directory does
        not exist.

    Raises:
        ConfigError: a file is broken (``file:line: key: what is wrong``), or the directory
            exists without ``attributes.toml``.
    """
    path = Path(directory)
    if not path.is_dir():
        return CustomsConfig()
    attributes_path = path / ATTRIBUTES_FILE
    if not attributes_path.is_file():
        raise ConfigError(attributes_path, None, "", "missing: the customs directory needs attributes.toml "
                                                     "(or remove the directory to turn the declaration check off)")
    attributes, border = parse_attributes(TomlDocument.load(attributes_path))
    rules_path = path / FILL_RULES_FILE
    rules = parse_rules(TomlDocument.load(rules_path), attributes) if rules_path.is_file() else ()
    return CustomsConfig(attributes, border, rules, str(path))


__all__ = ["ATTRIBUTES_FILE", "FILL_RULES_FILE", "CrossBorder", "CustomsConfig", "FillRule", "load_customs",
           "parse_attributes", "parse_rules"]
