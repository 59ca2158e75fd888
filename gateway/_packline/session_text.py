"""What a pack session shows: the ``ScanResult`` of every step and the display lines in it.

Each line comes in zh-CN (shown by default) and English, says what happened and what the
packer does next, and is safe for one display line (``shown``: control characters as ``?``,
cut at a limit). Products are named rather than components (``summary`` adds up one SKU's
rows: the packer looks for products). Pure: ``gateway._packline.session`` decides the
verdicts and states; this module words them.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway._packline.values import Bill, BillComponent, Product, Verdict

SessionState = Literal["open", "held", "stopped", "closed"]


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What the station shows (and records) for one open, scan, close, refund or weighing.

    Attributes:
        verdict: the verdict; ``verdict.alarm`` says whether the station sounds.
        session_id / state: the session and its state after this step.
        message_zh / message_en: one short line for the display (zh-CN shown by default).
        at_ms: when it happened (epoch ms, the caller's clock).
        component_id / order_id / sku: the component ticked (OK) or the product scanned.
        code: the scanned code, as given.
        expected: the outstanding components (``component_id, order_id, sku, name, kind,
            origin, units`` still to scan, ``quantity``, ``packed``), in bill order.
        missing: at a refused or partial close, every missing component (same keys).
        remove: components of refunded lines already in the parcel (``units`` to take out).
        packed_units / total_units: progress of parcel 1.
        detail: anything else the display needs (shortfalls, weights, forced_by, reason...).
    """

    verdict: Verdict
    session_id: str
    state: SessionState
    message_zh: str
    message_en: str
    at_ms: int
    component_id: str = ""
    order_id: str = ""
    sku: str = ""
    code: str = ""
    expected: tuple[dict[str, Any], ...] = ()
    missing: tuple[dict[str, Any], ...] = ()
    remove: tuple[dict[str, Any], ...] = ()
    packed_units: int = 0
    total_units: int = 0
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def alarm(self) -> bool:
        return self.verdict.alarm

    @classmethod
    def of(cls, verdict: Verdict, session_id: str, state: SessionState, zh: str, en: str, at_ms: int,
           fields: dict[str, Any], *, expected: list[dict[str, Any]], packed_units: int, total_units: int) -> ScanResult:
        """The result of one step from what the step recorded: ``missing``, ``remove``,
        ``component_id``, ``order_id``, ``sku`` and ``code`` are taken out of ``fields`` into
        their own attributes; the rest, but for ``None`` and ``""``, is the ``detail``. The result
        takes ``fields``' values over: the session's timeline keeps its own copy of them."""
        missing = fields.pop("missing", None) or []
        remove = fields.pop("remove", None) or []
        top = {key: fields.pop(key, "") or "" for key in ("component_id", "order_id", "sku", "code")}
        detail = {k: v for k, v in fields.items() if v is not None and v != ""}
        return cls(verdict, session_id, state, zh, en, at_ms, top["component_id"], top["order_id"], top["sku"],
                   top["code"], tuple(expected), tuple(missing), tuple(remove), packed_units, total_units, detail)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for the display's websocket and the event's ``detail``)."""
        return {"verdict": self.verdict.value, "session_id": self.session_id, "state": self.state,
                "message_zh": self.message_zh, "message_en": self.message_en, "at_ms": self.at_ms,
                "component_id": self.component_id, "order_id": self.order_id, "sku": self.sku, "code": self.code,
                "expected": [dict(c) for c in self.expected], "missing": [dict(c) for c in self.missing],
                "remove": [dict(c) for c in self.remove], "packed_units": self.packed_units,
                "total_units": self.total_units, "detail": copy.deepcopy(self.detail)}


def wrong_item_text(product: Product, live: Sequence[BillComponent], bill: Bill) -> tuple[str, str]:
    """Why ``product`` is a ``WRONG_ITEM`` here, as precisely as the bill tells: a kit scanned
    instead of its parts, an item of a later parcel, a refunded item, else what is expected.

    Args:
        live: parcel 1's live components (none of them has the product's SKU).
    """
    name = shown(product.name or product.sku)
    parts = [c for c in live if c.origin == f"kit:{product.sku}"]
    if parts:
        zh, en = summary([component_row(c, c.quantity) for c in parts])
        return f"组合商品 {name} 请逐件扫描其组件：{zh}", f"{name} is a kit: scan its parts: {en}"
    others = [c for c in bill.components if c.sku == product.sku]
    later = [c for c in others if c.status != "removed" and c.parcel != 1]
    if later:
        return (f"错误商品：{name} 属于后发的第 {later[0].parcel} 个包裹，本包裹不放",
                f"Wrong item: {name} ships later in parcel {later[0].parcel}, not in this one")
    if others:
        return f"错误商品：{name} 已退款，不要放入包裹", f"Wrong item: {name} was refunded; keep it out"
    outstanding = missing_rows(bill)
    if not outstanding:
        return (f"错误商品：扫描了 {name}，清单已齐，请封箱",
                f"Wrong item: scanned {name}; the parcel is complete, close it")
    zh, en = summary(outstanding)
    return f"错误商品：扫描了 {name}，应为 {zh}", f"Wrong item: scanned {name}, expected {en}"


def opening_stop(refunded: Sequence[str], packed: Sequence[str], shortfalls: Mapping[str, int],
                 order_states: Mapping[str, str]) -> dict[str, str] | None:
    """Why a session opens stopped or held (``{"verdict", "message_zh", "message_en"}``), or
    ``None``: a refunded order first (``STOP_REFUND``), then one packed before
    (``ALREADY_PACKED``), then gift stock short (``STOP_NO_STOCK``)."""
    if refunded:
        orders = "、".join(shown(o) for o in refunded)
        return {"verdict": Verdict.STOP_REFUND.value, "message_zh": f"订单 {orders} 已退款/取消：不要打包，不要发货",
                "message_en": f"Order {orders} refunded or cancelled: do not pack, do not ship"}
    if packed:
        orders = "、".join(f"{shown(o)}（{order_states[o]}）" for o in packed)
        return {"verdict": Verdict.ALREADY_PACKED.value, "message_zh": f"重复打包：订单 {orders} 已打包过，请主管核查",
                "message_en": f"Duplicate pack: order {orders} was packed before; call a supervisor"}
    if shortfalls:
        listed = "、".join(f"{shown(sku)} 缺 {units} 件" for sku, units in sorted(shortfalls.items()))
        listed_en = ", ".join(f"{shown(sku)} short {units}" for sku, units in sorted(shortfalls.items()))
        return {"verdict": Verdict.STOP_NO_STOCK.value, "message_zh": f"赠品库存不足（{listed}）：包裹暂停，请主管处理",
                "message_en": f"Gift stock short ({listed_en}): parcel held; call a supervisor"}
    return None


def refund_stop(order: str) -> dict[str, str]:
    """The stop of a whole-order refund arriving while packing (``order`` as shown)."""
    return {"verdict": Verdict.STOP_REFUND.value,
            "message_zh": f"订单 {order} 已退款/取消：停止打包，不要发货，已装商品请取出",
            "message_en": f"Order {order} refunded or cancelled: stop, do not ship, unpack it"}


def abandon_text(units: int) -> tuple[str, str]:
    """The line of an abandoned parcel: the ``units`` already scanned go back to the shelf."""
    back_zh = f"，请将已扫的 {units} 件放回" if units else ""
    back_en = f"; put the {units} scanned unit(s) back" if units else ""
    return f"已取消本包裹{back_zh}", f"Parcel abandoned{back_en}"


def opening_text(orders: int, units: int, unknown_skus: Collection[str]) -> tuple[str, str]:
    """The ``OPENED`` line: how many orders and units, and the SKUs that cannot be scanned."""
    zh = f"开始打包：{orders} 个订单，共 {units} 件"
    en = f"Packing {orders} order(s), {units} units"
    if unknown_skus:
        skus = ", ".join(shown(s) for s in unknown_skus)
        zh += f"；注意 {skus} 不在商品资料中，无法扫描，请找主管"
        en += f"; note {skus} not in the catalog and cannot be scanned: call a supervisor"
    return zh, en


def component_row(component: BillComponent, units: int) -> dict[str, Any]:
    """One component as the display lists it (``units``: still to scan, to take out, ...)."""
    return {"component_id": component.component_id, "order_id": component.order_id, "sku": component.sku,
            "name": component.name, "kind": component.kind, "origin": component.origin, "units": units,
            "quantity": component.quantity, "packed": component.packed}


def missing_rows(bill: Bill) -> list[dict[str, Any]]:
    """The outstanding components of ``bill``, in bill order (``units`` still to scan)."""
    return [component_row(c, c.outstanding) for c in bill.outstanding()]


def summary(rows: list[dict[str, Any]], *, with_orders: bool = False, limit: int = 4) -> tuple[str, str]:
    """``"名称 ×2、…等 N 项"`` / ``"name x2, ... and N more"`` for the display; rows of one SKU
    (of one order, ``with_orders``) are added up: the packer looks for products, not components."""
    units: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (shown(row["name"] or row["sku"]), shown(row["order_id"]) if with_orders else "")
        units[key] = units.get(key, 0) + int(row["units"])
    zh_parts, en_parts = [], []
    for (name, order), count in list(units.items())[:limit]:
        zh_parts.append(f"{name} ×{count}" + (f"（订单 {order}）" if with_orders else ""))
        en_parts.append(f"{name} x{count}" + (f" (order {order})" if with_orders else ""))
    more = len(units) - limit
    zh, en = "、".join(zh_parts), ", ".join(en_parts)
    return (zh + f" 等 {len(units)} 项", en + f" and {more} more") if more > 0 else (zh, en)


def shown(text: str, limit: int = 40) -> str:
    """``text`` safe for one display line: control characters as ``?``, cut at ``limit``."""
    clean = "".join(ch if ch.isprintable() else "?" for ch in str(text))
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


__all__ = ["ScanResult", "SessionState", "abandon_text", "component_row", "missing_rows", "opening_stop", "opening_text",
           "refund_stop", "shown", "summary", "wrong_item_text"]
