"""ISAPI XML building and parsing, clock offsets and clip trimming: pure, no sockets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import defusedxml.ElementTree as SafeElementTree
import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.isapi import (
    IsapiError,
    Recording,
    build_download_xml,
    build_search_xml,
    clip_from_recordings,
    compact_time,
    describe_response_status,
    measure_offset_s,
    parse_device_time,
    parse_search_result,
    track_id,
    trim_playback_uri,
)

T0 = datetime(2026, 12, 4, 10, 0, 0, tzinfo=UTC)


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def local_names(element):
    return {child.tag.rsplit("}", 1)[-1]: child for child in element}


@pytest.mark.parametrize("tag", ["trackList", "trackIDList"])
def test_search_description_has_hikvisions_fields_and_either_track_spelling(tag):
    xml = build_search_xml("ID-1", 101, s(0), s(90.7), max_results=25, position=50, track_list_tag=tag)
    root = SafeElementTree.fromstring(xml)
    assert root.tag == "{http://www.isapi.org/ver20/XMLSchema}CMSearchDescription"
    children = local_names(root)
    assert children["searchID"].text == "ID-1"
    assert local_names(children[tag])["trackID"].text == "101"
    span = local_names(local_names(children["timeSpanList"])["timeSpan"])
    assert span["startTime"].text == "2026-12-04T10:00:00Z"
    assert span["endTime"].text == "2026-12-04T10:01:30Z"
    assert children["maxResults"].text == "25"
    assert children["searchResultPostion"].text == "50"       # sic: Hikvision's spelling


def test_search_id_is_escaped():
    root = SafeElementTree.fromstring(build_search_xml("<&>", 101, s(0), s(1)))
    assert local_names(root)["searchID"].text == "<&>"


def test_track_ids():
    assert track_id(1) == 101 and track_id(12, 2) == 1202
    with pytest.raises(ValueError):
        track_id(0)


RESULT = b"""<?xml version="1.0" encoding="UTF-8"?>
<CMSearchResult version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">
<searchID>C8F7A1B2-0000</searchID><responseStatus>true</responseStatus>
<responseStatusStrg>MORE</responseStatusStrg><numOfMatches>2</numOfMatches>
<matchList>
<searchMatchItem><sourceID>{0000}</sourceID><trackID>101</trackID>
<timeSpan><startTime>2026-12-04T10:00:00Z</startTime><endTime>2026-12-04T10:10:00Z</endTime></timeSpan>
<mediaSegmentDescriptor><contentType>video</contentType><codecType>H.264-BP</codecType>
<playbackURI>rtsp://10.0.0.5/Streaming/tracks/101/?starttime=20261204T100000Z&amp;endtime=20261204T101000Z&amp;name=00000000123000000&amp;size=524288000</playbackURI>
</mediaSegmentDescriptor></searchMatchItem>
<searchMatchItem><trackID>101</trackID>
<timeSpan><startTime>2026-12-04T10:10:00Z</startTime><endTime>2026-12-04T10:20:00Z</endTime></timeSpan>
<mediaSegmentDescriptor><playbackURI>rtsp://10.0.0.5/Streaming/tracks/101/?starttime=20261204T101000Z&amp;endtime=20261204T102000Z&amp;name=00000000124000000&amp;size=1</playbackURI>
</mediaSegmentDescriptor></searchMatchItem>
</matchList></CMSearchResult>"""


@pytest.mark.parametrize("namespace", [
    b'xmlns="http://www.isapi.org/ver20/XMLSchema"',
    b'xmlns="http://www.hikvision.com/ver20/XMLSchema"',
    b"",
])
def test_search_result_is_read_in_any_namespace(namespace):
    raw = RESULT.replace(b'xmlns="http://www.isapi.org/ver20/XMLSchema"', namespace)
    page = parse_search_result(raw)
    assert page.status == "MORE" and page.more
    assert [m.start for m in page.matches] == [s(0), s(600)]
    assert page.matches[0].track_id == 101
    assert page.matches[0].playback_uri.endswith("name=00000000123000000&size=524288000")


def test_no_matches_page():
    raw = (b'<CMSearchResult xmlns="http://www.isapi.org/ver20/XMLSchema"><searchID>x</searchID>'
           b"<responseStatusStrg>NO MATCHES</responseStatusStrg><numOfMatches>0</numOfMatches></CMSearchResult>")
    page = parse_search_result(raw)
    assert page.status == "NO MATCHES" and page.matches == () and not page.more


@pytest.mark.parametrize("raw, words", [
    (b"", "not readable XML"),
    (b"<html>login</html>", "expected <CMSearchResult>"),
    (b"<CMSearchResult><responseStatusStrg>MAYBE</responseStatusStrg></CMSearchResult>", "unknown"),
    (b"<CMSearchResult/>", "no responseStatusStrg"),
    (RESULT.replace(b"<trackID>101</trackID>", b"<trackID>x</trackID>"), "trackID"),
    (RESULT.replace(b"2026-12-04T10:00:00Z", b"yesterday"), "ISO 8601"),
    (b'<!DOCTYPE x [<!ENTITY a "b">]><CMSearchResult>&a;</CMSearchResult>', "not readable XML"),
])
def test_bad_search_results_say_what_is_wrong(raw, words):
    with pytest.raises(IsapiError, match=words):
        parse_search_result(raw)


TIME = b"""<?xml version="1.0" encoding="UTF-8"?>
<Time version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<timeMode>NTP</timeMode><localTime>2026-12-04T18:00:40+08:00</localTime><timeZone>CST-8:00:00</timeZone>
</Time>"""


def test_device_time_and_a_40_second_offset():
    device = parse_device_time(TIME)
    assert device.local_time == datetime(2026, 12, 4, 10, 0, 40, tzinfo=UTC)
    assert device.time_mode == "NTP" and device.time_zone == "CST-8:00:00" and device.whole_seconds
    # asked at 10:00:00.2, answered at 10:00:00.4: midpoint .3; the truncated clock adds .5
    offset = measure_offset_s(device, s(0.2), s(0.4))
    assert offset == pytest.approx(40.2)


def test_device_time_with_fraction_is_not_corrected_for_truncation():
    device = parse_device_time(TIME.replace(b"18:00:40+08:00", b"18:00:40.300+08:00"))
    assert measure_offset_s(device, s(0.2), s(0.4)) == pytest.approx(40.0)


def test_trim_keeps_the_other_parameters():
    uri = "rtsp://10.0.0.5/Streaming/tracks/101/?starttime=20261204T100000Z&endtime=20261204T101000Z&name=n1&size=9"
    trimmed = trim_playback_uri(uri, s(65), s(75))
    assert trimmed == ("rtsp://10.0.0.5/Streaming/tracks/101/?starttime=20261204T100105Z"
                       "&endtime=20261204T100115Z&name=n1&size=9")
    assert compact_time(s(65)) == "20261204T100105Z"


def rec(start_s: float, end_s: float, name: str) -> Recording:
    uri = f"rtsp://h/Streaming/tracks/101/?starttime={compact_time(s(start_s))}&endtime={compact_time(s(end_s))}&name={name}"
    return Recording(101, s(start_s), s(end_s), uri)


def test_clip_inside_one_recording_with_the_clock_offset():
    # recordings in our clock; the NVR's clock is 40 s ahead, so its URIs say +40 s
    clip = clip_from_recordings(1, [rec(0, 600, "a")], s(100), s(130), offset_s=40.0)
    assert clip is not None and clip.complete and len(clip.segments) == 1
    segment = clip.segments[0]
    assert (segment.start, segment.end) == (s(100), s(130))
    assert "starttime=20261204T100220Z&endtime=20261204T100250Z&name=a" in segment.playback_uri
    assert clip.offset_s(s(112.5)) == 12.5


def test_clip_across_two_files_and_with_a_gap():
    both = clip_from_recordings(1, [rec(600, 1200, "b"), rec(0, 600, "a")], s(590), s(610), 0.0)
    assert both is not None and both.complete
    assert ["name=a" in x.playback_uri for x in both.segments] == [True, False]
    gap = clip_from_recordings(1, [rec(0, 600, "a"), rec(620, 900, "b")], s(590), s(630), 0.0)
    assert gap is not None and not gap.complete
    assert clip_from_recordings(1, [rec(0, 600, "a")], s(700), s(710), 0.0) is None


def test_fractional_offset_widens_to_whole_seconds():
    clip = clip_from_recordings(1, [rec(0, 600, "a")], s(100), s(110), offset_s=0.4)
    assert clip is not None
    assert "starttime=20261204T100140Z&endtime=20261204T100151Z" in clip.segments[0].playback_uri
    assert clip.segments[0].start == s(99.6)           # the first frame, in our clock


def test_download_request_escapes_the_uri():
    root = SafeElementTree.fromstring(build_download_xml("rtsp://h/x?a=1&b=2"))
    assert root.tag.endswith("downloadRequest")
    assert local_names(root)["playbackURI"].text == "rtsp://h/x?a=1&b=2"


def test_response_status_is_described():
    raw = (b'<ResponseStatus xmlns="http://www.isapi.org/ver20/XMLSchema"><statusCode>5</statusCode>'
           b"<statusString>Invalid XML Content</statusString><subStatusCode>badXmlContent</subStatusCode>"
           b"</ResponseStatus>")
    assert describe_response_status(raw) == "Invalid XML Content: badXmlContent"
    assert describe_response_status(b"not xml") == ""


@given(st.binary(max_size=300))
def test_garbage_bytes_never_crash_the_parsers(raw):
    for parse in (parse_search_result, parse_device_time):
        try:
            parse(raw)
        except IsapiError as exc:
            assert str(exc)


_names = st.sampled_from(["CMSearchResult", "Time", "responseStatusStrg", "matchList", "searchMatchItem",
                          "trackID", "timeSpan", "startTime", "endTime", "mediaSegmentDescriptor",
                          "playbackURI", "localTime", "timeMode"])
_texts = st.one_of(st.sampled_from(["OK", "MORE", "NO MATCHES", "101", "2026-12-04T10:00:00Z",
                                    "2026-12-04T18:00:00+08:00", "", "rtsp://h/?a=1"]), st.text(max_size=8))
_trees = st.recursive(
    st.tuples(_names, _texts).map(lambda nt: f"<{nt[0]}>{escape_text(nt[1])}</{nt[0]}>"),
    lambda children: st.tuples(_names, st.lists(children, max_size=4)).map(
        lambda nc: f"<{nc[0]}>{''.join(nc[1])}</{nc[0]}>"),
    max_leaves=12)


def escape_text(text: str) -> str:
    return "".join(c for c in text if c.isprintable()).replace("&", "&amp;").replace("<", "&lt;")


@given(_trees, st.sampled_from(["CMSearchResult", "Time"]))
def test_random_isapi_shaped_xml_parses_or_explains(inner, root):
    raw = f'<{root} xmlns="http://www.isapi.org/ver20/XMLSchema">{inner}</{root}>'.encode()
    for parse in (parse_search_result, parse_device_time):
        try:
            parse(raw)
        except IsapiError as exc:
            assert str(exc)
