"""Response framing of the builtin server: pure, checked by parsing the bytes back with httptools."""

from __future__ import annotations

import httptools
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway._server.h1_framing import (
    CHUNKED,
    IDENTITY,
    NO_BODY,
    error_response,
    frame_chunk,
    frame_head,
    status_line,
)


class Parsed:
    """One response parsed back by llhttp (the parser curl's peers and Node use)."""

    def __init__(self, data: bytes) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.complete = False
        parser = httptools.HttpResponseParser(self)
        parser.feed_data(data)
        self.status = parser.get_status_code()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True

    def header(self, name: bytes) -> bytes | None:
        return next((v for n, v in self.headers if n == name), None)


def frame(status=200, headers=(), body=b"ok", more=False, version="1.1", head_only=False, keep_alive=True):
    return frame_head(status, list(headers), body, more, http_version=version, head_only=head_only,
                      keep_alive=keep_alive, server_header=b"gateway")


def test_a_complete_body_gets_its_length_a_date_and_the_server_name():
    data, framing, keep_alive = frame(headers=[(b"content-type", b"application/json")], body=b'{"ok":true}')
    parsed = Parsed(data)
    assert (framing, keep_alive, parsed.status, parsed.body) == (IDENTITY, True, 200, b'{"ok":true}')
    assert parsed.header(b"content-length") == b"11" and parsed.header(b"server") == b"gateway"
    assert parsed.header(b"date").endswith(b" GMT") and parsed.header(b"connection") is None


def test_the_apps_own_headers_win():
    data, _, _ = frame(headers=[(b"Server", b"erp-relay"), (b"Date", b"Thu, 01 Jan 2026 00:00:00 GMT")])
    parsed = Parsed(data)
    assert parsed.header(b"server") == b"erp-relay" and [n for n, _ in parsed.headers].count(b"date") == 1


def test_a_streamed_body_is_chunked_on_1_1_and_ends_with_the_connection_on_1_0():
    data, framing, keep_alive = frame(body=b"one ", more=True)
    assert framing == CHUNKED and keep_alive
    data += frame_chunk(b"two", True) + frame_chunk(b"", False)
    parsed = Parsed(data)
    assert parsed.complete and parsed.body == b"one two"
    data, framing, keep_alive = frame(body=b"one", more=True, version="1.0")
    assert framing == IDENTITY and not keep_alive and b"connection: close" in data


@pytest.mark.parametrize("status", [101, 204, 304])
def test_bodiless_statuses_carry_no_body(status):
    data, framing, _ = frame(status=status, body=b"")
    assert framing == NO_BODY and data.endswith(b"\r\n\r\n") and b"content-length" not in data


def test_head_keeps_the_length_of_the_body_it_does_not_send():
    data, framing, _ = frame(body=b"12345", head_only=True)
    assert framing == NO_BODY and data.endswith(b"\r\n\r\n") and b"content-length: 5\r\n" in data


def test_connection_close_from_the_app_ends_keep_alive():
    data, _, keep_alive = frame(headers=[(b"connection", b"close")])
    assert not keep_alive and data.count(b"connection:") == 1
    _, _, keep_alive = frame(keep_alive=False)
    assert not keep_alive


@pytest.mark.parametrize("header", [(b"x-a", b"1\r\nset-cookie: evil"), (b"x-a\r\nx-b", b"1"), (b"x-a", b"1\n"),
                                    (b"x-a", b"\r")])
def test_cr_or_lf_in_a_header_is_refused(header):
    with pytest.raises(ValueError, match="CR or LF"):
        frame(headers=[header])


@pytest.mark.parametrize("status", [400, 414, 431, 500, 501, 505])
def test_every_refusal_the_server_sends_is_a_complete_reply_that_closes(status):
    parsed = Parsed(error_response(status, b"gateway"))
    assert parsed.complete and parsed.status == status and parsed.header(b"connection") == b"close"
    assert parsed.body.endswith(b"\n") and parsed.header(b"content-length") == b"%d" % len(parsed.body)


def test_error_responses_close_and_unknown_statuses_have_a_line():
    parsed = Parsed(error_response(431, b"gateway"))
    assert parsed.status == 431 and parsed.header(b"connection") == b"close" and parsed.body == b"Request Header Fields Too Large\n"
    assert status_line(299) == b"HTTP/1.1 299 \r\n"


header_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12).map(str.encode)
# field-content of RFC 9110: visible ASCII, obs-text, inner spaces and tabs
header_value = st.lists(st.sampled_from([*range(0x21, 0x7F), *range(0x80, 0x100), 0x20, 0x09]),
                        max_size=40).map(bytes).map(bytes.strip)
framing_headers = {b"content-length", b"transfer-encoding", b"connection", b"date", b"server"}


@given(status=st.sampled_from([200, 201, 202, 400, 401, 404, 413, 500, 503]),
       headers=st.lists(st.tuples(header_token.filter(lambda n: n not in framing_headers), header_value),
                        max_size=6),
       parts=st.lists(st.binary(max_size=200), min_size=1, max_size=4),
       version=st.sampled_from(["1.1", "1.0"]))
def test_any_response_parses_back_to_what_the_app_sent(status, headers, parts, version):
    *first_parts, last = parts
    first = first_parts[0] if first_parts else last
    more = bool(first_parts)
    data, framing, keep_alive = frame(status=status, headers=headers, body=first, more=more, version=version)
    for part in first_parts[1:]:
        data += frame_chunk(part, True) if framing == CHUNKED else part
    if more:
        data += frame_chunk(last, False) if framing == CHUNKED else last
    parsed = Parsed(data)
    assert parsed.status == status
    assert parsed.body == b"".join(parts)
    assert [h for h in parsed.headers if h[0] not in framing_headers] == headers
    if framing != IDENTITY or not more:  # a 1.0 stream ends only when the connection closes
        assert parsed.complete
    closes = parsed.header(b"connection") == b"close"
    assert closes == (not keep_alive)
