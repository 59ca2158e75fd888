"""The pack line's value types: products and the catalog, gift grants, the expected bill, verdicts.

Plain values shared by every part of the pack station (catalog import, gift rules, the bill,
pack sessions, print queue, evidence, alerts). Everything here is pure and JSON-ready
(``to_dict`` / ``from_dict``) so it can live in the store's ``packline`` keyspace.

Barcodes: a product has several (EAN-13, UPC-A, EAN-8, GTIN-14 and internal codes). A code
of 8, 12, 13 or 14 digits is a GTIN and is indexed as GTIN-14 (left-padded with zeros), so
an EAN-13 in the catalog matches the GTIN-14 a GS1 DataMatrix carries in AI ``01`` and the
UPC-A a US scanner reports; any other code is matched exactly (after stripping spaces).
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway._rules.gifts import GiftGrant, ShipWhen

ProductKind = Literal["item", "gift", "gift_box", "trial"]
PRODUCT_KINDS: tuple[ProductKind, ...] = ("item", "gift", "gift_box", "trial")

#: The most levels a kit may nest (a kit of kits ...); deeper is refused at import.
MAX_KIT_DEPTH = 4


def gtin14(code: str) -> str | None:
    """``code`` as a GTIN-14 when it is 8, 12, 13 or 14 ASCII digits; else ``None``.

    The check digit is not verified here (the scanner's decoder did that; a catalog row with a
    wrong check digit is refused at import by ``gateway._packline.catalog``).
    """
    text = code.strip()
    if len(text) in (8, 12, 13, 14) and text.isascii() and text.isdigit():
        return text.zfill(14)
    return None


def barcode_key(code: str) -> str:
    """The catalog's index key of a barcode: its GTIN-14, or the code itself, stripped."""
    return gtin14(code) or code.strip()


@dataclass(frozen=True, slots=True)
class KitPart:
    """One component of a kit (bundle, combo): ``quantity`` units of ``sku`` per kit."""

    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Product:
    """One SKU of the catalog.

    Attributes:
        sku: the seller's SKU code (unique per tenant).
        name: what the packer and the after-sales agent read (zh-CN as the ERP has it).
        kind: ``item`` (sold goods), ``gift``, ``gift_box`` or ``trial`` (trial kit / sample).
        barcodes: every code that identifies one unit of it (EAN/UPC/GTIN, internal codes).
        weight_g: the unit's weight in grams, for the weight check at close (``None`` unknown).
        parts: the components when it is a kit (a kit is never scanned itself: its parts are);
            empty for a plain product.
        serialised: its units carry a GS1 serial (AI 21) that must be unique per parcel.
    """

    sku: str
    name: str = ""
    kind: ProductKind = "item"
    barcodes: tuple[str, ...] = ()
    weight_g: int | None = None
    parts: tuple[KitPart, ...] = ()
    serialised: bool = False

    @property
    def is_kit(self) -> bool:
        return bool(self.parts)

    def to_dict(self) -> dict[str, Any]:
        return {"sku": self.sku, "name": self.name, "kind": self.kind, "barcodes": list(self.barcodes),
                "weight_g": self.weight_g, "parts": [[p.sku, p.quantity] for p in self.parts],
                "serialised": self.serialised}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Product:
        return cls(sku=raw["sku"], name=raw.get("name", ""), kind=raw.get("kind", "item"),
                   barcodes=tuple(raw.get("barcodes", ())), weight_g=raw.get("weight_g"),
                   parts=tuple(KitPart(sku, quantity) for sku, quantity in raw.get("parts", ())),
                   serialised=bool(raw.get("serialised", False)))


