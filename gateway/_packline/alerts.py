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

**Delivery.** One robot, one endpoint: a failure (connection refused, timeout, an HTTP
status other than 200, a WeCom ``errcode`` other than 0 such as 45009, the rate limit)
pauses the whole queue with capped exponential backoff (``retry_initial_s`` doubling to
``retry_max_s``, +-25 % jitter) and the alert keeps its place at the head, so alerts arrive
in the order they were raised. Only WeCom answers that refuse the message itself
(``MESSAGE_ERRCODES``: invalid type, parameter or content; UNCONFIRMED list, from WeCom's
global error codes) push that one alert back by its own backoff, so one bad alert cannot
block the rest. Sends are paced to 20 messages a minute, WeCom's limit per robot (as its
documentation is quoted; a 45009 answer is retried like any failure).
Delivery is at-least-once: a crash between WeCom's answer and the delete sends it again.

**Without a URL** alerts are logged once (WARNING) and kept in the queue: the operators'
board lists them. **The bound** ``max_queued``: beyond it the oldest alerts of the lowest
severity (info, then warning, then critical) are deleted, each drop logged (WARNING),
audited (decision ``alert_dropped``) and counted (``gateway_alerts_total{result="dropped"}``).

**The URL is a secret** (the robot's key is its query): it is never logged; logs and
``last_error`` show ``scheme://host/path`` only, and httpx's own request log line is
redacted the same way.

WeCom robot body (msgtype text / markdown; text content at most 2048 bytes, markdown 4096,
UTF-8; markdown cannot @ by phone number, so mentions exist in text only): ``wecom_body``.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import httpx
import orjson
import trio
from prometheus_client import CollectorRegistry, Counter, Gauge

from gateway._backoff import Backoff
from gateway._errors import StoreError
from gateway._forward.outage import public_url
from gateway._metrics import Metrics
from gateway._settings import AlertsSection
from gateway._store import StepWrite, Store

log = logging.getLogger(__name__)

Severity = Literal["critical", "warning", "info"]
_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}
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
                   severity if severity in _RANK else "warning", raw.get("title_zh", ""), raw.get("title_en", ""),
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


_PICKUP_ZH = {"not_picked_up": "未揽收", "picked_up": "已揽收", "in_transit": "运输中", "unknown": "未知"}


