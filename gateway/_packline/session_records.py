"""A pack session in the store: a head record, and one record per timeline entry.

A session's timeline grows with every scan (a parcel of 300 units has 300 entries, ~60 KB).
Rewriting all of it at every scan made each scan's commit carry the whole history: at 32
stations and 1,000 scans/s that was ~30 MB/s of RocksDB writes (WAL, memtable flushes,
compaction) for ~200 KB/s of news, and the commits every packer waits for grew with the
parcel (``python -m benchmarks packline``). So the session is stored in two parts, written in
the same write batch as the scan's event:

* ``(T, "session", <session_id>)``: the head, everything ``PackSession.to_dict`` gives but
  the timeline, plus ``"timeline_len"``: how many timeline entries belong to it;
* ``(T, "session_step", "<session_id>/<seq:06d>")``: timeline entry ``seq`` (1-based), written
  once, when it is new (an entry is never changed once appended).

``read_session`` puts them back together: what it returns is what ``to_dict`` gave, so every
reader (the resume after a restart, the API, the after-sales view) sees one shape. Entries
past ``timeline_len`` (written by a step whose session later went another way, which cannot
happen within one write batch, or left by an older gateway) are ignored. A head written
before this split (``"timeline"`` inline, no ``"timeline_len"``) is returned as it is.

Retention deletes the steps with their head (``gateway._store.retention``).
"""

from __future__ import annotations

from typing import Any

from gateway._packline.session import PackSession
from gateway._store import Store

SESSION = "session"
STEP = "session_step"

#: One record of ``StepWrite.records``: (tenant, kind, id, value).
RecordWrite = tuple[str, str, str, dict[str, Any] | None]


def step_id(session_id: str, seq: int) -> str:
    """The record id of timeline entry ``seq`` (1-based) of ``session_id``."""
    return f"{session_id}/{seq:06d}"


def session_writes(session: PackSession, written: int) -> list[RecordWrite]:
    """The records that store ``session`` when its first ``written`` timeline entries are
    stored already (0 for a session never stored): the head, and the new entries."""
    head = session.head_dict()
    tenant, session_id, timeline = session.tenant, session.session_id, session.timeline
    head["timeline_len"] = len(timeline)
    writes: list[RecordWrite] = [(tenant, SESSION, session_id, head)]
    start = min(written, len(timeline))
    writes.extend((tenant, STEP, step_id(session_id, seq), timeline[seq - 1])
                  for seq in range(start + 1, len(timeline) + 1))
    return writes


def read_session(store: Store, tenant: str, session_id: str) -> dict[str, Any] | None:
    """The stored session as ``PackSession.to_dict`` gave it (timeline included), or ``None``."""
    head = store.get_record(tenant, SESSION, session_id)
    if head is None or "timeline_len" not in head:
        return head
    count = int(head.pop("timeline_len"))
    timeline = [entry for _, _, entry in store.iter_records(STEP, tenant, id_prefix=session_id + "/")]
    head["timeline"] = timeline[:count]
    return head


__all__ = ["SESSION", "STEP", "read_session", "session_writes", "step_id"]
