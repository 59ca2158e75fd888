"""A Hikvision-like NVR speaking ISAPI over HTTP with digest auth, on 127.0.0.1.

It runs ``http.server.ThreadingHTTPServer`` in a thread, so it serves trio tests and a
gateway running as another process alike. What it does, as an NVR does:

* HTTP digest auth (RFC 7616: MD5, ``qop=auth``, nonce counts checked); a wrong
  password gets 401 with a fresh challenge, and ``auth_failures`` counts them;
* ``GET /ISAPI/System/time``: its clock, which runs ``clock_offset_s`` ahead of the
  real one (negative: behind), as ``localTime`` in UTC+08:00, whole seconds;
* ``POST /ISAPI/ContentMgmt/search``: ``CMSearchDescription`` in (``trackList`` or
  ``trackIDList``, see ``track_list_tags``), ``CMSearchResult`` out, at most
  ``page_size`` matches per page with ``MORE`` until the last;
* ``GET /ISAPI/Streaming/channels/{track}/picture``: a small JPEG;
* ``GET``/``POST /ISAPI/ContentMgmt/download``: the bytes of a (trimmed) recording.

Recordings are added in real time (``add_recording``); the NVR labels them with its own
clock, as a real one does, which is what makes a drifting clock matter.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

import defusedxml.ElementTree as SafeElementTree

from devices.isapi import HIKVISION_NS, ISAPI_NS, compact_time, isapi_time

log = logging.getLogger(__name__)

_DIGEST_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]*))')
_PICTURE = re.compile(r"^/ISAPI/Streaming/channels/(\d+)/picture$")
_CHINA = timezone(timedelta(hours=8))


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


# A 1x1 baseline JPEG: enough for "is it a JPEG" and for a browser to show something.
FAKE_JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c1912"
    "130f141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffc0000b0800"
    "01000101011100ffc4001f0000010501010101010100000000000000000102030405060708090a0bffda0008010100"
    "003f00d2cf20ffd9")


@dataclass(frozen=True, slots=True)
class Query:
    """A ``CMSearchDescription`` as the simulator read it (NVR clock)."""

    search_id: str
    track_id: int
    start: datetime
    end: datetime
    max_results: int
    position: int
    track_list_tag: str


def _find(element: Element, *path: str) -> str | None:
    node: Element | None = element
    for name in path:
        node = next((c for c in node if c.tag.rsplit("}", 1)[-1] == name), None) if node is not None else None
    return node.text.strip() if node is not None and node.text else None


def parse_search_query(body: bytes, accepted_tags: tuple[str, ...]) -> Query | None:
    """Read a search request; ``None`` for anything this firmware would call bad XML."""
    try:
        root = SafeElementTree.fromstring(body)
        tag = next(t for t in ("trackList", "trackIDList") if _find(root, t, "trackID") is not None)
        if tag not in accepted_tags:
            return None
        return Query(_find(root, "searchID") or "", int(_find(root, tag, "trackID") or ""),
                     datetime.fromisoformat(_find(root, "timeSpanList", "timeSpan", "startTime") or ""),
                     datetime.fromisoformat(_find(root, "timeSpanList", "timeSpan", "endTime") or ""),
                     int(_find(root, "maxResults") or "40"), int(_find(root, "searchResultPostion") or "0"), tag)
    except (StopIteration, ValueError, SyntaxError):
        return None


def parse_download_uri(body: bytes) -> tuple[str, datetime, datetime] | None:
    """(name, start, end) from a ``downloadRequest``'s playback URI, or ``None``."""
    try:
        uri = _find(SafeElementTree.fromstring(body), "playbackURI") or ""
        params = dict(part.split("=", 1) for part in uri.partition("?")[2].split("&") if "=" in part)
        when = [datetime.strptime(params[key], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
                for key in ("starttime", "endtime")]
        return params["name"], when[0], when[1]
    except (KeyError, ValueError, SyntaxError):
        return None


def response_status(code: int, text: str, sub_status: str) -> bytes:
    """An ISAPI ``ResponseStatus`` error body."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<ResponseStatus version="2.0" xmlns="{ISAPI_NS}">'
            f"<requestURL></requestURL><statusCode>{code}</statusCode><statusString>{text}</statusString>"
            f"<subStatusCode>{sub_status}</subStatusCode></ResponseStatus>").encode()


def search_result(search_id: str, status: str, items: list[tuple[int, str, str, str]]) -> bytes:
    """A ``CMSearchResult`` page; ``items`` are (trackID, start, end, playback URI)."""
    matches = "".join(
        f"<searchMatchItem><sourceID>{{0000000000-0000-0000-0000-000000000000}}</sourceID>"
        f"<trackID>{track}</trackID><timeSpan><startTime>{start}</startTime><endTime>{end}</endTime></timeSpan>"
        f"<mediaSegmentDescriptor><contentType>video</contentType><codecType>H.264-BP</codecType>"
        f"<playbackURI>{escape(uri)}</playbackURI></mediaSegmentDescriptor></searchMatchItem>"
        for track, start, end, uri in items)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<CMSearchResult version="2.0" xmlns="{ISAPI_NS}">'
            f"<searchID>{escape(search_id)}</searchID><responseStatus>true</responseStatus>"
            f"<responseStatusStrg>{status}</responseStatusStrg><numOfMatches>{len(items)}</numOfMatches>"
            f"<matchList>{matches}</matchList></CMSearchResult>").encode()


def time_document(local: datetime) -> bytes:
    """``/ISAPI/System/time`` for a clock reading ``local`` (whole seconds, as an NVR sends it)."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Time version="2.0" xmlns="{HIKVISION_NS}">'
            f"<timeMode>manual</timeMode><localTime>{local.replace(microsecond=0).isoformat()}</localTime>"
            f"<timeZone>CST-8:00:00</timeZone></Time>").encode()


