"""The alert sender: the durable alert queue delivered to a WeCom group robot, never lost to an outage.

In: the queue records ``gateway._packline.alerts`` writes (kind ``alert``), and an
``AlertWake`` notified for each committed alert. Out: POSTs of ``wecom_body(alert)`` to
``[alerts] url``; a delivered alert's record deleted (and an ``alert_sent`` mark kept for
``SENT_KEEP_MS``); ``AlertsStatus`` for the board, the API and ``/healthz``; the metrics
``gateway_alerts_total{result}`` and ``gateway_alerts_queued``.

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
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import httpx
import orjson
import trio
from prometheus_client import CollectorRegistry, Counter, Gauge

from gateway._backoff import Backoff
from gateway._errors import StoreError
from gateway._forward.outage import public_url
from gateway._metrics import Metrics
from gateway._packline.alerts import (
    MESSAGE_ERRCODES,
    RECORD_KIND,
    SENT_KEEP_MS,
    SENT_KIND,
    SEVERITY_RANK,
    Alert,
    AlertWake,
    queued_alerts,
    wecom_body,
)
from gateway._settings import AlertsSection
from gateway._store import StepWrite, Store

# The sender's lines are logged under the alerts' name, as before the sender had a module of its own.
log = logging.getLogger("gateway._packline.alerts")


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
            log.error("alert queue not updated (%s); retried later (if this repeats: gateway doctor)", exc)
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
            log.error("alert queue unreadable (%s); retried later (if this repeats: gateway doctor)", exc)
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
            log.error("delivered alert marks unreadable (%s); retried later (if this repeats: gateway doctor)", exc)
            return
        if old:
            await self._commit(StepWrite(records=[(tenant, SENT_KIND, alert_id, None) for tenant, alert_id in old]))

    async def _drop(self, queue: list[Alert], excess: int) -> list[Alert]:
        victims = sorted(queue, key=lambda a: (SEVERITY_RANK.get(a.severity, 0), a.raised_at_ms, a.alert_id))[:excess]
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


__all__ = ["WECOM_MIN_INTERVAL_S", "AlertSender", "AlertsStatus"]
