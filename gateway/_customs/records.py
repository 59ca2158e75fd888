"""The customs records in the store: master data, imported values, holds, forwarded declarations.

Records (pack-line keyspace, the catalog's pattern: ``gateway._packline.catalog_store``)::

    (T, "customs_product",  <sku>)        {"sku", "name", "category", "supplier", "fields": {...}}
    (T, "customs_supplier", <supplier>)   {"supplier", "name", "fields": {...}}
    (T, "customs_value",    <order_id>)   {"order_id", "lines": {sku: {attribute: value}}}
    (T, "customs_hold",     <order_id>)   the order held for its declaration (the anomaly board)
    (T, "declaration",      <order_id>)   the declaration forwarded last: {"digest", "at_ms", ...}

An import writes its records and one audit record (decision ``customs_import``) in one batch;
with them, for every open cross-border order the import completes, the ``declaration`` record
and the ``declaration`` event (``gateway._customs.declare.declaration_event``) for the
pipeline, so the forwarded declaration and the data that completed it are durable together.
Reads here are blocking (``trio.to_thread`` them); the ``*_write`` functions are pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway._customs.attributes import Value
from gateway._customs.config import CustomsConfig
from gateway._customs.declare import (
    OPEN_STATUSES,
    Declaration,
    cross_border,
    declaration_event,
    declare,
    order_lines,
)
from gateway._customs.master import MasterKind, MasterRow, ValueRow
from gateway._customs.problems import CustomsImportError, Problems
from gateway._model import Event, OrderState
from gateway._store import StepWrite, Store

PRODUCT = "customs_product"
SUPPLIER = "customs_supplier"
VALUES = "customs_value"
HOLD = "customs_hold"
DECLARATION = "declaration"
_KIND: dict[MasterKind, str] = {"products": PRODUCT, "suppliers": SUPPLIER}


@dataclass
class MasterData:
    """A tenant's master records and imported values, as read (or as an import would leave them)."""

    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    suppliers: dict[str, dict[str, Any]] = field(default_factory=dict)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)  # order_id -> record

    def line_values(self, order_id: str) -> dict[str, dict[str, Value]]:
        return dict((self.values.get(order_id) or {}).get("lines") or {})


def load_master(store: Store, tenant: str) -> MasterData:
    """Every customs product, supplier and value record of ``tenant``."""
    return MasterData({key: value for _, key, value in store.iter_records(PRODUCT, tenant)},
                      {key: value for _, key, value in store.iter_records(SUPPLIER, tenant)},
                      {key: value for _, key, value in store.iter_records(VALUES, tenant)})


def declare_stored(store: Store, config: CustomsConfig, order: OrderState) -> Declaration | None:
    """The declaration of one order, reading only the records it needs (the pack station's path)."""
    if not config.enabled or cross_border(order.data, config.cross_border) is None:
        return None  # a domestic order (most of them): no record read on the pack line's path
    products: dict[str, dict[str, Any]] = {}
    suppliers: dict[str, dict[str, Any]] = {}
    for sku, _, _ in order_lines(order):
        product = store.get_record(order.tenant, PRODUCT, sku)
        if product is not None:
            products[sku] = product
            supplier_id = str(product.get("supplier") or "")
            supplier = store.get_record(order.tenant, SUPPLIER, supplier_id) if supplier_id else None
            if supplier is not None:
                suppliers[supplier_id] = supplier
    values = store.get_record(order.tenant, VALUES, order.order_id) or {}
    return declare(order, config, products, suppliers, values.get("lines") or {})


def open_orders(store: Store, tenant: str) -> Iterator[OrderState]:
    """The tenant's orders still to be packed (a full scan of its orders)."""
    for _, raw in store.iter_raw_orders(tenant):
        order = OrderState.from_dict(orjson.loads(raw))
        if order.status in OPEN_STATUSES:
            yield order


def board(store: Store, config: CustomsConfig, tenant: str, master: MasterData | None = None
          ) -> list[Declaration]:
    """Every open cross-border order's declaration (complete or not), oldest order first."""
    if not config.enabled:
        return []
    data = master or load_master(store, tenant)
    found: list[tuple[int, Declaration]] = []
    for order in open_orders(store, tenant):
        declaration = declare(order, config, data.products, data.suppliers, data.line_values(order.order_id))
        if declaration is not None:
            found.append((order.created_at_ms, declaration))
    return [d for _, d in sorted(found, key=lambda pair: (pair[0], pair[1].order_id))]


def apply_master(master: MasterData, kind: MasterKind, rows: Iterable[MasterRow]) -> list[dict[str, Any]]:
    """The records ``rows`` leave (each row's columns over the stored record), also set in ``master``."""
    table = master.products if kind == "products" else master.suppliers
    key_name = "sku" if kind == "products" else "supplier"
    out = []
    for row in rows:
        old: dict[str, Any] = table.get(row.key) or {key_name: row.key, "name": "", "fields": {}}
        record: dict[str, Any] = {**old, **row.plain, key_name: row.key}
        fields = {**(old.get("fields") or {}), **row.fields}
        record["fields"] = {k: v for k, v in fields.items() if v is not None}
        table[row.key] = record
        out.append(record)
    return out


