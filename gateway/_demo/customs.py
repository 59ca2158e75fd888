"""The demo's cross-border order: its customs master data, and a clerk who completes its declaration.

The story ``make run`` tells within its first minute (README "Customs declarations"):

1. At start the feeder imports the demo's customs **master data** through the gateway's API
   (``POST /api/v1/tenants/<tenant>/customs/products`` and ``.../suppliers``, exactly as
   ``gateway customs import`` would): the collagen serum ``SKU-120`` with every declaration
   value it needs, and its supplier ``SUP-MB`` *without* the animal-extract declaration (the
   column is sent empty, so every run starts from the same gap). The seed's collagen fill
   rule (``config/customs/fill_rules.toml``) takes that value from the supplier only.
2. The demo ERP's first wave holds one **cross-border order** (``gateway._demo.feeder``): a
   collagen serum for a buyer in Hong Kong (``receiver.country = "HK"``, mapped to
   ``destination_country`` by ``config/rules/erp.toml``).
3. A packer scans its pick slip: the station answers ``DECLARATION_INCOMPLETE`` (the session
   is held) naming supplier ``SUP-MB``'s record; the order is on the pre-declaration board
   (``/customs``) and the anomaly board. The packer sets it aside and scans the slip again
   every few seconds (``gateway._demo.packer``).
4. The **customs clerk** (``CustomsClerk``), a simulated supervisor watching the station
   screens, sees the hold, reads the pre-declaration board, downloads its fill file
   (``?format=csv``), fills in the supplier's declaration (``SUPPLIER_DECLARATIONS``) and
   imports it (``POST .../customs/values``): the same path as an operator's CSV import. The
   import forwards the ``declaration`` event upstream; the packer's next scan opens the
   parcel (``OPENED``) and packs it (``CLOSED``, label printed).

``customs_master_files`` and ``filled_fill_file`` are pure; the rest talks HTTP to the gateway.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping, Sequence

import httpx
import trio

from gateway._demo.packer import HELD
from gateway._demo.screen import StationScreen, held_orders

log = logging.getLogger("gateway.demo")

#: The SKU of the demo's cross-border order (the catalog's collagen serum).
CROSS_BORDER_SKU = "SKU-120"
#: Where the cross-border order ships (ISO 3166-1 alpha-2; not CN: cross-border).
DESTINATION = "HK"
#: The collagen serum's supplier: its animal-extract declaration is what the order waits for.
SUPPLIER = "SUP-MB"
#: What the clerk fills in: (target, id, field) of the board's fill file -> value.
SUPPLIER_DECLARATIONS: Mapping[tuple[str, str, str], str] = {
    ("supplier", SUPPLIER, "contains_animal_extract"): "是",
}
#: The clerk's reaction time after a hold shows on a station screen, seconds.
CLERK_DELAY_S = 4.0
#: How often the clerk looks at the station screens.
WATCH_EVERY_S = 0.5

_PRODUCTS = (
    "sku,name,category,supplier,hs_code,origin_country,net_weight_g,brand,declaration_unit,specification,"
    "cosmetic_ingredients,contains_animal_extract\n"
    f"{CROSS_BORDER_SKU},胶原蛋白精华 30ml Collagen serum,cosmetics,{SUPPLIER},3304990099,CN,30,润颜 Runyan,瓶,30ml,"
    "\"水, 甘油, 水解胶原蛋白, 透明质酸钠\",false\n"
)
# The animal-extract column is sent empty on purpose: an empty cell clears the stored value,
# so a restarted demo shows the hold again.
_SUPPLIERS = (
    "supplier,name,contains_animal_extract,manufacturer,raw_material_origin\n"
    f"{SUPPLIER},海洋生物科技 Marine Bio,,海洋生物科技有限公司 Marine Bio Co.,NO\n"
)


def customs_master_files() -> tuple[str, str]:
    """``(products CSV, suppliers CSV)``: the demo's customs master data, in the import's format."""
    return _PRODUCTS, _SUPPLIERS


def filled_fill_file(fill: str, answers: Mapping[tuple[str, str, str], str]) -> tuple[str, int]:
    """The board's fill file with the rows ``answers`` knows filled in, the others left out. Pure.

    Args:
        fill: the board's fill file (``GET .../customs/board?format=csv``, BOM removed): header
            ``target,id,sku,attribute,value,orders,label``.
        answers: ``(target, id, attribute) -> value``.

    Returns:
        The values file to import and the number of rows filled (0: nothing to import).
    """
    reader = csv.DictReader(io.StringIO(fill))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["target", "id", "sku", "attribute", "value"])
    filled = 0
    for row in reader:
        value = answers.get((row.get("target") or "", row.get("id") or "", row.get("attribute") or ""))
        if value is not None:
            writer.writerow([row["target"], row["id"], row.get("sku") or "", row["attribute"], value])
            filled += 1
    return out.getvalue(), filled


async def import_customs_master(client: httpx.AsyncClient, token: str, tenant: str) -> bool:
    """Import the demo's customs master data through the API; ``False`` (logged) when the
    customs check is off or the import is refused (the cross-border order then packs unheld)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv", "X-Gateway-Actor": "demo"}
    products, suppliers = customs_master_files()
    for kind, text in (("suppliers", suppliers), ("products", products)):
        try:
            reply = await client.post(f"/api/v1/tenants/{tenant}/customs/{kind}",
                                      params={"filename": f"demo-{kind}.csv"}, content=text.encode(), headers=headers)
        except httpx.HTTPError as exc:
            log.error("demo customs %s import failed: %s; the cross-border order is not held", kind, exc)
            return False
        if reply.status_code == 409:
            log.info("demo: the customs check is off ([customs] dir has no attributes.toml): the cross-border "
                     "order packs without a declaration")
            return False
        if reply.status_code != 200:
            log.error("demo customs %s import refused: HTTP %s %s", kind, reply.status_code, reply.text[:500])
            return False
    log.info("demo customs master data imported for tenant %s: %s (supplier %s has not declared animal extracts yet)",
             tenant, CROSS_BORDER_SKU, SUPPLIER)
    return True


