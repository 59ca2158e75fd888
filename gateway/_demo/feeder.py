"""The demo feeder: a simulated ERP that posts signed batches to this gateway.

Enabled by ``[demo] enabled = true`` (the embedded default config), so a newcomer who
types ``make run`` sees orders flow: new orders are created and advance through the ERP's
statuses (paid, audit, released to the warehouse, shipped, signed); some buyers add a gift box
on a second platform (the gateway groups the two and the demo upstream logs the merge-pack
instruction), a few deliveries are repeated (duplicates) and one in twenty carries a status
the rules do not know (quarantined, visible at ``/api/v1/tenants/demo/quarantine``). Order
lines use the demo catalog's SKUs (``gateway._demo.catalog``); the amount is their price, so
some parcels reach the 299-yuan gift box rule and SKU-1xx lines earn a trial kit.

**With simulated stations** (``[demo] devices``, the embedded config) the ERP works with the
pack line instead of packing by itself: at start the feeder imports the demo catalog through
the gateway's API (``POST /api/v1/tenants/<tenant>/catalog?format=csv`` with the API token,
as ``gateway catalog import`` does), posts a first wave of orders already released to the
warehouse, and puts a simulated packer at every station (``gateway._demo.packer``). Orders
released (``AUDITED`` = ``READY_TO_PACK``) wait on the ERP's pick list; a packer takes the
next one, packs it at its station, and tells the ERP how it ended (packed: the ERP ships it a
batch later with a waybill; refunded: the ERP posts ``REFUNDING`` at once and ``REFUNDED``
later). The ERP creates new orders only while fewer than ``WAVE`` are waiting, so a long
``make run`` never builds a backlog. In a warehouse the ERP learns "packed" from the
gateway's ``packed`` event upstream; the demo's packer tells it directly.

**The cross-border order.** The first wave's first pick is a collagen serum for a buyer in
Hong Kong (``receiver.country``): after the catalog, the feeder imports the demo's customs
master data, whose supplier has not declared animal extracts yet, so the station holds the
order (``DECLARATION_INCOMPLETE``) until the demo's customs clerk imports the declaration
from the pre-declaration board; then it is packed (``gateway._demo.customs``).

It goes through the real HTTP endpoint with the real signature, exactly as an ERP would.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import trio

from gateway._demo.catalog import GIFT_BOX_SKU, ITEM_SKUS, demo_catalog_csv, price_of
from gateway._demo.customs import CROSS_BORDER_SKU, DESTINATION, CustomsClerk, import_customs_master
from gateway._demo.devices import demo_floor
from gateway._demo.packer import DEMO_SEED, Packer
from gateway._demo.screen import StationScreen
from gateway._errors import ConfigError
from gateway._settings import Settings
from gateway._signing import sign

log = logging.getLogger("gateway.demo")

#: The ERP's statuses when nobody packs at a simulated station: it packs by itself.
_FLOW = ["PAID", "WAIT_AUDIT", "AUDITED", "PICKING", "PACKED", "SENT", "SIGNED"]
#: ... with simulated stations: up to the warehouse, and on after the packer.
_TO_WAREHOUSE = ["PAID", "WAIT_AUDIT", "AUDITED"]
_AFTER_PACKING = ["SENT", "SIGNED"]
_PLATFORMS = ["douyin", "tmall", "pinduoduo", "xiaohongshu", "youzan"]
#: New orders stop while this many are released or on their way to the warehouse.
WAVE = 6
#: Orders released at once when the demo starts, so packers start within seconds.
FIRST_WAVE = 4
#: Orders advanced per batch at most.
STEPS_PER_BATCH = 12


@dataclass
class DemoOrder:
    """One order the demo ERP tracks.

    Attributes:
        todo: the statuses still to send, in order.
        group: the order ids packed together (a cross-channel pair), this one included.
        waiting: released to the warehouse: on the pick list or at a station.
    """

    platform: str
    order_no: str
    phone: str
    lines: list[dict[str, Any]]
    amount: float
    gift_box: str = ""
    todo: list[str] = field(default_factory=list)
    group: tuple[str, ...] = ()
    waiting: bool = False
    country: str = ""  # the receiver's country when abroad (a cross-border order), else ""

    @property
    def order_id(self) -> str:
        return f"{self.platform}|{self.order_no}"


class DemoErp:
    """Generates plausible ERP events and keeps the pick list; deterministic for a given seed.

    Args:
        seed: the random seed (orders, amounts, pairs, oddities).
        run: a prefix that keeps event ids of separate runs apart (else a restart is all duplicates).
        packers: simulated packers pack the released orders (else the ERP packs by itself).
    """

    def __init__(self, seed: int = 7, run: str = "", packers: bool = False) -> None:
        self.random = random.Random(seed)
        self.run = run
        self.packers = packers
        self.counter = 0
        self.open_orders: dict[str, DemoOrder] = {}
        self.pick_list: deque[tuple[tuple[str, ...], str]] = deque()
        self.sent: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        return f"DemoErp(open={len(self.open_orders)}, pick_list={len(self.pick_list)}, events={self.counter})"

    def _event(self, order: DemoOrder, status: str) -> dict[str, Any]:
        self.counter += 1
        event: dict[str, Any] = {
            "event_id": f"demo-{self.run}{self.counter:07d}",
            "platform": order.platform,
            "order_no": order.order_no,
            "status": status,
            "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
            "buyer": {"phone": order.phone},
            "amount": order.amount,
            "lines": order.lines,
        }
        if order.gift_box:
            event["gift_box"] = order.gift_box
        if order.country:
            event["receiver"] = {"country": order.country}
        if status == "SENT":
            event["waybill"] = f"SF{self.random.randrange(10**11, 10**12)}"
        return event

    def _order_no(self, platform: str) -> str:
        return f"{platform[:2].upper()}{self.random.randrange(10**9, 10**10)}"

    def _new_orders(self, todo: Sequence[str]) -> list[DemoOrder]:
        """A new order; sometimes the same buyer's gift box bought on a second channel with it."""
        rnd = self.random
        platform = rnd.choice(_PLATFORMS)
        skus = rnd.sample(ITEM_SKUS, rnd.choice((1, 1, 2, 2, 3)))
        quantities = [(sku, 2 if rnd.random() < 0.2 else 1) for sku in skus]
        lines: list[dict[str, Any]] = [{"sku": sku, "qty": qty} for sku, qty in quantities]
        amount = round(sum(price_of(sku) * qty for sku, qty in quantities), 2)
        main = DemoOrder(platform, self._order_no(platform), f"13{rnd.randrange(10**8, 10**9)}", lines, amount,
                         todo=list(todo))
        if amount < 299 and rnd.random() < 0.25:  # the ERP names a gift box (gift wrap bought with it)
            main.gift_box = GIFT_BOX_SKU
        orders = [main]
        if rnd.random() < 0.25:  # the same buyer adds a gift box on another channel
            second = rnd.choice([p for p in _PLATFORMS if p != platform])
            orders.append(DemoOrder(second, self._order_no(second), main.phone, [{"sku": GIFT_BOX_SKU, "qty": 1}],
                                    price_of(GIFT_BOX_SKU), todo=list(todo)))
        group = tuple(o.order_id for o in orders)
        for order in orders:
            order.group = group
            self.open_orders[order.order_id] = order
        return orders

    def _cross_border_order(self) -> DemoOrder:
        """The demo's cross-border order: a collagen serum for a buyer abroad (``gateway._demo.customs``)."""
        order = DemoOrder("tmall", self._order_no("tmall"), f"13{self.random.randrange(10**8, 10**9)}",
                          [{"sku": CROSS_BORDER_SKU, "qty": 1}], price_of(CROSS_BORDER_SKU), country=DESTINATION)
        order.group = (order.order_id,)
        self.open_orders[order.order_id] = order
        return order

    def _released(self, order: DemoOrder) -> None:
        order.waiting = True
        members = [self.open_orders.get(order_id) for order_id in order.group]
        if order.order_id == order.group[-1] and all(m is not None and m.waiting for m in members):
            first = self.open_orders[order.group[0]]
            self.pick_list.append((order.group, first.order_no))

    def _waiting_or_coming(self) -> int:
        return sum(1 for o in self.open_orders.values() if o.waiting or "AUDITED" in o.todo)

    def next_batch(self) -> list[dict[str, Any]]:
        """A batch: new orders, one step for open orders, sometimes oddities."""
        rnd = self.random
        batch: list[dict[str, Any]] = []
        if self.packers and self.counter == 0:
            # Released overnight: straight onto the pick list, the cross-border order first.
            wave = [[self._cross_border_order()], *(self._new_orders([]) for _ in range(FIRST_WAVE - 1))]
            for orders in wave:
                for order in orders:
                    batch.append(self._event(order, "AUDITED"))
                    self._released(order)
        new = 2 if not self.packers else min(2, max(0, WAVE - self._waiting_or_coming()))
        for _ in range(new):
            for order in self._new_orders(_TO_WAREHOUSE if self.packers else _FLOW):
                batch.append(self._event(order, "CREATED"))
        moved = 0
        for order_id in list(self.open_orders):
            order = self.open_orders[order_id]
            if order.waiting:
                continue
            if not order.todo:
                del self.open_orders[order_id]
                continue
            if moved >= STEPS_PER_BATCH:
                continue
            status = order.todo.pop(0)
            batch.append(self._event(order, status))
            moved += 1
            if self.packers and status == "AUDITED":
                self._released(order)
        if self.sent and rnd.random() < 0.3:
            batch.append(rnd.choice(self.sent))  # a retried delivery: de-duplicated
        flowing = [o for o in self.open_orders.values() if not o.waiting]
        if rnd.random() < 0.05 and flowing:
            batch.append(self._event(flowing[0], "WAITING_FOR_GODOT"))
        self.sent = batch
        return batch

    # -- the packers' side ------------------------------------------------------------

    def next_pick(self) -> tuple[tuple[str, ...], str] | None:
        """The next pick task: (the order ids packed together, the order number on the pick slip)."""
        return self.pick_list.popleft() if self.pick_list else None

    def packed(self, order_ids: Sequence[str]) -> None:
        """The parcel of ``order_ids`` is packed: ship them in the next batches."""
        for order_id in order_ids:
            order = self.open_orders.get(order_id)
            if order is not None:
                order.waiting, order.todo = False, list(_AFTER_PACKING)

    def abandoned(self, order_ids: Sequence[str]) -> None:
        """The packer gave up on these (an unexpected answer at the station): forget them."""
        for order_id in order_ids:
            self.open_orders.pop(order_id, None)

    def refund(self, order_id: str) -> dict[str, Any] | None:
        """The buyer asks for a refund of ``order_id`` now: the event to post (``None``: unknown order)."""
        order = self.open_orders.get(order_id)
        if order is None:
            return None
        order.waiting, order.todo = False, ["REFUNDED"]
        return self._event(order, "REFUNDING")


