"""``gateway fleet status``: the boxes of a cluster from their heartbeats, and which went silent.

Reads every key of the heartbeat bucket (``gateway._fleet.heartbeat``), judges each box
(``judge``: pure) and renders a table in zh-CN or English (``render``: pure)::

    box        last heartbeat   backlog   oldest   devices       forwarder
    wh-sh-01   3s ago           0         -        7 up          idle
    wh-sh-02   2m10s ago        1,204     2m31s    6 up, 1 down  backoff   SILENT

A box is *silent* when its last heartbeat is older than three of its own intervals (or than
``--silent-after``): it is down, cut off from the cluster, or its forwarder stopped.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Any, Literal

import nats
import nats.js.errors

from gateway._fleet.heartbeat import Heartbeat
from gateway._forward.nats_sink import client_options
from gateway._forward.outage import format_duration
from gateway._settings.nats import NatsSettings

Lang = Literal["zh-CN", "en"]
SILENT_INTERVALS = 3

_TEXT: dict[str, dict[str, str]] = {
    "zh-CN": {"box": "网关", "last": "最后心跳", "backlog": "积压", "oldest": "最早积压", "devices": "设备",
              "forwarder": "转发", "ago": "前", "up": "在线", "down": "离线", "silent": "失联",
              "none": "桶 {bucket} 中还没有任何网关的心跳（网关以 kind = \"nats\" 运行后每 {interval} 秒上报一次）",
              "summary": "共 {total} 台网关，{silent} 台失联，积压合计 {backlog} 条事件",
              "bad": "无法读取"},
    "en": {"box": "box", "last": "last heartbeat", "backlog": "backlog", "oldest": "oldest", "devices": "devices",
           "forwarder": "forwarder", "ago": " ago", "up": "up", "down": "down", "silent": "SILENT",
           "none": "no box has published a heartbeat to bucket {bucket} yet (a gateway with kind = \"nats\" "
                   "publishes one every {interval} s)",
           "summary": "{total} boxes, {silent} silent, {backlog} events waiting in all",
           "bad": "unreadable"},
}


@dataclass(frozen=True)
class BoxStatus:
    """One key of the bucket, judged.

    Attributes:
        key: the bucket key (the box's id, made key-safe).
        heartbeat: its last heartbeat; ``None`` when the value is not one (``problem`` says why).
        age_s: seconds since that heartbeat (since the key was written when unreadable).
        silent: older than ``SILENT_INTERVALS`` of its interval (or the caller's limit).
    """

    key: str
    heartbeat: Heartbeat | None
    age_s: float
    silent: bool
    problem: str = ""

    def as_dict(self) -> dict[str, Any]:
        beat = self.heartbeat
        return {"key": self.key, "age_s": round(self.age_s, 1), "silent": self.silent, "problem": self.problem or None,
                "heartbeat": None if beat is None else asdict(beat)}


def judge(entries: list[tuple[str, bytes, float]], now: float, silent_after_s: float | None = None) -> list[BoxStatus]:
    """Each ``(key, value, written_at)`` of the bucket as a ``BoxStatus``, sorted by key.

    Args:
        now: unix seconds.
        silent_after_s: flag a box silent after this long; ``None``: three of its own intervals.
    """
    boxes = []
    for key, value, written_at in sorted(entries):
        try:
            beat = Heartbeat.from_json(value)
        except ValueError as exc:
            age = max(0.0, now - written_at)
            boxes.append(BoxStatus(key, None, age, age > (silent_after_s or 60.0), str(exc)))
            continue
        age = max(0.0, now - beat.at)
        limit = silent_after_s if silent_after_s is not None else SILENT_INTERVALS * beat.interval_s
        boxes.append(BoxStatus(key, beat, age, age > limit))
    return boxes


def render(boxes: list[BoxStatus], lang: Lang, bucket: str, interval_s: float) -> str:
    """The table of ``boxes`` and a summary line, in ``lang``."""
    text = _TEXT[lang]
    if not boxes:
        return text["none"].format(bucket=bucket, interval=f"{interval_s:g}")
    header = [text["box"], text["last"], text["backlog"], text["oldest"], text["devices"], text["forwarder"], ""]
    rows = [header]
    for box in boxes:
        beat = box.heartbeat
        ago = f"{format_duration(box.age_s)}{text['ago']}"
        if beat is None:
            rows.append([box.key, ago, "?", "?", "?", f"{text['bad']}: {box.problem}", text["silent"] if box.silent else ""])
            continue
        devices = f"{beat.devices_up} {text['up']}" + (f", {len(beat.devices_down)} {text['down']}" if beat.devices_down else "")
        oldest = "-" if beat.oldest_age_s is None else format_duration(beat.oldest_age_s)
        rows.append([beat.gateway_id, ago, f"{beat.backlog_events:,}", oldest, devices, beat.forwarder,
                     text["silent"] if box.silent else ""])
    widths = [max(_width(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell + " " * (widths[i] - _width(cell)) for i, cell in enumerate(row)).rstrip() for row in rows]
    backlog = sum(b.heartbeat.backlog_events for b in boxes if b.heartbeat is not None)
    lines.append(text["summary"].format(total=len(boxes), silent=sum(b.silent for b in boxes), backlog=f"{backlog:,}"))
    return "\n".join(lines)


def _width(cell: str) -> int:
    """Terminal columns of ``cell``: CJK characters take two."""
    return sum(2 if "\u2e80" <= c <= "\u9fff" or "\uff00" <= c <= "\uffef" else 1 for c in cell)


async def read_bucket(settings: NatsSettings, timeout_s: float = 10.0) -> list[tuple[str, bytes, float]]:
    """Every ``(key, value, written_at)`` of the heartbeat bucket (run on an asyncio loop).

    Raises:
        nats.errors.Error / OSError / TimeoutError: the cluster cannot be reached or refuses.
        nats.js.errors.BucketNotFoundError: no box created the bucket yet.
    """
    options = {**client_options(settings, "gateway fleet status"), "max_reconnect_attempts": 1}
    nc = await asyncio.wait_for(nats.connect(**options), timeout_s)
    try:
        kv = await nc.jetstream(timeout=timeout_s).key_value(settings.heartbeat_bucket)
        try:
            keys = await kv.keys()
        except nats.js.errors.NoKeysError:
            return []
        entries = []
        for key in keys:
            entry = await kv.get(key)
            written = (entry.created or 0) / 1e9 if isinstance(entry.created, int) else 0.0
            entries.append((key, entry.value or b"", written))
        return entries
    finally:
        await nc.close()


__all__ = ["SILENT_INTERVALS", "BoxStatus", "judge", "read_bucket", "render"]
