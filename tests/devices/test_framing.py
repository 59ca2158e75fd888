"""The Framer: bytes in, frames out, for every terminator, however the bytes are chunked."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.framing import TERMINATOR_BYTES, Frame, FrameEnd, Framer, FramingConfig


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(max(c, 0), len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False)]


@pytest.mark.parametrize("terminator", ["cr", "lf", "crlf", "tab"])
def test_each_terminator_ends_a_read_and_keeps_the_rest_pending(terminator):
    end = TERMINATOR_BYTES[terminator]
    framer = Framer(FramingConfig(terminator=terminator))
    frames = framer.feed(b"]C0ONE" + end + b"TWO" + end + b"THR", now=1.0)
    assert frames == [Frame(b"]C0ONE"), Frame(b"TWO")]
    assert framer.pending == b"THR"
    assert framer.feed(b"EE" + end, now=1.1) == [Frame(b"THREE")]
    assert framer.deadline() == math.inf


def test_crlf_split_between_chunks_is_one_terminator():
    framer = Framer(FramingConfig(terminator="crlf"))
    assert framer.feed(b"ABC\r", 0.0) == []
    assert framer.feed(b"\nDEF\r\n", 0.0) == [Frame(b"ABC"), Frame(b"DEF")]


def test_no_terminator_ends_a_read_after_the_idle_gap():
    framer = Framer(FramingConfig(terminator="none", idle_gap_s=0.05))
    assert framer.feed(b"0109501", 10.0) == []
    assert framer.feed(b"101020917", 10.03) == []
    assert framer.deadline() == pytest.approx(10.08)
    assert framer.expire(10.07) == []
    assert framer.expire(10.08) == [Frame(b"0109501101020917", FrameEnd.IDLE_GAP)]
    assert framer.expire(11.0) == [] and framer.deadline() == math.inf


def test_a_read_without_its_terminator_is_given_up_as_partial_not_kept_forever():
    framer = Framer(FramingConfig(terminator="cr", partial_timeout_s=2.0))
    framer.feed(b"half a co", 5.0)
    assert framer.expire(6.9) == []
    (frame,) = framer.expire(7.0)
    assert frame == Frame(b"half a co", FrameEnd.TIMEOUT) and not frame.complete


def test_close_returns_what_was_pending_as_a_disconnect():
    framer = Framer(FramingConfig())
    framer.feed(b"ok\rcut sh", 0.0)
    assert framer.close() == [Frame(b"cut sh", FrameEnd.DISCONNECT)]
    assert framer.close() == []


def test_overlong_runs_are_cut_into_overflow_frames_without_losing_bytes():
    framer = Framer(FramingConfig(max_frame_bytes=4))
    frames = framer.feed(b"0123456789", 0.0)
    assert frames == [Frame(b"0123", FrameEnd.OVERFLOW), Frame(b"4567", FrameEnd.OVERFLOW)]
    assert framer.pending == b"89"
    assert framer.feed(b"\rabcdefghi\r", 0.0) == [
        Frame(b"89"), Frame(b"abcd", FrameEnd.OVERFLOW), Frame(b"efgh", FrameEnd.OVERFLOW),
        Frame(b"i", FrameEnd.OVERFLOW)]


@pytest.mark.parametrize("bad", [
    {"terminator": "crcr"}, {"idle_gap_s": 0}, {"max_frame_bytes": 0}, {"fnc1_substitute": ""},
])
def test_config_refuses_nonsense(bad):
    with pytest.raises(ValueError):
        FramingConfig(**bad)
    with pytest.raises(LookupError):
        FramingConfig(encoding="no-such-codec")


@settings(max_examples=300)
@given(
    terminator=st.sampled_from(["cr", "lf", "crlf", "tab"]),
    data=st.binary(max_size=300),
    cuts=st.lists(st.integers(0, 300), max_size=12),
)
def test_chunking_never_changes_the_frames(terminator, data, cuts):
    config = FramingConfig(terminator=terminator)
    whole = Framer(config)
    expected = whole.feed(data, 0.0) + whole.close()
    pieces = Framer(config)
    got = [f for chunk in chunked(data, cuts) for f in pieces.feed(chunk, 0.0)] + pieces.close()
    assert got == expected


@settings(max_examples=300)
@given(
    terminator=st.sampled_from(["cr", "lf", "crlf", "tab", "none"]),
    data=st.binary(max_size=300),
    cuts=st.lists(st.integers(0, 300), max_size=12),
    max_bytes=st.integers(1, 64),
)
def test_no_byte_is_ever_lost_and_no_frame_is_over_the_limit(terminator, data, cuts, max_bytes):
    framer = Framer(FramingConfig(terminator=terminator, max_frame_bytes=max_bytes))
    got = [f for chunk in chunked(data, cuts) for f in framer.feed(chunk, 0.0)]
    got += framer.expire(1e9) + framer.close()
    end = TERMINATOR_BYTES[terminator]
    # every byte but the terminators came out, in order
    assert b"".join(f.data for f in got) == (data.replace(end, b"") if end else data)
    assert all(len(f.data) <= max_bytes for f in got)
