"""Planning steps without a store: events built field by field, a plain-dict world."""

from __future__ import annotations

from gateway._model import Event, OrderState, Status
from gateway._pipeline import plan_step

S = Status
T0 = 1_764_036_000_000


def ev(n, order="douyin|1", status=S.PAID, *, tenant="t1", source="erp", waybill="", data=None,
       buyer=0, code=None, occurred=T0):
    return Event(
        tenant=tenant, source=source, source_event_id=f"e{n}", order_id=order, type="erp",
        raw_status=str(status), status_code=status.code if code is None else code,
        occurred_at_ms=occurred, received_at_ms=T0, fingerprint=1000 + n, buyer_key=buyer,
        waybill=waybill, data=data or {}, rule=f"erp.toml@v1:status.{status}", raw={"n": n},
    )


class World:
    """Plain-dict stand-ins for the store's readers."""

    def __init__(self, merge_window_ms: int = 1_800_000):
        self.orders: dict[tuple[str, str], OrderState] = {}
        self.seen: set[tuple[str, int]] = set()
        self.waybills: dict[tuple[str, str], str] = {}
        self.buyers: set[tuple[str, int, int, str]] = set()
        self.outbox: list[dict] = []
        self.merge_window_ms = merge_window_ms

    def orders_for_buyer(self, tenant, buyer_key, since_ms):
        return sorted((time_ms, order_id) for t, b, time_ms, order_id in self.buyers
                      if t == tenant and b == buyer_key and time_ms >= since_ms)

    def plan(self, events, now_ms=T0 + 5):
        plan = plan_step(events, lambda t, o: self.orders.get((t, o)), lambda t, f: (t, f) in self.seen,
                         lambda t, w: self.waybills.get((t, w)), self.orders_for_buyer, now_ms,
                         merge_window_ms=self.merge_window_ms)
        for order in plan.write.orders:  # "commit"
            self.orders[(order.tenant, order.order_id)] = order
        for record in plan.write.events:
            self.seen.add((record["tenant"], record["fingerprint"]))
        for tenant, waybill, order_id in plan.write.waybill_index:
            self.waybills[(tenant, waybill)] = order_id
        self.buyers.update(plan.write.buyer_index)
        self.outbox.extend(plan.write.outbox)
        return plan