def apply_values(store: Store, master: MasterData, tenant: str, rows: Iterable[ValueRow], name: str,
                 problems: Problems | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    """The records a values file leaves (``(kind, id, record)``), also set in ``master``.

    Args:
        problems: the file's problems so far (``parse_values``): raised with these.

    Raises:
        CustomsImportError: every problem: the file's, and each order row that names an
            unknown order or a SKU not on it.
    """
    problems = Problems(name) if problems is None else problems
    changed: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        if row.target == "order":
            order = store.get_order(tenant, row.id)
            if order is None:
                problems.add(row.row, "id", "order_unknown", value=row.id)
                continue
            if row.sku not in {sku for sku, _, _ in order_lines(order)}:
                problems.add(row.row, "sku", "sku_not_in_order", order=row.id, sku=row.sku)
                continue
            record = master.values.get(row.id) or {"order_id": row.id, "lines": {}}
            lines = {sku: dict(v) for sku, v in (record.get("lines") or {}).items()}
            lines.setdefault(row.sku, {})[row.attribute] = row.value
            master.values[row.id] = record = {"order_id": row.id, "lines": lines}
            changed[(VALUES, row.id)] = record
            continue
        kind: MasterKind = "products" if row.target == "product" else "suppliers"
        plain = (MasterRow(row.row, row.id, {"supplier": str(row.value)}) if row.attribute == "supplier"
                 and row.target == "product" else MasterRow(row.row, row.id, {}, {row.attribute: row.value}))
        changed[(_KIND[kind], row.id)] = apply_master(master, kind, [plain])[0]
    problems.check()
    return [(kind, record_id, record) for (kind, record_id), record in changed.items()]


def import_write(tenant: str, records: Iterable[tuple[str, str, dict[str, Any]]], *, actor: str, note: str,
                 now_ms: int) -> StepWrite:
    """The records of an import and its audit record (decision ``customs_import``)."""
    write = StepWrite(records=[(tenant, kind, record_id, record) for kind, record_id, record in records])
    write.audit.append({"tenant": tenant, "at_ms": now_ms, "actor": actor, "source": "customs", "event_id": "",
                        "rule": "", "order_id": "", "decision": "customs_import", "changes": [], "note": note})
    return write


def completions(store: Store, config: CustomsConfig, tenant: str, master: MasterData, at_ms: int,
                actor: str = "") -> tuple[list[Event], StepWrite, list[Declaration]]:
    """What the master data in ``master`` completes: for every open cross-border order whose
    declaration is complete and not yet forwarded as it is, its ``declaration`` event and
    record; also every declaration (for the counts)."""
    events: list[Event] = []
    write = StepWrite()
    declarations = board(store, config, tenant, master)
    for declaration in declarations:
        if declaration.complete:
            forwarded = declaration_forward(store, declaration, at_ms, actor)
            if forwarded is not None:
                events.append(forwarded[0])
                write.merge(forwarded[1])
    return events, write, declarations


def declaration_forward(store: Store, declaration: Declaration, at_ms: int, actor: str = ""
                        ) -> tuple[Event, StepWrite] | None:
    """The event and record that forward a complete declaration; ``None`` when this very
    declaration was forwarded already (same digest)."""
    digest = declaration.digest
    known = store.get_record(declaration.tenant, DECLARATION, declaration.order_id)
    if known is not None and known.get("digest") == digest:
        return None
    event = declaration_event(declaration, at_ms, at_ms, actor)
    record = {"order_id": declaration.order_id, "digest": digest, "at_ms": at_ms, "event_id": f"{event.fingerprint:016x}",
              "destination": declaration.destination, "lines": [dict(line) for line in declaration.lines]}
    return event, StepWrite(records=[(declaration.tenant, DECLARATION, declaration.order_id, record)])


def hold_record(declaration: Declaration, group_id: str, at_ms: int, station: str = "") -> dict[str, Any]:
    """The ``customs_hold`` record of an order held for its declaration."""
    return {"order_id": declaration.order_id, "group_id": group_id, "at_ms": at_ms, "station": station,
            "missing": [{"sku": n.sku, "attribute": n.attribute, "fill_target": n.fill_kind, "fill_id": n.fill_id,
                         "field": n.field} for n in declaration.missing]}


def hold_writes(store: Store, declarations: Iterable[Declaration], group_id: str, at_ms: int,
                station: str = "") -> StepWrite:
    """``customs_hold`` records for the incomplete ``declarations`` not already held (the first
    hold's time is kept: the anomaly's age counts from it)."""
    write = StepWrite()
    for declaration in declarations:
        if declaration.complete:
            continue
        known = store.get_record(declaration.tenant, HOLD, declaration.order_id)
        done = store.get_record(declaration.tenant, DECLARATION, declaration.order_id)
        if known is None or (done is not None and int(done.get("at_ms", 0)) >= int(known.get("at_ms", 0))):
            write.records.append((declaration.tenant, HOLD, declaration.order_id,
                                  hold_record(declaration, group_id, at_ms, station)))
    return write


def master_counts(master: Mapping[str, Any], rows: list[MasterRow]) -> dict[str, int]:
    """``{"rows", "new", "updated"}`` of a master import against the records before it."""
    new = sum(1 for r in rows if r.key not in master)
    return {"rows": len(rows), "new": new, "updated": len(rows) - new}


__all__ = ["DECLARATION", "HOLD", "PRODUCT", "SUPPLIER", "VALUES", "CustomsImportError", "MasterData", "apply_master",
           "apply_values", "board", "completions", "declaration_forward", "declare_stored", "hold_record",
           "hold_writes", "import_write", "load_master", "master_counts", "open_orders"]
