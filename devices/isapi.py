"""Hikvision ISAPI, the pure part: build requests, read answers, pick and trim clips.

``devices.nvr`` does the HTTP; everything here takes values and returns values:

* device time: ``parse_device_time`` reads ``/ISAPI/System/time``; ``measure_offset_s``
  turns it into the NVR clock's offset from ours (NVR clock = our clock + offset).
* search: ``build_search_xml`` writes a ``CMSearchDescription`` (``trackList`` or, for
  firmware that wants it, ``trackIDList``); ``parse_search_result`` reads a
  ``CMSearchResult`` page (``OK`` / ``MORE`` / ``NO MATCHES``).
* clips: ``clip_from_recordings`` turns the recordings a search found (NVR clock) into
  the ``Clip`` covering a span of our clock, each segment's playback URI trimmed to it
  (``trim_playback_uri``, compact ``20261204T101500Z`` times).

XML is read with defusedxml and matched by local name, because the search API answers
in ``http://www.isapi.org/ver20/XMLSchema`` and the time API in
``http://www.hikvision.com/ver20/XMLSchema`` (and some firmware in none). Anything
unreadable raises ``IsapiError`` with what was wrong; nothing else escapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

import defusedxml.ElementTree as SafeElementTree
from defusedxml import DefusedXmlException

ISAPI_NS = "http://www.isapi.org/ver20/XMLSchema"
HIKVISION_NS = "http://www.hikvision.com/ver20/XMLSchema"
TrackListTag = Literal["trackList", "trackIDList"]
TRACK_LIST_TAGS: tuple[TrackListTag, ...] = ("trackList", "trackIDList")
SEARCH_STATUSES = ("OK", "MORE", "NO MATCHES")


class IsapiError(ValueError):
    """An ISAPI answer that cannot be read (not XML, wrong element, bad time or number)."""


def track_id(channel: int, stream: int = 1) -> int:
    """Channel 1's main stream is track 101, its sub-stream 102 (Hikvision numbering)."""
    if channel < 1 or stream < 1:
        raise ValueError("channel and stream start at 1")
    return channel * 100 + stream


def isapi_time(moment: datetime) -> str:
    """``2026-12-04T10:15:00Z``: the search API's form, UTC, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def compact_time(moment: datetime) -> str:
    """``20261204T101500Z``: the playback URI's form, UTC, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _parse_time(text: str, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise IsapiError(f"{what} is not an ISO 8601 time: {text[:40]!r}") from None
    # A time without an offset is taken as UTC: that is what the search API means by it.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse_xml(raw: bytes, root_name: str) -> Element:
    try:
        root = SafeElementTree.fromstring(raw)
    except (ParseError, DefusedXmlException, ValueError, LookupError) as exc:
        raise IsapiError(f"not readable XML ({type(exc).__name__}: {exc})") from exc
    if _local(root.tag) != root_name:
        raise IsapiError(f"expected <{root_name}>, got <{_local(root.tag)[:40]}>")
    return root  # type: ignore[no-any-return]


def _child(element: Element, name: str) -> Element | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _text(element: Element, *path: str, required: bool = True) -> str:
    node: Element | None = element
    for name in path:
        node = _child(node, name) if node is not None else None
    if node is None or node.text is None or not node.text.strip():
        if required:
            raise IsapiError(f"<{_local(element.tag)}> has no {'/'.join(path)}")
        return ""
    return node.text.strip()


@dataclass(frozen=True, slots=True)
class DeviceTime:
    """The NVR's ``/ISAPI/System/time``.

    Attributes:
        local_time: the NVR's clock, an aware datetime.
        time_mode: ``NTP`` or ``manual`` (an NVR on NTP should not drift, but may).
        time_zone: the POSIX-like zone string (``CST-8:00:00``), as sent.
        whole_seconds: ``local_time`` had no fraction (it was truncated to the second).
    """

    local_time: datetime
    time_mode: str
    time_zone: str
    whole_seconds: bool


def parse_device_time(raw: bytes) -> DeviceTime:
    """Read a ``<Time>`` document. Raises ``IsapiError``."""
    root = _parse_xml(raw, "Time")
    text = _text(root, "localTime")
    moment = _parse_time(text, "localTime")
    return DeviceTime(moment, _text(root, "timeMode", required=False),
                      _text(root, "timeZone", required=False), "." not in text)


