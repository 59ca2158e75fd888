"""decode_scan: AIM identifiers, GS1 through biip, errors as values -- never an exception."""

from __future__ import annotations

import datetime as dt

import pytest
from biip import ParseConfig, ParseError
from biip.gs1_element_strings import GS1ElementString
from biip.gs1_messages import GS1Message
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.aim_gs1 import _PLAIN_AIS, _extract, decode_scan, interpret, parse_gs1_message
from devices.framing import Frame, FrameEnd, FramingConfig

CONFIG = FramingConfig()
GTIN = "09501101020917"  # GS1's example GTIN, check digit 7


def decode(raw: bytes, config: FramingConfig = CONFIG, end: FrameEnd = FrameEnd.TERMINATOR):
    return decode_scan(Frame(raw, end), config, station="A1", device_id="dev", received_at_ms=42)


def test_gs1_128_with_fixed_and_variable_ais_and_a_date():
    scan = decode(f"]C101{GTIN}17261231\x1d10LOT-7\x1d21SER42".encode())
    assert scan.ok and scan.symbology == "]C1" and scan.symbology_name == "GS1-128"
    assert scan.gs1 == (("01", GTIN), ("17", "261231"), ("10", "LOT-7"), ("21", "SER42"))
    assert scan.gtin == GTIN and scan.expiry == dt.date(2026, 12, 31)
    assert scan.element("10") == "LOT-7" and scan.element("21") == "SER42" and scan.element("11") is None
    assert scan.text == f"01{GTIN}17261231\x1d10LOT-7\x1d21SER42"
    assert scan.station == "A1" and scan.device_id == "dev" and scan.received_at_ms == 42
    assert scan.gs1_message is not None and scan.gs1_message.element_strings[1].date == scan.expiry


@pytest.mark.parametrize("aim", ["]C1", "]e0", "]d2", "]Q3", "]J1"])
def test_every_gs1_symbology_is_read_as_element_strings(aim):
    scan = decode(f"{aim}00340123450000000000\x1d10B1".encode())
    assert scan.ok and scan.sscc == "340123450000000000" and scan.element("10") == "B1"


def test_expiry_day_00_means_the_last_day_of_the_month():
    assert decode(f"]d201{GTIN}17250200".encode()).expiry == dt.date(2025, 2, 28)


@pytest.mark.parametrize(("raw", "symbology", "gtin"), [
    (b"]E09501101020917", "]E0", GTIN), (b"]E496385074", "]E4", "00000096385074"),
    (b"]I115400141288763", "]I1", "15400141288763"), (b"]E3950110102091712", "]E3", GTIN),
])
def test_ean_upc_itf_are_checked_as_gtins(raw, symbology, gtin):
    scan = decode(raw)
    assert scan.ok and scan.symbology == symbology and scan.gtin == gtin and scan.gs1 == ()


def test_non_gs1_codes_keep_their_text_and_symbology():
    scan = decode(b"]C0SF1234567890")
    assert scan.ok and scan.text == "SF1234567890" and scan.symbology_name == "Code 128" and scan.gtin is None
    qr = decode("]Q1订单 A-1".encode())
    assert qr.ok and qr.text == "订单 A-1" and qr.symbology_name == "QR Code"


@pytest.mark.parametrize("raw", [
    b"]E09501101020918",                       # EAN-13, check digit 8 instead of 7
    b"]C10109501101020918",                    # GS1-128 AI 01 with a bad check digit
    b"]C100340123450000000001",                # SSCC with a bad check digit
    b"]C10109501101020917171399",              # month 13
    b"]C1011234",                              # AI 01 too short
    b"]d2hello",                               # no AI at all
])
def test_bad_check_digits_and_bad_gs1_are_errors_not_exceptions(raw):
    scan = decode(raw)
    assert not scan.ok and scan.error
    assert scan.raw == raw and scan.symbology == raw[:3].decode()


