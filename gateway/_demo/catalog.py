"""The demo's products: what the simulated ERP sells and what the simulated packers hold.

One table serves three parts of the demo, so they always agree:

* the **catalog import** at start (``demo_catalog_csv``): the feeder posts it to the running
  gateway as ``POST /api/v1/tenants/<tenant>/catalog?format=csv``, exactly as
  ``gateway catalog import`` would, so the pack line checks every scan against it;
* the **ERP's orders** (``ITEM_SKUS``, ``price_of``): order lines use only these SKUs, and the
  amount is the sum of their prices, so some orders reach the 299-yuan gift rule of
  ``config/rules/gifts/demo.toml``;
* the **packer's hands** (``barcode_of``): a packer reads the SKU off the station screen, picks
  up that item and scans the barcode printed on it.

Barcodes are EAN-13 under the GS1 China prefix 692 with correct check digits
(``ean13_check_digit``); the import refuses a wrong one, like a real catalog import would.
The gift box ``GIFTBOX-1`` and the trial kit ``TRIAL-1`` carry gift stock. The collagen serum
``SKU-120`` is also what the demo's cross-border order holds; its customs master data (a
separate import, ``gateway._demo.customs``) lacks the supplier's animal-extract declaration.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DemoProduct:
    """One row of the demo catalog.

    Attributes:
        sku / name / kind: as in the catalog import (``item``, ``gift``, ``gift_box``, ``trial``).
        barcode: its EAN-13 ("" for a kit: its parts are scanned, and the import refuses a kit's own barcode).
        price: the ERP's unit price, yuan (0 for what is never sold).
        weight_g: unit weight.
        parts: a kit's parts as ``((sku, quantity), ...)``; empty for a plain product.
        stock: the gift stock on hand (gifts, gift boxes, trial kits), ``None`` otherwise.
    """

    sku: str
    name: str
    kind: str
    barcode: str
    price: float
    weight_g: int
    parts: tuple[tuple[str, int], ...] = ()
    stock: int | None = None


DEMO_PRODUCTS: tuple[DemoProduct, ...] = (
    DemoProduct("SKU-101", "面霜 50ml Face cream", "item", "6921234001011", 189.0, 120),
    DemoProduct("SKU-115", "精华液 30ml Serum", "item", "6921234001158", 259.0, 90),
    # Collagen: what the demo's cross-border order holds (its customs declaration waits for the
    # supplier's animal-extract declaration: gateway._demo.customs).
    DemoProduct("SKU-120", "胶原蛋白精华 30ml Collagen serum", "item", "6921234001202", 159.0, 60),
    DemoProduct("SKU-230", "保温杯 500ml Vacuum flask", "item", "6921234002308", 89.0, 420),
    DemoProduct("SKU-245", "帆布袋 Tote bag", "item", "6921234002452", 49.0, 80),
    DemoProduct("SKU-360", "蓝牙耳机 Earbuds", "item", "6921234003602", 199.0, 60),
    DemoProduct("SKU-412", "手机壳 Phone case", "item", "6921234004128", 29.0, 30),
    DemoProduct("SKU-508", "护手霜 Hand cream", "item", "6921234005088", 39.0, 50),
    DemoProduct("SKU-777", "香薰蜡烛 Scented candle", "item", "6921234007778", 69.0, 300),
    # A combo: no barcode of its own; the bill lists its parts (two hand creams) and those are scanned.
    DemoProduct("SET-801", "护手霜两支装 Hand cream duo", "item", "", 69.0, 100, (("SKU-508", 2),)),
    DemoProduct("GIFTBOX-1", "礼盒 Gift box", "gift_box", "6921234090015", 29.0, 150, stock=500),
    DemoProduct("TRIAL-1", "试用装 Trial kit", "trial", "6921234090022", 0.0, 20, stock=500),
)

#: The SKUs the ERP puts on order lines (everything sold on its own, the combo included).
ITEM_SKUS: tuple[str, ...] = tuple(p.sku for p in DEMO_PRODUCTS if p.kind == "item")
#: The gift box an order may name (``gift_box``), or buy as a line on a second channel.
GIFT_BOX_SKU = "GIFTBOX-1"

_BY_SKU = {p.sku: p for p in DEMO_PRODUCTS}


def ean13_check_digit(body: str) -> str:
    """The check digit of the 12 digits ``body`` (GS1: weights 1, 3, 1, 3 ... from the left).

    Raises:
        ValueError: ``body`` is not 12 digits.
    """
    if len(body) != 12 or not body.isdigit():
        raise ValueError(f"an EAN-13 body is 12 digits, not {body!r}")
    total = sum(int(digit) * (3 if i % 2 else 1) for i, digit in enumerate(body))
    return str((10 - total % 10) % 10)


def barcode_of(sku: str) -> str | None:
    """The barcode printed on a unit of ``sku``; ``None`` for an SKU the demo does not stock or a kit."""
    product = _BY_SKU.get(sku)
    return product.barcode if product is not None and product.barcode else None


def product_of_barcode(code: str) -> DemoProduct | None:
    """The demo product whose barcode is ``code``."""
    return next((p for p in DEMO_PRODUCTS if code and p.barcode == code), None)


def price_of(sku: str) -> float:
    """The ERP's unit price of ``sku`` (0 when unknown)."""
    product = _BY_SKU.get(sku)
    return product.price if product is not None else 0.0


def demo_catalog_csv() -> str:
    """The demo catalog in the import's CSV format (README "Catalog and gift stock")."""
    rows = ["sku,name,kind,barcodes,weight_g,parts,serialised,stock"]
    for p in DEMO_PRODUCTS:
        parts = "|".join(f"{sku}*{quantity}" for sku, quantity in p.parts)
        stock = "" if p.stock is None else str(p.stock)
        rows.append(f"{p.sku},{p.name},{p.kind},{p.barcode},{p.weight_g},{parts},0,{stock}")
    return "\n".join(rows) + "\n"


__all__ = ["DEMO_PRODUCTS", "GIFT_BOX_SKU", "ITEM_SKUS", "DemoProduct", "barcode_of", "demo_catalog_csv",
           "ean13_check_digit", "price_of", "product_of_barcode"]
