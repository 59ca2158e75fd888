"""Customs import files read into rows, every cell checked. Pure: text in, rows and problems out.

Three kinds of file, each CSV (header first, columns in any order) or JSON (a list of
objects with the same keys, or ``{"<kind>": [...]}``); UTF-8 with or without a BOM::

    products     sku,name,category,supplier,<attribute or field>...
                 C-01,胶原蛋白饮 50ml,supplements,SUP-A,21069090,,...
    suppliers    supplier,name,<attribute or field>...
                 SUP-A,某某生物科技,true,...
    values       target,id,sku,attribute,value       (the board's "fill" file)
                 supplier,SUP-A,,contains_animal_extract,是
                 product,C-01,,hs_code,2106909090
                 order,erp|X1,C-01,specification,50ml

The master files' other columns are the configured attribute ids and the fields the fill
rules read (``CustomsConfig.record_fields``); anything else is refused (a misspelt column
must not vanish). A cell is checked against its attribute's type
(``gateway._customs.attributes``); an empty cell (JSON ``null``) clears the stored value. A
row updates only the columns its file has: a file of two columns leaves the record's other
values as they are.

The values file's ``orders`` and ``label`` columns are for people (the board's export fills
them in: which orders wait for the value, what it is) and are not read. A values row puts one
value where the board says it belongs: on a product or supplier
record (``attribute`` is an attribute id or a field a rule reads from that kind of record),
or on one line (``sku``) of one order; ``product,<sku>,,supplier,<supplier id>`` names a
product's supplier (what a supplier's fill rule needs first). Whether the order and the line exist is checked
against the store by ``gateway._customs.records``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from gateway._customs.attributes import Value
from gateway._customs.config import CustomsConfig
from gateway._customs.problems import CustomsImportError, Problems

MasterKind = Literal["products", "suppliers"]
Target = Literal["product", "supplier", "order"]
KEY_COLUMN: dict[MasterKind, str] = {"products": "sku", "suppliers": "supplier"}
_PLAIN: dict[MasterKind, tuple[str, ...]] = {"products": ("sku", "name", "category", "supplier"),
                                             "suppliers": ("supplier", "name")}
VALUE_COLUMNS = ("target", "id", "sku", "attribute", "value", "orders", "label")
_TARGETS: tuple[Target, ...] = ("product", "supplier", "order")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class MasterRow:
    """One product or supplier row: ``key`` (the SKU or supplier id), the plain columns
    (``name``, ``category``, ``supplier``) and the declaration fields it sets (``None``: clear)."""

    row: int
    key: str
    plain: dict[str, str] = field(default_factory=dict)
    fields: dict[str, Value | None] = field(default_factory=dict)


@dataclass(frozen=True)
class ValueRow:
    """One row of a values file: ``value`` for ``attribute`` of ``target`` ``id`` (``sku``: the
    order's line when the target is an order)."""

    row: int
    target: Target
    id: str
    sku: str
    attribute: str
    value: Value


def decode(data: bytes | str, problems: Problems) -> str:
    """The file's text (a BOM dropped); bytes that are not UTF-8 raise at once."""
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.add(None, "", "encoding", detail=f"byte {exc.start}")
        raise CustomsImportError(problems.items) from exc


def is_json(name: str, text: str) -> bool:
    """True for a ``.json`` name or a text starting with ``[`` / ``{``."""
    return name.lower().endswith(".json") or text.lstrip(" \t\r\n")[:1] in ("[", "{")


def csv_rows(text: str, problems: Problems, columns: Iterable[str], required: str
             ) -> list[tuple[int, dict[str, str]]]:
    """``(line, {column: cell})`` of each non-blank CSV row (header first; cells stripped)."""
    known = tuple(columns)
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows: list[tuple[int, dict[str, str]]] = []
    line = 1
    try:
        for cells in reader:
            start, line = line, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header = [c.strip().lower() for c in cells]
                for index, column in enumerate(header):
                    if column not in known:
                        problems.add(start, column, "column", name=column, known=", ".join(known))
                    elif column in header[:index]:
                        problems.add(start, column, "twice", name=column)
                if required not in header:
                    problems.add(start, required, "header", required=required)
                problems.check()
                continue
            if len(cells) > len(header):
                problems.add(start, "", "cells")
                continue
            rows.append((start, dict(zip(header, (c.strip() for c in cells), strict=False))))
    except csv.Error as exc:
        problems.add(line, "", "csv", detail=str(exc))
    if header is None and not problems.items:
        problems.add(1, "", "header", required=required)
    return rows


def json_rows(text: str, problems: Problems, key: str, columns: Iterable[str]) -> list[tuple[int, dict[str, Any]]]:
    """``(index, object)`` of each entry of a JSON list (or of ``{key: [...]}``); unknown keys refused."""
    known = tuple(columns)
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        problems.add(exc.lineno, "", "json", detail=exc.msg)
        return []
    if isinstance(body, dict) and set(body) == {key}:
        body = body[key]
    if not isinstance(body, list):
        problems.add(None, "", "shape", key=key)
        return []
    rows: list[tuple[int, dict[str, Any]]] = []
    for index, entry in enumerate(body):
        if not isinstance(entry, dict):
            problems.add(index, "", "object")
            continue
        for name in entry:
            if name not in known:
                problems.add(index, str(name), "key", name=name, known=", ".join(known))
        rows.append((index, entry))
    return rows


def _key(row: int, column: str, raw: Any, problems: Problems, required: bool = True) -> str | None:
    """An id cell (SKU, supplier, order id): text (a JSON number reads as its digits)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if required:
            problems.add(row, column, "required", name=column)
        return None if required else ""
    if not isinstance(raw, str):
        problems.add(row, column, "text_type")
        return None
    text = raw.strip()
    if _CONTROL.search(text) or len(text) > 64:
        problems.add(row, column, "id_chars", name=column, value=text)
        return None
    return text


def parse_master(data: bytes | str, kind: MasterKind, config: CustomsConfig, *, name: str = "<upload>"
                 ) -> list[MasterRow]:
    """A products or suppliers file as rows, every problem raised at once.

    Raises:
        CustomsImportError: every problem, each naming ``file:row:column``; nothing to store.
    """
    problems = Problems(name)
    text = decode(data, problems)
    key_column = KEY_COLUMN[kind]
    source = "product" if kind == "products" else "supplier"
    fields = config.record_fields(source)
    columns = (*_PLAIN[kind], *fields)
    raw_rows: list[tuple[int, dict[str, Any]]] = (json_rows(text, problems, kind, columns) if is_json(name, text)
                                                  else csv_rows(text, problems, columns, key_column))
    rows: list[MasterRow] = []
    seen: dict[str, int] = {}
    for row, cells in raw_rows:
        key = _key(row, key_column, cells.get(key_column), problems)
        plain: dict[str, str] = {}
        for column in _PLAIN[kind][1:]:
            if column in cells:
                value = _key(row, column, cells[column], problems, required=False) if column == "supplier" else (
                    cells[column])
                if value is not None and not isinstance(value, str):
                    problems.add(row, column, "text_type")
                elif value is not None:
                    plain[column] = value.strip()
        values: dict[str, Value | None] = {}
        for column in fields:
            if column not in cells:
                continue
            raw = cells[column]
            if raw is not None and not isinstance(raw, str | int | float | bool):
                problems.add(row, column, "field", name=column)
                continue
            attribute = config.field_attribute(source, column)
            assert attribute is not None  # every field is an attribute's or a rule's
            checked, why = attribute.check(raw)
            if why is not None:
                problems.add(row, column, "value", label=attribute.label, label_en=attribute.label_en,
                             zh=why[0], en=why[1])
            else:
                values[column] = checked
        if key is None:
            continue
        if key in seen:
            problems.add(row, key_column, "id_twice", name=key_column, value=key, row=seen[key])
            continue
        seen[key] = row
        rows.append(MasterRow(row, key, plain, values))
    problems.check()
    return rows


def parse_values(data: bytes | str, config: CustomsConfig, *, name: str = "<upload>",
                 problems: Problems | None = None) -> list[ValueRow]:
    """A values file (the board's fill file) as rows, every problem raised at once.

    Args:
        problems: collect the problems here and leave raising them to the caller (who checks
            the rows against the store first: ``gateway._customs.records.apply_values``).

    Raises:
        CustomsImportError: every problem, each naming ``file:row:column``; nothing to store.
    """
    own = problems is None
    problems = Problems(name) if problems is None else problems
    text = decode(data, problems)
    raw_rows = (json_rows(text, problems, "values", VALUE_COLUMNS) if is_json(name, text)
                else csv_rows(text, problems, VALUE_COLUMNS, "target"))
    rows: list[ValueRow] = []
    for row, cells in raw_rows:
        target = cells.get("target")
        if target not in _TARGETS:
            problems.add(row, "target", "target", value=target)
            continue
        record_id = _key(row, "id", cells.get("id"), problems)
        sku = _key(row, "sku", cells.get("sku"), problems, required=target == "order")
        name_of = cells.get("attribute")
        if target == "product" and name_of == "supplier":  # name the product's supplier
            supplier = _key(row, "value", cells.get("value"), problems)
            if record_id is not None and supplier is not None:
                rows.append(ValueRow(row, target, record_id, sku or "", "supplier", supplier))
            continue
        attribute = config.field_attribute("supplier" if target == "supplier" else "product",
                                           name_of) if isinstance(name_of, str) else None
        if target == "order" and attribute is not None and name_of not in config.attributes:
            attribute = None  # an order line takes attribute ids only
        if attribute is None:
            problems.add(row, "attribute", "attribute", value=name_of, known=", ".join(config.attributes))
            continue
        value, why = attribute.check(cells.get("value"))
        if why is not None:
            problems.add(row, "value", "value", label=attribute.label, label_en=attribute.label_en, zh=why[0],
                         en=why[1])
        elif value is None:
            problems.add(row, "value", "required", name="value")
        elif record_id is not None and sku is not None and isinstance(name_of, str):
            rows.append(ValueRow(row, target, record_id, sku, name_of, value))
    if own:
        problems.check()
    return rows


__all__ = ["KEY_COLUMN", "VALUE_COLUMNS", "MasterKind", "MasterRow", "Target", "ValueRow", "csv_rows", "decode",
           "is_json", "json_rows", "parse_master", "parse_values"]
