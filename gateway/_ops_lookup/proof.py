"""The packing proof of one order: what was packed, when, by whom, on camera, stamped.

An agent sends it to a buyer who says "the gift box was not in the parcel": every component
with the second it was scanned, the station and the operator, the clip reference (the
NVR's playback URI at that second) and the snapshot taken when the parcel was closed,
stamped with the order's latest audit hash. The stamp is the ``hash`` of the newest record
of the order in the tenant's hash chain (``gateway._store.base``, "Audit chain"): anyone
with the store can run ``verify_audit_chain`` and find the same hash, so the proof cannot be
edited after the fact without the chain saying so.

``proof_data`` reads (blocking; call from a worker thread); ``proof_html`` renders a
self-contained page (zh-CN, or English with ``lang="en"``; the snapshot inlined as a
``data:`` URI); ``gateway._ops_lookup.proof_image.proof_png`` renders the same as a PNG.

Cost: the audit stamp is found with ``Store.iter_audit(tenant, order_id)``, which reads the
tenant's whole chain (there is no per-order audit index); see the report for the index that
makes it a prefix read.
"""

from __future__ import annotations

import base64
import hashlib
import html
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from gateway._ops_lookup.lookup import order_view
from gateway._ops_lookup.records import open_session_ids
from gateway._ops_lookup.values import OrderView, SessionRef
from gateway._store import Store

log = logging.getLogger(__name__)

#: A snapshot file larger than this is not inlined (a JPEG from an NVR is ~100-500 KB).
SNAPSHOT_MAX_BYTES = 8 * 1024 * 1024
CHINA = timezone(timedelta(hours=8))


@dataclass(frozen=True, slots=True)
class AuditStamp:
    """The order's newest audit record: its chain position and hash."""

    seq: int
    hash: str
    at_ms: int
    decision: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "at_ms": self.at_ms, "decision": self.decision}


@dataclass(frozen=True, slots=True)
class PackingProof:
    """Everything a packing proof shows.

    Attributes:
        order: the order with its components, their scans and sessions.
        session: the session the proof is about (the newest that closed, else the newest).
        stamp: the order's newest audit record, ``None`` when it has none.
        generated_at_ms: when the proof was made.
    """

    tenant: str
    order: OrderView
    session: SessionRef | None
    stamp: AuditStamp | None
    generated_at_ms: int

    def to_dict(self) -> dict[str, Any]:
        session = self.session
        return {"tenant": self.tenant, "order": self.order.to_dict(),
                "session": session.to_dict() if session is not None else None,
                "station": session.station if session else "", "operator": session.operator if session else "",
                "snapshot": session.snapshot if session else None, "clip": session.clip if session else None,
                "stamp": self.stamp.to_dict() if self.stamp else None, "generated_at_ms": self.generated_at_ms}