def test_the_fnc1_substitute_becomes_gs():
    config = FramingConfig(fnc1_substitute="<GS>")
    scan = decode(f"]C101{GTIN}10LOT<GS>21S1".encode(), config)
    assert scan.ok and scan.gs1 == (("01", GTIN), ("10", "LOT"), ("21", "S1")) and "\x1d" in scan.text


def test_gs1_without_aim_by_setting_or_by_a_leading_gs():
    assert decode(f"01{GTIN}".encode()).gs1 == ()  # plain data by default
    assert decode(f"01{GTIN}".encode(), FramingConfig(gs1_without_aim=True)).gtin == GTIN
    assert decode(f"\x1d01{GTIN}".encode()).gtin == GTIN  # a transmitted leading FNC1


def test_prefix_and_suffix_are_stripped_and_their_absence_is_reported():
    config = FramingConfig(prefix=b"\x02", suffix=b"#A1")
    scan = decode(b"\x02]E09501101020917#A1", config)
    assert scan.ok and scan.gtin == GTIN and scan.raw == b"\x02]E09501101020917#A1"
    assert "prefix" in (decode(b"]E09501101020917#A1", config).error or "")
    assert "suffix" in (decode(b"\x02]E09501101020917", config).error or "")


@pytest.mark.parametrize("raw", [b"]", b"]C", b"]!1ABC", b"]1A", b"] C1"])
def test_a_malformed_aim_identifier_is_an_error_and_the_text_is_kept_whole(raw):
    scan = decode(raw)
    assert "malformed AIM" in (scan.error or "") and scan.symbology is None and scan.text == raw.decode()


def test_aim_off_reads_a_leading_bracket_as_data():
    scan = decode(b"]C0X", FramingConfig(aim_identifiers=False))
    assert scan.ok and scan.symbology is None and scan.text == "]C0X"


@pytest.mark.parametrize(("end", "word"), [
    (FrameEnd.OVERFLOW, "max_frame_bytes"), (FrameEnd.TIMEOUT, "no terminator"), (FrameEnd.DISCONNECT, "went away"),
])
def test_partial_frames_are_scans_with_an_error(end, word):
    scan = decode(b"]E0950110", end=end)
    assert word in (scan.error or "") and scan.text == "950110"


def test_empty_and_undecodable_reads_are_reported():
    assert decode(b"").error == "empty read"
    assert "not valid utf-8" in (decode(b"\xff\xfeAB").error or "")
    assert decode("Ä".encode("latin-1"), FramingConfig(encoding="latin-1")).ok


def test_bare_bytes_are_a_complete_frame_and_time_defaults_to_now():
    scan = decode_scan(b"]E09501101020917", CONFIG, station="s", device_id="d")
    assert scan.ok and scan.received_at_ms > 1_700_000_000_000


def test_interpretations_are_cached_per_code():
    interpret.cache_clear()
    decode(b"]E09501101020917")
    decode(b"]E09501101020917")
    assert interpret.cache_info().hits == 1


# -- fuzzing: whatever a scanner sends, decode_scan returns a Scan ------------------------

AIMS = st.sampled_from(["", "]", "]C", "]C1", "]E0", "]E4", "]I1", "]e0", "]d2", "]Q3", "]J1", "]E3",
                        "]X", "]!0", "]C0", "]\x1d1"])
GS1ISH = st.lists(st.sampled_from(["01", "00", "17", "10", "21", "11", "310", "3103", "8200", "99", "\x1d",
                                   "|", "0950110102091", "7", "8", "000000", "991399", "ABC", "é", " "]),
                  max_size=12).map("".join)


@settings(max_examples=500)
@given(raw=st.binary(max_size=120), end=st.sampled_from(list(FrameEnd)),
       config=st.sampled_from([CONFIG, FramingConfig(fnc1_substitute="|", gs1_without_aim=True),
                               FramingConfig(prefix=b"]", suffix=b"\r"), FramingConfig(encoding="latin-1")]))
