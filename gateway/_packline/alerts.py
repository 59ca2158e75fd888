"""Pack-line alerts: raised durably, sent to a WeCom group robot, never lost to an outage.

An alert is a condition a person must act on (a packed parcel still without a waybill, gift
stock short, a refund that stopped a parcel, a parcel to intercept with the carrier, a
waybill used twice, a label that may not have printed). Its life::

    builder (overdue_waybills, shortfall_alert, ...)   pure: values in, ``Alert`` out
        -> alert_write(alert): StepWrite            committed by the caller through the
                                                    pipeline (pipeline.submit([], "station",
                                                    extra=...)): queue record + audit record
        -> packline keyspace, kind "alert"          the durable queue (RocksDB): it survives
                                                    an endpoint outage and a gateway restart
        -> AlertSender.serve (serve_alerts)         oldest first, POST wecom_body(alert)
        -> HTTP 200 and {"errcode": 0}: the record is deleted (and an "alert_sent" mark kept)
           anything else: attempts / last_error / next_attempt_ms updated in the record, retry

**One condition, one alert.** ``alert_id`` is ``<kind>:<tenant>:<subject>`` (the subject is
the pack group, order or waybill), so raising the same condition again writes the same
record. ``new_alerts(store, alerts)`` drops the ones already queued or delivered in the last
``SENT_KEEP_MS`` (7 days): a periodic check (``overdue_waybills``) calls it before writing.

**Delivery** (``gateway._packline.alert_sender``): oldest first, paced to WeCom's limit, a
failed endpoint pausing the whole queue with backoff, a refused message only itself; without
a URL alerts are logged once and kept for the operators' board; the queue is bounded
(``max_queued``); the robot's URL is a secret and never logged.

WeCom robot body (msgtype text / markdown; text content at most 2048 bytes, markdown 4096,
UTF-8; markdown cannot @ by phone number, so mentions exist in text only): ``wecom_body``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal

import trio

from gateway._metrics import Metrics
from gateway._settings import AlertsSection
from gateway._store import StepWrite, Store

if TYPE_CHECKING:
    from gateway._packline.alert_sender import AlertSender

Severity = Literal["critical", "warning", "info"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}
_SEVERITY_ZH = {"critical": "紧急", "warning": "警告", "info": "提示"}
_COLOR = {"critical": "warning", "warning": "warning", "info": "info"}  # WeCom's three font colours

RECORD_KIND = "alert"
SENT_KIND = "alert_sent"
SENT_KEEP_MS = 7 * 24 * 3600 * 1000
TEXT_LIMIT_BYTES = 2048
MARKDOWN_LIMIT_BYTES = 4096
#: WeCom errcodes that refuse the message rather than the channel (UNCONFIRMED).
MESSAGE_ERRCODES = frozenset({40008, 40035, 40058, 44004})
_CHINA = timezone(timedelta(hours=8))
_LONG_LINE = 160  # characters: a longer line is cut inside rather than dropped whole
_TRUNCATED = "……（内容过长，已截断 / truncated）"


@dataclass(frozen=True)
class Alert:
    """One alert, as queued in the store and shown on the board.

    Attributes:
        alert_id: ``<kind>:<tenant>:<subject>``: the same condition is the same alert.
        tenant / kind / severity: whose, what (``waybill_timeout``, ``gift_stock_shortfall``,
            ``refund_stop``, ``carrier_intercept``, ``waybill_reused``, ``print_uncertain``),
            how urgent (``critical``, ``warning``, ``info``).
        title_zh / title_en: one line each; Chinese first wherever it is shown.
        lines: details, one per line ("中文 / English").
        order_ids: the orders concerned.
        raised_at_ms: when it was raised (epoch ms).
        attempts / next_attempt_ms / last_error: delivery so far (kept in the record).
    """

    alert_id: str
    tenant: str
    kind: str
    severity: Severity
    title_zh: str
    title_en: str
    lines: tuple[str, ...] = ()
    order_ids: tuple[str, ...] = ()
    raised_at_ms: int = 0
    attempts: int = 0
    next_attempt_ms: int = 0
    last_error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"alert_id": self.alert_id, "tenant": self.tenant, "kind": self.kind, "severity": self.severity,
                "title_zh": self.title_zh, "title_en": self.title_en, "lines": list(self.lines),
                "order_ids": list(self.order_ids), "raised_at_ms": self.raised_at_ms, "attempts": self.attempts,
                "next_attempt_ms": self.next_attempt_ms, "last_error": self.last_error}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Alert:
        severity = raw.get("severity", "warning")
        return cls(raw["alert_id"], raw.get("tenant", ""), raw.get("kind", ""),
                   severity if severity in SEVERITY_RANK else "warning", raw.get("title_zh", ""), raw.get("title_en", ""),
                   tuple(raw.get("lines", ())), tuple(raw.get("order_ids", ())), int(raw.get("raised_at_ms", 0)),
                   int(raw.get("attempts", 0)), int(raw.get("next_attempt_ms", 0)), raw.get("last_error", ""))


def make_alert(kind: str, tenant: str, subject: str, severity: Severity, title_zh: str, title_en: str,
               lines: Iterable[str], order_ids: Iterable[str], at_ms: int) -> Alert:
    """An alert whose id is ``<kind>:<tenant>:<subject>`` (the builders below use it)."""
    return Alert(f"{kind}:{tenant}:{subject}", tenant, kind, severity, title_zh, title_en, tuple(lines),
                 tuple(order_ids), at_ms)


def china_time(ms: int) -> str:
    """``2026-12-04 20:49:42`` in China time (UTC+8), as the warehouse reads clocks."""
    return datetime.fromtimestamp(ms / 1000, _CHINA).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class PackedParcel:
    """A parcel packed and closed, as the waybill watch sees it (``waybill`` ``""``: none yet)."""

    tenant: str
    group_id: str
    order_ids: tuple[str, ...]
    packed_at_ms: int
    waybill: str = ""


def overdue_waybills(parcels: Iterable[PackedParcel], now_ms: int, timeout_s: float) -> list[Alert]:
    """One ``waybill_timeout`` alert per packed parcel still without a waybill ``timeout_s``
    after it was packed (id ``waybill_timeout:<tenant>:<group_id>``: a re-check raises the
    same alert). Pure."""
    alerts = []
    for parcel in parcels:
        waited_ms = now_ms - parcel.packed_at_ms
        if parcel.waybill or waited_ms < timeout_s * 1000:
            continue
        minutes = waited_ms // 60_000
        alerts.append(make_alert(
            "waybill_timeout", parcel.tenant, parcel.group_id, "warning",
            f"包裹已打包 {minutes} 分钟仍无面单", f"Packed {minutes} min ago, still no waybill",
            [f"包裹 Parcel: {parcel.group_id}", f"打包时间 Packed at: {china_time(parcel.packed_at_ms)}",
             "请在 ERP 中取号或检查快递接口 / Get a waybill in the ERP or check the carrier link"],
            parcel.order_ids, now_ms))
    return alerts


def shortfall_alert(tenant: str, group_id: str, order_ids: Iterable[str], shortfalls: Mapping[str, int],
                    at_ms: int) -> Alert:
    """Gift stock does not cover a pack group's bill (``{sku: missing units}``): it is held."""
    lines = [f"{sku} 缺 {units} 件 / short by {units}" for sku, units in sorted(shortfalls.items())]
    return make_alert("gift_stock_shortfall", tenant, group_id, "warning", "赠品库存不足，包裹已暂停",
                      "Gift stock short: parcel held", [f"包裹 Parcel: {group_id}", *lines], order_ids, at_ms)


