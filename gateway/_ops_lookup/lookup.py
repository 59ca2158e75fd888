"""Find a buyer and list their orders of the last 30 days, every channel, with each component.

``find_buyer`` answers the after-sales question "my gift box never arrived" from one of: a
phone number, an order id, a waybill or a buyer nick. It never scans orders: every step is
an index read or a point get (``gateway._store.base`` names the keyspaces)::

    phone    buyer_key(T, "phone", phone) and buyer_key(T, "phone_hash", phone)
             (the pipeline's own keys: digits normalised, "+86"/"0086" dropped)   idx_buyer range
    nick     buyer_key(T, "buyer_id", nick): the Tmall rules map content.buyer_nick
             (after buyer_open_uid) to the buyer_id kind; an identity that is not
             the order's buyer key is indexed as an alias (Event.buyer_aliases)  idx_buyer range
    order_id the order (``channel|id``, or the bare platform id tried per channel) orders get
    waybill  idx_waybill -> the order                                             idx_waybill get
    then     the order's buyer key -> idx_buyer range of the last 30 days
             each order found: its buyer key too (one hop), so orders a source
             keyed by another identity of the same buyer join                    idx_buyer range

The 30 days are counted on the buyer index's time (when the gateway first saw the order). An
index entry whose order now carries another buyer key still counts: an event of that order
did name this identity. The pack-line records of each order: ``gateway._ops_lookup.records``.

Blocking (RocksDB reads): call it from a worker thread (``trio.to_thread.run_sync``).
"""

from __future__ import annotations

import math
import time
from typing import Any

import core_ext
from gateway._model import OrderState
from gateway._ops_lookup.components import order_components
from gateway._ops_lookup.records import open_session_ids, read_pack_records
from gateway._ops_lookup.texts import mask_phone, status_words
from gateway._ops_lookup.values import BuyerLookup, MatchedBy, OrderView
from gateway._packline.station import order_candidates
from gateway._packline.values import Product
from gateway._store import Store

WINDOW_DAYS = 30
#: At most this many orders are listed (a shared identity, e.g. a parcel locker's phone).
MAX_ORDERS = 200
#: Buyer keys followed from the orders found (one hop), besides the one asked for.
MAX_KEYS = 6
_DAY_MS = 86_400_000


class LookupInputError(ValueError):
    """The lookup was asked nothing, or two things at once, or an identifier that names no
    buyer (a phone of fewer than five digits). ``message_zh`` says it for the agent."""

    def __init__(self, message_zh: str, message_en: str) -> None:
        super().__init__(message_en)
        self.message_zh = message_zh
        self.message_en = message_en


