"""The NVR client: Hikvision ISAPI over HTTP with digest auth (httpx, under trio).

``NvrClient`` finds and keeps video evidence for the pack line:

* ``clock_offset()`` reads ``/ISAPI/System/time`` and keeps the NVR clock's offset
  from ours; every search is shifted by it (re-measured when older than
  ``offset_max_age_s``), so a clip is found at the right second when the NVR drifts;
* ``search(channel, start, end)`` pages through ``ContentMgmt/search`` on ``MORE`` and
  returns the recordings in our clock; an NVR that refuses one ``CMSearchDescription``
  spelling (``trackList``) with 400 is asked once in the other (``trackIDList``), and
  the one that worked is remembered;
* ``clip_for(channel, start, end)`` gives the ``Clip`` covering a span, playback URIs
  trimmed to it; ``snapshot(channel)`` a JPEG; ``download(playback_uri, path)`` streams a
  clip to a file (temporary name, fsync, rename), because the NVR overwrites its disk
  after a few weeks and a disputed order's evidence must outlive that.

Errors (``gateway._errors``): 401/403 -> ``DeviceAuthError``, never retried (NVRs lock
an account after a few failures); connection refused, timeouts and 5xx ->
``DeviceUnavailableError`` after ``attempts`` tries with ``Backoff``; an answer we cannot
read -> ``DeviceError``. Messages and logs carry the NVR's name and the ISAPI path, never
the password (the base URL may not carry credentials at all).
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, TypeVar

import httpx
import trio

from devices.isapi import (
    TRACK_LIST_TAGS,
    Clip,
    IsapiError,
    Recording,
    TrackListTag,
    build_download_xml,
    build_search_xml,
    clip_from_recordings,
    describe_response_status,
    measure_offset_s,
    parse_device_time,
    parse_search_result,
    track_id,
)
from gateway._backoff import Backoff
from gateway._errors import DeviceAuthError, DeviceError, DeviceUnavailableError

logger = logging.getLogger(__name__)
T = TypeVar("T")

_MAX_PAGES = 200


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class DownloadResult:
    """A clip saved for evidence: where, how big, and its SHA-256 (for the audit trail)."""

    path: Path
    size_bytes: int
    sha256: str


class NvrClient:
    """One NVR. Use as ``async with NvrClient(...) as nvr:``; ``aclose()`` otherwise.

    Args:
        name: the NVR's configured name, used in errors and logs.
        base_url: ``http://host[:port]``, without credentials.
        username, password: the ISAPI account (digest auth).
        timeout_s: per request (connect, read, write each).
        attempts: tries for a request that failed for a reason worth retrying.
        retry_initial_s, retry_max_s: the ``Backoff`` between tries.
        page_size: ``maxResults`` per search page.
        offset_max_age_s: re-measure the clock offset when older than this.
        track_list_tag: the ``CMSearchDescription`` spelling to try first.
        search_clock: ``"utc"`` (the ISAPI contract: search and playback times are UTC)
            or ``"device_local"`` for firmware that writes its local wall-clock time with
            a ``Z`` anyway; the NVR's zone is then taken from ``localTime``'s offset.
        transport: an httpx transport (tests); the default talks TCP.
        now: our clock (tests).
    """

    def __init__(self, name: str, base_url: str, username: str, password: str, *,
                 timeout_s: float = 10.0, attempts: int = 3, retry_initial_s: float = 0.5,
                 retry_max_s: float = 10.0, page_size: int = 40, offset_max_age_s: float = 600.0,
                 track_list_tag: TrackListTag = "trackList",
                 search_clock: Literal["utc", "device_local"] = "utc",
                 transport: httpx.AsyncBaseTransport | None = None,
                 now: Callable[[], datetime] = _utc_now) -> None:
        if httpx.URL(base_url).userinfo:
            raise ValueError(f"NVR {name}: put the credentials in username/password, not in the URL")
        self.name = name
        self.timeout_s = timeout_s
        self.attempts = max(1, attempts)
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.page_size = page_size
        self.offset_max_age_s = offset_max_age_s
        self.track_list_tag: TrackListTag = track_list_tag
        self.search_clock = search_clock
        self._zone_s = 0.0
        self._now = now
        self._offset_s: float | None = None
        self._offset_measured_at = 0.0
        self._client = httpx.AsyncClient(base_url=base_url, auth=httpx.DigestAuth(username, password),
                                         timeout=timeout_s, transport=transport)

    def __repr__(self) -> str:
        return f"NvrClient({self.name!r}, offset_s={self._offset_s})"

    async def __aenter__(self) -> NvrClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    @property
    def offset_s(self) -> float | None:
        """The last measured NVR clock minus ours, or ``None`` before the first measurement."""
        return self._offset_s

    # -- requests ------------------------------------------------------------------

    async def _retrying(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        backoff = Backoff(self.retry_initial_s, max(self.retry_initial_s, self.retry_max_s))
        for number in range(1, self.attempts + 1):
            try:
                return await attempt()
            except DeviceUnavailableError as exc:
                if number == self.attempts:
                    raise
                delay = backoff.next_delay()
                logger.warning("nvr %s: %s failed (%s); try %d of %d in %.2fs",
                               self.name, what, exc.message, number + 1, self.attempts, delay)
                await trio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _check(self, response: httpx.Response, what: str) -> None:
        status = response.status_code
        if status == 401:
            raise DeviceAuthError(self.name, f"{what}: the NVR refused the username or password "
                                  "(HTTP 401); check the credentials (not retried: NVRs lock accounts)")
        if status == 403:
            raise DeviceAuthError(self.name, f"{what}: the NVR user lacks the permission for this (HTTP 403)")
        if status >= 500:
            raise DeviceUnavailableError(self.name, f"{what}: the NVR answered HTTP {status}")
        if status >= 400:
            detail = describe_response_status(response.content) if response.is_stream_consumed else ""
            raise DeviceError(self.name, f"{what}: the NVR answered HTTP {status}" + (f" ({detail})" if detail else ""))

    def _transport_error(self, what: str, exc: httpx.TransportError) -> DeviceUnavailableError:
        if isinstance(exc, httpx.TimeoutException):
            return DeviceUnavailableError(self.name, f"{what}: no answer within {self.timeout_s:g} s")
        return DeviceUnavailableError(self.name, f"{what}: cannot reach the NVR ({type(exc).__name__})")

    async def _request_once(self, method: str, path: str, content: bytes | None = None,
                            *, allow_400: bool = False) -> httpx.Response:
        what = f"{method} {path}"
        try:
            response = await self._client.request(method, path, content=content)
        except httpx.TransportError as exc:
            raise self._transport_error(what, exc) from exc
        if not (allow_400 and response.status_code == 400):
            self._check(response, what)
        return response

    async def _request(self, method: str, path: str, content: bytes | None = None,
                       *, allow_400: bool = False) -> httpx.Response:
        return await self._retrying(f"{method} {path}", lambda: self._request_once(
            method, path, content, allow_400=allow_400))

    # -- the API -------------------------------------------------------------------

    async def clock_offset(self) -> float:
        """Measure the NVR clock minus ours (seconds) and keep it for the searches.

        Raises:
            DeviceAuthError, DeviceUnavailableError, DeviceError: see the module docstring.
        """
        async def attempt() -> tuple[datetime, httpx.Response, datetime]:
            # Timed per attempt: a retry's backoff must not widen the measured window.
            sent_at = self._now()
            response = await self._request_once("GET", "/ISAPI/System/time")
            return sent_at, response, self._now()

        sent_at, response, received_at = await self._retrying("GET /ISAPI/System/time", attempt)
        try:
            device_time = parse_device_time(response.content)
        except IsapiError as exc:
            raise DeviceError(self.name, f"unreadable /ISAPI/System/time: {exc}") from exc
        self._offset_s = measure_offset_s(device_time, sent_at, received_at)
        zone = device_time.local_time.utcoffset()
        self._zone_s = zone.total_seconds() if zone is not None else 0.0
        self._offset_measured_at = trio.current_time()
        if abs(self._offset_s) >= 2:
            logger.info("nvr %s: clock is %+.1f s off ours (%s); searches are corrected",
                        self.name, self._offset_s, device_time.time_mode or "mode unknown")
        return self._offset_s

    async def _search_shift_s(self) -> float:
        """Seconds from our clock (UTC) to the times the NVR's search speaks in."""
        stale = trio.current_time() - self._offset_measured_at > self.offset_max_age_s
        offset_s = await self.clock_offset() if self._offset_s is None or stale else self._offset_s
        # Wall-clock firmware labels its local time as UTC: one more fixed shift, both ways.
        return offset_s + (self._zone_s if self.search_clock == "device_local" else 0.0)

    async def search(self, channel: int, start: datetime, end: datetime, *, stream: int = 1) -> list[Recording]:
        """Recordings of ``channel`` overlapping ``start``..``end`` (our clock), in our clock.

        The playback URIs stay as the NVR wrote them (its clock); ``clip_for`` trims them.
        """
        recordings, _offset = await self._search(channel, start, end, stream)
        return recordings

    async def _search(self, channel: int, start: datetime, end: datetime,
                      stream: int) -> tuple[list[Recording], float]:
        if end <= start:
            raise ValueError("a search span must end after it starts")
        offset_s = await self._search_shift_s()
        shift = timedelta(seconds=offset_s)
        device_start = (start + shift).replace(microsecond=0)
        device_end = (end + shift).replace(microsecond=0) + timedelta(seconds=1)
        search_id = str(uuid.uuid4()).upper()
        found: list[Recording] = []
        for _page in range(_MAX_PAGES):
            page_xml = await self._search_page(search_id, track_id(channel, stream), device_start,
                                               device_end, len(found))
            try:
                page = parse_search_result(page_xml)
            except IsapiError as exc:
                raise DeviceError(self.name, f"unreadable search result: {exc}") from exc
            found += (recording.shifted(offset_s) for recording in page.matches)
            if not page.more or not page.matches:
                break
        else:
            raise DeviceError(self.name, f"search kept answering MORE after {_MAX_PAGES} pages")
        return found, offset_s

    async def _search_page(self, search_id: str, track: int, start: datetime, end: datetime,
                           position: int) -> bytes:
        """One page, trying the other ``trackList`` spelling once if this firmware refuses ours."""
        tags = [self.track_list_tag] + [tag for tag in TRACK_LIST_TAGS if tag != self.track_list_tag]
        for tag in tags:
            body = build_search_xml(search_id, track, start, end, max_results=self.page_size,
                                    position=position, track_list_tag=tag)
            response = await self._request("POST", "/ISAPI/ContentMgmt/search", body, allow_400=True)
            if response.status_code != 400:
                if tag != self.track_list_tag:
                    logger.info("nvr %s: search works with <%s>; using it from now on", self.name, tag)
                    self.track_list_tag = tag
                return response.content
        detail = describe_response_status(response.content)
        raise DeviceError(self.name, f"the NVR refused the search in both spellings ({detail or 'HTTP 400'})")

    async def clip_for(self, channel: int, start: datetime, end: datetime, *, stream: int = 1) -> Clip | None:
        """The clip covering ``start``..``end`` (our clock) on ``channel``; ``None`` if nothing recorded.

        Check ``Clip.complete``: a gap (camera offline, disk full) is reported, not hidden.
        """
        recordings, offset_s = await self._search(channel, start, end, stream)
        return clip_from_recordings(channel, recordings, start, end, offset_s)

    async def snapshot(self, channel: int, *, stream: int = 1) -> bytes:
        """A JPEG from ``channel`` now.

        Raises:
            DeviceError: the answer is not a JPEG (plus the errors of every request).
        """
        response = await self._request("GET", f"/ISAPI/Streaming/channels/{track_id(channel, stream)}/picture")
        if not response.content.startswith(b"\xff\xd8"):
            raise DeviceError(self.name, f"channel {channel}: the snapshot is not a JPEG")
        return response.content

    async def download(self, playback_uri: str, path: str | os.PathLike[str], *,
                       max_bytes: int = 4 * 1024**3) -> DownloadResult:
        """Stream the clip at ``playback_uri`` into ``path``, all or nothing.

        The bytes go to ``.<name>.part`` next to ``path``, are fsynced, and only then
        renamed over ``path``, so ``path`` never holds half a clip. A failed attempt is
        retried from the start (the NVR offers no resume).

        Raises:
            DeviceError: an empty or oversized answer (plus the errors of every request).
        """
        target = Path(path)
        partial = target.with_name(f".{target.name}.part")
        body = build_download_xml(playback_uri)
        what = "download"

        async def attempt() -> DownloadResult:
            digest, size = hashlib.sha256(), 0
            try:
                async with self._client.stream("GET", "/ISAPI/ContentMgmt/download", content=body) as response:
                    if response.status_code >= 400:
                        await response.aread()
                    self._check(response, what)
                    async with await trio.open_file(partial, "wb") as out:
                        async for chunk in response.aiter_bytes():
                            size += len(chunk)
                            if size > max_bytes:
                                raise DeviceError(self.name, f"download larger than {max_bytes} bytes")
                            digest.update(chunk)
                            await out.write(chunk)
                        await out.flush()
                        await trio.to_thread.run_sync(os.fsync, out.fileno())
            except httpx.TransportError as exc:
                raise self._transport_error(what, exc) from exc
            if size == 0:
                raise DeviceError(self.name, "the NVR sent an empty clip")
            await trio.to_thread.run_sync(_replace_durably, partial, target)
            return DownloadResult(target, size, digest.hexdigest())

        try:
            return await self._retrying(what, attempt)
        finally:
            with trio.CancelScope(shield=True):  # a cancelled download leaves no .part behind
                await trio.to_thread.run_sync(partial.unlink, True)


def _replace_durably(source: Path, target: Path) -> None:
    os.replace(source, target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


__all__ = ["DownloadResult", "NvrClient"]
