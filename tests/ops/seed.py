"""Seeding a real store for the operators' view: events through the real processing step
(``plan_step``) committed with ``Store.commit`` at a controlled gateway clock, and pack-line
records written as the pack line writes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway._model import CODE_UNKNOWN, Event, Status
from gateway._pipeline import plan_step
from gateway._rules import load_rules
from gateway._store import StepWrite, Store, StoreSettings, open_store
from tests._support import RULES

S = Status
HOUR = 3_600_000
NOW = 1_764_036_000_000 + 50 * HOUR  # the scans' clock; seeds are dated before it
RULESET = load_rules(RULES)
_RAW = {("douyin", S.REFUND_INITIATED): "200", ("douyin", S.REFUNDED): "206", ("douyin", S.CANCELLED): "106",
        ("douyin", S.PENDING_REVIEW): "101", ("douyin", S.SHIPPED): "102"}


def open_at(path: Path) -> Store:
    return open_store(StoreSettings(path=path, sync="os"))


class Seeder:
    """Events for one tenant, each processed at its own gateway time."""

    def __init__(self, store: Store, tenant: str = "t1") -> None:
        self.store = store
        self.tenant = tenant
        self.n = 0

    def event(self, order: str, status: Status | None, *, occurred: int, processed: int, source: str = "erp",
              buyer: int = 0, waybill: str = "", unknown: str = "") -> list[Any]:
        """Process one event at gateway time ``processed`` (source time ``occurred``)."""
        self.n += 1
        raw = unknown or (_RAW[(source, status)] if source != "erp" and status else str(status))
        code = CODE_UNKNOWN if unknown else status.code if status else CODE_UNKNOWN
        event = Event(tenant=self.tenant, source=source, source_event_id=f"{source}-{self.n}", order_id=order,
                      type=source, raw_status=raw, status_code=code, occurred_at_ms=occurred,
                      received_at_ms=processed, fingerprint=10_000 + self.n, buyer_key=buyer, waybill=waybill,
                      data={"amount": 10 + self.n}, rule=f"{source}.toml@v1:status.{raw}", raw={"n": self.n})
        store = self.store
        plan = plan_step([event], store.get_order, store.seen_fingerprint, store.order_for_waybill,
                         store.orders_for_buyer, processed)
        store.commit(plan.write)
        return plan.results

    def records(self, *records: tuple[str, str, dict[str, Any] | None]) -> None:
        """Pack-line records ``(kind, record_id, value)`` of the tenant, in one batch."""
        self.store.commit(StepWrite(records=[(self.tenant, kind, rid, value) for kind, rid, value in records]))
