"""A declaration attribute: its type, allowed values, what it applies to, and a value checked. Pure.

Types and what a value becomes (the stored, forwarded form)::

    text      a string, stripped; ``max_length`` characters at most; ``pattern`` (a regular
              expression) must match the whole of it when given; ``values`` restrict it
    enum      one of ``values`` (matched ignoring case; stored as written in ``values``)
    bool      true / false; from a file also 1/0, yes/no, y/n, 是/否, 含/不含, 有/无
    number    a finite number (an integer stays one); ``min`` / ``max`` when given
    country   an ISO 3166-1 alpha-2 code, upper case (``cn`` -> ``CN``); ``values`` restrict it

``check_value`` returns the value or, for a wrong one, a reason in Chinese and English that
says what is allowed. An empty cell is "no value" (``None``), never an error: whether a value
is required is the declaration's question (``gateway._customs.declare``), not the cell's.

``AppliesTo`` says which order lines need the attribute: a line needs it when its product
matches (``skus`` globs, ``categories``, ``names`` regular expressions on the product name;
none of the three given = every product) and the order's destination matches
(``destinations``: country codes; empty = every destination).
"""

from __future__ import annotations

import fnmatch
import math
import re
from dataclasses import dataclass, field
from typing import Literal

AttributeType = Literal["text", "enum", "bool", "number", "country"]
TYPES: tuple[AttributeType, ...] = ("text", "enum", "bool", "number", "country")
Value = str | bool | int | float

_TRUE = frozenset({"1", "true", "yes", "y", "是", "含", "有"})
_FALSE = frozenset({"0", "false", "no", "n", "否", "不含", "无"})
#: ISO 3166-1 alpha-2 codes (officially assigned).
COUNTRIES = frozenset((
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY "
    "BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM "
    "FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT "
    "JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN "
    "MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT "
    "PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL "
    "TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW").split())


@dataclass(frozen=True)
class AppliesTo:
    """Which order lines need an attribute (see the module docstring)."""

    skus: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    destinations: tuple[str, ...] = ()

    def product_matches(self, sku: str, category: str, name: str) -> bool:
        """True when a product (its SKU, category and name) needs the attribute."""
        if not (self.skus or self.categories or self.names):
            return True
        return (any(fnmatch.fnmatchcase(sku, glob) for glob in self.skus)
                or (bool(category) and category in self.categories)
                or any(re.search(pattern, name, re.IGNORECASE) for pattern in self.names))

    def destination_matches(self, country: str) -> bool:
        """True when an order to ``country`` (``""``: unknown) needs the attribute."""
        return not self.destinations or country in self.destinations


@dataclass(frozen=True)
class Attribute:
    """One required declaration attribute (a ``[attributes.<id>]`` table of ``attributes.toml``).

    Attributes:
        id: the key (``contains_animal_extract``): the column name in import files.
        label / label_en: what staff read (zh-CN, English).
        type: see the module docstring.
        values: the allowed values (``enum``: required; ``text`` / ``country``: optional).
        pattern: ``text``: a regular expression the whole value must match.
        min / max: ``number``: the range, inclusive.
        max_length: ``text``: the longest value, in characters.
        hint / hint_en: where the value is found (shown when it is missing).
        applies_to: which lines need it.
    """

    id: str
    label: str
    label_en: str
    type: AttributeType
    values: tuple[str, ...] = ()
    pattern: str = ""
    min: float | None = None
    max: float | None = None
    max_length: int = 200
    hint: str = ""
    hint_en: str = ""
    applies_to: AppliesTo = field(default_factory=AppliesTo)

    def check(self, raw: object) -> tuple[Value | None, tuple[str, str] | None]:
        """``(value, None)``, ``(None, None)`` for no value, or ``(None, (reason_zh, reason_en))``."""
        return check_value(self, raw)


def _text(raw: object) -> str | None:
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, int | float):
        return str(raw)
    return raw.strip() if isinstance(raw, str) else None


def check_value(attribute: Attribute, raw: object) -> tuple[Value | None, tuple[str, str] | None]:
    """``raw`` (a cell's text, or a JSON value) checked against ``attribute``.

    Returns:
        ``(value, None)`` for a good value, ``(None, None)`` for an empty one, or
        ``(None, (zh, en))``: why it is refused and what is allowed.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, None
    kind = attribute.type
    if kind == "bool":
        if isinstance(raw, bool):
            return raw, None
        text = _text(raw)
        flag = (text or "").lower()
        if flag in _TRUE or flag in _FALSE:
            return flag in _TRUE, None
        return None, (f"必须是 是/否（true/false、1/0），而不是 {raw!r}", f"must be yes/no (true/false, 1/0), not {raw!r}")
    if kind == "number":
        number: float | int | None = None
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            number = raw
        elif isinstance(raw, str):
            try:
                number = int(raw.strip()) if re.fullmatch(r"[+-]?[0-9]{1,15}", raw.strip()) else float(raw.strip())
            except ValueError:
                number = None
        if number is None or not math.isfinite(number):
            return None, (f"必须是数字，而不是 {raw!r}", f"must be a number, not {raw!r}")
        if (attribute.min is not None and number < attribute.min) or (attribute.max is not None
                                                                       and number > attribute.max):
            span = f"{_num(attribute.min)}..{_num(attribute.max)}"
            return None, (f"必须在 {span} 之间，而不是 {_num(number)}", f"must be within {span}, not {_num(number)}")
        return number, None
    text = _text(raw)
    if text is None:
        return None, ("必须是文本", "must be text")
    if kind == "enum":
        for allowed in attribute.values:
            if allowed.lower() == text.lower():
                return allowed, None
        listed = "、".join(attribute.values)
        return None, (f"必须是 {listed} 之一，而不是 {text!r}", f"must be one of {', '.join(attribute.values)}, "
                                                            f"not {text!r}")
    if kind == "country":
        code = text.upper()
        if code not in COUNTRIES:
            return None, (f"必须是两位国家代码（ISO 3166-1，例如 CN、JP、FR），而不是 {text!r}",
                          f"must be a two-letter country code (ISO 3166-1, e.g. CN, JP, FR), not {text!r}")
        if attribute.values and code not in attribute.values:
            return None, (f"必须是 {'、'.join(attribute.values)} 之一，而不是 {code}",
                          f"must be one of {', '.join(attribute.values)}, not {code}")
        return code, None
    if len(text) > attribute.max_length or re.search(r"[\x00-\x1f\x7f]", text):
        return None, (f"超过 {attribute.max_length} 个字符或含有控制字符", f"is over {attribute.max_length} characters "
                                                                  "or holds a control character")
    if attribute.pattern and not re.fullmatch(attribute.pattern, text):
        return None, (f"{text!r} 的格式不对（应符合 {attribute.pattern}）", f"{text!r} has the wrong form "
                                                                     f"(it must match {attribute.pattern})")
    if attribute.values and text not in attribute.values:
        return None, (f"必须是 {'、'.join(attribute.values)} 之一，而不是 {text!r}",
                      f"must be one of {', '.join(attribute.values)}, not {text!r}")
    return text, None


def _num(value: float | int | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


__all__ = ["COUNTRIES", "TYPES", "AppliesTo", "Attribute", "AttributeType", "Value", "check_value"]
