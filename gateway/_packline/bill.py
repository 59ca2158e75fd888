"""The expected bill of a pack group: what must be in the parcel, unit by unit, and whose it is.

``build_bill`` turns the group's orders, the catalog, the gift rules' grants and the gift stock
into a ``Bill`` (``gateway._packline.values``): one ``BillComponent`` per scannable SKU of every
source, each tied to its order. Pure: values in, values out.

Sources, in the order their components are numbered (per order, members in group order,
primary first)::

    data["lines"]     {"sku", "qty"|"quantity"}  -> origin "line", or "kit:<KIT SKU>" per kit part
    data["gifts"]     SKUs or {"sku", "qty"}     -> origin "erp_gift"   (kind gift)
    data["gift_box"]  a SKU (or {"sku", ...})    -> origin "gift_box"   (kind gift_box)
    grants            GiftGrant of the rules     -> origin "gift:<rule>"

Component ids are ``"<order_id>#<n>"``, ``n`` counting from 1 per order in that fixed order:
an order's own lines first, so their ids never depend on which gifts the rules granted;
grants sorted by (rule, SKU) so the rules' evaluation order does not matter either. A refunded
line keeps its components (status ``removed``) instead of vanishing, so a refund never shifts
the ids after it. Rebuilding the bill from the same inputs gives the same ids: a session
restored after a restart, or an after-sales lookup, finds its components again.

Decisions where the ERP data is loose:

* A line without an SKU (a fee, a service line) has nothing to pack and is skipped; a
  quantity that is missing reads as 1, one that is not a positive whole number skips the line.
* Kinds: an order line and a kit part take the catalog's kind; a part of a gift, gift box or
  trial kit whose own kind is ``item`` takes the kit's kind (a trial kit of plain sachets is
  still a trial). ERP gifts are ``gift`` and grants ``gift`` unless the catalog says
  ``gift_box`` or ``trial``; the ERP's gift box is always ``gift_box``.
* An SKU the catalog does not know is still a component (name ``""``; kind ``item`` for an
  order line, ``gift`` / ``gift_box`` where the ERP or a rule named it a gift): it can never
  be scanned OK, so the close stops at ``MISSING`` until it is scanned after a catalog
  update or a supervisor forces the close. ``unknown_skus`` lists them for the station to show
  when the session opens.
* Parcels: 1 is the parcel packed now. A line (or gift) with ``"ship": "later"`` and a grant
  with ``ships="later"`` go to one shared "later" parcel; ``"parcel": N`` (N > 1, a pre-sale
  batch) to batch N's parcel; ``"ship": "separate"`` (a trial kit with its own waybill) to a
  parcel of its own. Later parcels are numbered 2, 3, ... in order of first appearance in the
  component order above. An unrecognised ``ship`` value reads as "now": a packer would rather
  see an item expected than lose it.
* Refunds: a line with ``"refund": true`` or ``"refund_status"`` ``refunding`` / ``refunded``
  gives ``removed`` components. Gifts granted because of that line are the gift rules' to
  withdraw (they re-grant); this module does not guess.
* Shortfalls: for the gift, gift box and trial components of parcel 1 (not removed), the
  units needed per SKU are compared with ``stock[sku].quantity`` (a negative figure counts
  as 0 on hand). An SKU with no stock figure is NOT a shortfall: we only know what the ERP
  told us, and holding every parcel whose gift the ERP never reported would stop the line.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

from gateway._model import OrderState
from gateway._packline.values import Bill, BillComponent, Catalog, GiftGrant, ProductKind, StockLevel

#: Kinds whose stock the bill checks (sold goods are the ERP's allocation, not ours).
STOCK_CHECKED_KINDS: frozenset[str] = frozenset({"gift", "gift_box", "trial"})
_REFUND_STATUSES = frozenset({"refunding", "refunded"})

#: A parcel key before numbering: "now", "later", "batch:<N>" or "separate:<order>#<n>".
_NOW = "now"


def build_bill(group_id: str, orders: Sequence[OrderState], catalog: Catalog, grants: Sequence[GiftGrant],
               stock: Mapping[str, StockLevel] | None) -> Bill:
    """The expected bill of one pack group (all of it: parcel 1 and the later parcels).

    Args:
        group_id: the pack group's id (its primary order id).
        orders: the members, primary first; merged orders pack into one parcel.
        catalog: the tenant's catalog (names, kinds, kits).
        grants: the gift rules' grants for these orders.
        stock: the gift stock as last known, or ``None`` to skip the stock check.

    Returns:
        The bill, every component ``pending`` (or ``removed`` for a refunded line).

    Raises:
        ValueError: a grant names an order outside the group (a gift is never ownerless,
            and the rules evaluate a group with its own members).
    """
    members = [order.order_id for order in orders]
    strays = sorted({grant.order_id for grant in grants} - set(members))
    if strays:
        raise ValueError(f"gift grants for orders outside pack group {group_id!r}: {', '.join(strays)}")
    keyed: list[tuple[BillComponent, str]] = []
    for order in orders:
        own_grants = sorted((g for g in grants if g.order_id == order.order_id), key=_grant_order)
        counter = itertools.count(1)
        keyed.extend(_order_components(order, catalog, own_grants, counter))
    numbers: dict[str, int] = {_NOW: 1}
    for component, key in keyed:
        component.parcel = numbers.setdefault(key, len(numbers) + 1)
    components = [component for component, _ in keyed]
    return Bill(group_id, members, components, _shortfalls(components, stock))


def unknown_skus(bill: Bill, catalog: Catalog) -> list[str]:
    """SKUs of the bill's live components the catalog does not know (they cannot be scanned OK)."""
    seen = {c.sku for c in bill.components if c.status != "removed" and catalog.product(c.sku) is None}
    return sorted(seen)