def find_buyer(store: Store, tenant: str, *, phone: str | None = None, order_id: str | None = None,
               waybill: str | None = None, nick: str | None = None, keyword: str = "",
               now_ms: int | None = None, window_days: int = WINDOW_DAYS) -> BuyerLookup:
    """The buyer's orders of the last ``window_days`` across every channel, newest first.

    Give exactly one of ``phone``, ``order_id``, ``waybill``, ``nick``.

    Args:
        keyword: marks matching components ``highlight`` (``赠品``, ``礼盒``, ``gift``, an
            SKU or a product name; ``gateway._ops_lookup.texts.keyword_matches``).
        now_ms: the end of the window (default: now).

    Returns:
        The lookup; ``orders`` is empty when nothing matched (its notes say why).

    Raises:
        LookupInputError: no identifier, more than one, or one that names no buyer.
        StoreError: RocksDB failed.
    """
    given = {name: value.strip() for name, value in
             (("phone", phone), ("order_id", order_id), ("waybill", waybill), ("nick", nick)) if value and value.strip()}
    if len(given) != 1:
        raise LookupInputError("请只填一项：手机号、订单号、运单号或买家昵称",
                               "give exactly one of phone, order_id, waybill or nick")
    (matched_by, value), = given.items()
    now = int(now_ms if now_ms is not None else time.time_ns() // 1_000_000)
    since = now - window_days * _DAY_MS
    notes: list[tuple[str, str]] = []
    keys: list[int] = []
    first: OrderState | None = None
    if matched_by in ("phone", "nick"):
        if matched_by == "phone" and not core_ext.normalise_identity("phone", value):
            raise LookupInputError("手机号至少需要 5 位数字", "a phone number needs at least 5 digits")
        kinds = ("phone", "phone_hash") if matched_by == "phone" else ("buyer_id",)
        keys = [key for key in (core_ext.buyer_key(tenant, kind, value) for kind in kinds) if key]
    else:
        first = _entry_order(store, tenant, matched_by, value)
        if first is None:
            notes.append(("未找到该订单号或运单号", "no order has this order id or waybill"))
        elif first.buyer_key:
            keys = [first.buyer_key]
        else:
            notes.append(("该订单没有买家标识，只显示这一单", "the order names no buyer: only it is shown"))
    found, keys = _buyer_orders(store, tenant, keys, since)
    if first is not None and first.order_id not in found:
        found[first.order_id] = (first.created_at_ms, first)
        if first.created_at_ms < since:
            notes.append((f"该订单早于 {window_days} 天", f"the order is older than {window_days} days"))
    if len(found) > MAX_ORDERS:
        notes.append((f"订单过多，只显示最新 {MAX_ORDERS} 单（可能是共用的手机号或地址）",
                      f"too many orders: the newest {MAX_ORDERS} are shown (a shared phone or address?)"))
    if not found and not notes:
        notes.append((f"近 {window_days} 天没有该买家的订单", f"no orders of this buyer in the last {window_days} days"))
    newest = sorted(found.values(), key=lambda item: (item[0], item[1].order_id), reverse=True)[:MAX_ORDERS]
    open_sessions = open_session_ids(store, tenant) if newest else []
    products: dict[str, Product | None] = {}
    views = tuple(order_view(store, tenant, order, seen_ms, open_sessions, keyword, products)
                  for seen_ms, order in newest)
    shown = mask_phone(value) if matched_by == "phone" else value
    matched: MatchedBy = matched_by  # type: ignore[assignment]  # one of the four names above
    return BuyerLookup(tenant, matched, shown, tuple(str(k) for k in dict.fromkeys(keys)), since, now, views,
                       keyword.strip(), sum(c.highlight for view in views for c in view.components),
                       tuple(zh for zh, _ in notes), tuple(en for _, en in notes))


def _entry_order(store: Store, tenant: str, matched_by: str, value: str) -> OrderState | None:
    if matched_by == "waybill":
        order_id = store.order_for_waybill(tenant, value)
        return store.get_order(tenant, order_id) if order_id else None
    for candidate in order_candidates(value):
        order = store.get_order(tenant, candidate)
        if order is not None:
            return order
    return None


def _buyer_orders(store: Store, tenant: str, keys: list[int], since_ms: int
                  ) -> tuple[dict[str, tuple[int, OrderState]], list[int]]:
    """``{order_id: (first seen, order)}`` under ``keys`` and, one hop, the keys of the
    orders found; and every key read."""
    found: dict[str, tuple[int, OrderState]] = {}
    queue, followed = list(keys), set(keys)
    for key in queue:
        for seen_ms, order_id in store.orders_for_buyer(tenant, key, since_ms):
            if order_id in found or len(found) > MAX_ORDERS:
                continue
            order = store.get_order(tenant, order_id)
            if order is None:
                continue
            found[order_id] = (seen_ms, order)
            if key in keys and order.buyer_key and order.buyer_key not in followed and len(followed) < len(keys) + MAX_KEYS:
                followed.add(order.buyer_key)
                queue.append(order.buyer_key)
    return found, queue


def order_view(store: Store, tenant: str, order: OrderState, seen_ms: int, open_sessions: list[str],
                keyword: str, products: dict[str, Product | None] | None = None) -> OrderView:
    """One order with its components and sessions (``seen_ms``: its buyer-index time).

    Args:
        open_sessions: ``records.open_session_ids`` of the tenant, read once per lookup.
        keyword: marks matching components (``""``: none).
        products: products read so far in this lookup (``read_pack_records``).
    """
    records = read_pack_records(store, tenant, order, open_sessions, products)
    components, sessions = order_components(order, records, keyword)
    channel, _, platform_id = order.order_id.partition("|")
    waybills = [order.waybill, str((records.parcel or {}).get("waybill") or ""),
                *(c.waybill for c in components)]
    zh, en = status_words(order.status)
    return OrderView(order.order_id, channel, platform_id, order.status.value if order.status else "", zh, en,
                     seen_ms or order.created_at_ms, order.updated_at_ms, _paid_at_ms(order.data),
                     amounts_yuan(order.data), tuple(w for w in dict.fromkeys(waybills) if w), order.pack_group,
                     components, sessions)


def _paid_at_ms(data: dict[str, Any]) -> int | None:
    value = data.get("paid_at_ms")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def amounts_yuan(data: dict[str, Any]) -> dict[str, float]:
    """The order's money fields in yuan: ``amount`` (ERP, Tmall, yuan), ``pay_amount``
    (Douyin ``pay_amount_fen``), ``refund_amount`` (``refund_amount_yuan`` / ``_fen``)."""
    out: dict[str, float] = {}
    for name, target, scale in (("amount", "amount", 1.0), ("pay_amount_fen", "pay_amount", 0.01),
                                ("refund_amount_yuan", "refund_amount", 1.0),
                                ("refund_amount_fen", "refund_amount", 0.01)):
        raw = data.get(name)
        try:
            number = float(raw) if raw is not None and not isinstance(raw, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is not None and math.isfinite(number) and target not in out:
            out[target] = round(number * scale, 2)
    return out


__all__ = ["MAX_ORDERS", "WINDOW_DAYS", "LookupInputError", "amounts_yuan", "find_buyer", "order_view"]
