"""The catalog and gift stock in the store: their records, what an update writes, what packing uses.

Records (pack-line keyspace): kind ``product`` (id = SKU), kind ``stock`` (id = SKU) and, for
an ERP event, kind ``catalog_event`` (id = its event id: a retry is answered, not re-applied);
an import or update adds one audit record. ``load_catalog`` / ``load_stock`` /
``catalog_event_seen`` read a store (blocking); the rest are pure and return a ``StepWrite``
or values.

* An ERP update takes a barcode from its old owner (the ERP is the master): the old owner is
  rewritten without it (``claim_barcodes``) and stored with the update.
* An ERP stock figure older than the stored one (``updated_at``) is ignored as out of order
  (``fresher_levels``).
* ``packed_stock_write`` keeps ``updated_at_ms`` of the ERP figure it decrements: the age
  shown is how old the ERP's count is, which is what an operator must judge; the level's
  ``source`` says ``packing`` once a parcel has used some.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gateway._packline.values import Catalog, Product, StockLevel, barcode_key
from gateway._store import StepWrite, Store


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


__all__ = ["catalog_event_seen", "catalog_write", "claim_barcodes", "fresher_levels", "load_catalog", "load_stock",
           "packed_stock_write", "stock_age_s"]