def apply_line_refund(bill: Bill, order_id: str, skus: Collection[str] | None) -> list[BillComponent]:
    """Mark the components of refunded lines ``removed``; return those already (partly) packed.

    Args:
        bill: changed in place.
        order_id: the order whose lines were refunded.
        skus: the refunded lines' SKUs (a kit's SKU removes all its parts), or ``None`` for
            the whole order (its gifts too).

    Returns:
        The components just removed that had units scanned into the parcel: those units must
        come out (each keeps its ``packed`` count, the units to take out). A component that
        has already ``shipped`` is left alone: that is a carrier interception, not packing.
    """
    wanted = None if skus is None else set(skus)
    taken_out: list[BillComponent] = []
    for component in bill.components:
        if component.order_id != order_id or component.status in ("removed", "shipped"):
            continue
        if wanted is not None and not _refunded_by(component, wanted):
            continue
        if component.packed > 0:
            taken_out.append(component)
        component.status = "removed"
    return taken_out


def shipped_session(record: Mapping[str, Any], waybill: str, at_ms: int) -> dict[str, Any]:
    """A closed session's record with the components packed in its parcel marked ``shipped``
    with ``waybill`` (what the after-sales view shows: "gift box shipped with SF123").
    Components of a later parcel, removed ones and any not packed keep their status."""
    bill = dict(record["bill"])
    bill["components"] = [{**c, "status": "shipped", "waybill": waybill}
                          if c.get("status") == "packed" and int(c.get("parcel", 1)) == 1 else dict(c)
                          for c in bill["components"]]
    return {**record, "bill": bill, "shipped_at_ms": at_ms, "waybill": waybill}


def weight_g(bill: Bill, catalog: Catalog) -> int | None:
    """The expected weight in grams of parcel 1 when complete (live components only).

    Returns ``None`` when any such component's unit weight is unknown (not in the catalog, or
    no ``weight_g``): a partial figure would raise false alarms at the scale.
    """
    total = 0
    for component in bill.components:
        if component.parcel != 1 or component.status == "removed":
            continue
        product = catalog.product(component.sku)
        if product is None or product.weight_g is None:
            return None
        total += product.weight_g * component.quantity
    return total


def unit_weights_g(bill: Bill, catalog: Catalog) -> dict[str, int | None]:
    """The unit weight of every SKU on the bill (``None`` unknown), for ``open_session``."""
    out: dict[str, int | None] = {}
    for component in bill.components:
        product = catalog.product(component.sku)
        out[component.sku] = product.weight_g if product is not None else None
    return out


def _order_components(order: OrderState, catalog: Catalog, grants: Sequence[GiftGrant],
                      counter: Iterator[int]) -> Iterator[tuple[BillComponent, str]]:
    data = order.data if isinstance(order.data, Mapping) else {}
    lines = data.get("lines")
    for line in lines if isinstance(lines, list) else ():
        entry = _entry(line)
        if entry is None:
            continue
        sku, quantity, raw = entry
        product = catalog.product(sku)
        is_kit = product is not None and product.is_kit
        kit_kind: ProductKind = product.kind if product is not None and is_kit else "item"
        yield from _emit(order.order_id, catalog, catalog.expand(sku, quantity), counter, raw,
                         origin=f"kit:{sku}" if is_kit else "line", kind_of=functools.partial(_part_kind, kit_kind))
    gifts = data.get("gifts")
    for gift in gifts if isinstance(gifts, list) else ():
        entry = _entry(gift)
        if entry is not None:
            sku, quantity, raw = entry
            yield from _emit(order.order_id, catalog, catalog.expand(sku, quantity), counter, raw,
                             origin="erp_gift", kind_of=_gift_kind)
    entry = _entry(data.get("gift_box"))
    if entry is not None:
        sku, quantity, raw = entry
        yield from _emit(order.order_id, catalog, catalog.expand(sku, quantity), counter, raw,
                         origin="gift_box", kind_of=_gift_box_kind)
    for grant in grants:
        if grant.quantity <= 0:
            continue
        raw = {"ship": "later"} if grant.ships == "later" else {}
        yield from _emit(order.order_id, catalog, catalog.expand(grant.sku, grant.quantity), counter, raw,
                         origin=f"gift:{grant.rule}", kind_of=_gift_kind)


