"""Recorded inputs: the event log's raw inputs as JSON lines, written and read back.

One line per event-log record that came from outside::

    {"seq": 17, "tenant": "acme", "source": "erp", "received_at_ms": 1764900000000,
     "raw": {...decoded input, phone numbers and addresses as key tokens...},
     "recorded": {"source_event_id", "order_id", "type", "raw_status", "status", "outcome",
                  "occurred_at_ms", "fingerprint", "rule", "detail"?}}

``raw`` is what the source's mapping rules read again on replay. ``recorded`` keeps the
normalised fields as the gateway saw them; replay uses them only for an event whose source
has no mapping rules (a pack station's scans: ``station@builtin``), which are then rebuilt
exactly as recorded on both sides.

A record written when a quarantined event was released (``released_from_quarantine``: by
operations staff after a rule fix, ``gateway quarantine release`` or the API, or by the
pipeline once a waited-for waybill came) becomes a *release line*: the same fields (its
``raw`` is the quarantined input, ``recorded`` what the release made of it) and::

    "release_of": 12, "quarantine_seq": 3

``release_of`` is the event-log seq of the record that was quarantined: the one line a
replay must find held in quarantine on a side to release it there
(``gateway._sandbox.released``). The record only names its *quarantine* seq, a counter of
its own (per tenant, one more per quarantined event, in commit order, never reused):
``ReleaseTracker`` ties the two while the log streams by, first by the event id (a fix of the
status table keeps the fingerprint), else by counting the quarantined records (what the
quarantine seq is, as long as retention has not pruned any of them). A release whose
quarantined record is in neither (pruned long ago) is left out: no replay could find it held.
Files written before release lines existed read as before (they have none).

``export_events`` streams (the store is read in chunks, a line is written per record: memory
stays constant but for the quarantined records not released yet); ``read_recorded`` reads a
file back line by line, naming the line of a broken one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from gateway._errors import GatewayError
from gateway._store import Store

#: The ``recorded`` fields an export keeps (all optional on read).
RECORDED_FIELDS = ("source_event_id", "order_id", "type", "raw_status", "status", "outcome",
                   "occurred_at_ms", "fingerprint", "rule", "detail", "waybill")


class RecordedInputError(GatewayError):
    """A recorded-input file cannot be read: the message names the file and line."""


@dataclass(frozen=True)
class ExportFilter:
    """Which event-log records an export writes.

    Attributes:
        tenant: the tenant whose log is read.
        since_ms / until_ms: received time window, ``since_ms <= t < until_ms``; 0 = open.
        source: only this source (``""``: every source).
    """

    tenant: str
    since_ms: int = 0
    until_ms: int = 0
    source: str = ""

    def admits(self, record: dict[str, Any]) -> bool:
        """True when ``record`` (an event-log record or a line) belongs in the export; a release
        record does not as such (its release line does: ``iter_export``)."""
        if record.get("released_from_quarantine"):
            return False
        received = int(record.get("received_at_ms") or 0)
        if self.since_ms and received < self.since_ms:
            return False
        if self.until_ms and received >= self.until_ms:
            return False
        return not self.source or record.get("source") == self.source


def recorded_line(record: dict[str, Any]) -> dict[str, Any]:
    """The export line of one event-log record (see the module docstring)."""
    recorded = {name: record[name] for name in RECORDED_FIELDS if record.get(name) is not None}
    return {"seq": record.get("seq", 0), "tenant": record["tenant"], "source": record.get("source", ""),
            "received_at_ms": int(record.get("received_at_ms") or 0), "raw": record.get("raw"),
            "recorded": recorded}


def release_line(record: dict[str, Any], original_seq: int) -> dict[str, Any]:
    """The release line of a release record whose quarantined record is ``original_seq``."""
    line = recorded_line(record)
    line["release_of"] = original_seq
    line["quarantine_seq"] = int(record["released_from_quarantine"])
    return line


class ReleaseTracker:
    """Ties each release record of one tenant's log to the quarantined record it released.

    Feed it every quarantined record (``quarantined``) and every release record
    (``released``) in seq order, whatever the export's window: a release inside the window
    may release an event quarantined before it.
    """

    def __init__(self) -> None:
        self._count = 0
        #: quarantine seq as counted -> (event-log seq, event id), and event id -> (event-log seq, count).
        self._by_count: dict[int, tuple[int, str]] = {}
        self._by_event: dict[str, tuple[int, int]] = {}

    def __repr__(self) -> str:
        return f"<ReleaseTracker: {self._count} quarantined seen, {len(self._by_count)} not released>"

    def quarantined(self, record: dict[str, Any]) -> None:
        """Note a record the step quarantined (``outcome == "quarantined"``)."""
        self._count += 1
        seq, event_id = int(record.get("seq") or 0), str(record.get("event_id") or "")
        self._by_count[self._count] = (seq, event_id)
        if event_id:
            self._by_event[event_id] = (seq, self._count)

    def released(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """The release line of a release record, or ``None`` when its quarantined record is unknown."""
        exact = self._by_event.pop(str(record.get("event_id") or ""), None)
        if exact is not None:
            self._by_count.pop(exact[1], None)
            return release_line(record, exact[0])
        counted = self._by_count.pop(int(record["released_from_quarantine"]), None)
        if counted is None:
            return None
        self._by_event.pop(counted[1], None)
        return release_line(record, counted[0])


def _with_releases(store: Store, wanted: ExportFilter, export: bool) -> Iterator[dict[str, Any]]:
    """The admitted records of the log (export lines when ``export``, else the records where
    they can stand for a line) and the release lines, in seq order."""
    tracker = ReleaseTracker()
    admits = wanted.admits
    for record in store.iter_events(wanted.tenant):
        if record.get("released_from_quarantine"):
            line = tracker.released(record)
            if line is not None and admits(line):
                yield line
            continue
        if record.get("outcome") == "quarantined":
            tracker.quarantined(record)
        if admits(record):
            yield (recorded_line(record) if export or type(record.get("received_at_ms")) is not int
                   or "source" not in record else record)


def iter_export(store: Store, wanted: ExportFilter) -> Iterator[dict[str, Any]]:
    """The export lines of ``wanted.tenant``'s event log, release lines included, in seq order (streamed)."""
    return _with_releases(store, wanted, True)