class DigestVerifier:
    """The server side of HTTP digest auth (RFC 7616, MD5, ``qop=auth``).

    Nonces are issued by ``challenge`` and remembered with the last nonce count seen, so
    a replayed header (same or lower ``nc``) is refused.
    """

    def __init__(self, realm: str, username: str, password: str) -> None:
        self.realm = realm
        self.username = username
        self.password = password
        self._nonce_counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def challenge(self) -> str:
        """A ``WWW-Authenticate`` value with a new nonce."""
        nonce = secrets.token_hex(16)
        with self._lock:
            self._nonce_counts[nonce] = 0
        return f'Digest realm="{self.realm}", qop="auth", nonce="{nonce}", algorithm=MD5'

    def verify(self, method: str, request_uri: str, header: str | None) -> bool:
        """Whether ``header`` (``Authorization``) proves the password for this request."""
        if not header or not header.lower().startswith("digest "):
            return False
        params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
                  for m in _DIGEST_PARAM.finditer(header[7:])}
        nonce, nc_text = params.get("nonce", ""), params.get("nc", "")
        if (params.get("username") != self.username or params.get("realm") != self.realm
                or params.get("uri") != request_uri or params.get("qop") != "auth"
                or not re.fullmatch(r"[0-9a-fA-F]{8}", nc_text)):
            return False
        ha1 = _md5(f"{self.username}:{self.realm}:{self.password}")
        ha2 = _md5(f"{method}:{request_uri}")
        expected = _md5(f"{ha1}:{nonce}:{nc_text}:{params.get('cnonce', '')}:auth:{ha2}")
        if not hmac.compare_digest(expected, params.get("response", "")):
            return False
        with self._lock:
            last = self._nonce_counts.get(nonce)
            if last is None or int(nc_text, 16) <= last:
                return False
            self._nonce_counts[nonce] = int(nc_text, 16)
        return True


@dataclass(frozen=True, slots=True)
class SimRecording:
    """A recorded file: ``start``/``end`` in the NVR's clock, as it labels them."""

    channel: int
    start: datetime
    end: datetime
    name: str

    def playback_uri(self, host: str) -> str:
        size = int((self.end - self.start).total_seconds()) * 1000
        return (f"rtsp://{host}/Streaming/tracks/{self.channel * 100 + 1}/?starttime={compact_time(self.start)}"
                f"&endtime={compact_time(self.end)}&name={self.name}&size={size}")


def clip_bytes(name: str, start: datetime, end: datetime) -> bytes:
    """The bytes the simulator serves for recording ``name`` trimmed to ``start``..``end``.

    One 1000-byte block per second, each naming its second, so a test can tell exactly
    which seconds a download holds.
    """
    seconds = max(0, int((end - start).total_seconds()))
    return b"".join(f"{name}@{compact_time(start + timedelta(seconds=s))};".encode().ljust(1000, b".")
                    for s in range(seconds))


