"""Gift rule files: ``<rules_dir>/gifts/*.toml`` read and checked into ``GiftRule`` values.

This docstring is the operators' reference for the file format; how a rule is evaluated is
in ``gateway._rules.gifts``.

Where the files live and when they are read
-------------------------------------------
Every ``*.toml`` in the ``gifts`` folder beside the mapping rules (``config/rules/gifts/``) is
one gift file; names starting with ``.`` are ignored, and so is a missing folder (no gifts).
They are read, checked and hot-reloaded together with the mapping rules: a broken gift file
refuses the whole edit with ``file:line: key: what is wrong`` and the previous rules (mapping
and gifts) stay live.

File layout
-----------
::

    [gifts]
    version = 3                  # REQUIRED. Integer >= 1; bump it on every edit.
    description = "Double 11"    # optional free text.

    [[gift]]                     # one table per rule; a file may hold none (campaign over)
    name = "box-299"             # REQUIRED, unique in the file: letters, digits, _ . -
    tenant = "demo"              # optional; "" (default) = every tenant
    gift_sku = "GIFTBOX-1"       # REQUIRED: the SKU packed as the gift (no patterns)
    quantity = 1                 # units per grant [1]
    ships = "now"                # now (in the parcel) | later (a later parcel of its own) ["now"]
    scope = "order"              # order | group ["order"], see gateway._rules.gifts
    min_total = 299.0            # optional: paid total >= this, in yuan (at most 2 decimals)
    skus_any = ["SKU-1*"]        # optional: a line with one of these SKUs
    skus_all = []                # optional: a line for every one of these
    min_quantity = 1             # optional: at least this many units of matching SKUs
    channels = ["douyin"]        # optional: the order's channel (the order id before "|")
    starts = 2026-11-11T00:00:00+08:00   # optional campaign window on the paid time
    ends = "2026-11-12T00:00:00+08:00"   # (TOML date-times or quoted ISO 8601 text)
    per_unit = false             # quantity per matching unit instead of once [false]

Each grant names its rule as ``"<file stem>@v<version>:<name>"`` (``demo@v3:box-299``),
for the bill, the audit and after-sales.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from gateway._errors import ConfigError
from gateway._settings import TENANT_NAME, KeyPath, TomlDocument, check_keys

if TYPE_CHECKING:  # gifts builds on this module (and re-exports it): the order type is only named here
    from gateway._rules.gifts import GiftOrder

ShipWhen = Literal["now", "later"]
GiftScope = Literal["order", "group"]
SHIP_WHEN: tuple[ShipWhen, ...] = ("now", "later")
GIFT_SCOPES: tuple[GiftScope, ...] = ("order", "group")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CHANNEL = re.compile(r"^[a-z0-9_]{1,32}$")
_CHINA = timezone(timedelta(hours=8))
_FILE_KEYS = ("version", "description")
_GIFT_KEYS = ("name", "tenant", "gift_sku", "quantity", "ships", "scope", "min_total", "skus_any", "skus_all",
              "min_quantity", "channels", "starts", "ends", "per_unit")


@dataclass(frozen=True, slots=True)
class GiftRule:
    """One validated ``[[gift]]`` table; ``rule_id`` is what its grants cite."""

    rule_id: str
    name: str
    tenant: str
    gift_sku: str
    quantity: int = 1
    ships: ShipWhen = "now"
    scope: GiftScope = "order"
    min_total: float | None = None
    skus_any: tuple[str, ...] = ()
    skus_all: tuple[str, ...] = ()
    min_quantity: int | None = None
    channels: tuple[str, ...] = ()
    starts_ms: int | None = None
    ends_ms: int | None = None
    per_unit: bool = False

    def admits(self, order: GiftOrder) -> bool:
        """Whether ``order`` passes this rule's channel and campaign-window filters."""
        if self.channels and order.channel not in self.channels:
            return False
        if self.starts_ms is None and self.ends_ms is None:
            return True
        if order.paid_at_ms <= 0:
            return False
        return (self.starts_ms is None or order.paid_at_ms >= self.starts_ms) and (
            self.ends_ms is None or order.paid_at_ms < self.ends_ms)

    def counts(self, sku: str) -> bool:
        """Whether units of ``sku`` are matching units (every SKU when no pattern is set)."""
        patterns = self.skus_any + self.skus_all
        return not patterns or any(fnmatchcase(sku, pattern) for pattern in patterns)

    @property
    def by_lines(self) -> bool:
        """The rule has SKU conditions: its group grant follows the goods."""
        return bool(self.skus_any or self.skus_all or self.min_quantity is not None or self.per_unit)


