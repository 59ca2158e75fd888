"""The pack line's shared state: each station's runner, the line's stores and caches, the view.

``LineBase`` holds what every part of ``PackLine`` shares (the settings, the store and the
pipeline, the catalog cache, which orders are in open sessions, the stations' runners) and
the small helpers they all use: durable commits at station priority, the catalog and the
bill of a pack group, the station's view for its screen, the print guard. The parts:
``line_scans`` (what a scan or an interrupt does), ``line_watch`` (follow-ups of commits,
waybill timeouts, evidence), ``line`` (``PackLine``: the commit listener and the tasks).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import trio

from devices.nvr import NvrClient
from devices.printer import ZplPrinter
from devices.scan import Scan
from devices.supervisor import DeviceRegistry
from gateway._customs import CustomsConfig
from gateway._metrics import Metrics
from gateway._model import OrderState, Status
from gateway._packline.bill import build_bill
from gateway._packline.catalog import load_catalog, load_stock
from gateway._packline.display import StationDisplay
from gateway._packline.printing import PrintJob, PrintQueue
from gateway._packline.session import PackSession, ScanResult
from gateway._packline.station import (
    WITHDRAWN,
    Outcome,
    group_members,
)
from gateway._packline.stock_reader import StockReader
from gateway._packline.values import Bill, Catalog, StockLevel
from gateway._packline.weighing import StationScale
from gateway._pipeline import Pipeline, now_ms
from gateway._rules import GiftOrder, RuleSet, evaluate_gifts
from gateway._settings import PackLineSection
from gateway._store import StepWrite, Store

log = logging.getLogger(__name__)

INBOX = 256
#: How often packed parcels are checked for a missing waybill (a quarter of
#: ``waybill_timeout_s`` when that is shorter).
WAYBILL_CHECK_S = 30.0
#: Pending evidence searches are looked at at least this often.
EVIDENCE_POLL_S = 30.0


@dataclass
class _Interrupt:
    """An order of the station's open session changed (refund, cancel, refunded line)."""

    order: OrderState


@dataclass
class StationRunner:
    """One station's state: operator, open session, label queue."""

    name: str
    nvr: str
    nvr_channel: int
    queue: PrintQueue
    operator: str = ""
    tenant: str = ""
    session: PackSession | None = None
    override_by: str = ""
    override_until_ms: int = 0
    last: dict[str, Any] | None = None
    label: dict[str, Any] | None = None
    last_job: PrintJob | None = None
    reprints: int = 0
    seq: int = 0
    stored: dict[str, Any] | None = None  # the station record as last made durable (not rewritten unchanged)
    tracked: frozenset[tuple[str, str]] = frozenset()  # (tenant, order id) this station holds in _open_orders
    inbox_send: trio.MemorySendChannel[Scan | _Interrupt] = field(init=False)
    inbox: trio.MemoryReceiveChannel[Scan | _Interrupt] = field(init=False)

    def __post_init__(self) -> None:
        self.inbox_send, self.inbox = trio.open_memory_channel[Scan | _Interrupt](INBOX)

    def record(self) -> dict[str, Any]:
        return {"operator": self.operator, "tenant": self.tenant,
                "session_id": self.session.session_id if self.session else ""}


def _copy(session: PackSession) -> PackSession:
    """A working copy: a scan's change goes live only once it is durable."""
    return session.copy()


def _session_view(session: PackSession | None) -> dict[str, Any] | None:
    if session is None:
        return None
    bill = session.bill
    return {"session_id": session.session_id, "group_id": bill.group_id, "orders": list(bill.orders),
            "state": session.state, "components": [c.to_dict() for c in bill.components]}


def _result_outcome(result: ScanResult, code: str) -> Outcome:
    detail = dict(result.detail)
    for name in ("missing", "remove"):
        rows = getattr(result, name)
        if rows:
            detail[name] = [dict(row) for row in rows]
    if result.sku:
        detail["sku"] = result.sku
    return Outcome(result.verdict, result.message_zh, result.message_en, code=code,
                   component_id=result.component_id or None, detail=detail)


def _refunded_lines(order: OrderState) -> bool:
    lines = order.data.get("lines")
    return isinstance(lines, list) and any(
        isinstance(line, dict) and (line.get("refund") is True or line.get("refund_status") in ("refunding", "refunded"))
        for line in lines)


def _pickup_state(order: OrderState) -> str:
    """Where the parcel of a refunded order is: still waiting for the carrier (the last chance
    to pull it) or already picked up (intercept with the carrier)."""
    before = order.resume_status or order.status
    if before in (Status.SHIPPED, Status.IN_TRANSIT, Status.DELIVERED, Status.FULFILLMENT_STARTED):
        return "picked_up"
    return "awaiting_pickup"