def intercept_alert(tenant: str, order_id: str, waybill: str, pickup_state: str, at_ms: int) -> Alert:
    """A refunded order already has a waybill: intercept the parcel with the carrier."""
    state_zh = _PICKUP_ZH.get(pickup_state, pickup_state)
    return make_alert("carrier_intercept", tenant, waybill, "critical", "已退款订单已出面单，请联系快递拦截",
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


class _AlertMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.total = Counter("gateway_alerts", "Pack-line alerts by result: delivered, failed (an attempt), "
                             "dropped (queue bound)", ["result"], registry=registry)
        self.queued = Gauge("gateway_alerts_queued", "Pack-line alerts waiting in the durable queue",
                            registry=registry)


_METRICS: weakref.WeakKeyDictionary[CollectorRegistry, _AlertMetrics] = weakref.WeakKeyDictionary()


def _metrics_of(metrics: Metrics | None) -> _AlertMetrics | None:
    if metrics is None:
        return None
    if metrics.registry not in _METRICS:
        _METRICS[metrics.registry] = _AlertMetrics(metrics.registry)
    return _METRICS[metrics.registry]


class _RedactUrl(logging.Filter):
    """Rewrites httpx's request log line so the robot's key never reaches a log."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url, self.public = url, public_url(url)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.url in message:
            record.msg, record.args = message.replace(self.url, self.public), None
        return True


@dataclass
class AlertsStatus:
    """What the sender is doing, for the board, the API and ``/healthz``."""

    state: Literal["disabled", "idle", "sending", "backoff"] = "idle"
    queued: int = 0
    delivered: int = 0
    failed_attempts: int = 0
    dropped: int = 0
    consecutive_failures: int = 0
    last_error: str = ""
    last_success_ms: int | None = None
    oldest_raised_ms: int | None = None


_POLL_S = 30.0  # re-read the queue this often even without a wake (alerts written by other paths)
_PRUNE_EVERY_S = 3600.0  # delivered marks older than SENT_KEEP_MS are deleted this often
WECOM_MIN_INTERVAL_S = 3.0  # WeCom: at most 20 messages a minute per robot


class AlertSender:
    """Sends the durable alert queue to the WeCom robot of ``settings`` (see the module doc).

    Args:
        store: the open store (the pipeline writes alerts; the sender deletes delivered ones).
        settings: ``[alerts]``.
        metrics: where ``gateway_alerts_total{result}`` / ``gateway_alerts_queued`` go, or ``None``.
        wake: notified when an alert is committed (``alert_listener``); without it the queue
            is re-read every 30 s.
        min_interval_s: the least time between two sends (WeCom's rate limit).
        wall_ms: the wall clock for the records' ``next_attempt_ms`` and marks (tests).
    """

    def __init__(self, store: Store, settings: AlertsSection, metrics: Metrics | None = None, *,
                 wake: AlertWake | None = None, min_interval_s: float = WECOM_MIN_INTERVAL_S,
                 wall_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.store = store
        self.settings = settings
        self.status = AlertsStatus(state="idle" if settings.url else "disabled")
        self.wake = wake or AlertWake()
        self.min_interval_s = min_interval_s
        self._wall_ms = wall_ms
        self._url = settings.url.reveal().decode()
        self._public = public_url(self._url) if self._url else "(no url)"
        self._metrics = _metrics_of(metrics)
        self._backoff = Backoff(settings.retry_initial_s, settings.retry_max_s)
        self._queue: list[Alert] = []
        self._logged: set[str] = set()  # alerts already logged by this process
        self._undeleted: list[StepWrite] = []  # delivered, delete not yet durable (store failed)
        self._not_before: dict[str, float] = {}  # alert_id -> trio time (a refused message's own backoff)
        self._sent_at = -float("inf")
        self._refresh_at = -float("inf")
        self._prune_at = -float("inf")
        self._limiter = trio.CapacityLimiter(1)

    def __repr__(self) -> str:
        return f"<AlertSender {self._public} {self.status.state} queued={self.status.queued}>"

    async def serve(self, *, task_status: trio.TaskStatus[AlertSender] = trio.TASK_STATUS_IGNORED) -> None:
        """Send until cancelled (a send in flight is abandoned: it is sent again later).

        ``task_status`` receives the sender once the queue was read.
        """
        redact = _RedactUrl(self._url) if self._url else None
        if redact is not None:
            logging.getLogger("httpx").addFilter(redact)
        try:
            await self._refresh()
            task_status.started(self)
            async with httpx.AsyncClient(timeout=self.settings.timeout_s, trust_env=False) as client:
                while True:
                    await self._step(client)
        finally:
            if redact is not None:
                logging.getLogger("httpx").removeFilter(redact)

    async def _step(self, client: httpx.AsyncClient) -> None:
        """One turn: re-read the queue when woken or due, then send the oldest due alert or wait."""
        if self.wake.take() or trio.current_time() >= self._refresh_at:
            await self._refresh()
        now = trio.current_time()
        if not self._url:
            await self.wake.wait(self._refresh_at - now)
            return
        due = [a for a in self._queue if self._not_before.get(a.alert_id, 0.0) <= now]
        if not due:
            self.status.state = "idle"
            await self.wake.wait(min([self._refresh_at, *self._not_before.values()]) - now)
            return
        await trio.sleep_until(self._sent_at + self.min_interval_s)
        self.status.state = "sending"
        alert = due[0]
        error, message_refused = await self._send(client, alert)
        self._sent_at = trio.current_time()
        if not error:
            await self._delivered(alert)
        elif message_refused:  # the channel works: only this alert waits, by its own backoff
            own = Backoff(self.settings.retry_initial_s, self.settings.retry_max_s)
            own.failures = alert.attempts
            delay = own.next_delay()
            self._not_before[alert.alert_id] = trio.current_time() + delay
            await self._failed(alert, error, delay, channel=False)
        else:
            delay = self._backoff.next_delay()
            await self._failed(alert, error, delay, channel=True)
            self.status.state = "backoff"
            await trio.sleep(delay)
    async def _send(self, client: httpx.AsyncClient, alert: Alert) -> tuple[str, bool]:
        """``("", False)`` when WeCom took it; else the error and whether the message itself was refused."""
        body = orjson.dumps(wecom_body(alert, self.settings.format, self.settings.mentioned_mobiles))
        try:
            response = await client.post(self._url, content=body, headers={"Content-Type": "application/json"})
        except httpx.TimeoutException:
            return f"no answer within {self.settings.timeout_s:g} s", False
        except httpx.HTTPError as exc:
            return self._scrub(f"{type(exc).__name__}: {exc}"), False
        if response.status_code != 200:
            return f"HTTP {response.status_code}", False
        try:
            answer = orjson.loads(response.content)
            errcode = int(answer.get("errcode", -1))
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            return "HTTP 200 but not a WeCom answer", False
        if errcode == 0:
            return "", False
        errmsg = str(answer.get("errmsg", ""))[:200]
        return self._scrub(f"errcode {errcode}: {errmsg}"), errcode in MESSAGE_ERRCODES

    def _scrub(self, text: str) -> str:
        return text.replace(self._url, self._public) if self._url else text

    async def _delivered(self, alert: Alert) -> None:
        sent_at_ms = self._wall_ms()
        sent = {"kind": alert.kind, "sent_at_ms": sent_at_ms, "attempts": alert.attempts + 1}
        write = StepWrite(records=[(alert.tenant, RECORD_KIND, alert.alert_id, None),
                                   (alert.tenant, SENT_KIND, alert.alert_id, sent)])
        self._queue = [a for a in self._queue if a.alert_id != alert.alert_id]
        if not await self._commit(write):  # WeCom has it: never send it again, delete it later
            self._undeleted.append(write)
            return
        if self.status.consecutive_failures:
            log.info("alert endpoint %s is BACK after %d failed attempts", self._public,
                     self.status.consecutive_failures)
        log.info("alert %s delivered to %s", alert.alert_id, self._public)
        self._backoff.reset()
        self._not_before.pop(alert.alert_id, None)
        self.status.delivered += 1
        self.status.consecutive_failures = 0
        self.status.last_success_ms = sent_at_ms
        self._count("delivered")
        self._show_queue()

    async def _failed(self, alert: Alert, error: str, delay_s: float, *, channel: bool) -> None:
        """Keep the failure in the alert's record; ``channel``: the endpoint failed, not the message."""
        updated = replace(alert, attempts=alert.attempts + 1, last_error=error,
                          next_attempt_ms=self._wall_ms() + int(delay_s * 1000))
        if await self._commit(StepWrite(records=[(alert.tenant, RECORD_KIND, alert.alert_id, updated.to_dict())])):
            self._queue = [updated if a.alert_id == alert.alert_id else a for a in self._queue]
        if not channel:
            log.warning("alert %s refused by WeCom (%s): retried in %.0f s, the other alerts go on",
                        alert.alert_id, error, delay_s)
        elif self.status.consecutive_failures == 0:
            log.warning("alert endpoint %s failed (%s): alerts wait and are retried, none is lost",
                        self._public, error)
        else:
            log.debug("alert %s: attempt %d failed (%s), next in %.1f s", alert.alert_id, updated.attempts,
                      error, delay_s)
        self.status.failed_attempts += 1
        if channel:
            self.status.consecutive_failures += 1
        self.status.last_error = error
        self._count("failed")

    async def _commit(self, write: StepWrite) -> bool:
        try:
            await trio.to_thread.run_sync(self.store.commit, write, limiter=self._limiter)
        except StoreError as exc:
            log.error("alert queue not updated (%s); retried later", exc)
            self.status.last_error = f"store: {exc}"
            return False
        return True

    async def _refresh(self) -> None:
        """Re-read the queue, enforce its bound, log new alerts once; prune old delivered marks."""
        self._refresh_at = trio.current_time() + _POLL_S
        if trio.current_time() >= self._prune_at:
            self._prune_at = trio.current_time() + _PRUNE_EVERY_S
            await self._prune_sent()
        while self._undeleted and await self._commit(self._undeleted[0]):
            self._undeleted.pop(0)
        try:
            queue = await trio.to_thread.run_sync(queued_alerts, self.store, limiter=self._limiter)
        except StoreError as exc:
            log.error("alert queue unreadable (%s); retried later", exc)
            return
        sent = {alert_id for write in self._undeleted for _, _, alert_id, _ in write.records}
        queue = [a for a in queue if a.alert_id not in sent]
        excess = len(queue) - self.settings.max_queued
        if excess > 0:
            queue = await self._drop(queue, excess)
        for alert in queue:
            if alert.alert_id not in self._logged:
                self._logged.add(alert.alert_id)
                kept = "" if self._url else " (no [alerts] url: kept for the operators' board)"
                log.warning("ALERT %s [%s] %s / %s; orders %s%s", alert.alert_id, alert.severity, alert.title_zh,
                            alert.title_en, ",".join(alert.order_ids) or "-", kept)
        live = {a.alert_id for a in queue}
        self._logged &= live
        self._not_before = {k: v for k, v in self._not_before.items() if k in live}
        self._queue = queue
        self._show_queue()

    async def _prune_sent(self) -> None:
        cutoff = self._wall_ms() - SENT_KEEP_MS

        def old_marks() -> list[tuple[str, str]]:
            return [(tenant, alert_id) for tenant, alert_id, mark in self.store.iter_records(SENT_KIND)
                    if int(mark.get("sent_at_ms", 0)) < cutoff]

        try:
            old = await trio.to_thread.run_sync(old_marks, limiter=self._limiter)
        except StoreError as exc:
            log.error("delivered alert marks unreadable (%s); retried later", exc)
            return
        if old:
            await self._commit(StepWrite(records=[(tenant, SENT_KIND, alert_id, None) for tenant, alert_id in old]))

    async def _drop(self, queue: list[Alert], excess: int) -> list[Alert]:
        victims = sorted(queue, key=lambda a: (_RANK.get(a.severity, 0), a.raised_at_ms, a.alert_id))[:excess]
        at_ms = self._wall_ms()
        write = StepWrite()
        for alert in victims:
            write.records.append((alert.tenant, RECORD_KIND, alert.alert_id, None))
            write.audit.append({"tenant": alert.tenant, "at_ms": at_ms, "actor": "gateway", "source": "alerts",
                                "event_id": "", "rule": "", "order_id": alert.order_ids[0] if alert.order_ids else "",
                                "decision": "alert_dropped", "changes": [],
                                "note": f"queue over max_queued={self.settings.max_queued}: {alert.alert_id}"})
        if not await self._commit(write):
            return queue
        for alert in victims:
            log.warning("alert %s [%s] DROPPED: the queue holds more than max_queued=%d", alert.alert_id,
                        alert.severity, self.settings.max_queued)
        self.status.dropped += len(victims)
        self._count("dropped", len(victims))
        gone = {a.alert_id for a in victims}
        return [a for a in queue if a.alert_id not in gone]

    def _count(self, result: str, amount: int = 1) -> None:
        if self._metrics is not None:
            self._metrics.total.labels(result=result).inc(amount)

    def _show_queue(self) -> None:
        self.status.queued = len(self._queue)
        self.status.oldest_raised_ms = self._queue[0].raised_at_ms if self._queue else None
        if self._metrics is not None:
            self._metrics.queued.set(len(self._queue))


async def serve_alerts(store: Store, settings: AlertsSection, metrics: Metrics | None = None, *,
                       wake: AlertWake | None = None,
                       task_status: trio.TaskStatus[AlertSender] = trio.TASK_STATUS_IGNORED) -> None:
    """Run an ``AlertSender`` until cancelled; ``task_status`` receives it once the queue was read
    (its ``status`` is what the board and the API show).

    Args:
        store: the open store.
        settings: ``[alerts]``.
        metrics: optional.
        wake: notified for committed alerts (``pipeline.add_listener(alert_listener(wake))``).
    """
    await AlertSender(store, settings, metrics, wake=wake).serve(task_status=task_status)


__all__ = ["MARKDOWN_LIMIT_BYTES", "MESSAGE_ERRCODES", "RECORD_KIND", "SENT_KEEP_MS", "SENT_KIND", "TEXT_LIMIT_BYTES",
           "WECOM_MIN_INTERVAL_S", "Alert", "AlertSender", "AlertWake", "AlertsStatus", "PackedParcel", "Severity",
           "alert_listener", "alert_write", "china_time", "intercept_alert", "make_alert", "new_alerts",
           "overdue_waybills", "print_uncertain_alert", "queued_alerts", "refund_stop_alert", "serve_alerts",
           "shortfall_alert", "waybill_reused_alert", "wecom_body"]