class Catalog:
    """The products of one tenant, indexed by SKU and by barcode. Immutable once built.

    Args:
        products: the products; a later one with the same SKU replaces an earlier one.
            A barcode claimed by two SKUs belongs to the later (the import refuses that
            case with its row; ERP updates win).
    """

    def __init__(self, products: Iterable[Product] = ()) -> None:
        self._by_sku: dict[str, Product] = {}
        for product in products:
            self._by_sku[product.sku] = product
        self._by_code: dict[str, str] = {}
        for product in self._by_sku.values():
            for code in product.barcodes:
                self._by_code[barcode_key(code)] = product.sku

    def __repr__(self) -> str:
        return f"<Catalog {len(self._by_sku)} products, {len(self._by_code)} barcodes>"

    def __len__(self) -> int:
        return len(self._by_sku)

    def __iter__(self) -> Iterator[Product]:
        return iter(self._by_sku.values())

    def product(self, sku: str) -> Product | None:
        """The product with ``sku``, or ``None``."""
        return self._by_sku.get(sku)

    def by_barcode(self, code: str, gtin: str | None = None) -> Product | None:
        """The product a scanned code names: by the scan's GTIN-14 first, then the code itself."""
        if gtin:
            sku = self._by_code.get(gtin)
            if sku is not None:
                return self._by_sku.get(sku)
        sku = self._by_code.get(barcode_key(code)) if code else None
        return self._by_sku.get(sku) if sku is not None else None

    def expand(self, sku: str, quantity: int) -> list[tuple[str, int]]:
        """The scannable units of ``quantity`` x ``sku``: a kit's parts (recursively,
        multiplied out), or the SKU itself. An unknown SKU stands for itself (the bill then
        shows it as not in the catalog: it can never be scanned OK)."""
        out: list[tuple[str, int]] = []
        self._expand(sku, quantity, 0, out)
        return out

    def _expand(self, sku: str, quantity: int, depth: int, out: list[tuple[str, int]]) -> None:
        product = self._by_sku.get(sku)
        if product is None or not product.parts or depth >= MAX_KIT_DEPTH:
            out.append((sku, quantity))
            return
        for part in product.parts:
            self._expand(part.sku, quantity * part.quantity, depth + 1, out)

    def with_products(self, products: Iterable[Product]) -> Catalog:
        """A new catalog with ``products`` added or replacing those with the same SKU."""
        return Catalog([*self._by_sku.values(), *products])


@dataclass(frozen=True, slots=True)
class StockLevel:
    """The gift stock of one SKU as last known.

    Attributes:
        sku: the SKU.
        quantity: units on hand (may go negative when packing outran the ERP's figures).
        updated_at_ms: when the figure was last set by the ERP (epoch ms); its age is shown.
        source: who set it last (``erp``, ``import``, ``packing``).
    """

    sku: str
    quantity: int
    updated_at_ms: int
    source: str = "erp"

    def to_dict(self) -> dict[str, Any]:
        return {"sku": self.sku, "quantity": self.quantity, "updated_at_ms": self.updated_at_ms,
                "source": self.source}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> StockLevel:
        return cls(raw["sku"], int(raw["quantity"]), int(raw.get("updated_at_ms", 0)), raw.get("source", "erp"))


ComponentStatus = Literal["pending", "packed", "shipped", "removed"]


@dataclass(slots=True)
class BillComponent:
    """One line of a parcel's expected bill: ``quantity`` units of one scannable SKU.

    Attributes:
        component_id: stable within the group (``"<order_id>#<n>"``), used by scans and the
            after-sales view.
        order_id: the order it belongs to.
        sku / name / kind: what it is.
        quantity: units expected in the parcel.
        packed: units scanned OK so far.
        origin: where it comes from: ``line`` (an order line), ``kit:<SKU>`` (a part of that
            kit), ``gift:<rule>`` (a gift rule), ``erp_gift`` / ``gift_box`` (named by the ERP).
        parcel: 1 = the parcel packed now; 2, 3 ... = a later parcel (pre-sale batch, a gift
            box that ships later, a trial kit with its own waybill).
        status: ``pending``, ``packed`` (in ``parcel``), ``shipped`` (with ``waybill``),
            ``removed`` (its line was refunded: it must not be, or no longer be, in the parcel).
        waybill: the waybill it shipped with, once known.
    """

    component_id: str
    order_id: str
    sku: str
    name: str = ""
    kind: ProductKind = "item"
    quantity: int = 1
    packed: int = 0
    origin: str = "line"
    parcel: int = 1
    status: ComponentStatus = "pending"
    waybill: str = ""

    @property
    def outstanding(self) -> int:
        """Units still to scan (0 for a removed component or a later parcel's)."""
        if self.status == "removed" or self.parcel != 1:
            return 0
        return max(0, self.quantity - self.packed)

    def to_dict(self) -> dict[str, Any]:
        return {"component_id": self.component_id, "order_id": self.order_id, "sku": self.sku, "name": self.name,
                "kind": self.kind, "quantity": self.quantity, "packed": self.packed, "origin": self.origin,
                "parcel": self.parcel, "status": self.status, "waybill": self.waybill}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> BillComponent:
        return cls(raw["component_id"], raw["order_id"], raw["sku"], raw.get("name", ""), raw.get("kind", "item"),
                   int(raw.get("quantity", 1)), int(raw.get("packed", 0)), raw.get("origin", "line"),
                   int(raw.get("parcel", 1)), raw.get("status", "pending"), raw.get("waybill", ""))