class LineBase:
    """The state every part of ``PackLine`` shares; its arguments are ``PackLine``'s."""

    def __init__(self, config: PackLineSection, stations: Mapping[str, tuple[str, int]], store: Store,
                 pipeline: Pipeline, rules: Callable[[], RuleSet], display: StationDisplay, registry: DeviceRegistry,
                 printers: Mapping[str, ZplPrinter | None], nvrs: Mapping[str, NvrClient], evidence_dir: Any,
                 scales: Mapping[str, StationScale] | None = None, stock_reader: StockReader | None = None,
                 metrics: Metrics | None = None, customs: CustomsConfig | None = None) -> None:
        self.config = config
        #: The customs-declaration check of cross-border orders (``gateway._customs``; off when empty).
        self.customs = customs or CustomsConfig()
        self.metrics = metrics
        self.stock_reader = stock_reader
        self.scales: Mapping[str, StationScale] = scales or {}
        self.store = store
        self.pipeline = pipeline
        self.rules = rules
        self.display = display
        self.registry = registry
        self.nvrs = nvrs
        self.evidence_dir = evidence_dir
        self._catalogs: dict[str, tuple[Catalog, dict[str, StockLevel]]] = {}
        self._open_orders: dict[tuple[str, str], str] = {}
        self._followups_send, self._followups = trio.open_memory_channel[OrderState | StepWrite](4096)
        self._evidence_wake = trio.Event()
        self._snapshots: dict[str, bytes] = {}
        self._pending_snapshots: list[tuple[NvrClient, int, str]] = []
        self.stations: dict[str, StationRunner] = {}
        for name, (nvr, channel) in stations.items():
            queue = PrintQueue(name, printers.get(name), self._commit, self._print_guard,
                               self._label_changed, now_ms)
            self.stations[name] = StationRunner(name, nvr, channel, queue)

    # -- durable writes ------------------------------------------------------------

    async def _commit(self, write: StepWrite) -> None:
        await self.pipeline.submit([], "station", extra=write)

    # -- catalog -------------------------------------------------------------------

    def catalog(self, tenant: str) -> tuple[Catalog, dict[str, StockLevel]]:
        """The tenant's catalog and gift stock (cached until a commit changes them)."""
        cached = self._catalogs.get(tenant)
        if cached is None:
            cached = self._catalogs[tenant] = (load_catalog(self.store, tenant), load_stock(self.store, tenant))
        return cached


    def bill_for(self, order: OrderState) -> tuple[list[OrderState], Catalog, Bill]:
        """The pack group of ``order`` (primary first), the tenant's catalog, and the group's
        expected bill with the gifts the live gift rules grant and the gift stock known now."""
        tenant = order.tenant
        members = group_members(order, self.store.orders_for_buyer, self.store.get_order)
        catalog, stock = self.catalog(tenant)
        grants = evaluate_gifts(self.rules().gifts, tenant, [
            GiftOrder.from_order_data(m.order_id, m.data, m.created_at_ms) for m in members])
        return members, catalog, build_bill(order.pack_group or order.order_id, members, catalog, grants, stock)

    def _track(self, runner: StationRunner) -> None:
        """Note which orders are open at ``runner``'s station (``_open_orders``), after each change
        of its session; only that station's entries are touched (this runs at every scan)."""
        session = runner.session
        keys = (frozenset((session.tenant, order_id) for order_id in session.bill.orders)
                if session is not None and session.state != "closed" else frozenset())
        for key in runner.tracked - keys:
            if self._open_orders.get(key) == runner.name:
                del self._open_orders[key]
        for key in keys:
            self._open_orders[key] = runner.name
        runner.tracked = keys


    # -- the display -----------------------------------------------------------------

    def view(self, runner: StationRunner) -> dict[str, Any]:
        runner.seq += 1
        return {"station": runner.name, "operator": runner.operator, "seq": runner.seq,
                "session": _session_view(runner.session), "last": runner.last, "label": runner.label,
                "devices": [{"device": d.device, "kind": d.kind, "state": d.state, "detail": d.detail}
                            for d in self.registry.of_station(runner.name)]}

    def _publish(self, runner: StationRunner) -> None:
        self.display.publish(runner.name, self.view(runner))

    def _label_changed(self, job: PrintJob) -> None:
        runner = self.stations.get(job.station)
        if runner is not None and (runner.last_job is None or runner.last_job.job_id == job.job_id
                                   or job.created_at_ms >= runner.last_job.created_at_ms):
            runner.last_job, runner.label = job, job.label_view()
            self._publish(runner)

    def _print_guard(self, job: PrintJob) -> str:
        for order_id in job.order_ids:
            order = self.store.get_order(job.tenant, order_id)
            if order is not None and order.status in WITHDRAWN:
                return f"{order_id} {order.status.value}"
        return ""