def iter_replay(store: Store, wanted: ExportFilter) -> Iterator[dict[str, Any]]:
    """``iter_export`` for a replay: the admitted event-log records themselves, not copied.

    A record already holds what a line has (``seq``, ``tenant``, ``source``,
    ``received_at_ms``, ``raw``) and the recorded fields at its top level, where
    ``recorded_fields`` finds them; building the export line cost a third of reading the log.
    A record whose ``received_at_ms`` is not an int (none is, as the pipeline writes them)
    gets its export line; a release record, its release line.
    """
    return _with_releases(store, wanted, False)


def recorded_fields(line: dict[str, Any]) -> dict[str, Any]:
    """The recorded fields of a line: its ``recorded`` object, or, for an event-log record
    (``iter_replay``), the record itself (read them with ``.get``: a record may hold ``None``
    where an export line leaves the field out)."""
    recorded = line.get("recorded", line)
    return recorded if isinstance(recorded, dict) else {}


def export_events(store: Store, wanted: ExportFilter, out: IO[bytes],
                  progress: Callable[[int], None] | None = None) -> int:
    """Write the export of ``wanted`` to ``out`` as JSON lines; returns the lines written.

    Args:
        store: an open store (a read-only one is enough).
        wanted: the tenant, time window and source.
        out: a binary stream; each line is written as it is read.
        progress: called with the number of lines written so far, every 10,000 lines and at the end.
    """
    written = 0
    dumps = orjson.dumps
    for line in iter_export(store, wanted):
        out.write(dumps(line) + b"\n")
        written += 1
        if progress is not None and written % 10_000 == 0:
            progress(written)
    if progress is not None:
        progress(written)
    return written


def read_recorded(path: Path) -> Iterator[dict[str, Any]]:
    """The lines of a recorded-input file, one dict each (blank lines skipped).

    Raises:
        RecordedInputError: the file cannot be opened, or a line is not a recorded input
            (the message names ``file:line`` and what is wrong).
    """
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise RecordedInputError(f"{path}: cannot open the recorded inputs: {exc}") from exc
    with handle:
        for number, text in enumerate(handle, 1):
            if not text.strip():
                continue
            yield parse_line(text, f"{path}:{number}")


def parse_line(text: bytes, where: str) -> dict[str, Any]:
    """One recorded-input line, checked; ``where`` names it in the error.

    Raises:
        RecordedInputError: not JSON, or lacks ``tenant`` / ``source`` / ``received_at_ms``, or
            a release line's ``release_of`` is not a positive int.
    """
    try:
        line = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise RecordedInputError(f"{where}: not JSON ({exc}); export the events again with `gateway export`") from exc
    if not isinstance(line, dict):
        raise RecordedInputError(f"{where}: not a JSON object")
    for name, kind in (("tenant", str), ("source", str), ("received_at_ms", int)):
        if not isinstance(line.get(name), kind):
            raise RecordedInputError(f"{where}: {name}: missing or not a {kind.__name__}")
    if "release_of" in line and (type(line["release_of"]) is not int or line["release_of"] < 1):
        raise RecordedInputError(f"{where}: release_of: not the positive event-log seq of a quarantined record")
    return line


__all__ = ["ExportFilter", "RecordedInputError", "ReleaseTracker", "export_events", "iter_export", "iter_replay",
           "parse_line", "read_recorded", "recorded_fields", "recorded_line", "release_line"]
