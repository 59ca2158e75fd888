"""The demo feeder: a simulated ERP that posts signed batches to this gateway.

Enabled by ``[demo] enabled = true`` (the embedded default config), so a newcomer who
types ``make run`` sees orders flow: new orders are created, advance through the ERP's
statuses (paid, audit, picking, packed, shipped, signed), some buyers add a gift box on a
second platform before packing (the gateway groups the two and the demo upstream logs the
merge-pack instruction), a few deliveries are repeated (duplicates) and one in twenty carries a status the
rules do not know (quarantined, visible at ``/api/v1/tenants/demo/quarantine``).

It goes through the real HTTP endpoint with the real signature, exactly as an ERP would.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import httpx
import orjson
import trio

from gateway._errors import ConfigError
from gateway._settings import Settings
from gateway._signing import sign

log = logging.getLogger("gateway.demo")

_FLOW = ["PAID", "WAIT_AUDIT", "AUDITED", "PICKING", "PACKED", "SENT", "SIGNED"]
_PLATFORMS = ["douyin", "tmall", "pinduoduo", "xiaohongshu", "youzan"]


class DemoErp:
    """Generates plausible ERP events; deterministic for a given seed."""

    def __init__(self, seed: int = 7, run: str = "") -> None:
        self.random = random.Random(seed)
        self.run = run  # keeps event ids of separate runs apart (else a restart is all duplicates)
        self.counter = 0
        self.open_orders: dict[str, dict[str, Any]] = {}
        self.sent: list[dict[str, Any]] = []

    def _event(self, order: dict[str, Any], status: str) -> dict[str, Any]:
        self.counter += 1
        event = {
            "event_id": f"demo-{self.run}{self.counter:07d}",
            "platform": order["platform"],
            "order_no": order["order_no"],
            "status": status,
            "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
            "buyer": {"phone": order["phone"]},
            "amount": order["amount"],
            "lines": order["lines"],
        }
        if status == "SENT":
            event["waybill"] = f"SF{self.random.randrange(10**11, 10**12)}"
        return event

    def next_batch(self) -> list[dict[str, Any]]:
        """A batch: two new orders, one step for some open orders, sometimes oddities."""
        rnd = self.random
        batch: list[dict[str, Any]] = []
        for _ in range(2):
            platform = rnd.choice(_PLATFORMS)
            order: dict[str, Any] = {
                "platform": platform,
                "order_no": f"{platform[:2].upper()}{rnd.randrange(10**9, 10**10)}",
                "phone": f"13{rnd.randrange(10**8, 10**9)}",
                "amount": round(rnd.uniform(19, 499), 2),
                "lines": [{"sku": f"SKU-{rnd.randrange(100, 999)}", "qty": rnd.randint(1, 3)}],
                "step": 0,
            }
            self.open_orders[order["order_no"]] = order
            batch.append(self._event(order, "CREATED"))
        fresh = [o for o in self.open_orders.values() if o["step"] <= 1 and not o.get("paired")]
        if fresh and rnd.random() < 0.35:  # the same buyer adds a gift box on another channel
            first = rnd.choice(fresh)
            first["paired"] = True
            platform = rnd.choice([p for p in _PLATFORMS if p != first["platform"]])
            gift: dict[str, Any] = {
                "platform": platform,
                "order_no": f"{platform[:2].upper()}{rnd.randrange(10**9, 10**10)}",
                "phone": first["phone"], "amount": 29.0, "paired": True,
                "lines": [{"sku": "GIFTBOX-1", "qty": 1}], "step": 0,
            }
            self.open_orders[gift["order_no"]] = gift
            batch.append(self._event(gift, "CREATED"))
        for order_no in list(self.open_orders)[:6]:
            order = self.open_orders[order_no]
            if order["step"] >= len(_FLOW):
                del self.open_orders[order_no]
                continue
            batch.append(self._event(order, _FLOW[order["step"]]))
            order["step"] += 1
        if self.sent and rnd.random() < 0.3:
            batch.append(rnd.choice(self.sent))  # a retried delivery: de-duplicated
        if rnd.random() < 0.05 and self.open_orders:
            batch.append(self._event(next(iter(self.open_orders.values())), "WAITING_FOR_GODOT"))
        self.sent = batch
        return batch


async def serve_demo_feeder(settings: Settings, bound: str) -> None:
    """Post a demo batch to ``bound`` every ``[demo] interval_s`` until cancelled."""
    tenant = settings.demo.tenant
    credentials = settings.credentials(tenant, "erp")
    if credentials is None:
        raise ConfigError(settings.path or "", None, "demo.tenant",
                          f"the demo needs [tenants.{tenant}.erp] with a secret")
    base = bound if "://" in bound else f"http://{bound}"
    url = f"{base}/webhooks/erp/{tenant}"
    started = int(time.time())
    erp = DemoErp(seed=started, run=f"{started}-")
    log.info("demo ERP posting to %s every %.1f s", url, settings.demo.interval_s)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per POST drowns the demo
    async with httpx.AsyncClient(timeout=10) as client:
        while True:
            body = orjson.dumps({"events": erp.next_batch()})
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "X-Gateway-Timestamp": timestamp,
                "X-Gateway-Signature": sign(credentials.secret.reveal(), timestamp, body),
            }
            try:
                response = await client.post(url, content=body, headers=headers)
                reply = response.json()
                log.info("demo ERP batch -> HTTP %s %s", response.status_code, reply.get("counts", reply))
                for result in reply.get("results", []):
                    if result["outcome"] != "duplicate":
                        log.info("  %-24s %-11s %s %s", result["order_id"], result["outcome"],
                                 result.get("status") or "", result.get("reason") or "")
            except httpx.HTTPError as exc:
                log.warning("demo ERP post failed: %s", exc)
            await trio.sleep(settings.demo.interval_s)