@dataclass(slots=True)
class Bill:
    """The expected bill of one pack group's parcel(s).

    Attributes:
        group_id: the pack group (its primary order id; an order alone is its own group).
        orders: the member orders, primary first.
        components: every component of every parcel, each tied to its order.
        shortfalls: gift SKUs whose stock does not cover this bill: ``{sku: missing units}``
            (non-empty -> the group is held with ``STOP_NO_STOCK``).
    """

    group_id: str
    orders: list[str]
    components: list[BillComponent] = field(default_factory=list)
    shortfalls: dict[str, int] = field(default_factory=dict)

    def outstanding(self) -> list[BillComponent]:
        """Components of this parcel with units still to scan."""
        return [c for c in self.components if c.outstanding > 0]

    @property
    def complete(self) -> bool:
        return not self.outstanding()

    def copy(self) -> Bill:
        """A copy safe to mutate (each component copied; ``to_dict``/``from_dict`` cost 5x more)."""
        return Bill(self.group_id, list(self.orders), [copy.copy(c) for c in self.components], dict(self.shortfalls))

    def to_dict(self) -> dict[str, Any]:
        return {"group_id": self.group_id, "orders": list(self.orders),
                "components": [c.to_dict() for c in self.components], "shortfalls": dict(self.shortfalls)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Bill:
        return cls(raw["group_id"], list(raw["orders"]), [BillComponent.from_dict(c) for c in raw["components"]],
                   dict(raw.get("shortfalls", {})))


class Verdict(enum.StrEnum):
    """What the station shows for a scan or a close (DESIGN section 7)."""

    OK = "OK"
    WRONG_ITEM = "WRONG_ITEM"          # a catalog product this parcel does not expect
    EXTRA = "EXTRA"                    # an expected product, scanned more often than expected
    DUPLICATE_UNIT = "DUPLICATE_UNIT"  # the same GS1 serial twice
    UNKNOWN_BARCODE = "UNKNOWN_BARCODE"  # neither a product, an order nor a control code
    ALREADY_PACKED = "ALREADY_PACKED"  # the order was packed before: duplicate-pack alarm
    STOP_REFUND = "STOP_REFUND"        # a refund / cancel: stop, do not ship
    STOP_NO_STOCK = "STOP_NO_STOCK"    # gift stock does not cover the bill: held
    DECLARATION_INCOMPLETE = "DECLARATION_INCOMPLETE"  # cross-border, customs declaration incomplete: held
    MISSING = "MISSING"                # close refused: components still missing
    OPENED = "OPENED"                  # a session opened for an order / waybill
    CLOSED = "CLOSED"                  # complete close (label goes to the printer)
    PARTIAL_CLOSE = "PARTIAL_CLOSE"    # a supervisor closed it incomplete, with a reason
    SIGNED_IN = "SIGNED_IN"            # an operator badge
    NOT_SIGNED_IN = "NOT_SIGNED_IN"    # a scan before any badge
    NO_SESSION = "NO_SESSION"          # an item scan with no open session
    WEIGHT_MISMATCH = "WEIGHT_MISMATCH"  # the parcel's weight is off the catalog's by more than the tolerance

    @property
    def alarm(self) -> bool:
        """True for verdicts the station sounds an alarm for."""
        return self not in _CALM


_CALM = frozenset({Verdict.OK, Verdict.OPENED, Verdict.CLOSED, Verdict.SIGNED_IN})

__all__ = ["MAX_KIT_DEPTH", "PRODUCT_KINDS", "Bill", "BillComponent", "Catalog", "ComponentStatus", "GiftGrant",
           "KitPart", "Product", "ProductKind", "ShipWhen", "StockLevel", "Verdict", "barcode_key", "gtin14"]
