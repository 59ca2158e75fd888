"""The catalog and gift stock: import files, ERP updates, and their records in the store.

In: a catalog file (CSV or JSON, UTF-8 with or without BOM) or an ERP ``product`` / ``stock``
event. Out: validated ``Product`` and ``StockLevel`` values, and the ``StepWrite`` that stores
them as pack-line records (kind ``product``, id = SKU; kind ``stock``, id = SKU) with one audit
record. Parsing and validation are pure; only ``load_catalog`` / ``load_stock`` read a store.

The file formats (CSV, JSON) are read by ``gateway._packline.catalog_files``; every problem is
named and told (``file:row:column``, zh-CN with an English twin) by
``gateway._packline.catalog_problems``; the records by ``gateway._packline.catalog_store``. This
module reads a whole file or ERP event and checks it across rows; its names are the catalog's API.

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
* What an import or update stores, and what packing uses, is ``gateway._packline.catalog_store``
  (re-exported here).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biip import BiipException
from biip.gtin import Gtin

from gateway._packline.catalog_files import (
    BAD_SKU,
    CONTROL,
    CSV_COLUMNS,
    CatalogFormat,
    ProductDraft,
    catalog_to_csv,
    decode_catalog,
    detect_format,
    json_product,
    json_stock,
    product_to_json,
    read_csv,
    read_json,
)
from gateway._packline.catalog_problems import MAX_PROBLEMS, CatalogImportError, CatalogProblem, Problems
from gateway._packline.catalog_store import (
    catalog_event_seen,
    catalog_write,
    claim_barcodes,
    fresher_levels,
    load_catalog,
    load_stock,
    packed_stock_write,
    stock_age_s,
)
from gateway._packline.values import (
    MAX_KIT_DEPTH,
    PRODUCT_KINDS,
    Catalog,
    Product,
    StockLevel,
    barcode_key,
    gtin14,
)
from gateway._times import parse_occurred_at


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
    problems = Problems(name or "<catalog>")
    text = decode_catalog(path_or_text, problems)
    fmt = format or detect_format(problems.file, text)
    drafts: list[ProductDraft] = []
    stock_rows: list[tuple[int, str, int]] = []
    if fmt == "json":
        read_json(text, problems, drafts, stock_rows)
    else:
        read_csv(text, problems, drafts)
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


def _check(drafts: list[ProductDraft], existing: Catalog, problems: Problems, *, take_barcodes: bool) -> None:
    """The checks across rows: SKUs unique, kinds, barcodes (check digit, one SKU each),
    kit parts known, no cycles, nesting at most ``MAX_KIT_DEPTH``."""
    rows: dict[str, ProductDraft] = {}
    in_file = {d.sku.strip() for d in drafts}
    owners: dict[str, tuple[str, int | None]] = {}
    for draft in drafts:
        row, at = draft.row, draft.prefix
        draft.sku = draft.sku.strip()
        draft.name = " ".join(draft.name.split())
        if not draft.sku:
            problems.add(row, at + "sku", "sku")
        elif BAD_SKU.search(draft.sku) or len(draft.sku) > 64:
            problems.add(row, at + "sku", "sku_chars", value=draft.sku)
        elif draft.sku in rows:
            problems.add(row, at + "sku", "sku_twice", sku=draft.sku, row=rows[draft.sku].row)
        else:
            rows[draft.sku] = draft
        if CONTROL.search(draft.name) or len(draft.name) > 200:
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
            if CONTROL.search(code) or "|" in code or len(code) > 64:
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


def _check_nesting(rows: dict[str, ProductDraft], existing: Catalog, problems: Problems) -> None:
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
    problems = Problems(f"event {event_id}" if isinstance(event_id, str) and event_id else "event")
    if not isinstance(body, Mapping):
        problems.type(None, "", "object")
        problems.check()
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 128 or CONTROL.search(event_id):
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
    drafts: list[ProductDraft] = []
    stock: list[StockLevel] = []
    for index, entry in enumerate(entries):
        where = f"{key}[{index}]."
        if kind == "product":
            draft = json_product(entry, None, where, problems)
            if draft is not None and draft.stock is not None:
                problems.add(None, where + "stock", "event", zh="库存请用 type 为 stock 的事件发送",
                             en="send stock levels in an event of type stock")
            if draft is not None:
                drafts.append(draft)
            continue
        level = json_stock(entry, None, where, problems, ("sku", "quantity", "updated_at"))
        if level is not None:
            updated = _event_ms(entry.get("updated_at"), where + "updated_at", problems) or event_ms
            if any(s.sku == level[0] for s in stock):
                problems.add(None, where + "sku", "stock_twice", sku=level[0])
            stock.append(StockLevel(level[0], level[1], updated, "erp"))
    _check(drafts, existing or Catalog(), problems, take_barcodes=True)
    problems.check()
    return CatalogUpdate([d.product() for d in drafts], stock, str(event_id).strip())


def _event_ms(value: Any, column: str, problems: Problems) -> int:
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


__all__ = ["CSV_COLUMNS", "MAX_PROBLEMS", "CatalogFormat", "CatalogImportError", "CatalogProblem", "CatalogUpdate",
           "ParsedCatalog", "catalog_event_seen", "catalog_to_csv", "catalog_write", "claim_barcodes",
           "detect_format", "fresher_levels", "load_catalog", "load_stock", "packed_stock_write", "parse_catalog",
           "parse_catalog_update", "product_to_json", "stock_age_s"]