def refund_stop_alert(tenant: str, group_id: str, order_ids: Iterable[str], refunded_order_id: str, at_ms: int,
                      station: str = "") -> Alert:
    """A refund or cancel stopped a parcel (before its waybill): take the goods back out."""
    lines = [f"退款订单 Refunded order: {refunded_order_id}", f"包裹 Parcel: {group_id}"]
    if station:
        lines.append(f"工位 Station: {station}")
    return make_alert("refund_stop", tenant, refunded_order_id, "critical", "订单退款，停止打包",
                      "Refund: stop packing this parcel", lines, order_ids, at_ms)


_PICKUP_ZH = {"awaiting_pickup": "待揽收（最后拦截机会）", "not_picked_up": "未揽收", "picked_up": "已揽收", "in_transit": "运输中", "unknown": "未知"}


def intercept_alert(tenant: str, order_id: str, waybill: str, pickup_state: str, at_ms: int) -> Alert:
    """A refunded order already has a waybill or a label: pull the parcel, or intercept it with
    the carrier. One alert per waybill (per order while it has none)."""
    state_zh = _PICKUP_ZH.get(pickup_state, pickup_state)
    return make_alert("carrier_intercept", tenant, waybill or order_id, "critical", "已退款订单已出面单，请联系快递拦截",
                      "Refunded order has a waybill: intercept with the carrier",
                      [f"面单 Waybill: {waybill}", f"揽收状态 Pickup: {state_zh} / {pickup_state}"], [order_id],
                      at_ms)


