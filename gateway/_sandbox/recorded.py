"""Recorded inputs: the event log's raw inputs as JSON lines, written and read back.

One line per event-log record that came from outside (a released quarantine record is a
re-read of a line already there and is skipped)::

    {"seq": 17, "tenant": "acme", "source": "erp", "received_at_ms": 1764900000000,
     "raw": {...decoded input, phone numbers and addresses as key tokens...},
     "recorded": {"source_event_id", "order_id", "type", "raw_status", "status", "outcome",
                  "occurred_at_ms", "fingerprint", "rule", "detail"?}}

``raw`` is what the source's mapping rules read again on replay. ``recorded`` keeps the
normalised fields as the gateway saw them; replay uses them only for an event whose source
has no mapping rules (a pack station's scans: ``station@builtin``), which are then rebuilt
exactly as recorded on both sides.

``export_events`` streams (the store is read in chunks, a line is written per record: memory
stays constant); ``read_recorded`` reads a file back line by line, naming the line of a
broken one.
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
        """True when ``record`` (an event-log record) belongs in the export."""
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


def iter_export(store: Store, wanted: ExportFilter) -> Iterator[dict[str, Any]]:
    """The export lines of ``wanted.tenant``'s event log, in seq order (streamed)."""
    for record in store.iter_events(wanted.tenant):
        if wanted.admits(record):
            yield recorded_line(record)


def iter_replay(store: Store, wanted: ExportFilter) -> Iterator[dict[str, Any]]:
    """``iter_export`` for a replay: the admitted event-log records themselves, not copied.

    A record already holds what a line has (``seq``, ``tenant``, ``source``,
    ``received_at_ms``, ``raw``) and the recorded fields at its top level, where
    ``recorded_fields`` finds them; building the export line cost a third of reading the log.
    A record whose ``received_at_ms`` is not an int (none is, as the pipeline writes them)
    gets its export line.
    """
    for record in store.iter_events(wanted.tenant):
        if wanted.admits(record):
            yield record if type(record.get("received_at_ms")) is int and "source" in record else recorded_line(record)


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
        RecordedInputError: not JSON, or lacks ``tenant`` / ``source`` / ``received_at_ms``.
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
    return line


__all__ = ["ExportFilter", "RecordedInputError", "export_events", "iter_export", "iter_replay", "parse_line",
           "read_recorded", "recorded_fields", "recorded_line"]
