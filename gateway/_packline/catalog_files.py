"""Catalog files: CSV and JSON read into product drafts (and written back), each cell checked.

In: a catalog file's bytes or text (UTF-8 with or without BOM). Out: ``ProductDraft`` values
and stock rows, each problem of a cell added to a ``Problems``; the checks that look across
rows (SKUs unique, barcodes, kit parts) are ``gateway._packline.catalog``'s.

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

Unknown CSV columns and JSON keys are refused (a misspelt ``weigth_g`` must not vanish); a
JSON SKU may be a number; barcodes must be strings in JSON (a number loses its leading zeros).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from gateway._packline.catalog_problems import CatalogImportError, Problems
from gateway._packline.values import PRODUCT_KINDS, KitPart, Product, ProductKind, StockLevel

CatalogFormat = Literal["csv", "json"]
CSV_COLUMNS = ("sku", "name", "kind", "barcodes", "weight_g", "parts", "serialised", "stock")
_TRUE = frozenset({"1", "true", "yes", "y", "是"})
_FALSE = frozenset({"", "0", "false", "no", "n", "否"})
BAD_SKU = re.compile(r"[\x00-\x1f\x7f|*]")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_INTEGER = re.compile(r"[+-]?[0-9]{1,15}")


@dataclass(slots=True)
class ProductDraft:
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
        """The draft as a ``Product`` (after the checks: an unknown kind reads as ``item``)."""
        kind: ProductKind = self.kind if self.kind in PRODUCT_KINDS else "item"
        return Product(self.sku, self.name, kind, tuple(self.barcodes), self.weight_g,
                       tuple(KitPart(s, q) for s, q in self.parts), self.serialised)



def decode_catalog(data: bytes | str, problems: Problems) -> str:
    """The file's text (a BOM dropped); bytes that are not UTF-8 raise at once."""
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



def read_csv(text: str, problems: Problems, drafts: list[ProductDraft]) -> None:
    """Each row of a CSV catalog (header first) as a draft in ``drafts``; cell problems to ``problems``."""
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


def _csv_row(row: int, cells: dict[str, str], problems: Problems, drafts: list[ProductDraft]) -> None:
    draft = ProductDraft(row, "", cells.get("sku", ""), cells.get("name", ""), cells.get("kind", "") or "item")
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


def read_json(text: str, problems: Problems, drafts: list[ProductDraft], stock_rows: list[tuple[int, str, int]]) -> None:
    """A JSON catalog's products to ``drafts`` and its ``stock`` entries to ``stock_rows``."""
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
        draft = json_product(entry, index, "", problems)
        if draft is not None:
            drafts.append(draft)
    for index, entry in enumerate(stock):
        level = json_stock(entry, index, "stock.", problems, ("sku", "quantity"))
        if level is not None:
            stock_rows.append((index, level[0], level[1]))


def _json_object(entry: Any, row: int | None, prefix: str, problems: Problems,
                 keys: Sequence[str]) -> dict[str, Any] | None:
    """``entry`` when it is a JSON object, each key not in ``keys`` a problem; else ``None``."""
    if not isinstance(entry, dict):
        problems.add(row, prefix.rstrip("."), "object")
        return None
    for key in entry:
        if key not in keys:
            problems.add(row, prefix + str(key), "key", name=key, known=", ".join(keys))
    return entry


def _sku_text(value: Any) -> Any:
    """A JSON SKU given as a number read as its text (``1002`` -> ``"1002"``); else as it is."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def json_product(raw: Any, row: int | None, prefix: str, problems: Problems) -> ProductDraft | None:
    """One JSON product object (of a file, or ``products[i]`` of an ERP event) as a draft."""
    entry = _json_object(raw, row, prefix, problems, CSV_COLUMNS)
    if entry is None:
        return None
    sku = _sku_text(entry.get("sku"))
    draft = ProductDraft(row, prefix, sku if isinstance(sku, str) else "")
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
        part_sku, quantity = _sku_text(part.get("sku")), part.get("quantity", 1)
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


def json_stock(raw: Any, row: int | None, prefix: str, problems: Problems,
               keys: tuple[str, ...]) -> tuple[str, int] | None:
    """One JSON stock object as ``(sku, quantity)``; ``keys`` are the keys it may have."""
    entry = _json_object(raw, row, prefix, problems, keys)
    if entry is None:
        return None
    sku, quantity = _sku_text(entry.get("sku")), entry.get("quantity")
    if not isinstance(sku, str) or not sku.strip():
        problems.add(row, prefix + "sku", "sku")
        return None
    if not isinstance(quantity, int) or isinstance(quantity, bool) or abs(quantity) >= 2**53:
        problems.add(row, prefix + "quantity", "stock", value=quantity)
        return None
    if BAD_SKU.search(sku.strip()) or len(sku.strip()) > 64:
        problems.add(row, prefix + "sku", "sku_chars", value=sku)
        return None
    return sku.strip(), quantity


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


__all__ = ["BAD_SKU", "CONTROL", "CSV_COLUMNS", "CatalogFormat", "ProductDraft", "catalog_to_csv", "decode_catalog",
           "detect_format", "json_product", "json_stock", "product_to_json", "read_csv", "read_json"]