class _Server(ThreadingHTTPServer):
    """The simulator's HTTP server: a client that hangs up (a gateway stopping mid-request) is
    normal, not a traceback on the console; anything else is logged."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            return
        log.warning("NVR simulator: request from %s failed", client_address, exc_info=True)


class NvrSimulator:
    """The simulated NVR. ``start()`` it, use ``url``; ``stop()`` when done.

    Args:
        username, password: the one account it accepts.
        clock_offset_s: how far its clock runs ahead of the real one.
        page_size: the most matches it returns per search page.
        track_list_tags: the ``CMSearchDescription`` spellings its firmware accepts.
    """

    def __init__(self, username: str = "admin", password: str = "nvr-pass-1", *,
                 clock_offset_s: float = 0.0, page_size: int = 40,
                 track_list_tags: tuple[str, ...] = ("trackList", "trackIDList"),
                 local_time_labels: bool = False) -> None:
        self.auth = DigestVerifier("DS-7608NI", username, password)
        self.clock_offset_s = clock_offset_s
        self.page_size = page_size
        self.track_list_tags = track_list_tags
        self.local_time_labels = local_time_labels
        self.hang_s = 0.0
        self.recordings: list[SimRecording] = []
        self.requests: list[tuple[str, str, int]] = []
        self.searches: list[Query] = []
        self.auth_failures = 0
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"NvrSimulator(port={self.port}, offset={self.clock_offset_s:+g}s, recordings={len(self.recordings)})"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def device_now(self) -> datetime:
        """The NVR's clock now."""
        return datetime.now(UTC) + timedelta(seconds=self.clock_offset_s)

    def add_recording(self, channel: int, real_start: datetime, real_end: datetime) -> SimRecording:
        """Record ``channel`` from ``real_start`` to ``real_end`` (real time), labelled in NVR time."""
        shift = timedelta(seconds=self.clock_offset_s, hours=8 if self.local_time_labels else 0)
        with self._lock:
            recording = SimRecording(channel, real_start + shift, real_end + shift,
                                     f"ch{channel:02d}_{len(self.recordings) + 1:08d}")
            self.recordings.append(recording)
        return recording

    def record_segments(self, channel: int, real_start: datetime, segment_s: int, count: int) -> list[SimRecording]:
        """``count`` back-to-back files of ``segment_s`` seconds, as an NVR splits a recording."""
        step = timedelta(seconds=segment_s)
        return [self.add_recording(channel, real_start + step * i, real_start + step * (i + 1)) for i in range(count)]

    def start(self) -> NvrSimulator:
        """Listen on 127.0.0.1 (a free port the first time, the same port again after ``stop``)."""
        self._server = _Server(("127.0.0.1", self.port), _handler_for(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         name="nvr-simulator", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening; the NVR is down until ``start`` again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> NvrSimulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the answers ---------------------------------------------------------------

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
        """(status, content type, body) for an authenticated request."""
        if path == "/ISAPI/System/time" and method == "GET":
            return 200, "application/xml", time_document(self.device_now().astimezone(_CHINA))
        if path == "/ISAPI/ContentMgmt/search" and method == "POST":
            return self._search(body)
        picture = _PICTURE.match(path)
        if picture and method == "GET":
            channel = int(picture.group(1)) // 100
            if not any(r.channel == channel for r in self.recordings):
                return 404, "application/xml", response_status(4, "Invalid Operation", "invalidChannel")
            return 200, "image/jpeg", FAKE_JPEG
        if path == "/ISAPI/ContentMgmt/download" and method in ("GET", "POST"):
            return self._download(body)
        return 404, "application/xml", response_status(4, "Invalid Operation", "notSupport")

    def _search(self, body: bytes) -> tuple[int, str, bytes]:
        query = parse_search_query(body, self.track_list_tags)
        if query is None:
            return 400, "application/xml", response_status(5, "Invalid XML Content", "badXmlContent")
        self.searches.append(query)
        channel = query.track_id // 100
        found = sorted((r for r in self.recordings
                        if r.channel == channel and r.end > query.start and r.start < query.end),
                       key=lambda r: r.start)
        page = found[query.position:query.position + min(query.max_results, self.page_size)]
        status = "NO MATCHES" if not found else "MORE" if query.position + len(page) < len(found) else "OK"
        items = [(query.track_id, isapi_time(r.start), isapi_time(r.end), r.playback_uri("127.0.0.1"))
                 for r in page]
        return 200, "application/xml", search_result(query.search_id, status, items)

    def _download(self, body: bytes) -> tuple[int, str, bytes]:
        wanted = parse_download_uri(body)
        recording = next((r for r in self.recordings if wanted and r.name == wanted[0]), None)
        if wanted is None or recording is None:
            return 404, "application/xml", response_status(4, "Invalid Operation", "noRecord")
        start, end = max(wanted[1], recording.start), min(wanted[2], recording.end)
        return 200, "application/octet-stream", clip_bytes(recording.name, start, end)


def _handler_for(simulator: NvrSimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "App-webs/"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _respond(self, status: int, content_type: str, body: bytes, extra: dict[str, str]) -> None:
            simulator.requests.append((self.command, self.path, status))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
            if simulator.hang_s:
                time.sleep(simulator.hang_s)
            if not simulator.auth.verify(self.command, self.path, self.headers.get("Authorization")):
                if self.headers.get("Authorization"):
                    simulator.auth_failures += 1
                self._respond(401, "application/xml", response_status(4, "Invalid Operation", "unAuthorized"),
                              {"WWW-Authenticate": simulator.auth.challenge()})
                return
            path = self.path.split("?", 1)[0]
            status, content_type, answer = simulator.answer(self.command, path, body)
            self._respond(status, content_type, answer, {})

        do_GET = _serve
        do_POST = _serve
        do_PUT = _serve

    return Handler


__all__ = ["FAKE_JPEG", "DigestVerifier", "NvrSimulator", "Query", "SimRecording", "clip_bytes"]