def _emit(order_id: str, catalog: Catalog, parts: list[tuple[str, int]], counter: Iterator[int],
          raw: Mapping[str, Any], *, origin: str,
          kind_of: Callable[[ProductKind], ProductKind]) -> Iterator[tuple[BillComponent, str]]:
    removed = _is_refunded(raw)
    key = ""
    for sku, quantity in parts:
        number = next(counter)
        component_id = f"{order_id}#{number}"
        # One key per source line: a separate trial kit's parts share their parcel.
        key = key or _parcel_key(raw, component_id)
        product = catalog.product(sku)
        name = product.name if product is not None else ""
        kind = kind_of(product.kind if product is not None else "item")
        component = BillComponent(component_id, order_id, sku, name, kind, quantity, origin=origin,
                                  status="removed" if removed else "pending")
        yield component, key


def _part_kind(kit_kind: ProductKind, kind: ProductKind) -> ProductKind:
    return kit_kind if kind == "item" else kind


def _gift_box_kind(_kind: ProductKind) -> ProductKind:
    return "gift_box"


def _gift_kind(kind: ProductKind) -> ProductKind:
    return kind if kind in ("gift_box", "trial") else "gift"


def _grant_order(grant: GiftGrant) -> tuple[str, str, str, int]:
    return grant.rule, grant.sku, grant.ships, grant.quantity


def _entry(raw: object) -> tuple[str, int, Mapping[str, Any]] | None:
    """``(sku, quantity, the raw mapping)`` of a line, a gift SKU or a gift dict; ``None`` to skip."""
    if isinstance(raw, str):
        sku = raw.strip()
        return (sku, 1, {}) if sku else None
    if not isinstance(raw, Mapping):
        return None
    sku_value = raw.get("sku")
    if not isinstance(sku_value, str | int) or isinstance(sku_value, bool) or not str(sku_value).strip():
        return None
    quantity = _whole(raw.get("qty", raw.get("quantity", 1)))
    if quantity is None or quantity <= 0:
        return None
    return str(sku_value).strip(), quantity, raw


def _whole(value: object) -> int | None:
    """``value`` as a whole number (``2``, ``"2"``, ``2.0``), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.lstrip("-").isdigit() and len(text) < 12:
            return int(text)
    return None


def _parcel_key(raw: Mapping[str, Any], component_id: str) -> str:
    ship = raw.get("ship")
    if ship == "separate":
        return f"separate:{component_id}"
    batch = raw.get("parcel")
    if batch is not None and not isinstance(batch, bool):
        number = _whole(batch)
        if number is None:
            return f"batch:{str(batch)[:40]}"
        if number > 1:
            return f"batch:{number}"
    return "later" if ship == "later" else _NOW


def _is_refunded(raw: Mapping[str, Any]) -> bool:
    return raw.get("refund") is True or raw.get("refund_status") in _REFUND_STATUSES


def _refunded_by(component: BillComponent, skus: set[str]) -> bool:
    if component.origin == "line":
        return component.sku in skus
    if component.origin.startswith("kit:"):
        return component.origin[4:] in skus
    return False


def _shortfalls(components: Sequence[BillComponent], stock: Mapping[str, StockLevel] | None) -> dict[str, int]:
    if stock is None:
        return {}
    needed: dict[str, int] = {}
    for component in components:
        if component.parcel == 1 and component.status != "removed" and component.kind in STOCK_CHECKED_KINDS:
            needed[component.sku] = needed.get(component.sku, 0) + component.quantity
    out: dict[str, int] = {}
    for sku, units in needed.items():
        level = stock.get(sku)
        if level is not None and units > max(level.quantity, 0):
            out[sku] = units - max(level.quantity, 0)
    return out


__all__ = ["STOCK_CHECKED_KINDS", "apply_line_refund", "build_bill", "shipped_session", "unit_weights_g", "unknown_skus", "weight_g"]