def waybill_reused_alert(tenant: str, waybill: str, order_id: str, previous_order_id: str, at_ms: int) -> Alert:
    """One waybill reported for two orders: one parcel would travel under another's number."""
    return make_alert("waybill_reused", tenant, f"{waybill}:{order_id}", "critical", "面单号重复使用",
                      "Waybill used for two orders",
                      [f"面单 Waybill: {waybill}", f"已属于 Already on: {previous_order_id}",
                       f"又用于 Now on: {order_id}"], [order_id, previous_order_id], at_ms)


def print_uncertain_alert(tenant: str, job_id: str, station: str, order_ids: Iterable[str], at_ms: int) -> Alert:
    """A label job whose outcome is unknown (the printer went away mid-job): check the parcel."""
    return make_alert("print_uncertain", tenant, job_id, "warning", "面单可能未打印，请检查", "Label may not have printed",
                      [f"工位 Station: {station}", f"打印任务 Job: {job_id}"], order_ids, at_ms)


def _fit(head: str, body: list[str], tail: list[str], limit_bytes: int) -> str:
    """``head``, ``body`` and ``tail`` lines within ``limit_bytes`` of UTF-8. When too long,
    the body is cut after its last whole line that fits (a very long line, such as a list of
    orders, is cut inside, at a character boundary) and a marker line says so; ``tail`` (time,
    alert id) is always kept."""
    full = "\n".join([head, *body, *tail])
    if len(full.encode()) <= limit_bytes:
        return full
    end = "\n".join([_TRUNCATED, *tail])
    room = max(0, limit_bytes - len(end.encode()) - 1)
    kept = "\n".join([head, *body]).encode()[:room].decode("utf-8", errors="ignore")  # drops a split character
    line_end = kept.rfind("\n")
    if line_end > len(head) and len(kept) - line_end < _LONG_LINE:  # no half of a short line
        kept = kept[:line_end]
    return f"{kept}\n{end}"


def _plain(value: str) -> str:
    return " ".join(value.split())


def wecom_body(alert: Alert, format: Literal["markdown", "text"],
               mentioned_mobiles: Iterable[str] = ()) -> dict[str, Any]:
    """The WeCom group-robot request body for ``alert``, Chinese first, within WeCom's limits.

    Args:
        alert: the alert.
        format: ``text`` -> ``{"msgtype": "text", "text": {"content", "mentioned_mobile_list"}}``
            (content at most 2048 bytes); ``markdown`` -> ``{"msgtype": "markdown",
            "markdown": {"content"}}`` (at most 4096 bytes).
        mentioned_mobiles: phone numbers (or ``"@all"``) to @: text only.

    Raises:
        ValueError: mentions with ``markdown`` (WeCom markdown cannot @ a phone number).
    """
    mobiles = list(mentioned_mobiles)
    severity_zh = _SEVERITY_ZH.get(alert.severity, alert.severity)
    facts = [f"租户 Tenant: {alert.tenant}"]
    if alert.order_ids:
        facts.append(f"订单 Orders: {', '.join(alert.order_ids)}")
    details = [_plain(line) for line in (*facts, *alert.lines)]
    tail = [f"时间 Raised: {china_time(alert.raised_at_ms)} (UTC+8)", f"告警 ID: {_plain(alert.alert_id)}"]
    if format == "text":
        head = f"【{severity_zh}】{_plain(alert.title_zh)}\n[{alert.severity.upper()}] {_plain(alert.title_en)}"
        content = _fit(head, details, tail, TEXT_LIMIT_BYTES)
        return {"msgtype": "text", "text": {"content": content, "mentioned_mobile_list": mobiles}}
    if mobiles:
        raise ValueError("WeCom markdown messages cannot @ a phone number: use format 'text'")
    head = (f'### <font color="{_COLOR.get(alert.severity, "warning")}">【{severity_zh}】'
            f"{_no_tags(_plain(alert.title_zh))}</font>\n**{_no_tags(_plain(alert.title_en)).replace('*', '')}**")
    content = _fit(head, [f"> {_no_tags(line)}" for line in details], [f"> {_no_tags(line)}" for line in tail],
                   MARKDOWN_LIMIT_BYTES)
    return {"msgtype": "markdown", "markdown": {"content": content}}


