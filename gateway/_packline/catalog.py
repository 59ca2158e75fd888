"""The catalog and gift stock: import files, ERP updates, and their records in the store.

In: a catalog file (CSV or JSON, UTF-8 with or without BOM) or an ERP ``product`` / ``stock``
event. Out: validated ``Product`` and ``StockLevel`` values, and the ``StepWrite`` that stores
them as pack-line records (kind ``product``, id = SKU; kind ``stock``, id = SKU) with one audit
record. Parsing and validation are pure; only ``load_catalog`` / ``load_stock`` read a store.

CSV (header required, columns in any order; only ``sku`` is mandatory)::

    sku,name,kind,barcodes,weight_g,parts,serialised,stock
    A1,保温杯 500ml,item,6901234567892|A1-INT,420,,1,
    GIFT-BAG,帆布袋,gift,6901234567809,80,,,250
    SET-1,杯+袋套装,item,,,A1*1|GIFT-BAG*2,,

``barcodes`` is ``|``-separated; ``parts`` is ``SKU*QTY|SKU*QTY`` (``SKU`` alone = 1 unit);
``serialised`` is ``1/0``, ``true/false``, ``yes/no``, ``是/否`` or empty (no); ``stock`` is the
gift stock on hand (an integer, empty = not given). JSON: a list of objects with the same keys
(``barcodes`` a list of strings, ``parts`` a list of ``{"sku", "quantity"}``), or
``{"products": [...], "stock": [{"sku", "quantity"}]}``.

Every problem names ``file:row:column``: for CSV the physical line (the header is line 1; a
quoted cell spanning lines counts from the line the record starts on); for JSON the 0-based
index in its list (``stock.`` prefixes the column of a ``stock`` entry) and the key. All problems
of a file are collected (the first ``MAX_PROBLEMS``) into one ``CatalogImportError``; nothing is
stored unless the whole file is valid. Messages are zh-CN with an English twin.

Choices where the issue is silent (what an operator or an ERP integrator expects):

* An import adds and replaces products (by SKU); it never deletes one missing from the file.
* Unknown CSV columns and JSON keys are refused (a misspelt ``weigth_g`` must not vanish).
* SKUs are stripped of surrounding blanks and may not contain ``|``, ``*`` or control
  characters (so every catalog can be written back as CSV); a JSON SKU may be a number.
  Names have their runs of blanks (Excel's line breaks) folded to one space.
* A code of 8, 12, 13 or 14 digits is a GTIN and its check digit must verify; an internal
  code that looks like one must get a letter. Barcodes must be strings in JSON (a number
  loses its leading zeros). A kit carries no barcode of its own (its parts are scanned) and
  no stock (its parts have it). A barcode of another SKU in the existing catalog is refused
  in a file, unless the file redefines that SKU too; an ERP update takes it (the ERP is the
  master): the old owner is rewritten without it (``claim_barcodes``).
* Stock rows of a file must name a SKU of the file or the catalog; an ERP stock event may
  name any SKU (its product event may come later). Negative figures are kept (oversold).
* A file's stock figures are timed at the import (the operator's count, now). An ERP stock
  figure older than the stored one (``updated_at``) is ignored as out of order.
* ERP event problems read ``event <event_id>:-:<key path>``; a batch's add ``events[i]``.
* ``packed_stock_write`` keeps ``updated_at_ms`` of the ERP figure it decrements: the age
  shown is how old the ERP's count is, which is what an operator must judge; the level's
  ``source`` says ``packing`` once a parcel has used some.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
from biip import BiipException
from biip.gtin import Gtin

from gateway._errors import GatewayError
from gateway._packline.values import (
    MAX_KIT_DEPTH,
    PRODUCT_KINDS,
    Catalog,
    KitPart,
    Product,
    ProductKind,
    StockLevel,
    barcode_key,
    gtin14,
)
from gateway._store import StepWrite, Store
from gateway._times import parse_occurred_at

CatalogFormat = Literal["csv", "json"]
CSV_COLUMNS = ("sku", "name", "kind", "barcodes", "weight_g", "parts", "serialised", "stock")
MAX_PROBLEMS = 1000
_TRUE = frozenset({"1", "true", "yes", "y", "是"})
_FALSE = frozenset({"", "0", "false", "no", "n", "否"})
_BAD_SKU = re.compile(r"[\x00-\x1f\x7f|*]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_INTEGER = re.compile(r"[+-]?[0-9]{1,15}")

_MESSAGES: dict[str, tuple[str, str]] = {
    "encoding": ("文件不是 UTF-8 编码（{detail}）：请另存为 UTF-8 后重新导入",
                 "the file is not UTF-8 ({detail}): save it as UTF-8 and import again"),
    "json": ("不是有效的 JSON：{detail}", "not valid JSON: {detail}"),
    "csv": ("CSV 无法读取：{detail}", "unreadable CSV: {detail}"),
    "shape": ('JSON 必须是商品列表或 {{"products": [...], "stock": [...]}}',
              'JSON must be a list of products or {{"products": [...], "stock": [...]}}'),
    "header": ("缺少表头：第一行必须是列名，至少包含 sku", "no header: the first line must name the columns, sku at least"),
    "column": ("未知的列 {name!r}：可用的列是 {known}", "unknown column {name!r}: the columns are {known}"),
    "twice": ("列 {name!r} 出现了两次", "column {name!r} appears twice"),
    "cells": ("这一行的单元格比表头多", "this row has more cells than the header"),
    "object": ("每一项必须是 JSON 对象", "each entry must be a JSON object"),
    "type": ("必须是{zh}", "must be {en}"),
    "sku": ("sku 不能为空", "sku is required"),
    "sku_chars": ("sku {value!r} 含有不允许的字符（| * 或控制字符）或超过 64 个字符",
                  "sku {value!r} holds a character that is not allowed (| * or a control character) "
                  "or is over 64 characters"),
    "text": ("{value!r} 含有控制字符或过长", "{value!r} holds a control character or is too long"),
    "sku_twice": ("SKU {sku} 在第 {row} 行已经出现过：每个 SKU 只能有一行",
                  "SKU {sku} is already on row {row}: one row per SKU"),
    "kind": ("kind 必须是 item、gift、gift_box、trial 之一，而不是 {value!r}",
             "kind must be one of item, gift, gift_box, trial, not {value!r}"),
    "check_digit": ("条码 {code} 是 {n} 位数字，按 GTIN 校验位不对（{detail}）：请核对条码；内部码请加字母前缀",
                    "barcode {code} has {n} digits but its GTIN check digit is wrong ({detail}): check it; "
                    "give an internal code a letter"),
    "barcode_row": ("条码 {code} 已用于第 {row} 行的 SKU {sku}：一个条码只能属于一个 SKU",
                    "barcode {code} already belongs to SKU {sku} on row {row}: one SKU per barcode"),
    "barcode_catalog": ("条码 {code} 已属于商品库中的 SKU {sku}：先从那个 SKU 上去掉它，或在同一文件中一起修改",
                        "barcode {code} already belongs to SKU {sku} in the catalog: remove it there first, "
                        "or change both in this file"),
    "kit_barcode": ("套装本身不扫码（扫的是组件）：请把条码写到组件上",
                    "a kit is not scanned itself (its parts are): put the barcodes on the parts"),
    "kit_stock": ("套装没有自己的库存（组件有）：请把库存写到组件上",
                  "a kit has no stock of its own (its parts have): give the parts the stock"),
    "part": ("组件写法是 SKU*数量，例如 A1*2，而不是 {value!r}", "a part is SKU*QTY, e.g. A1*2, not {value!r}"),
    "quantity": ("数量必须是正整数，而不是 {value!r}", "the quantity must be a positive integer, not {value!r}"),
    "part_twice": ("组件 {sku} 写了两次：请合并数量", "part {sku} is listed twice: add the quantities up"),
    "part_unknown": ("组件 {sku} 不在本文件中，也不在商品库中：请先导入它",
                     "part {sku} is neither in this file nor in the catalog: import it first"),
    "cycle": ("套装循环引用：{path}", "the kit contains itself: {path}"),
    "deep": ("套装嵌套超过 {max} 层：{path}", "kits nest deeper than {max} levels: {path}"),
    "weight": ("weight_g 必须是不小于 0 的整数（克）或留空，而不是 {value!r}",
               "weight_g must be a whole number of grams >= 0 or empty, not {value!r}"),
    "flag": ("serialised 必须是 1/0、true/false、yes/no、是/否 或留空，而不是 {value!r}",
             "serialised must be 1/0, true/false, yes/no or empty, not {value!r}"),
    "stock": ("库存必须是整数，而不是 {value!r}", "stock must be an integer, not {value!r}"),
    "stock_unknown": ("SKU {sku} 不在本文件中，也不在商品库中：先导入商品再设库存",
                      "SKU {sku} is neither in this file nor in the catalog: import the product first"),
    "stock_twice": ("SKU {sku} 的库存给了两次", "the stock of SKU {sku} is given twice"),
    "key": ("未知的键 {name!r}：可用的键是 {known}", "unknown key {name!r}: the keys are {known}"),
    "event": ("{zh}", "{en}"),
}
_TYPES = {"str": ("字符串", "a string"), "list": ("列表", "a list"), "int": ("整数", "an integer"),
          "bool": ("true 或 false", "true or false"), "object": ("JSON 对象", "an object")}


@dataclass(frozen=True, slots=True)
class CatalogProblem:
    """One thing wrong in a catalog file or update, where it is and what to do."""

    file: str
    row: int | None
    column: str
    message: str
    message_en: str

    def __str__(self) -> str:
        return f"{self.file}:{'-' if self.row is None else self.row}:{self.column or '-'}: {self.message}"

    def text(self, lang: str = "zh-CN") -> str:
        """The ``file:row:column: message`` line in ``lang`` (``zh-CN`` or ``en``)."""
        if lang == "en":
            return f"{self.file}:{'-' if self.row is None else self.row}:{self.column or '-'}: {self.message_en}"
        return str(self)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "row": self.row, "column": self.column, "message": self.message,
                "message_en": self.message_en}


class CatalogImportError(GatewayError):
    """A catalog file or ERP catalog event is refused; nothing was stored.

    Args:
        problems: every problem found (up to ``MAX_PROBLEMS``), each ``file:row:column: message``.
        more: how many more were found beyond those.
    """

    def __init__(self, problems: Sequence[CatalogProblem], more: int = 0) -> None:
        self.problems = tuple(problems)
        self.more = more
        lines = [str(p) for p in self.problems] + ([f"... {more} more"] if more else [])
        super().__init__("\n".join(lines))


class _Problems:
    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[CatalogProblem] = []
        self.more = 0

    def add(self, row: int | None, column: str, code: str, /, **params: Any) -> None:
        if len(self.items) >= MAX_PROBLEMS:
            self.more += 1
            return
        zh, en = _MESSAGES[code]
        self.items.append(CatalogProblem(self.file, row, column, zh.format(**params), en.format(**params)))

    def type(self, row: int | None, column: str, expected: str) -> None:
        zh, en = _TYPES[expected]
        self.add(row, column, "type", zh=zh, en=en)

    def check(self) -> None:
        if self.items:  # row by row (stable: a row's own problems before those across rows)
            raise CatalogImportError(sorted(self.items, key=lambda p: -1 if p.row is None else p.row), self.more)


@dataclass(slots=True)
class _Draft:
    """One product as read, before the checks that look across rows."""

    row: int | None
    prefix: str  # column prefix (``products[3].`` in an ERP event)
    sku: str
    name: str = ""
    kind: str = "item"
    barcodes: list[str] = field(default_factory=list)
    weight_g: int | None = None
    parts: list[tuple[str, int]] = field(default_factory=list)
    serialised: bool = False
    stock: int | None = None

    def product(self) -> Product:
        kind: ProductKind = self.kind if self.kind in PRODUCT_KINDS else "item"
        return Product(self.sku, self.name, kind, tuple(self.barcodes), self.weight_g,
                       tuple(KitPart(s, q) for s, q in self.parts), self.serialised)


@dataclass(frozen=True, slots=True)
class ParsedCatalog:
    """A valid catalog file: its products and the stock levels it sets, in file order."""

    products: tuple[Product, ...]
    stock: tuple[StockLevel, ...]


@dataclass(frozen=True, slots=True)
class CatalogUpdate:
    """A valid ERP ``product`` or ``stock`` event."""

    products: list[Product]
    stock: list[StockLevel]
    event_id: str


def _decode(data: bytes | str, problems: _Problems) -> str:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.add(None, "", "encoding", detail=f"byte {exc.start}")
        raise CatalogImportError(problems.items) from exc


def detect_format(name: str, text: str) -> CatalogFormat:
    """``json`` for a ``.json`` name or a text starting with ``[`` / ``{``; else ``csv``."""
    if name.lower().endswith(".json") or text.lstrip("\ufeff \t\r\n")[:1] in ("[", "{"):
        return "json"
    return "csv"


def parse_catalog(path_or_text: Path | str | bytes, format: CatalogFormat | None = None, *,
                  name: str | None = None, existing: Catalog | None = None,
                  now_ms: int | None = None) -> ParsedCatalog:
    """Read and validate a catalog file.

    Args:
        path_or_text: a ``Path`` to read, or the file's content (``str`` or ``bytes``).
        format: ``csv`` or ``json``; ``None`` guesses it (``detect_format``).
        name: the file name the problems give (default: the path, or ``<catalog>``).
        existing: the tenant's catalog: kit parts may name its SKUs, its barcodes are taken.
        now_ms: the time of the stock levels it sets (default: now).

    Raises:
        CatalogImportError: every problem of the file, each with ``file:row:column``.
        OSError: the path cannot be read.
    """
    if isinstance(path_or_text, Path):
        name = name or str(path_or_text)
        path_or_text = path_or_text.read_bytes()
    problems = _Problems(name or "<catalog>")
    text = _decode(path_or_text, problems)
    fmt = format or detect_format(problems.file, text)
    drafts: list[_Draft] = []
    stock_rows: list[tuple[int, str, int]] = []
    if fmt == "json":
        _read_json(text, problems, drafts, stock_rows)
    else:
        _read_csv(text, problems, drafts)
    catalog = existing or Catalog()
    _check(drafts, catalog, problems, take_barcodes=False)
    known = {d.sku for d in drafts}
    given = {d.sku: d.row for d in drafts if d.stock is not None}
    for index, sku, _ in stock_rows:
        if sku not in known and catalog.product(sku) is None:
            problems.add(index, "stock.sku", "stock_unknown", sku=sku)
        if sku in given:
            problems.add(index, "stock.sku", "stock_twice", sku=sku)
        given[sku] = index
    problems.check()
    at_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    stock = [StockLevel(d.sku, d.stock, at_ms, "import") for d in drafts if d.stock is not None]
    stock += [StockLevel(sku, quantity, at_ms, "import") for _, sku, quantity in stock_rows]
    return ParsedCatalog(tuple(d.product() for d in drafts), tuple(stock))


def _read_csv(text: str, problems: _Problems, drafts: list[_Draft]) -> None:
    reader = csv.reader(io.StringIO(text, newline=""))
    columns: list[str] | None = None
    line = 1
    try:
        for cells in reader:
            start, line = line, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            if columns is None:
                columns = [c.strip().lower() for c in cells]
                for index, column in enumerate(columns):
                    if column not in CSV_COLUMNS:
                        problems.add(start, column, "column", name=column, known=", ".join(CSV_COLUMNS))
                    elif column in columns[:index]:
                        problems.add(start, column, "twice", name=column)
                if "sku" not in columns:
                    problems.add(start, "sku", "header")
                problems.check()
                continue
            if len(cells) > len(columns):
                problems.add(start, "", "cells")
                continue
            _csv_row(start, dict(zip(columns, (c.strip() for c in cells), strict=False)), problems, drafts)
    except csv.Error as exc:
        problems.add(line, "", "csv", detail=str(exc))
    if columns is None and not problems.items:
        problems.add(1, "", "header")


def _csv_row(row: int, cells: dict[str, str], problems: _Problems, drafts: list[_Draft]) -> None:
    draft = _Draft(row, "", cells.get("sku", ""), cells.get("name", ""), cells.get("kind", "") or "item")
    draft.barcodes = [code.strip() for code in cells.get("barcodes", "").split("|") if code.strip()]
    weight = cells.get("weight_g", "")
    if weight:
        if weight.isascii() and weight.isdigit() and len(weight) < 10:
            draft.weight_g = int(weight)
        else:
            problems.add(row, "weight_g", "weight", value=weight)
    for part in (p.strip() for p in cells.get("parts", "").split("|")):
        if part:
            sku, star, quantity = part.rpartition("*") if "*" in part else (part, "", "1")
            if not sku.strip() or not (quantity.isascii() and quantity.isdigit() and len(quantity) < 10
                                       and int(quantity) > 0):
                problems.add(row, "parts", "part" if not sku.strip() else "quantity", value=part)
                continue
            draft.parts.append((sku.strip(), int(quantity)))
    flag = cells.get("serialised", "").lower()
    if flag not in _TRUE | _FALSE:
        problems.add(row, "serialised", "flag", value=cells["serialised"])
    draft.serialised = flag in _TRUE
    stock = cells.get("stock", "")
    if stock:
        if _INTEGER.fullmatch(stock):
            draft.stock = int(stock)
        else:
            problems.add(row, "stock", "stock", value=stock)
    drafts.append(draft)


def _read_json(text: str, problems: _Problems, drafts: list[_Draft], stock_rows: list[tuple[int, str, int]]) -> None:
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        problems.add(exc.lineno, "", "json", detail=exc.msg)
        return
    products, stock = body, []
    if isinstance(body, dict):
        products, stock = body.get("products", []), body.get("stock", [])
        for key in body:
            if key not in ("products", "stock"):
                problems.add(None, key, "key", name=key, known="products, stock")
    if not isinstance(products, list) or not isinstance(stock, list):
        problems.add(None, "", "shape")
        return
    for index, entry in enumerate(products):
        draft = _json_product(entry, index, "", problems)
        if draft is not None:
            drafts.append(draft)
    for index, entry in enumerate(stock):
        level = _json_stock(entry, index, "stock.", problems, ("sku", "quantity"))
        if level is not None:
            stock_rows.append((index, level[0], level[1]))


def _json_product(entry: Any, row: int | None, prefix: str, problems: _Problems) -> _Draft | None:
    if not isinstance(entry, dict):
        problems.add(row, prefix.rstrip("."), "object")
        return None
    for key in entry:
        if key not in CSV_COLUMNS:
            problems.add(row, prefix + str(key), "key", name=key, known=", ".join(CSV_COLUMNS))
    sku = entry.get("sku")
    if isinstance(sku, int) and not isinstance(sku, bool):
        sku = str(sku)
    draft = _Draft(row, prefix, sku if isinstance(sku, str) else "")
    if sku is not None and not isinstance(sku, str):
        problems.type(row, prefix + "sku", "str")
    for key in ("name", "kind"):
        value = entry.get(key)
        if value is not None and not isinstance(value, str):
            problems.type(row, prefix + key, "str")
        elif value:
            setattr(draft, key, value)
    codes = entry.get("barcodes") or []
    if not isinstance(codes, list):
        problems.type(row, prefix + "barcodes", "list")
        codes = []
    for index, code in enumerate(codes):
        if isinstance(code, str):
            if code.strip():
                draft.barcodes.append(code.strip())
        else:
            problems.type(row, f"{prefix}barcodes[{index}]", "str")
    weight = entry.get("weight_g")
    if weight is not None:
        if isinstance(weight, int) and not isinstance(weight, bool) and 0 <= weight < 2**31:
            draft.weight_g = weight
        else:
            problems.add(row, prefix + "weight_g", "weight", value=weight)
    parts = entry.get("parts") or []
    if not isinstance(parts, list):
        problems.type(row, prefix + "parts", "list")
        parts = []
    for index, part in enumerate(parts):
        if not isinstance(part, dict) or set(part) - {"sku", "quantity"}:
            problems.add(row, f"{prefix}parts[{index}]", "part", value=part)
            continue
        part_sku, quantity = part.get("sku"), part.get("quantity", 1)
        if isinstance(part_sku, int) and not isinstance(part_sku, bool):
            part_sku = str(part_sku)
        if not isinstance(part_sku, str) or not part_sku.strip():
            problems.add(row, f"{prefix}parts[{index}].sku", "part", value=part)
        elif not isinstance(quantity, int) or isinstance(quantity, bool) or not 0 < quantity < 2**31:
            problems.add(row, f"{prefix}parts[{index}].quantity", "quantity", value=quantity)
        else:
            draft.parts.append((part_sku.strip(), quantity))
    flag = entry.get("serialised")
    if flag is not None and not isinstance(flag, bool):
        problems.type(row, prefix + "serialised", "bool")
    draft.serialised = flag is True
    stock = entry.get("stock")
    if stock is not None:
        if isinstance(stock, int) and not isinstance(stock, bool) and abs(stock) < 2**53:
            draft.stock = stock
        else:
            problems.add(row, prefix + "stock", "stock", value=stock)
    return draft


def _json_stock(entry: Any, row: int | None, prefix: str, problems: _Problems,
                keys: tuple[str, ...]) -> tuple[str, int] | None:
    if not isinstance(entry, dict):
        problems.add(row, prefix.rstrip("."), "object")
        return None
    for key in entry:
        if key not in keys:
            problems.add(row, prefix + str(key), "key", name=key, known=", ".join(keys))
    sku, quantity = entry.get("sku"), entry.get("quantity")
    if isinstance(sku, int) and not isinstance(sku, bool):
        sku = str(sku)
    if not isinstance(sku, str) or not sku.strip():
        problems.add(row, prefix + "sku", "sku")
        return None
    if not isinstance(quantity, int) or isinstance(quantity, bool) or abs(quantity) >= 2**53:
        problems.add(row, prefix + "quantity", "stock", value=quantity)
        return None
    if _BAD_SKU.search(sku.strip()) or len(sku.strip()) > 64:
        problems.add(row, prefix + "sku", "sku_chars", value=sku)
        return None
    return sku.strip(), quantity


def _check(drafts: list[_Draft], existing: Catalog, problems: _Problems, *, take_barcodes: bool) -> None:
    """The checks across rows: SKUs unique, kinds, barcodes (check digit, one SKU each),
    kit parts known, no cycles, nesting at most ``MAX_KIT_DEPTH``."""
    rows: dict[str, _Draft] = {}
    in_file = {d.sku.strip() for d in drafts}
    owners: dict[str, tuple[str, int | None]] = {}
    for draft in drafts:
        row, at = draft.row, draft.prefix
        draft.sku = draft.sku.strip()
        draft.name = " ".join(draft.name.split())
        if not draft.sku:
            problems.add(row, at + "sku", "sku")
        elif _BAD_SKU.search(draft.sku) or len(draft.sku) > 64:
            problems.add(row, at + "sku", "sku_chars", value=draft.sku)
        elif draft.sku in rows:
            problems.add(row, at + "sku", "sku_twice", sku=draft.sku, row=rows[draft.sku].row)
        else:
            rows[draft.sku] = draft
        if _CONTROL.search(draft.name) or len(draft.name) > 200:
            problems.add(row, at + "name", "text", value=draft.name[:40])
        if draft.kind not in PRODUCT_KINDS:
            problems.add(row, at + "kind", "kind", value=draft.kind)
        if draft.parts and draft.barcodes:
            problems.add(row, at + "barcodes", "kit_barcode")
        if draft.parts and draft.stock is not None:
            problems.add(row, at + "stock", "kit_stock")
        unique: list[str] = []
        for code in draft.barcodes:
            key = barcode_key(code)
            if _CONTROL.search(code) or "|" in code or len(code) > 64:
                problems.add(row, at + "barcodes", "text", value=code)
                continue
            if gtin14(code) is not None:
                try:
                    Gtin.parse(code)
                except BiipException as exc:
                    problems.add(row, at + "barcodes", "check_digit", code=code, n=len(code), detail=exc)
                    continue
            owner = owners.get(key)
            if owner is not None and owner[0] != draft.sku:
                problems.add(row, at + "barcodes", "barcode_row", code=code, sku=owner[0], row=owner[1])
                continue
            holder = existing.by_barcode(code)
            if holder is not None and holder.sku not in in_file and not take_barcodes:
                problems.add(row, at + "barcodes", "barcode_catalog", code=code, sku=holder.sku)
                continue
            if owner is None:
                owners[key] = (draft.sku, row)
                unique.append(code)
        draft.barcodes = unique
        seen: set[str] = set()
        for sku, _ in draft.parts:
            if sku in seen:
                problems.add(row, at + "parts", "part_twice", sku=sku)
            seen.add(sku)
            if sku not in in_file and existing.product(sku) is None:
                problems.add(row, at + "parts", "part_unknown", sku=sku)
    _check_nesting(rows, existing, problems)


def _check_nesting(rows: dict[str, _Draft], existing: Catalog, problems: _Problems) -> None:
    """Refuse kit cycles and kits nested deeper than ``MAX_KIT_DEPTH`` (the file's kits and
    the catalog's kits the file changes)."""
    def parts(sku: str) -> list[str]:
        draft = rows.get(sku)
        if draft is not None:
            return [s for s, _ in draft.parts]
        product = existing.product(sku)
        return [p.sku for p in product.parts] if product is not None else []

    levels: dict[str, int] = {}

    def walk(sku: str, path: list[str]) -> int:
        if sku in path:
            raise _Nesting("cycle", [*path[path.index(sku):], sku])
        if sku not in levels:
            if len(path) > MAX_KIT_DEPTH:
                raise _Nesting("deep", [*path, sku])
            below = parts(sku)
            levels[sku] = 1 + max(walk(s, [*path, sku]) for s in below) if below else 0
        if len(path) + levels[sku] > MAX_KIT_DEPTH:
            raise _Nesting("deep", [*path, sku, "..."])
        return levels[sku]

    reported: set[tuple[str, str]] = set()
    for sku in [*rows, *(p.sku for p in existing if p.parts and p.sku not in rows)]:
        try:
            walk(sku, [])
        except _Nesting as exc:
            # a catalog kit the file breaks is reported on the file's row that breaks it
            target = rows.get(sku) or next((rows[s] for s in exc.path if s in rows), None)
            if target is not None and (target.sku, exc.kind) not in reported:
                reported.add((target.sku, exc.kind))
                problems.add(target.row, target.prefix + "parts", exc.kind, path=" -> ".join(exc.path),
                             max=MAX_KIT_DEPTH)


class _Nesting(Exception):
    def __init__(self, kind: str, path: list[str]) -> None:
        super().__init__(kind)
        self.kind = kind
        self.path = path


def parse_catalog_update(body: Any, *, existing: Catalog | None = None,
                         now_ms: int | None = None) -> CatalogUpdate:
    """Read and validate an ERP catalog event.

    ``{"event_id", "type": "product", "products": [...]}`` (objects as in a JSON import) or
    ``{"event_id", "type": "stock", "stock": [{"sku", "quantity", "updated_at"?}]}``; a stock
    figure is absolute, timed by its ``updated_at``, else the event's ``occurred_at``, else
    ``now_ms`` (ISO 8601, China time without an offset, or epoch milliseconds). Other keys
    of the envelope are ignored (integrators add their own); those of a product are not.

    Args:
        body: the decoded JSON body (anything but an object is refused).
        existing: the tenant's catalog (kit parts may name its SKUs).
        now_ms: the time of a stock figure that gives none.

    Raises:
        CatalogImportError: every problem, with the key path (``products[2].barcodes[0]``).
    """
    event_id = body.get("event_id") if isinstance(body, Mapping) else None
    problems = _Problems(f"event {event_id}" if isinstance(event_id, str) and event_id else "event")
    if not isinstance(body, Mapping):
        problems.type(None, "", "object")
        problems.check()
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 128 or _CONTROL.search(event_id):
        problems.add(None, "event_id", "event", zh="event_id 必须是 1-128 个字符的字符串",
                     en="event_id must be a string of 1-128 characters")
    kind = body.get("type")
    if kind not in ("product", "stock"):
        problems.add(None, "type", "event", zh=f"type 必须是 product 或 stock，而不是 {kind!r}",
                     en=f"type must be product or stock, not {kind!r}")
        problems.check()
    key = "products" if kind == "product" else "stock"
    entries = body.get(key)
    if not isinstance(entries, list):
        problems.type(None, key, "list")
        problems.check()
    assert isinstance(entries, list)
    at_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    event_ms = _event_ms(body.get("occurred_at"), "occurred_at", problems) or at_ms
    drafts: list[_Draft] = []
    stock: list[StockLevel] = []
    for index, entry in enumerate(entries):
        where = f"{key}[{index}]."
        if kind == "product":
            draft = _json_product(entry, None, where, problems)
            if draft is not None and draft.stock is not None:
                problems.add(None, where + "stock", "event", zh="库存请用 type 为 stock 的事件发送",
                             en="send stock levels in an event of type stock")
            if draft is not None:
                drafts.append(draft)
            continue
        level = _json_stock(entry, None, where, problems, ("sku", "quantity", "updated_at"))
        if level is not None:
            updated = _event_ms(entry.get("updated_at"), where + "updated_at", problems) or event_ms
            if any(s.sku == level[0] for s in stock):
                problems.add(None, where + "sku", "stock_twice", sku=level[0])
            stock.append(StockLevel(level[0], level[1], updated, "erp"))
    _check(drafts, existing or Catalog(), problems, take_barcodes=True)
    problems.check()
    return CatalogUpdate([d.product() for d in drafts], stock, str(event_id).strip())


def _event_ms(value: Any, column: str, problems: _Problems) -> int:
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        result = parse_occurred_at(str(value), "epoch_ms")
    else:
        result = parse_occurred_at(value, "iso8601") if isinstance(value, str) else 0
    if not result:
        problems.add(None, column, "event", zh=f"{value!r} 不是时间：请用 ISO 8601 或毫秒时间戳",
                     en=f"{value!r} is not a time: give ISO 8601 or epoch milliseconds")
    return result


def claim_barcodes(existing: Catalog, products: Iterable[Product]) -> list[Product]:
    """The catalog's products that lose a barcode to ``products`` (an ERP update takes a
    barcode from its old owner), rewritten without it; store them with the update."""
    incoming = {p.sku for p in products}
    taken: dict[str, set[str]] = {}
    for product in products if isinstance(products, list) else list(products):
        for code in product.barcodes:
            holder = existing.by_barcode(code)
            if holder is not None and holder.sku not in incoming:
                taken.setdefault(holder.sku, set()).add(barcode_key(code))
    out: list[Product] = []
    for sku, keys in taken.items():
        old = existing.product(sku)
        if old is not None:
            out.append(Product(old.sku, old.name, old.kind, tuple(c for c in old.barcodes if barcode_key(c) not in keys),
                               old.weight_g, old.parts, old.serialised))
    return out


def fresher_levels(current: Mapping[str, StockLevel], incoming: Iterable[StockLevel]
                   ) -> tuple[list[StockLevel], list[str]]:
    """``(levels to store, SKUs whose figure is older than the stored one)``: an ERP may
    deliver its stock events out of order; an older figure never overwrites a newer one."""
    fresh: list[StockLevel] = []
    stale: list[str] = []
    for level in incoming:
        known = current.get(level.sku)
        if known is not None and level.updated_at_ms < known.updated_at_ms:
            stale.append(level.sku)
        else:
            fresh.append(level)
    return fresh, stale


def product_to_json(product: Product) -> dict[str, Any]:
    """A product in the import's JSON form (what ``parse_catalog`` reads back)."""
    return {"sku": product.sku, "name": product.name, "kind": product.kind, "barcodes": list(product.barcodes),
            "weight_g": product.weight_g, "parts": [{"sku": p.sku, "quantity": p.quantity} for p in product.parts],
            "serialised": product.serialised}


def catalog_to_csv(products: Iterable[Product], stock: Mapping[str, StockLevel] | None = None) -> str:
    """The products (and their stock) as an import CSV, header first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for p in products:
        level = (stock or {}).get(p.sku)
        writer.writerow([p.sku, p.name, p.kind, "|".join(p.barcodes), "" if p.weight_g is None else p.weight_g,
                         "|".join(f"{k.sku}*{k.quantity}" for k in p.parts), "1" if p.serialised else "",
                         "" if level is None else level.quantity])
    return out.getvalue()


def load_catalog(store: Store, tenant: str) -> Catalog:
    """The tenant's catalog as stored (records of kind ``product``)."""
    return Catalog(Product.from_dict(value) for _, _, value in store.iter_records("product", tenant))


def load_stock(store: Store, tenant: str) -> dict[str, StockLevel]:
    """The tenant's gift stock levels as stored (records of kind ``stock``), by SKU."""
    return {sku: StockLevel.from_dict(value) for _, sku, value in store.iter_records("stock", tenant)}


def catalog_event_seen(store: Store, tenant: str, event_id: str) -> bool:
    """True when the ERP catalog event ``event_id`` was applied (a retry is not re-applied)."""
    return store.get_record(tenant, "catalog_event", event_id) is not None


def catalog_write(tenant: str, products: Iterable[Product], stock: Iterable[StockLevel], *, actor: str,
                  note: str, now_ms: int, event_id: str = "") -> StepWrite:
    """What an import or an ERP update stores: the records and one audit record.

    Args:
        actor: who (``cli:<user>``, ``api``, ``source:erp``).
        note: what, for the audit (file name and counts).
        event_id: the ERP event's id: the event is remembered (kind ``catalog_event``) so a
            retry is answered without re-applying, and the audit names it
            (``decision`` ``catalog_update`` instead of ``catalog_import``).
    """
    write = StepWrite()
    products, stock = list(products), list(stock)
    write.records.extend((tenant, "product", p.sku, p.to_dict()) for p in products)
    write.records.extend((tenant, "stock", s.sku, s.to_dict()) for s in stock)
    if event_id:
        write.records.append((tenant, "catalog_event", event_id, {
            "event_id": event_id, "at_ms": now_ms, "products": len(products), "stock": len(stock)}))
    write.audit.append({"tenant": tenant, "at_ms": now_ms, "actor": actor, "source": "catalog",
                        "event_id": event_id, "rule": "", "order_id": "",
                        "decision": "catalog_update" if event_id else "catalog_import", "changes": [],
                        "note": note})
    return write


def packed_stock_write(tenant: str, levels: Mapping[str, StockLevel], used: Mapping[str, int],
                       now_ms: int) -> StepWrite:
    """Gift stock after a packed parcel used ``used`` (``{sku: units}``).

    Only SKUs with a level are tracked (no level: no stock guard, nothing to decrement). The
    ERP figure's ``updated_at_ms`` is kept (see the module docstring), so ``now_ms`` does not
    move the age; the level's ``source`` becomes ``packing``. No audit record: the pack
    session's close is the audited fact this follows from.
    """
    write = StepWrite()
    for sku, units in used.items():
        level = levels.get(sku)
        if level is not None and units:
            write.records.append((tenant, "stock", sku, StockLevel(
                sku, level.quantity - units, min(level.updated_at_ms, now_ms), "packing").to_dict()))
    return write


def stock_age_s(level: StockLevel, now_ms: int) -> float | None:
    """How old the level's figure is, in seconds (``None`` when its time is unknown)."""
    if level.updated_at_ms <= 0:
        return None
    return max(0.0, (now_ms - level.updated_at_ms) / 1000)


__all__ = ["CSV_COLUMNS", "MAX_PROBLEMS", "CatalogFormat", "CatalogImportError", "CatalogProblem", "CatalogUpdate",
           "ParsedCatalog", "catalog_event_seen", "catalog_to_csv", "catalog_write", "claim_barcodes",
           "detect_format", "fresher_levels", "load_catalog", "load_stock", "packed_stock_write", "parse_catalog",
           "parse_catalog_update", "product_to_json", "stock_age_s"]