class ErpPoster:
    """Posts signed ERP batches to the gateway's webhook and logs the answer."""

    def __init__(self, client: httpx.AsyncClient, url: str, secret: bytes) -> None:
        self.client = client
        self.url = url
        self.secret = secret

    async def post(self, events: list[dict[str, Any]]) -> None:
        body = orjson.dumps({"events": events})
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Gateway-Timestamp": timestamp,
            "X-Gateway-Signature": sign(self.secret, timestamp, body),
        }
        try:
            response = await self.client.post(self.url, content=body, headers=headers)
            reply = response.json()
            log.info("demo ERP batch -> HTTP %s %s", response.status_code, reply.get("counts", reply))
            for result in reply.get("results", []):
                if result["outcome"] != "duplicate":
                    log.info("  %-24s %-11s %s %s", result["order_id"], result["outcome"],
                             result.get("status") or "", result.get("reason") or "")
        except httpx.HTTPError as exc:
            log.warning("demo ERP post failed: %s", exc)


async def import_demo_catalog(client: httpx.AsyncClient, settings: Settings, tenant: str) -> bool:
    """Import the demo catalog through the running gateway's API; ``False`` (logged) if refused."""
    token = (await trio.Path(settings.token_path).read_text(encoding="utf-8")).strip()
    try:
        reply = await client.post(f"/api/v1/tenants/{tenant}/catalog?format=csv", content=demo_catalog_csv().encode(),
                                  headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"})
    except httpx.HTTPError as exc:
        log.error("demo catalog import failed: %s; the demo stations answer UNKNOWN_BARCODE until it is imported: "
                  "restart the demo (make run)", exc)
        return False
    if reply.status_code != 200:
        log.error("demo catalog import refused: HTTP %s %s; the demo stations answer UNKNOWN_BARCODE until it is "
                  "imported: restart the demo (make run)", reply.status_code, reply.text[:500])
        return False
    log.info("demo catalog imported for tenant %s: %s", tenant, reply.text[:200])
    return True


async def serve_demo_feeder(settings: Settings, bound: str) -> None:
    """Post a demo batch to ``bound`` every ``[demo] interval_s`` until cancelled.

    With the simulated devices of ``serve_demo_devices`` running (``demo_floor``), also import
    the demo catalog and run a simulated packer at every station with a simulated scanner.
    """
    tenant = settings.demo.tenant
    credentials = settings.credentials(tenant, "erp")
    if credentials is None:
        raise ConfigError(settings.path or "", None, "demo.tenant",
                          f"the demo needs [tenants.{tenant}.erp] with a secret")
    base = bound if "://" in bound else f"http://{bound}"
    url = f"{base}/webhooks/erp/{tenant}"
    floor = demo_floor(settings)
    stations = [name for name in settings.stations if floor is not None and name in floor.scanners]
    started = int(time.time())
    erp = DemoErp(seed=started, run=f"{started}-", packers=bool(stations))
    log.info("demo ERP posting to %s every %.1f s", url, settings.demo.interval_s)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per POST drowns the demo
    async with httpx.AsyncClient(base_url=base, timeout=10) as client, trio.open_nursery() as nursery:
        poster = ErpPoster(client, url, credentials.secret.reveal())

        async def refund(order_id: str) -> None:
            event = erp.refund(order_id)
            if event is not None:
                log.info("demo ERP: the buyer of %s asks for a refund while the parcel is packed", order_id)
                await poster.post([event])

        if stations and floor is not None and await import_demo_catalog(client, settings, tenant):
            log.info("station screens: %s", "  ".join(f"{base}/stations/{name}" for name in stations))
            token = (await trio.Path(settings.token_path).read_text(encoding="utf-8")).strip()
            if await import_customs_master(client, token, tenant):
                log.info("pre-declaration board: %s/customs", base)
                clerk = CustomsClerk(client, [StationScreen(client, name) for name in stations], tenant, token)
                nursery.start_soon(clerk.serve)
            for name in stations:
                packer = Packer(name, floor.scanners[name], StationScreen(client, name), erp, refund, DEMO_SEED)
                nursery.start_soon(packer.serve)
        elif stations:
            erp.packers = False  # no catalog, no packing: the ERP packs by itself
        while True:
            await poster.post(erp.next_batch())
            await trio.sleep(settings.demo.interval_s)