def measure_offset_s(device: DeviceTime, sent_at: datetime, received_at: datetime) -> float:
    """The NVR clock minus ours, in seconds.

    The NVR read its clock somewhere between our request and its answer: take the
    midpoint. A clock given in whole seconds was truncated, so it is on average half a
    second behind: add that back.
    """
    midpoint = sent_at + (received_at - sent_at) / 2
    offset = (device.local_time - midpoint).total_seconds()
    return offset + 0.5 if device.whole_seconds else offset


def build_search_xml(search_id: str, track: int, start: datetime, end: datetime, *,
                     max_results: int = 40, position: int = 0,
                     track_list_tag: TrackListTag = "trackList") -> bytes:
    """A ``CMSearchDescription`` for recordings of ``track`` between ``start`` and ``end``.

    Times are written as given (UTC, ``Z``): the caller has already moved them to the
    NVR's clock. ``searchResultPostion`` is Hikvision's spelling, kept on purpose.
    """
    if track_list_tag not in TRACK_LIST_TAGS:
        raise ValueError(f"track_list_tag must be one of {TRACK_LIST_TAGS}")
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<CMSearchDescription version="1.0" xmlns="{ISAPI_NS}">'
        f"<searchID>{escape(search_id)}</searchID>"
        f"<{track_list_tag}><trackID>{int(track)}</trackID></{track_list_tag}>"
        f"<timeSpanList><timeSpan><startTime>{isapi_time(start)}</startTime>"
        f"<endTime>{isapi_time(end)}</endTime></timeSpan></timeSpanList>"
        f"<maxResults>{int(max_results)}</maxResults>"
        f"<searchResultPostion>{int(position)}</searchResultPostion>"
        f"<metadataList><metadataDescriptor>//recordType.meta.std-cgi.com</metadataDescriptor>"
        f"</metadataList></CMSearchDescription>"
    ).encode()


def build_download_xml(playback_uri: str) -> bytes:
    """The ``downloadRequest`` body for ``/ISAPI/ContentMgmt/download``."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<downloadRequest version="1.0" xmlns="{ISAPI_NS}">'
            f"<playbackURI>{escape(playback_uri)}</playbackURI></downloadRequest>").encode()


@dataclass(frozen=True, slots=True)
class Recording:
    """One ``searchMatchItem``: a recorded file on a track.

    ``parse_search_result`` gives ``start``/``end`` in the NVR's clock; ``shifted`` moves
    them to ours. ``playback_uri`` is always as the NVR wrote it.
    """

    track_id: int
    start: datetime
    end: datetime
    playback_uri: str

    def shifted(self, offset_s: float) -> Recording:
        """The same file with its times moved back by ``offset_s`` (NVR clock -> ours)."""
        shift = timedelta(seconds=offset_s)
        return Recording(self.track_id, self.start - shift, self.end - shift, self.playback_uri)


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One ``CMSearchResult`` page: ``status`` is ``OK``, ``MORE`` or ``NO MATCHES``."""

    status: str
    matches: tuple[Recording, ...]

    @property
    def more(self) -> bool:
        """The NVR has more matches: ask again from the next position."""
        return self.status == "MORE"


def parse_search_result(raw: bytes) -> SearchPage:
    """Read a ``CMSearchResult``. Raises ``IsapiError``."""
    root = _parse_xml(raw, "CMSearchResult")
    status = _text(root, "responseStatusStrg").upper()
    if status not in SEARCH_STATUSES:
        raise IsapiError(f"unknown responseStatusStrg {status[:20]!r}")
    matches: list[Recording] = []
    match_list = _child(root, "matchList")
    for item in match_list if match_list is not None else ():
        if _local(item.tag) != "searchMatchItem":
            continue
        track_text = _text(item, "trackID")
        if not track_text.isdigit():
            raise IsapiError(f"trackID {track_text[:20]!r} is not a number")
        start = _parse_time(_text(item, "timeSpan", "startTime"), "startTime")
        end = _parse_time(_text(item, "timeSpan", "endTime"), "endTime")
        if end < start:
            raise IsapiError("a match ends before it starts")
        uri = _text(item, "mediaSegmentDescriptor", "playbackURI")
        matches.append(Recording(int(track_text), start, end, uri))
    return SearchPage(status, tuple(matches))