def proof_data(store: Store, tenant: str, order_id: str, *, now_ms: int | None = None) -> PackingProof | None:
    """The packing proof of ``order_id``, or ``None`` when the tenant has no such order.

    Raises:
        StoreError: RocksDB failed.
    """
    order = store.get_order(tenant, order_id)
    if order is None:
        return None
    view = order_view(store, tenant, order, order.created_at_ms, open_session_ids(store, tenant), "")
    closed = [s for s in view.sessions if s.state == "closed"]
    candidates = closed or list(view.sessions)
    session = candidates[-1] if candidates else None
    return PackingProof(tenant, view, session, latest_audit(store, tenant, order_id),
                        int(now_ms if now_ms is not None else time.time_ns() // 1_000_000))


def latest_audit(store: Store, tenant: str, order_id: str) -> AuditStamp | None:
    """The newest audit record of ``order_id`` (reads the tenant's chain: see the module docstring)."""
    last: dict[str, Any] | None = None
    for record in store.iter_audit(tenant, order_id):
        last = record
    if last is None:
        return None
    return AuditStamp(int(last["seq"]), str(last["hash"]), int(last.get("at_ms", 0)), str(last.get("decision", "")))


def load_snapshot(proof: PackingProof) -> bytes | None:
    """The snapshot JPEG of the proof's session when its file is there and its SHA-256 is the
    one the evidence record (and the audit trail) holds; ``None`` otherwise (logged)."""
    snapshot = proof.session.snapshot if proof.session else None
    if not snapshot or not snapshot.get("path"):
        return None
    path = Path(str(snapshot["path"]))
    try:
        if path.stat().st_size > SNAPSHOT_MAX_BYTES:
            log.warning("snapshot %s is over %d bytes: not inlined", path, SNAPSHOT_MAX_BYTES)
            return None
        data = path.read_bytes()
    except OSError as exc:
        log.warning("snapshot of session %s cannot be read: %s", proof.session.session_id if proof.session else "", exc)
        return None
    if hashlib.sha256(data).hexdigest() != snapshot.get("sha256"):
        log.warning("snapshot %s does not match its recorded SHA-256: not shown", path)
        return None
    return data


_TEXT = {
    "zh": {"title": "打包凭证", "order": "订单", "channel": "渠道", "status": "状态", "waybill": "运单",
           "station": "工位", "operator": "操作员", "opened": "开始", "closed": "封箱", "component": "内容",
           "scanned": "扫描时间", "clip": "录像（从扫描那一秒开始）", "offset": "录像内秒数", "none": "无",
           "snapshot": "封箱快照", "no_snapshot": "无快照", "stamp": "审计哈希", "generated": "生成时间",
           "no_session": "该订单尚未在本仓工位打包", "pending": "录像检索中", "verify":
           "此哈希记录于网关的防篡改审计链中，可用 gateway audit-verify 校验。", "lang": "zh-CN",
           "switch": "English"},
    "en": {"title": "Packing proof", "order": "Order", "channel": "Channel", "status": "Status", "waybill": "Waybill",
           "station": "Station", "operator": "Operator", "opened": "Opened", "closed": "Closed",
           "component": "Component", "scanned": "Scanned at", "clip": "Clip (from the second of the scan)",
           "offset": "Second in clip", "none": "none", "snapshot": "Snapshot at close", "no_snapshot": "no snapshot",
           "stamp": "Audit hash", "generated": "Generated", "no_session": "This order was not packed at a station here",
           "pending": "clip being searched", "verify": "This hash is in the gateway's tamper-evident audit chain; "
           "check it with gateway audit-verify.", "lang": "en", "switch": "中文"},
}


def proof_texts(lang: str) -> dict[str, str]:
    """The proof's fixed words in ``lang`` (``zh`` default, ``en``)."""
    return _TEXT["en" if lang == "en" else "zh"]


def when(ms: int) -> str:
    """``2026-11-25 10:00:03`` in China time (the warehouse's and the buyer's clock)."""
    if ms <= 0:
        return "-"
    return datetime.fromtimestamp(ms / 1000, CHINA).strftime("%Y-%m-%d %H:%M:%S")


def proof_html(proof: PackingProof, *, lang: str = "zh", snapshot: bytes | None = None) -> str:
    """The proof as one self-contained HTML page (no external resource).

    Args:
        lang: ``zh`` (default) or ``en``.
        snapshot: the JPEG (``load_snapshot``) to inline, or ``None``.
    """
    t = proof_texts(lang)
    e = html.escape
    order, session = proof.order, proof.session
    en = lang == "en"
    rows = []
    for c in order.components:
        text = c.text_en if en else c.text_zh
        scans = c.scans or ()
        times = "<br>".join(e(when(s.scanned_at_ms)) for s in scans) or "-"
        offsets = "<br>".join(e(f"{s.offset_s:.1f}s") if s.offset_s is not None else e(t["pending"]) for s in scans) or "-"
        links = "<br>".join(f'<a href="{e(s.clip_at_uri)}">{e(s.clip_at_uri)}</a>' if s.clip_at_uri else "-"
                            for s in scans) or "-"
        rows.append(f"<tr><td>{e(text)}<br><small>{e(c.sku)} · {e(c.component_id)}</small></td><td>{times}</td>"
                    f"<td>{offsets}</td><td class=uri>{links}</td></tr>")
    image = (f'<img alt="{e(t["snapshot"])}" src="data:image/jpeg;base64,{base64.b64encode(snapshot).decode()}">'
             if snapshot else f"<p>{e(t['no_snapshot'])}</p>")
    facts = [(t["order"], order.order_id), (t["channel"], order.channel),
             (t["status"], order.status_en if en else order.status_zh),
             (t["waybill"], ", ".join(order.waybills) or t["none"])]
    if session is not None:
        facts += [(t["station"], session.station), (t["operator"], session.operator),
                  (t["opened"], when(session.opened_at_ms)), (t["closed"], when(session.closed_at_ms))]
    stamp = proof.stamp
    stamp_text = f"#{stamp.seq} {stamp.hash}" if stamp else t["none"]
    switch = "?lang=zh" if en else "?lang=en"
    return f"""<!doctype html>
<html lang="{t['lang']}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(t['title'])} {e(order.order_id)}</title>
<style>
body{{font-family:"Microsoft YaHei","PingFang SC","WenQuanYi Micro Hei",sans-serif;margin:2em;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:.4em .6em;text-align:left;
vertical-align:top}}th{{background:#f4f4f4}}.uri{{font-size:.8em;word-break:break-all;max-width:32em}}
img{{max-width:640px;border:1px solid #ccc}}.stamp{{font-family:monospace;word-break:break-all}}
</style></head><body>
<p><a href="{switch}">{e(t['switch'])}</a></p>
<h1>{e(t['title'])}</h1>
<table>{''.join(f'<tr><th>{e(k)}</th><td>{e(v)}</td></tr>' for k, v in facts)}</table>
{'' if session is not None else f"<p>{e(t['no_session'])}</p>"}
<table><tr><th>{e(t['component'])}</th><th>{e(t['scanned'])}</th><th>{e(t['offset'])}</th><th>{e(t['clip'])}</th></tr>
{''.join(rows)}</table>
<h2>{e(t['snapshot'])}</h2>{image}
<h2>{e(t['stamp'])}</h2><p class="stamp">{e(stamp_text)}</p><p><small>{e(t['verify'])}</small></p>
<p><small>{e(t['generated'])}: {e(when(proof.generated_at_ms))} (UTC+8)</small></p>
</body></html>
"""


__all__ = ["AuditStamp", "PackingProof", "latest_audit", "load_snapshot", "proof_data", "proof_html", "proof_texts",
           "when"]
