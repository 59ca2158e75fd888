"""The after-sales view in words: order states, component states, keywords. Pure.

Each function returns ``(zh, en)``: zh-CN is what the agent reads by default, English the
switch. A component is named by its catalog name when it has one (``礼盒 Gift box``), else by
its kind (``礼盒`` / ``gift box``), so "试用装 已随 SF123 发出 / trial kit shipped with SF123"
reads the same whether or not the catalog knew the SKU.

Keywords (``keyword_matches``): a keyword marks a component when it is part of its SKU or
its name (case-insensitive), or when it is one of the kind words below; ``赠品`` / ``gift``
also mark whatever the gift rules or the ERP added as a gift (a trial kit given away is a
gift to the buyer, whatever its catalog kind).
"""

from __future__ import annotations

import core_ext
from gateway._model import Status

_STATUS_WORDS: dict[Status, tuple[str, str]] = {
    Status.CREATED: ("已下单未付款", "created, not paid"),
    Status.PAID: ("已付款", "paid"),
    Status.PENDING_REVIEW: ("已付款待审核", "paid, in review"),
    Status.READY_TO_PACK: ("待打包", "ready to pack"),
    Status.PACKING: ("打包中", "being packed"),
    Status.PACKED: ("已打包", "packed"),
    Status.SHIPPED: ("已发货", "shipped"),
    Status.FULFILLMENT_STARTED: ("已揽收", "picked up by the carrier"),
    Status.IN_TRANSIT: ("运输中", "in transit"),
    Status.DELIVERED: ("已签收", "delivered"),
    Status.REFUND_INITIATED: ("退款中", "refund requested"),
    Status.REFUNDED: ("已退款", "refunded"),
    Status.CANCELLED: ("已取消", "cancelled"),
    Status.ON_HOLD: ("已暂停", "on hold"),
}

KIND_WORDS: dict[str, tuple[str, str]] = {
    "item": ("商品", "item"),
    "gift": ("赠品", "gift"),
    "gift_box": ("礼盒", "gift box"),
    "trial": ("试用装", "trial kit"),
}

#: Keyword -> the component kinds it names; ``"*gift"`` stands for "anything given as a gift".
_KEYWORD_KINDS: dict[str, frozenset[str]] = {
    **dict.fromkeys(("赠品", "赠", "gift", "gifts", "freebie"), frozenset({"gift", "gift_box", "*gift"})),
    **dict.fromkeys(("礼盒", "gift box", "giftbox", "gift_box", "box"), frozenset({"gift_box"})),
    **dict.fromkeys(("试用装", "试用", "小样", "trial", "trial kit", "sample"), frozenset({"trial"})),
}


def status_words(status: Status | None) -> tuple[str, str]:
    """The order state in words (``"未知"``/``"unknown"`` before the first mapped event)."""
    return _STATUS_WORDS.get(status, ("未知", "unknown")) if status is not None else ("未知", "unknown")


def component_label(name: str, kind: str, quantity: int) -> tuple[str, str]:
    """What to call a component: its name (or kind) and ``×N`` when more than one unit."""
    zh_kind, en_kind = KIND_WORDS.get(kind, (kind, kind))
    count = f" ×{quantity}" if quantity > 1 else ""
    return (name or zh_kind) + count, (name or en_kind) + count


def state_words(state: str, *, parcel: int, waybill: str, batch: int, packed: int, quantity: int,
                station: str = "", stop_zh: str = "", stop_en: str = "", order_withdrawn: bool = False
                ) -> tuple[str, str]:
    """A component's state in words (``state`` as in ``ComponentState``)."""
    if state == "shipped":
        return (f"已随 {waybill} 发出", f"shipped with {waybill}") if waybill else ("已发出", "shipped")
    if state == "packed":
        if waybill:
            return f"已装入第 {parcel} 包，运单 {waybill} 待揽收", f"packed in parcel {parcel}, waybill {waybill}, awaiting pickup"
        return f"已装入第 {parcel} 包，待出运单", f"packed in parcel {parcel}, waybill pending"
    if state == "missing":
        return (f"封箱时缺件（已装 {packed}/{quantity}），未发出",
                f"missing at close ({packed} of {quantity} packed), not shipped")
    if state == "packing":
        where_zh, where_en = (f"，工位 {station}", f" at station {station}") if station else ("", "")
        return f"打包中（{packed}/{quantity}{where_zh}）", f"being packed ({packed}/{quantity}){where_en}"
    if state == "held":
        return f"暂停：{stop_zh or '赠品库存不足'}", f"held: {stop_en or 'gift stock short'}"
    if state == "stopped":
        return f"已拦停：{stop_zh or '订单退款'}", f"stopped: {stop_en or 'the order was refunded'}"
    if state == "removed":
        return ("订单已取消，不发货", "order withdrawn, not shipped") if order_withdrawn else (
            "已退款，不发货", "refunded, not shipped")
    if batch > 1:
        return f"预售第 {batch} 批，待发", f"pre-sale batch {batch}, pending"
    if parcel > 1:
        return f"待发（第 {parcel} 包）", f"pending (parcel {parcel})"
    return "待打包", "waiting to be packed"


def keyword_matches(keyword: str, *, sku: str, name: str, kind: str, origin: str) -> bool:
    """True when ``keyword`` names this component (see the module docstring)."""
    word = " ".join(keyword.split()).casefold()
    if not word:
        return False
    if word in sku.casefold() or (name and word in name.casefold()):
        return True
    kinds = _KEYWORD_KINDS.get(word)
    if kinds is None:
        return False
    given = origin.startswith("gift:") or origin in ("erp_gift", "gift_box")
    return kind in kinds or ("*gift" in kinds and given)


def mask_phone(phone: str) -> str:
    """``138****8000``: enough for the agent to recognise the number, never the number
    (normalised as the buyer key normalises it: ``+86 138-0013-8000`` is ``138****8000``)."""
    digits = core_ext.normalise_identity("phone", phone) or "".join(char for char in phone if char.isdigit())
    if len(digits) <= 4:
        return "*" * len(digits)
    head = 3 if len(digits) >= 10 else (1 if len(digits) >= 6 else 0)
    tail = 4 if len(digits) >= 8 else 2
    return digits[:head] + "*" * (len(digits) - head - tail) + digits[len(digits) - tail:]


__all__ = ["KIND_WORDS", "component_label", "keyword_matches", "mask_phone", "state_words", "status_words"]
