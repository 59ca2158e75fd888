"""The anomaly board's values: ``Anomaly``, its kinds, and one pure builder per kind.

Each builder takes a stored value (an order as a dict, a pack-line record, a quarantine
record, a dead letter) and returns the ``Anomaly`` it stands for, with the reason in Chinese
(``reason``, shown by default) and English (``reason_en``). Which values are anomalies, and
reading them, is ``gateway._ops.board``'s job.

**Ids are stable**: ``<kind>:<subject>`` where the subject is what the condition is about
(the order, the pack group, the quarantine seq, the outbox seq), so the same condition found
by the next computation is the same anomaly, and its acknowledgement (kept under that id)
still applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

#: Every kind, in the board's order.
KINDS: tuple[str, ...] = ("unshipped_24h", "repeat_order_72h", "status_disagrees", "quarantined", "dead_letter",
                          "waybill_timeout", "intercept", "gift_shortfall", "held", "declaration_incomplete")

_PICKUP_ZH = {"awaiting_pickup": "待揽收（最后拦截机会）", "not_picked_up": "未揽收", "picked_up": "已揽收",
              "in_transit": "运输中", "unknown": "未知"}
_DISAGREE = {
    "withdrawn_vs_preparing": ("{a} 显示 {sa}，{b} 仍显示 {sb}：可能把已退款/取消的订单发出",
                               "{a} says {sa} while {b} still says {sb}: a withdrawn order may ship"),
    "cancelled_vs_shipped": ("{a} 显示 {sa}，{b} 显示 {sb}：已取消的订单已发货",
                             "{a} says {sa} while {b} says {sb}: a cancelled order has shipped"),
}
_QUARANTINE = {
    "unknown_status": ("{source} 的状态 “{raw}” 不在映射规则中，事件已隔离；补充规则后释放",
                       "{source} status {raw!r} is not in the mapping rules: quarantined; add the rule, "
                       "then release it"),
    "missing_status": ("{source} 的事件没有状态字段，事件已隔离；检查来源或规则的 status 路径",
                       "{source} event has no status field: quarantined; check the source or the rule's "
                       "status path"),
    "unknown_waybill": ("物流事件的面单 {waybill} 不属于任何已知订单，等待 ERP 回传面单",
                        "logistics event for waybill {waybill} matches no known order: waiting for the "
                        "ERP to report the waybill"),
}


@dataclass(frozen=True)
class Anomaly:
    """One condition a person should look at.

    Attributes:
        anomaly_id: ``<kind>:<subject>``, stable across computations.
        kind: one of ``KINDS``.
        tenant: whose.
        order_id: the order concerned, ``""`` when there is none (a quarantined event of an
            unknown waybill).
        code: a machine-readable reason (``refund_after_label``, ``unknown_status``...).
        reason / reason_en: the reason in Chinese and English.
        since_ms: when the condition started, as far as the store knows (epoch ms).
        detail: a few facts for the board (waybill, pickup state, sources...).
    """

    anomaly_id: str
    kind: str
    tenant: str
    order_id: str
    code: str
    reason: str
    reason_en: str
    since_ms: int
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def sort_key(self) -> tuple[int, str]:
        """Oldest first, then by id: the board's order and its cursor."""
        return (self.since_ms, self.anomaly_id)

    def to_dict(self, now_ms: int, ack: Mapping[str, Any] | None) -> dict[str, Any]:
        """The API's view: age computed at ``now_ms``, a link to the order, the ack (or null)."""
        return {"id": self.anomaly_id, "kind": self.kind, "order_id": self.order_id or None, "code": self.code,
                "reason": self.reason, "reason_en": self.reason_en, "since_ms": self.since_ms,
                "age_s": max(0, (now_ms - self.since_ms) // 1000) if self.since_ms else None,
                "link": order_link(self.tenant, self.order_id) if self.order_id else None,
                "detail": dict(self.detail),
                "ack": None if ack is None else {"by": ack.get("by", ""), "at_ms": ack.get("at_ms", 0)}}


def order_link(tenant: str, order_id: str) -> str:
    """The API path of an order (its state and audit trail)."""
    return f"/api/v1/tenants/{tenant}/orders/{quote(order_id, safe='')}"


def _hours(ms: int) -> str:
    return f"{ms / 3_600_000:.1f}"


def unshipped(tenant: str, order: Mapping[str, Any], now_ms: int) -> Anomaly:
    """A paid order not shipped: its age counts from when the gateway first saw it
    (``created_at_ms``; the order keeps no paid time, so an order that waited unpaid counts
    from its creation)."""
    since = int(order.get("created_at_ms") or 0)
    status = order.get("status") or "?"
    hours = _hours(now_ms - since)
    return Anomaly(f"unshipped_24h:{order['order_id']}", "unshipped_24h", tenant, order["order_id"], "unshipped",
                   f"已付款 {hours} 小时仍未发货（当前状态 {status}）",
                   f"paid {hours} h ago and not shipped (status {status})", since, {"status": status})


def repeat_order(tenant: str, order: Mapping[str, Any], earlier_id: str, earlier_at_ms: int,
                 same_group: bool) -> Anomaly:
    """The same buyer (``buyer_key``) ordered again soon after ``earlier_id`` (``same_group``:
    the two already ship in one pack group)."""
    since = int(order.get("created_at_ms") or 0)
    hours = _hours(since - earlier_at_ms)
    note_zh = "（已合并同包）" if same_group else ""
    note_en = " (already in one pack group)" if note_zh else ""
    return Anomaly(f"repeat_order_72h:{order['order_id']}", "repeat_order_72h", tenant, order["order_id"],
                   "repeat_order", f"同一买家 {hours} 小时前已下单 {earlier_id}{note_zh}",
                   f"the same buyer ordered {earlier_id} {hours} h earlier{note_en}", since,
                   {"earlier_order_id": earlier_id, "earlier_at_ms": earlier_at_ms})


def status_disagrees(tenant: str, order: Mapping[str, Any], code: str, source_a: str, status_a: str,
                     source_b: str, status_b: str) -> Anomaly:
    """Two systems disagree on the order (``gateway._ops.judge.disagreement``); dated by the
    order's last update (the disagreement's own start is not stored)."""
    zh, en = _DISAGREE[code]
    facts = {"a": source_a, "sa": status_a, "b": source_b, "sb": status_b}
    raw = order.get("source_status") or {}
    return Anomaly(f"status_disagrees:{order['order_id']}", "status_disagrees", tenant, order["order_id"], code,
                   zh.format(**facts), en.format(**facts), int(order.get("updated_at_ms") or 0),
                   {"statuses": {source_a: status_a, source_b: status_b}, "raw": dict(raw)})


def quarantined(tenant: str, record: Mapping[str, Any]) -> Anomaly:
    """An event held in quarantine (``Store.iter_quarantine``)."""
    code = str(record.get("reason") or "unknown_status")
    zh, en = _QUARANTINE.get(code, _QUARANTINE["unknown_status"])
    facts = {"source": record.get("source", "?"), "raw": record.get("raw_status", ""),
             "waybill": record.get("waybill", "")}
    return Anomaly(f"quarantined:{record['seq']}", "quarantined", tenant, str(record.get("order_id") or ""), code,
                   zh.format(**facts), en.format(**facts), int(record.get("received_at_ms") or 0),
                   {"seq": record["seq"], **facts})


def dead_letter(tenant: str, letter: Mapping[str, Any]) -> Anomaly:
    """An event the upstream refused (``Store.iter_dead``); ``outbox requeue`` sends it again."""
    event = letter.get("event") or {}
    status = letter.get("status", "?")
    response = str(letter.get("response") or "")[:200]
    seq = letter["outbox_seq"]
    return Anomaly(f"dead_letter:{seq}", "dead_letter", tenant, str(event.get("order_id") or ""), "upstream_refused",
                   f"上游 ERP 拒收（HTTP {status}）：{response}；修正后用 gateway outbox requeue 重发",
                   f"the upstream refused it (HTTP {status}): {response}; fix, then gateway outbox requeue",
                   int(letter.get("at_ms") or 0), {"outbox_seq": seq, "type": event.get("type", ""),
                                                  "http_status": status})


def waybill_timeout(tenant: str, group_id: str, parcel: Mapping[str, Any], now_ms: int) -> Anomaly:
    """A packed parcel still without a waybill (``parcel`` record)."""
    since = int(parcel.get("packed_at_ms") or 0)
    minutes = (now_ms - since) // 60_000
    orders = list(parcel.get("order_ids") or [group_id])
    return Anomaly(f"waybill_timeout:{group_id}", "waybill_timeout", tenant, orders[0], "no_waybill",
                   f"包裹已打包 {minutes} 分钟仍无面单；请在 ERP 中取号或检查快递接口",
                   f"packed {minutes} min ago, still no waybill; get one in the ERP or check the carrier link",
                   since, {"group_id": group_id, "order_ids": orders, "station": parcel.get("station", "")})


def intercept(tenant: str, record: Mapping[str, Any]) -> Anomaly:
    """A refunded order already labelled (``intercept`` record): pull the parcel or intercept
    it with the carrier, depending on its pickup state."""
    pickup = str(record.get("pickup_state") or "unknown")
    waybill = str(record.get("waybill") or "")
    since = int(record.get("labelled_at_ms") or record.get("at_ms") or 0)
    refund = record.get("refund_status", "")
    return Anomaly(f"intercept:{record['order_id']}", "intercept", tenant, record["order_id"], "refund_after_label",
                   f"已出面单后退款（{refund}），面单 {waybill or '无'}，揽收状态：{_PICKUP_ZH.get(pickup, pickup)}；"
                   "请拦截包裹",
                   f"refunded ({refund}) after the label, waybill {waybill or 'none'}, pickup: {pickup}; "
                   "intercept the parcel", since,
                   {"waybill": waybill, "pickup_state": pickup, "refund_status": refund,
                    "group_id": record.get("group_id", "")})


def gift_shortfall(tenant: str, group_id: str, plan: Mapping[str, Any]) -> Anomaly:
    """Gift stock does not cover a pack group's gifts (``plan`` record with shortfalls)."""
    shortfalls = dict(plan.get("shortfalls") or {})
    listed = "、".join(f"{sku} 缺 {units}" for sku, units in sorted(shortfalls.items()))
    listed_en = ", ".join(f"{sku} short by {units}" for sku, units in sorted(shortfalls.items()))
    orders = list(plan.get("orders") or [group_id])
    return Anomaly(f"gift_shortfall:{group_id}", "gift_shortfall", tenant, orders[0], "gift_stock_short",
                   f"赠品库存不足：{listed}；补货或调整赠品规则后再打包",
                   f"gift stock short: {listed_en}; restock or change the gift rule before packing",
                   int(plan.get("planned_at_ms") or 0), {"group_id": group_id, "shortfalls": shortfalls,
                                                          "order_ids": orders})


def held_group(tenant: str, group_id: str, hold: Mapping[str, Any]) -> Anomaly:
    """A pack group the pack line holds (``hold`` record)."""
    why = str(hold.get("reason") or "HOLD")
    orders = list(hold.get("orders") or [group_id])
    return Anomaly(f"held:group:{group_id}", "held", tenant, orders[0], why.lower(),
                   f"包裹被暂停打包（{why}）", f"parcel held at the pack line ({why})", int(hold.get("at_ms") or 0),
                   {"group_id": group_id, "order_ids": orders})


def held_order(tenant: str, order: Mapping[str, Any]) -> Anomaly:
    """An order in ``ON_HOLD`` (a review hold, an address problem) in the systems."""
    back_to = order.get("resume_status") or "?"
    return Anomaly(f"held:order:{order['order_id']}", "held", tenant, order["order_id"], "on_hold",
                   f"订单被挂起（挂起前状态 {back_to}）", f"order on hold (was {back_to})",
                   int(order.get("updated_at_ms") or 0), {"resume_status": back_to})


def declaration_incomplete(tenant: str, hold: Mapping[str, Any]) -> Anomaly:
    """A cross-border order held for its incomplete customs declaration (``customs_hold``
    record, ``gateway._customs``): what is missing and which record fills it."""
    missing = list(hold.get("missing") or [])
    listed = "、".join(f"{m.get('sku')} {m.get('attribute')}" for m in missing[:5])
    listed_en = ", ".join(f"{m.get('sku')} {m.get('attribute')}" for m in missing[:5])
    more = f" (+{len(missing) - 5})" if len(missing) > 5 else ""
    order_id = str(hold.get("order_id") or "")
    return Anomaly(f"declaration_incomplete:{order_id}", "declaration_incomplete", tenant, order_id,
                   "declaration_incomplete",
                   f"跨境订单申报要素不全（{listed}{more}），暂停打包；在申报预检页补齐或导入 CSV",
                   f"cross-border order with an incomplete customs declaration ({listed_en}{more}), held; "
                   "complete it on the pre-declaration board or import a CSV", int(hold.get("at_ms") or 0),
                   {"group_id": hold.get("group_id", ""), "missing": missing, "station": hold.get("station", "")})


__all__ = ["KINDS", "Anomaly", "dead_letter", "declaration_incomplete", "gift_shortfall", "held_group", "held_order", "intercept",
           "order_link", "quarantined", "repeat_order", "status_disagrees", "unshipped", "waybill_timeout"]