def test_random_bytes_never_raise(raw, end, config):
    scan = decode(raw, config, end)
    assert scan.raw == raw and isinstance(scan.text, str)
    assert scan.ok or scan.error


@settings(max_examples=800)
@given(aim=AIMS, body=GS1ISH, gs1_without_aim=st.booleans())
def test_broken_aim_prefixes_and_gs1_fragments_never_raise(aim, body, gs1_without_aim):
    config = FramingConfig(fnc1_substitute="|", gs1_without_aim=gs1_without_aim)
    scan = decode((aim + body).encode(), config)
    assert scan.ok or scan.error
    if scan.ok and scan.gtin is not None:
        assert int(scan.gtin[-1]) == gs1_check_digit(scan.gtin[:-1])


def gs1_check_digit(digits: str) -> int:
    """PROTOCOLS.md: weights 3,1,3,... from the rightmost data digit."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return (10 - total % 10) % 10


@given(payload=st.text(alphabet="0123456789", min_size=13, max_size=13), wrong=st.integers(1, 9))
def test_gs1_with_a_wrong_check_digit_is_always_an_error(payload, wrong):
    good = payload + str(gs1_check_digit(payload))
    bad = payload + str((gs1_check_digit(payload) + wrong) % 10)
    assert decode(f"]C101{good}".encode()).gtin == good
    scan = decode(f"]C101{bad}\x1d10X".encode())
    assert not scan.ok and "check digit" in (scan.error or "") and scan.gtin is None
    assert scan.gs1[0] == ("01", bad)  # still reported, for the operator to see


@settings(max_examples=1000)
@given(body=GS1ISH, padding=st.sampled_from(["", " ", "\x1d", "\x1d\x1d"]))
def test_the_segment_cached_gs1_parse_is_exactly_biips(body, padding):
    text = padding + body.replace("|", "\x1d") + padding
    try:
        expected = GS1Message.parse(text, config=ParseConfig(separator_chars=("\x1d",)))
    except (ParseError, ValueError, IndexError) as exc:
        with pytest.raises(type(exc)):
            parse_gs1_message(text)
        return
    got = parse_gs1_message(text)
    assert got.value == expected.value
    assert list(got.element_strings) == list(expected.element_strings)


#: AIs of every kind biip reads: plain text (lot, serial, 240, 400, 7240), GTIN, SSCC, dates,
#: GLN (41x), decimals (310x, 392x), money with a currency (391x, 393x), percentage (394x).
EVERY_KIND_OF_AI = ["10", "21", "22", "240", "400", "7240", "01", "02", "00", "11", "17", "7003", "8008",
                    "410", "414", "3103", "3922", "3913", "3932", "3940", "90", "99", "8200", "235"]


@settings(max_examples=1500)
@given(ai=st.sampled_from(EVERY_KIND_OF_AI),
       value=st.text(alphabet="0123456789ABCXYZ-/.é ", max_size=32),
       repeat=st.integers(1, 3))
def test_the_plain_ai_shortcut_gives_exactly_biips_element(ai, value, repeat):
    # the first sight of an AI learns whether it is plain; later ones take the shortcut
    rest = ai + value
    for _ in range(repeat):
        try:
            expected = GS1ElementString.extract(rest, config=ParseConfig(separator_chars=("\x1d",)))
        except (ParseError, ValueError, IndexError) as exc:
            with pytest.raises(type(exc)) as raised:
                _extract(rest)
            assert str(raised.value) == str(exc)  # the Scan's error names what biip names
            continue
        assert _extract(rest) == expected


def test_only_ais_biip_reads_nothing_from_take_the_shortcut():
    for ai, value in [("21", "S123"), ("10", "LOT-1"), ("01", "09506000134352"), ("17", "261231"),
                      ("00", "106141412345678908"), ("3103", "000750"), ("414", "0614141000012")]:
        assert _extract(ai + value) == GS1ElementString.extract(ai + value, config=ParseConfig(separator_chars=("\x1d",)))
    assert {"21", "10"} <= set(_PLAIN_AIS)
    assert not {"01", "17", "00", "3103", "414"} & set(_PLAIN_AIS)


def test_a_gs1_digital_link_qr_code_reads_like_a_gs1_message():
    scan = decode(b"]Q1https://id.gs1.org/01/09506000134352/10/LOT42/21/S123?17=261231")
    assert scan.ok and scan.symbology == "]Q1"
    assert scan.gtin == "09506000134352" and scan.expiry == dt.date(2026, 12, 31)
    assert scan.element("10") == "LOT42" and scan.element("21") == "S123"
    # the same link with no AIM identifier, upper-case scheme and host (QR codes often are)
    assert decode(b"HTTPS://ID.GS1.ORG/01/09506000134352/21/S9").element("21") == "S9"


def test_a_digital_link_with_a_bad_check_digit_is_an_error_and_other_urls_are_just_text():
    bad = decode(b"]Q1https://id.gs1.org/01/09506000134353")
    assert not bad.ok and "check digit" in (bad.error or "") and bad.gtin is None
    shop = decode(b"]Q1https://shop.example.com/item?id=42")
    assert shop.ok and shop.gs1 == () and shop.gtin is None and shop.text == "https://shop.example.com/item?id=42"
    broken = decode(b"https://id.gs1.org/01/ABC")
    assert not broken.ok and "GS1 Digital Link" in (broken.error or "")


@settings(max_examples=300)
@given(path=st.lists(st.sampled_from(["01", "09506000134352", "10", "21", "17", "261231", "x", "%20", "?", "=",
                                      "&", "é", "", "00", "106141412345678908"]), max_size=8).map("/".join),
       host=st.sampled_from(["https://id.gs1.org/", "http://example.com/", "HTTPS://A.B/"]))
def test_any_url_read_from_a_code_gives_a_scan_never_an_exception(path, host):
    scan = decode((host + path).encode())
    assert scan.ok or scan.error
    if scan.gtin is not None:
        assert int(scan.gtin[-1]) == gs1_check_digit(scan.gtin[:-1])


def _reference_meaning(text):
    """What ``interpret`` must give for GS1 data, computed from biip's whole-message parse."""
    message = GS1Message.parse(text, config=ParseConfig(separator_chars=("\x1d",)))
    problems, gtin, sscc, expiry = [], None, None, None
    for element in message.element_strings:
        problems += [p for p in (element.gtin_error, element.sscc_error, element.gln_error) if p]
        if element.ai.ai == "01" and element.gtin is not None and gtin is None:
            gtin = element.gtin.as_gtin_14()
        elif element.ai.ai == "00" and element.sscc is not None and sscc is None:
            sscc = element.sscc.value
        elif element.ai.ai == "17" and expiry is None:
            expiry = element.date
    return (tuple((e.ai.ai, e.value) for e in message.element_strings), gtin, sscc, expiry,
            "; ".join(problems) or None)


@settings(max_examples=1000)
@given(body=GS1ISH)
def test_the_segment_cached_meaning_equals_biips_whole_message(body):
    text = body.replace("|", "\x1d")
    try:
        expected = _reference_meaning(text)
    except (ParseError, ValueError, IndexError):
        assert interpret.__wrapped__("]C1", text, True).error is not None
        return
    got = interpret.__wrapped__("]C1", text, True)
    if not expected[0]:
        assert got.error == "GS1 code without element strings"
        return
    assert (got.gs1, got.gtin, got.sscc, got.expiry, got.error) == expected
    assert list(got.message.element_strings) == list(
        GS1Message.parse(text, config=ParseConfig(separator_chars=("\x1d",))).element_strings)