def describe_response_status(raw: bytes) -> str:
    """An ISAPI ``<ResponseStatus>`` error body in one line, or ``""`` if it is not one."""
    try:
        root = _parse_xml(raw, "ResponseStatus")
    except IsapiError:
        return ""
    parts = (_text(root, name, required=False) for name in ("statusString", "subStatusCode"))
    return ": ".join(part for part in parts if part)


def trim_playback_uri(uri: str, start: datetime, end: datetime) -> str:
    """``uri`` with its ``starttime``/``endtime`` set to ``start``/``end`` (compact, UTC).

    Every other parameter (``name``, ``size``) is kept as the NVR wrote it.
    """
    base, _, query = uri.partition("?")
    kept = [part for part in query.split("&")
            if part and part.split("=", 1)[0].lower() not in ("starttime", "endtime")]
    times = [f"starttime={compact_time(start)}", f"endtime={compact_time(end)}"]
    return f"{base}?{'&'.join(times + kept)}"


@dataclass(frozen=True, slots=True)
class ClipSegment:
    """Part of a clip from one recorded file. ``start``/``end`` in our clock (UTC)."""

    start: datetime
    end: datetime
    playback_uri: str


@dataclass(frozen=True, slots=True)
class Clip:
    """The recordings covering a span of our clock on one channel.

    Attributes:
        channel: the NVR channel.
        start, end: the span asked for (our clock).
        segments: trimmed pieces in time order; usually one, more where the NVR split
            its files inside the span.
        complete: the segments cover the whole span without a gap (a second's slack).
    """

    channel: int
    start: datetime
    end: datetime
    segments: tuple[ClipSegment, ...]
    complete: bool

    def offset_s(self, moment: datetime) -> float:
        """Seconds from the clip's first frame to ``moment`` (a scan, say) in our clock."""
        return (moment - self.segments[0].start).total_seconds()


def clip_from_recordings(channel: int, recordings: list[Recording] | tuple[Recording, ...],
                         start: datetime, end: datetime, offset_s: float) -> Clip | None:
    """Pick the recordings overlapping ``start``..``end`` and trim each to it.

    Args:
        channel: for the ``Clip``.
        recordings: what the search found, moved to our clock (``Recording.shifted``);
            their playback URIs are still in the NVR's.
        start, end: the span wanted, in our clock.
        offset_s: NVR clock minus ours (``measure_offset_s``), to write the URIs' times.

    Returns:
        The ``Clip``, or ``None`` when nothing was recorded in the span.
    """
    offset = timedelta(seconds=offset_s)
    segments: list[ClipSegment] = []
    for recording in sorted(recordings, key=lambda r: r.start):
        if recording.end <= start or recording.start >= end:
            continue
        # Whole seconds of the NVR's clock, widened outwards so the span is covered.
        device_start = _floor_s(max(recording.start, start) + offset)
        device_end = _ceil_s(min(recording.end, end) + offset)
        segments.append(ClipSegment(device_start - offset, device_end - offset,
                                    trim_playback_uri(recording.playback_uri, device_start, device_end)))
    if not segments:
        return None
    slack = timedelta(seconds=1)
    complete = segments[0].start <= start + slack and segments[-1].end >= end - slack and all(
        following.start <= previous.end + slack for previous, following in zip(segments, segments[1:], strict=False))
    return Clip(channel, start, end, tuple(segments), complete)


def _floor_s(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _ceil_s(moment: datetime) -> datetime:
    return moment if moment.microsecond == 0 else moment.replace(microsecond=0) + timedelta(seconds=1)


__all__ = [
    "HIKVISION_NS", "ISAPI_NS", "TRACK_LIST_TAGS", "Clip", "ClipSegment", "DeviceTime", "IsapiError",
    "Recording", "SearchPage", "build_download_xml", "build_search_xml", "clip_from_recordings",
    "compact_time", "describe_response_status", "isapi_time", "measure_offset_s", "parse_device_time",
    "parse_search_result", "track_id", "trim_playback_uri",
]