def _no_tags(value: str) -> str:
    return value.replace("<", "＜").replace(">", "＞")  # a value cannot open a <font> or <@user> tag


def alert_write(alert: Alert) -> StepWrite:
    """What raising ``alert`` commits: its queue record and an audit record. Pure.

    Commit it through the pipeline (``pipeline.submit([], "station", extra=alert_write(a))``)
    and wake the sender (``alert_listener`` does that for every committed alert).
    """
    audit = {"tenant": alert.tenant, "at_ms": alert.raised_at_ms, "actor": "gateway", "source": "alerts",
             "event_id": "", "rule": "", "order_id": alert.order_ids[0] if alert.order_ids else "",
             "decision": "alert", "changes": [], "note": alert.title_en}
    return StepWrite(audit=[audit], records=[(alert.tenant, RECORD_KIND, alert.alert_id, alert.to_dict())])


def queued_alerts(store: Store) -> list[Alert]:
    """Every queued alert of every tenant, oldest first (blocking: call it in a thread)."""
    alerts = [Alert.from_dict(value) for _, _, value in store.iter_records(RECORD_KIND)]
    return sorted(alerts, key=lambda a: (a.raised_at_ms, a.alert_id))


def new_alerts(store: Store, alerts: Iterable[Alert]) -> list[Alert]:
    """The ``alerts`` neither queued nor delivered within ``SENT_KEEP_MS`` (blocking)."""
    return [a for a in alerts if store.get_record(a.tenant, RECORD_KIND, a.alert_id) is None
            and store.get_record(a.tenant, SENT_KIND, a.alert_id) is None]


class AlertWake:
    """Wakes the sender when an alert was committed; ``notify`` is sync (trio thread only)."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def notify(self) -> None:
        self._event.set()

    def take(self) -> bool:
        """Whether a notification came since the last ``take`` (and forget it)."""
        notified = self._event.is_set()
        if notified:
            self._event = trio.Event()
        return notified

    async def wait(self, timeout_s: float) -> None:
        """Until notified (a notification not yet taken counts) or ``timeout_s`` passed."""
        with trio.move_on_after(max(0.0, timeout_s)):
            await self._event.wait()


def alert_listener(wake: AlertWake) -> Callable[[StepWrite], None]:
    """A committer listener (``pipeline.add_listener``) waking the sender for new alerts."""
    def listener(write: StepWrite) -> None:
        if any(kind == RECORD_KIND and value is not None for _, kind, _, value in write.records):
            wake.notify()
    return listener


async def serve_alerts(store: Store, settings: AlertsSection, metrics: Metrics | None = None, *,
                       wake: AlertWake | None = None,
                       task_status: trio.TaskStatus[AlertSender] = trio.TASK_STATUS_IGNORED) -> None:
    """Run an ``AlertSender`` (``gateway._packline.alert_sender``) until cancelled; ``task_status``
    receives it once the queue was read (its ``status`` is what the board and the API show).

    Args:
        store: the open store.
        settings: ``[alerts]``.
        metrics: optional.
        wake: notified for committed alerts (``pipeline.add_listener(alert_listener(wake))``).
    """
    # The sender builds on this module, so it is imported when run rather than when this loads.
    from gateway._packline.alert_sender import AlertSender

    await AlertSender(store, settings, metrics, wake=wake).serve(task_status=task_status)


__all__ = ["MARKDOWN_LIMIT_BYTES", "MESSAGE_ERRCODES", "RECORD_KIND", "SENT_KEEP_MS", "SENT_KIND", "SEVERITY_RANK",
           "TEXT_LIMIT_BYTES", "Alert", "AlertWake", "PackedParcel", "Severity", "alert_listener", "alert_write",
           "china_time", "intercept_alert", "make_alert", "new_alerts", "overdue_waybills", "print_uncertain_alert",
           "queued_alerts", "refund_stop_alert", "serve_alerts", "shortfall_alert", "waybill_reused_alert",
           "wecom_body"]
