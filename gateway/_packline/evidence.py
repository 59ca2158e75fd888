"""Video evidence: each closed pack session tied to the NVR clip that filmed it.

After a close (complete or forced), the station's NVR channel is searched for the clip
covering the session, from ``LEAD_S`` before it opened to ``TAIL_S`` after it closed, on our
clock (``NvrClient`` applies the NVR's clock offset, so a drifting NVR clock does not move
the clip). The reference is stored with **every order of the pack group** (record kind
``evidence``, id ``<order_id>|<session_id>``) together with each scan's offset into the clip
and the playback URI of the segment holding it, so a claim ("the gift box was missing") is
answered by jumping to the second the gift box was, or was not, scanned. A snapshot taken
at the close is kept as a JPEG under ``<data_dir>/evidence/`` with its SHA-256 in the record.
One audit record per order (decision ``evidence``) puts the reference into the hash-chained
audit trail.

An NVR that is down, refuses our password or has not recorded yet does not lose the
evidence: the session's request stays as a ``evidence_pending`` record and is tried again
with backoff (``serve_evidence``), also after a restart; the NVR keeps its recordings for
weeks, so minutes of retry are harmless. A clip with a gap (camera offline) is stored with
``complete: false``: reported, never hidden.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trio

from devices.isapi import Clip
from devices.nvr import NvrClient
from gateway._errors import DeviceError
from gateway._store import StepWrite

log = logging.getLogger(__name__)

LEAD_S = 5.0
TAIL_S = 5.0
PENDING = "evidence_pending"
KIND = "evidence"
RETRY_S = (5.0, 300.0)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def evidence_request(tenant: str, session: Mapping[str, Any], nvr: str, channel: int) -> dict[str, Any]:
    """What to look for, from a closed session's record (``PackSession.to_dict()``): kept as
    the ``evidence_pending`` record until found."""
    timeline = [entry for entry in session.get("timeline", ()) if "at_ms" in entry]
    opened = int(session.get("opened_at_ms") or (timeline[0]["at_ms"] if timeline else 0))
    closed = int(session.get("closed_at_ms") or (timeline[-1]["at_ms"] if timeline else opened))
    return {"tenant": tenant, "session_id": session["session_id"], "station": session.get("station", ""),
            "operator": session.get("operator", ""), "order_ids": list(session.get("orders", ())),
            "nvr": nvr, "channel": channel, "opened_at_ms": opened, "closed_at_ms": closed,
            "scans": [{"at_ms": e["at_ms"], "code": e.get("code", ""), "verdict": e.get("verdict", ""),
                       "component_id": e.get("component_id"), "kind": e.get("kind", "")} for e in timeline],
            "attempts": 0, "last_error": ""}


def scan_offsets(clip: Clip, scans: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each scan with its offset (seconds) into the clip and the segment that shows it
    (``None`` when a gap in the recording falls on it)."""
    start_ms = _ms(clip.start)
    out = []
    for scan in scans:
        at = _dt(int(scan["at_ms"]))
        segment = next((s for s in clip.segments if s.start <= at <= s.end), None)
        out.append({**scan, "offset_s": round((int(scan["at_ms"]) - start_ms) / 1000, 3),
                    "playback_uri": segment.playback_uri if segment else None,
                    "segment_offset_s": round((at - segment.start).total_seconds(), 3) if segment else None})
    return out


def evidence_write(request: Mapping[str, Any], clip: Clip | None, snapshot: Mapping[str, Any] | None,
                   now_ms: int) -> StepWrite:
    """The evidence records (one per order) and their audit records; the pending request
    is deleted in the same batch."""
    tenant, session_id = request["tenant"], request["session_id"]
    reference: dict[str, Any] = {
        "session_id": session_id, "station": request["station"], "operator": request["operator"],
        "order_ids": request["order_ids"], "nvr": request["nvr"], "channel": request["channel"],
        "opened_at_ms": request["opened_at_ms"], "closed_at_ms": request["closed_at_ms"], "found_at_ms": now_ms,
        "clip": None, "snapshot": dict(snapshot) if snapshot else None, "scans": list(request["scans"]),
    }
    if clip is not None:
        reference["clip"] = {"start_ms": _ms(clip.start), "end_ms": _ms(clip.end), "complete": clip.complete,
                             "segments": [{"start_ms": _ms(s.start), "end_ms": _ms(s.end),
                                           "playback_uri": s.playback_uri} for s in clip.segments]}
        reference["scans"] = scan_offsets(clip, request["scans"])
    write = StepWrite(records=[(tenant, PENDING, session_id, None)])
    for order_id in request["order_ids"]:
        write.records.append((tenant, KIND, f"{order_id}|{session_id}", reference))
        note = ("clip found" if clip is not None else "no recording covers the session") + (
            "" if clip is None or clip.complete else " (with a gap)")
        write.audit.append({
            "tenant": tenant, "at_ms": now_ms, "actor": f"station:{request['station']}", "source": "station",
            "event_id": "", "rule": "", "order_id": order_id, "decision": "evidence", "changes": [],
            "note": note, "detail": {"session_id": session_id, "clip": reference["clip"],
                                     "snapshot_sha256": snapshot.get("sha256") if snapshot else None},
        })
    return write


Commit = Callable[[StepWrite], Awaitable[None]]


async def find_evidence(client: NvrClient, request: Mapping[str, Any], evidence_dir: Path,
                        snapshot: bytes | None, now_ms: int) -> StepWrite:
    """Search the clip (and keep the snapshot taken at close) for one request.

    Raises:
        DeviceError: the NVR is down, refuses our password or answers nonsense: retry later.
    """
    start = _dt(int(request["opened_at_ms"])) - timedelta(seconds=LEAD_S)
    end = _dt(int(request["closed_at_ms"])) + timedelta(seconds=TAIL_S)
    clip = await client.clip_for(int(request["channel"]), start, end)
    stored: dict[str, Any] | None = None
    if snapshot:
        path = evidence_dir / f"{request['session_id'].replace('/', '_')}.jpg"
        await trio.to_thread.run_sync(_write_file, path, snapshot)
        stored = {"path": str(path), "sha256": hashlib.sha256(snapshot).hexdigest(), "bytes": len(snapshot)}
    return evidence_write(request, clip, stored, now_ms)


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.part")
    with part.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    part.replace(path)


async def take_snapshot(client: NvrClient, channel: int) -> bytes | None:
    """The snapshot at close, or ``None`` when the NVR cannot give one now (logged)."""
    try:
        return await client.snapshot(channel)
    except DeviceError as exc:
        log.warning("snapshot at close failed: %s", exc)
        return None


def retry_delay_s(attempts: int) -> float:
    """Seconds before the next search of a pending request (capped doubling)."""
    first, cap = RETRY_S
    return float(min(cap, first * 2 ** min(attempts, 10)))


def pending_after_failure(request: Mapping[str, Any], error: str, now_ms: int) -> dict[str, Any]:
    attempts = int(request.get("attempts", 0)) + 1
    return {**request, "attempts": attempts, "last_error": error,
            "next_attempt_ms": now_ms + round(retry_delay_s(attempts) * 1000)}


__all__ = ["KIND", "LEAD_S", "PENDING", "TAIL_S", "evidence_request", "evidence_write", "find_evidence",
           "pending_after_failure", "retry_delay_s", "scan_offsets", "take_snapshot"]
