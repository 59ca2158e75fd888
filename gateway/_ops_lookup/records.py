"""The pack line's records of one order, read with point gets and selective prefixes only.

The after-sales view needs, per order: the pack sessions that packed it (their bill says
which component went into which parcel; their timeline says when each unit was scanned),
the parcel record (its waybill), the plan (gifts planned for a later parcel), the evidence
(the NVR clip and the snapshot at close) and the catalog entries of its SKUs. None of these
is found by scanning: the store answers each with a point get or a prefix that names the
order (``packline`` keyspace, ``gateway._store.base``)::

    parcel/<group_id>           get        the group's last packed parcel: session_id, waybill
    plan/<group_id>             get        gifts planned when the group became ready to pack
    evidence/<order_id>|...     prefix     one record per closed session filmed by a camera
    session/<session_id>        get        each session named by the two above
    evidence_pending/<session>  get        the clip is still being searched
    station/<name> (no tenant)  prefix     the stations' open sessions (a handful of records)
    product/<sku>               get        names and kinds of the order's SKUs (kits expanded)

Sessions are keyed by ``<station>-<opened_at_ms>``, not by order: a session that closed at a
station without a camera and is no longer its group's last parcel cannot be found from the
order (see the report: a per-order session index is recommended). Blocking reads: call from
a worker thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway._model import OrderState
from gateway._packline.session_records import read_session
from gateway._packline.values import Product
from gateway._store import Store

EVIDENCE = "evidence"
PENDING = "evidence_pending"
#: Kit nesting followed when reading products (the catalog refuses deeper kits).
_KIT_DEPTH = 4


@dataclass(frozen=True)
class PackRecords:
    """What the pack line stored about one order.

    Attributes:
        group_id: the pack group the order ships in (its own id when alone).
        sessions: session records (``PackSession.to_dict()``) that include the order,
            oldest first.
        parcel: the group's parcel record, or ``None`` before it was packed.
        plan: the group's plan record, or ``None``.
        evidence: the order's evidence records, by session id.
        pending: session ids whose evidence is still being searched.
        products: catalog products of the order's SKUs (and their kits' parts), by SKU.
    """

    group_id: str
    sessions: tuple[dict[str, Any], ...] = ()
    parcel: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None
    evidence: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    pending: frozenset[str] = frozenset()
    products: Mapping[str, Product] = field(default_factory=dict)


def open_session_ids(store: Store, tenant: str) -> list[str]:
    """The ids of ``tenant``'s sessions open at a station now (one record per station)."""
    return [record["session_id"] for _, _, record in store.iter_records("station", "")
            if record.get("tenant") == tenant and record.get("session_id")]


def read_pack_records(store: Store, tenant: str, order: OrderState, open_sessions: Iterable[str] = (),
                      products: dict[str, Product | None] | None = None) -> PackRecords:
    """Everything the pack line stored about ``order`` (see the module docstring).

    Args:
        open_sessions: ids from ``open_session_ids`` (read once per lookup, not per order).
        products: the products read so far in this lookup (a buyer's orders share their SKUs:
            each is read once per lookup); updated.
    """
    order_id = order.order_id
    group_id = order.pack_group or order_id
    parcel = store.get_record(tenant, "parcel", group_id)
    if parcel is not None and order_id not in parcel.get("order_ids", ()):
        parcel = None  # the group's parcel was packed before this order joined: not its parcel
    plan = store.get_record(tenant, "plan", group_id)
    evidence = {record["session_id"]: record
                for _, _, record in store.iter_records(EVIDENCE, tenant, id_prefix=order_id + "|")}
    wanted = [*evidence, *([parcel["session_id"]] if parcel and parcel.get("session_id") else []), *open_sessions]
    sessions: dict[str, dict[str, Any]] = {}
    for session_id in dict.fromkeys(wanted):
        record = read_session(store, tenant, session_id)
        if record is not None and order_id in record.get("orders", ()):
            sessions[session_id] = record
    pending = frozenset(session_id for session_id in sessions if session_id not in evidence
                        and store.get_record(tenant, PENDING, session_id) is not None)
    ordered = tuple(sorted(sessions.values(), key=lambda s: (int(s.get("opened_at_ms", 0)), s["session_id"])))
    return PackRecords(group_id, ordered, parcel, plan, evidence, pending,
                       read_products(store, tenant, _skus(order, ordered, plan), products))


def read_products(store: Store, tenant: str, skus: Iterable[str],
                  cache: dict[str, Product | None] | None = None) -> dict[str, Product]:
    """The catalog products of ``skus`` and, for kits, of their parts (point gets only; each
    SKU once per ``cache``, which remembers the misses too)."""
    known: dict[str, Product | None] = {} if cache is None else cache
    found: dict[str, Product] = {}
    wanted = list(dict.fromkeys(skus))
    for _ in range(_KIT_DEPTH + 1):
        parts: list[str] = []
        for sku in wanted:
            if sku in found or not sku:
                continue
            if sku in known:
                product = known[sku]
            else:
                record = store.get_record(tenant, "product", sku)
                product = known[sku] = Product.from_dict(record) if record is not None else None
            if product is not None:
                found[sku] = product
                parts.extend(part.sku for part in product.parts)
        if not parts:
            break
        wanted = parts
    return found


def _skus(order: OrderState, sessions: Iterable[Mapping[str, Any]], plan: Mapping[str, Any] | None) -> list[str]:
    """Every SKU the order's components may name: its lines, ERP gifts, gift box, planned
    gifts and the components of its sessions."""
    skus: list[str] = []
    data = order.data
    for name in ("lines", "gifts"):
        entries = data.get(name)
        if isinstance(entries, list):
            for entry in entries:
                sku = entry.get("sku") if isinstance(entry, dict) else entry
                if isinstance(sku, str):
                    skus.append(sku)
    box = data.get("gift_box")
    box_sku = box.get("sku") if isinstance(box, dict) else box
    if isinstance(box_sku, str):
        skus.append(box_sku)
    for gift in (plan or {}).get("gifts", ()):
        if isinstance(gift, dict) and gift.get("order_id") == order.order_id and isinstance(gift.get("sku"), str):
            skus.append(gift["sku"])
    for session in sessions:
        for component in session.get("bill", {}).get("components", ()):
            if component.get("order_id") == order.order_id:
                skus.append(component["sku"])
    return skus


__all__ = ["EVIDENCE", "PENDING", "PackRecords", "open_session_ids", "read_pack_records", "read_products"]