@dataclass(frozen=True, slots=True)
class GiftFile:
    """One validated gift file: ``ref`` (``demo@v3``) and its rules in file order."""

    path: Path
    version: int
    description: str
    rules: tuple[GiftRule, ...]

    @property
    def ref(self) -> str:
        return f"{self.path.stem}@v{self.version}"



def gift_files(rules_dir: Path) -> list[Path]:
    """The gift files of a rules directory, sorted: ``gifts/*.toml`` except names starting with ``.``.

    Raises:
        OSError: the ``gifts`` folder exists but cannot be listed.
    """
    folder = rules_dir / "gifts"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.toml") if not p.name.startswith(".") and p.is_file())


class GiftFileLoader:
    """Validates one parsed gift file, collecting every independent error (file, line, key)."""

    def __init__(self, doc: TomlDocument) -> None:
        self.doc = doc
        self.errors: list[ConfigError] = []

    def load(self, sink: list[ConfigError]) -> GiftFile | None:
        """The file's rules, or ``None`` with its errors appended to ``sink``."""
        try:
            loaded = self._load()
        except ConfigError as exc:
            self.errors.append(exc)
            loaded = None
        sink.extend(self.errors)
        return None if self.errors else loaded

    def _load(self) -> GiftFile:
        doc = self.doc
        check_keys(doc, doc.data, (), ("gifts", "gift"))
        if "gifts" not in doc.data:  # nothing to point at: name the top of the file
            raise ConfigError(doc.path, 1, "gifts", "missing the [gifts] table: start the file with "
                                                    "[gifts] and version = 1")
        head = doc.data["gifts"]
        if not isinstance(head, dict):
            raise doc.error(("gifts",), f"must be a table ([gifts]), not {_kind(head)}")
        check_keys(doc, head, ("gifts",), _FILE_KEYS, required=("version",))
        version = head["version"]
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise doc.error(("gifts", "version"), f"must be an integer >= 1, not {version!r}")
        description = head.get("description", "")
        if not isinstance(description, str):
            raise doc.error(("gifts", "description"), f"must be a string, not {_kind(description)}")
        if not _NAME.match(doc.path.stem):
            raise doc.error(("gifts",), f"the file name {doc.path.stem!r} is part of every rule id: use "
                                        "letters, digits, _ . - (at most 64)")
        tables = doc.data.get("gift", [])
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise doc.error(("gift",), "must be an array of tables: write each rule under [[gift]]")
        rules: list[GiftRule] = []
        first_line: dict[str, int | None] = {}
        for index, table in enumerate(tables):
            name = table.get("name")
            if isinstance(name, str) and name in first_line:
                self.errors.append(doc.error(("gift", index, "name"), f"{name!r} is already used on line "
                                                                      f"{first_line[name]}; names are unique"))
                continue
            if isinstance(name, str):
                first_line[name] = doc.line_of(("gift", index, "name"))
            rule = self._rule(f"{doc.path.stem}@v{version}", index, table)
            if rule is not None:
                rules.append(rule)
        return GiftFile(doc.path, version, description, tuple(rules))

    def _rule(self, ref: str, index: int, table: dict[str, Any]) -> GiftRule | None:
        at: KeyPath = ("gift", index)
        before = len(self.errors)
        try:
            check_keys(self.doc, table, at, _GIFT_KEYS, required=("name", "gift_sku"))
        except ConfigError as exc:
            self.errors.append(exc)
            return None
        values: dict[str, Any] = {}
        for key, value in table.items():
            try:
                values[key] = self._value((*at, key), key, value)
            except ConfigError as exc:
                self.errors.append(exc)
        starts, ends = values.get("starts"), values.get("ends")
        if starts is not None and ends is not None and ends <= starts:
            self.errors.append(self.doc.error((*at, "ends"), "must be after starts (the window is starts <= paid < ends)"))
        if len(self.errors) > before:
            return None
        values["starts_ms"], values["ends_ms"] = values.pop("starts", None), values.pop("ends", None)
        values.setdefault("tenant", "")
        return GiftRule(rule_id=f"{ref}:{values['name']}", **values)

    def _value(self, at: KeyPath, key: str, value: Any) -> Any:
        """The checked value of one ``[[gift]]`` key (raises ``ConfigError`` naming ``at``)."""
        error = self.doc.error
        if key in ("quantity", "min_quantity"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise error(at, f"must be a whole number >= 1, not {value!r}")
            return value
        if key == "per_unit":
            if not isinstance(value, bool):
                raise error(at, f"must be true or false, not {_kind(value)}")
            return value
        if key == "min_total":
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise error(at, f"must be a number of yuan >= 0 (e.g. 299.0), not {value!r}")
            if abs(value * 100 - round(value * 100)) > 1e-6:
                raise error(at, f"{value!r} has more than 2 decimals: amounts are in yuan, to the fen")
            return float(value)
        if key in ("starts", "ends"):
            return _moment(value, lambda message: error(at, message))
        if key in ("skus_any", "skus_all", "channels"):
            if not isinstance(value, list):
                raise error(at, f"must be a list of strings, not {_kind(value)}")
            return tuple(self._text((*at, i), key, item) for i, item in enumerate(value))
        return self._text(at, key, value)

    def _text(self, at: KeyPath, key: str, value: Any) -> str:
        if not isinstance(value, str):
            raise self.doc.error(at, f"must be a string, not {_kind(value)}")
        choices = {"ships": SHIP_WHEN, "scope": GIFT_SCOPES}.get(key)
        if choices is not None and value not in choices:
            raise self.doc.error(at, f"{value!r} is not one of: {', '.join(choices)}")
        if key == "name" and not _NAME.match(value):
            raise self.doc.error(at, f"{value!r} is not a rule name (letters, digits, _ . -; at most 64)")
        if key == "tenant" and value and not TENANT_NAME.match(value):
            raise self.doc.error(at, f"{value!r} is not a tenant name (letters, digits, _ -); \"\" = every tenant")
        if key == "channels" and not _CHANNEL.match(value):
            raise self.doc.error(at, f"{value!r} is not a channel (the order id before '|': a-z, 0-9, _)")
        if key in ("gift_sku", "skus_any", "skus_all") and (not value or value.strip() != value):
            raise self.doc.error(at, f"{value!r}: a SKU cannot be empty or have surrounding spaces")
        if key == "gift_sku" and any(c in value for c in "*?["):
            raise self.doc.error(at, f"{value!r}: the gift is one SKU, not a pattern")
        return value


def _moment(value: Any, fail: Callable[[str], ConfigError]) -> int:
    """A TOML date-time / date or ISO 8601 text as epoch ms UTC; no offset = China time."""
    moment: Any = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise fail(f"{value!r} is not a date-time like 2026-11-11T00:00:00+08:00") from None
    elif isinstance(value, date) and not isinstance(value, datetime):
        moment = datetime(value.year, value.month, value.day)
    if not isinstance(moment, datetime):
        raise fail(f"must be a date-time like 2026-11-11T00:00:00+08:00, not {_kind(value)}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_CHINA)
    return int(moment.timestamp() * 1000)


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "an array",
             dict: "a table"}
    return names.get(type(value), type(value).__name__)


__all__ = ["GIFT_SCOPES", "SHIP_WHEN", "GiftFile", "GiftFileLoader", "GiftRule", "GiftScope", "ShipWhen",
           "gift_files"]
