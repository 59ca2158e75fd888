"""ZPL rendering, checking and ``~HS`` parsing: pure functions, no sockets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.simulators.printer import format_host_status
from devices.zpl import (
    HostStatusError,
    LabelData,
    PrinterStatus,
    ZplError,
    check_zpl,
    escape_field,
    field_data,
    parse_host_status,
    render_label,
    split_host_status,
    tokenize,
    unescape_field,
)

CHINA = timezone(timedelta(hours=8))
WHEN = datetime(2026, 12, 4, 18, 30, tzinfo=CHINA)


def test_label_has_one_format_with_code128_and_qr_of_the_waybill():
    zpl = render_label(LabelData("DY-1001", "PG-7", "station-3", WHEN, waybill="SF1234567890"))
    assert check_zpl(zpl) == [zpl.strip()]
    names = [command.name for command in tokenize(zpl)]
    assert "BC" in names and "BQ" in names
    fields = field_data(zpl)
    assert "Order DY-1001" in fields
    assert "Pack group PG-7" in fields
    assert "Station station-3  2026-12-04 18:30" in fields
    assert "SF1234567890" in fields          # Code 128
    assert "QA,SF1234567890" in fields       # QR, model 2, automatic mode


def test_label_without_waybill_encodes_the_order_id():
    zpl = render_label(LabelData("DY-1001", "PG-7", "s1", WHEN))
    assert "QA,DY-1001" in field_data(zpl)
    assert not any(field.startswith("Waybill") for field in field_data(zpl))


def test_caret_and_tilde_in_data_cannot_inject_commands():
    evil = "X^XZ~JR^XA"
    zpl = render_label(LabelData("A1", evil, "s~1", WHEN))
    # Still exactly one format, no tilde command, and the data reads back unchanged.
    assert len(check_zpl(zpl)) == 1
    assert f"Pack group {evil}" in field_data(zpl)
    assert "Station s~1  2026-12-04 18:30" in field_data(zpl)


def test_greater_than_in_code128_is_a_literal():
    zpl = render_label(LabelData("A>1", "g", "s", WHEN))
    assert "A><1" in field_data(zpl)         # "><" is ^BC's literal ">"
    assert "QA,A>1" in field_data(zpl)


def test_non_ascii_text_is_hex_escaped_utf8():
    zpl = render_label(LabelData("A1", "礼盒", "上海-1", WHEN))
    assert "礼盒" not in zpl
    assert "Pack group 礼盒" in field_data(zpl)


@pytest.mark.parametrize("order_id, waybill", [("", None), ("订单1", None), ("A1", "x" * 81), ("A1", "SF\n1")])
def test_barcode_values_code128_cannot_carry_are_refused(order_id, waybill):
    with pytest.raises(ZplError):
        render_label(LabelData(order_id, "g", "s", WHEN, waybill=waybill))


@given(st.text())
def test_escape_round_trips_and_leaves_no_command_characters(text):
    escaped = escape_field(text)
    assert "^" not in escaped and "~" not in escaped
    assert unescape_field(escaped) == text


@pytest.mark.parametrize("zpl", [
    "^XA^FDone^FS^XZ",
    "^XA^FDone^FS^XZ\r\n^XA^FDtwo^FS^XZ\n",
    "  ^xa^fdlower^fs^xz  ",
])
def test_well_formed_supplied_zpl_is_accepted(zpl):
    assert check_zpl(zpl)


@pytest.mark.parametrize("zpl, words", [
    ("", "no ^XA"),
    ("hello", "outside"),
    ("^XA^FDx^FS", "without ^XZ"),
    ("^XA^FDx^XA^XZ", "inside a format"),
    ("^FDx^FS^XA^XZ", "outside"),
    ("^XA^XZ trailing", "outside"),
    ("^XA^FDx~JR^FS^XZ", "~JR"),
    ("~HS^XA^XZ", "~HS"),
    ("^XA^CC!^XZ", "prefix"),
])
def test_malformed_supplied_zpl_is_refused_with_a_reason(zpl, words):
    with pytest.raises(ZplError, match=words.replace("^", r"\^")):
        check_zpl(zpl)


def test_oversized_supplied_zpl_is_refused():
    with pytest.raises(ZplError, match="larger"):
        check_zpl("^XA" + "^FDx^FS" * 10 + "^XZ", max_bytes=20)


HS_READY = (b"\x02030,0,0,1218,000,0,0,0,000,0,0,0\x03\r\n"
            b"\x02000,0,0,0,0,2,6,0,00000000,1,000\x03\r\n"
            b"\x021234,0\x03\r\n")


def test_ready_printer():
    status = parse_host_status(HS_READY)
    assert status.ready and status.reasons == ()


@pytest.mark.parametrize("raw, reason", [
    (HS_READY.replace(b"030,0,0", b"030,1,0"), "paper out"),
    (HS_READY.replace(b"030,0,0", b"030,0,1"), "paused"),
    (HS_READY.replace(b"000,0,0,0,0", b"000,0,1,0,0"), "print head open"),
    (HS_READY.replace(b"1218,000,0", b"1218,000,1"), "buffer full"),
    (HS_READY.replace(b"000,0,0,0,0", b"000,0,0,1,1"), "ribbon out"),
])
def test_each_flag_refuses_with_its_reason(raw, reason):
    status = parse_host_status(raw)
    assert not status.ready
    assert status.reasons == (reason,)


def test_ribbon_out_does_not_matter_in_direct_thermal():
    assert parse_host_status(HS_READY.replace(b"000,0,0,0,0", b"000,0,0,1,0")).ready


def test_status_strings_arrive_in_pieces():
    strings, rest = split_host_status(HS_READY[:40])
    assert len(strings) == 1 and rest.startswith(b"\x02")
    more, rest = split_host_status(rest + HS_READY[40:])
    assert len(more) == 2 and rest == b""


@given(st.builds(PrinterStatus, paper_out=st.booleans(), paused=st.booleans(),
                 formats_in_buffer=st.integers(0, 999), buffer_full=st.booleans(),
                 head_open=st.booleans(), ribbon_out=st.booleans(), thermal_transfer=st.booleans(),
                 over_temperature=st.booleans()))
def test_simulator_answer_round_trips(status):
    assert parse_host_status(format_host_status(status)) == status


@given(st.binary(max_size=200))
def test_garbage_status_gives_a_clear_error_never_a_crash(raw):
    try:
        parse_host_status(raw)
    except HostStatusError as exc:
        assert "~HS" in str(exc)


@given(st.lists(st.text(alphabet="0123456789,x \x02\x03", max_size=30), min_size=3, max_size=3))
def test_garbled_fields_give_a_clear_error(parts):
    raw = b"".join(b"\x02" + part.encode() + b"\x03\r\n" for part in parts)
    try:
        parse_host_status(raw)
    except HostStatusError as exc:
        assert "~HS" in str(exc)


@given(st.text(alphabet="^~XAZFDSH_ 0123,", max_size=60))
def test_check_zpl_on_random_text_accepts_or_explains(text):
    try:
        formats = check_zpl(text)
    except ZplError as exc:
        assert str(exc)
    else:
        assert all(f.upper().startswith("^XA") and f.upper().endswith("^XZ") for f in formats)


def test_printed_time_shows_in_its_own_zone():
    zpl = render_label(LabelData("A1", "g", "s", datetime(2026, 12, 4, 10, 30, tzinfo=UTC)))
    assert "Station s  2026-12-04 10:30" in field_data(zpl)