class CustomsClerk:
    """A simulated supervisor who completes held declarations from the pre-declaration board.

    Args:
        client: talks to the gateway.
        screens: the station screens it watches.
        tenant / token: the tenant and an API token of role supervisor or above.
        answers: what it knows how to fill (``SUPPLIER_DECLARATIONS``).
        delay_s: its reaction time after a hold shows.
    """

    def __init__(self, client: httpx.AsyncClient, screens: Sequence[StationScreen], tenant: str, token: str,
                 answers: Mapping[tuple[str, str, str], str] = SUPPLIER_DECLARATIONS,
                 delay_s: float = CLERK_DELAY_S) -> None:
        self.client = client
        self.screens = tuple(screens)
        self.tenant = tenant
        self.headers = {"Authorization": f"Bearer {token}", "X-Gateway-Actor": "demo-clerk"}
        self.answers = answers
        self.delay_s = delay_s
        self.done: set[str] = set()

    def __repr__(self) -> str:
        return f"CustomsClerk({self.tenant!r}, screens={len(self.screens)}, done={len(self.done)})"

    async def serve(self) -> None:
        """Watch the screens; complete each held order's declaration once. Runs until cancelled."""
        while True:
            held = await self.next_hold()
            log.info("demo customs clerk: %s held at the station for its customs declaration; reading the "
                     "pre-declaration board (/customs)", " + ".join(held))
            await trio.sleep(self.delay_s)
            await self.complete(held)
            self.done.update(held)

    async def next_hold(self) -> tuple[str, ...]:
        """The orders of the next session a screen shows held for its declaration (not yet handled)."""
        while True:
            for screen in self.screens:
                held = tuple(o for o in held_orders(await screen.view(), HELD) if o not in self.done)
                if held:
                    return held
            await trio.sleep(WATCH_EVERY_S)

    async def complete(self, orders: Sequence[str]) -> list[str]:
        """Read the board, fill its fill file from ``answers``, import it; the orders it completed."""
        base = f"/api/v1/tenants/{self.tenant}/customs"
        try:
            board = (await self.client.get(f"{base}/board", headers=self.headers)).json()
            for entry in board.get("orders", ()):
                if entry.get("order_id") in orders:
                    for need in entry.get("missing", ()):
                        log.info("demo customs clerk: pre-declaration board: %s: %s", entry["order_id"],
                                 need.get("message_en", ""))
            reply = await self.client.get(f"{base}/board", params={"format": "csv"}, headers=self.headers)
            text, filled = filled_fill_file(reply.content.decode("utf-8-sig"), self.answers)
            if not filled:
                log.warning("demo customs clerk: nothing on the board it can fill for %s", " + ".join(orders))
                return []
            reply = await self.client.post(f"{base}/values", params={"filename": "demo-fill.csv"},
                                           content=text.encode(), headers={**self.headers, "Content-Type": "text/csv"})
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("demo customs clerk: the board or the import failed: %s", exc)
            return []
        if reply.status_code != 200:
            log.warning("demo customs clerk: import refused: HTTP %s %s", reply.status_code, reply.text[:500])
            return []
        completed: list[str] = list(reply.json().get("completed") or ())
        log.info("demo customs clerk: imported the supplier's declaration (%d row(s)); declaration complete for %s",
                 filled, " + ".join(completed) or "no order")
        return completed


__all__ = ["CLERK_DELAY_S", "CROSS_BORDER_SKU", "DESTINATION", "SUPPLIER", "SUPPLIER_DECLARATIONS", "CustomsClerk",
           "customs_master_files", "filled_fill_file", "import_customs_master"]
