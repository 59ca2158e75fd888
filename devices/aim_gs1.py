"""One frame -> one ``Scan``: prefix/suffix, AIM symbology identifier, GS1 via biip (pure).

``decode_scan`` never raises on device input: every problem becomes the ``Scan``'s
``error`` and the rest is decoded as far as it goes. The steps, in order:

1. a frame that did not end the scanner's way (cut by overflow, timeout, disconnect) is
   marked partial;
2. the configured prefix and suffix are removed (a missing one is an error);
3. the bytes are decoded in the scanner's encoding (bad bytes are replaced, and flagged);
4. an FNC1 substitute (``"|"``, ``"<GS>"``...) becomes GS (``"\\x1d"``);
5. an AIM symbology identifier (``]`` + symbology letter + modifier, ISO/IEC 15424) is
   split off; a malformed one is an error and the text is kept whole;
6. GS1 data (``]C1``, ``]e0``, ``]d2``, ``]Q3``, ``]J1``; or a leading GS; or every code
   when ``gs1_without_aim``; or a GS1 Digital Link URL, ``interpret_link``) is read into
   element strings by biip, which checks
   check digits, fixed and variable lengths and dates; EAN/UPC/ITF-14 data is checked
   as a GTIN. biip's verdicts are cached per distinct code (a pack line scans the same
   GTINs all day; biip costs ~30 us per GTIN and ~150 us per GS1 message) and, for GS1
   messages, per GS-separated segment (the serial changes, the GTIN and lot do not).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import time
from typing import NamedTuple

from biip import ParseConfig, ParseError
from biip.gs1_application_identifiers import GS1ApplicationIdentifier
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
from biip.gs1_element_strings import GS1ElementString, GS1ElementStrings
from biip.gs1_messages import GS1Message
from biip.gtin import Gtin

from devices.framing import Frame, FramingConfig
from devices.scan import GS1_MESSAGE_SYMBOLOGIES, GTIN_SYMBOLOGIES, Scan

GS = "\x1d"
#: ``]`` + an ISO/IEC 15424 symbology code character + one modifier character.
AIM_IDENTIFIER = re.compile(r"\][A-Za-z][0-9A-Za-z]")
_BIIP_CONFIG = ParseConfig(separator_chars=(GS,))
# What biip raises on input it cannot read: ParseError as documented; ValueError is its
# documented answer to a bad separator setting, and biip.parse("]") raises IndexError, so
# both are caught too (100k fuzzed GS1 fragments raised nothing else).
_BIIP_FAILURES = (ParseError, ValueError, IndexError)

_PARTIAL = {
    "overflow": "partial read: longer than max_frame_bytes, cut",
    "timeout": "partial read: no terminator within partial_timeout_s",
    "disconnect": "partial read: the device went away before the terminator",
}


class _Meaning(NamedTuple):
    """What biip made of one code's data (cached, so immutable)."""

    gs1: tuple[tuple[str, str], ...] = ()
    gtin: str | None = None
    sscc: str | None = None
    expiry: dt.date | None = None
    message: GS1Message | None = None
    error: str | None = None


_NOTHING = _Meaning()


def decode_scan(frame: Frame | bytes, config: FramingConfig, *, station: str, device_id: str,
                received_at_ms: int | None = None) -> Scan:
    """Decode one frame into a ``Scan``; never raises on anything the device sent.

    Args:
        frame: a ``Frame`` from the ``Framer`` (or bare bytes: a complete read).
        config: the scanner's ``FramingConfig`` (prefix, suffix, AIM, FNC1, encoding).
        station: the pack station, copied into the ``Scan``.
        device_id: the scanner's stable identity, copied into the ``Scan``.
        received_at_ms: when the read completed, epoch ms; now if ``None``.

    Returns:
        The ``Scan``, with ``error`` saying what is wrong when something is (several
        problems are joined with ``"; "``).
    """
    if isinstance(frame, bytes):
        frame = Frame(frame)
    errors: list[str] = []
    if not frame.complete:
        errors.append(_PARTIAL[frame.end.value])
    body = _strip_affixes(frame, config, errors)
    text = _to_text(body, config.encoding, errors)
    if config.fnc1_substitute is not None:
        text = text.replace(config.fnc1_substitute, GS)
    symbology: str | None = None
    if config.aim_identifiers and text.startswith("]"):
        if AIM_IDENTIFIER.match(text):
            symbology, text = text[:3], text[3:]
        else:
            errors.append(f"malformed AIM symbology identifier {text[:3]!r}")
    if not text and frame.complete:
        errors.append("empty read")

    meaning = _NOTHING
    if text:
        as_gs1 = symbology in GS1_MESSAGE_SYMBOLOGIES or (
            symbology is None and (config.gs1_without_aim or text.startswith(GS)))
        if as_gs1 or symbology in GTIN_SYMBOLOGIES:
            meaning = interpret(symbology, text, as_gs1)
        elif text[:8].lower().startswith(("https://", "http://")):
            meaning = interpret_link(text)
        if meaning.error is not None:
            errors.append(meaning.error)
    return Scan(
        station=station, device_id=device_id, raw=frame.data, text=text, symbology=symbology,
        gs1=meaning.gs1, gtin=meaning.gtin, sscc=meaning.sscc, expiry=meaning.expiry,
        error="; ".join(errors) if errors else None,
        received_at_ms=time.time_ns() // 1_000_000 if received_at_ms is None else received_at_ms,
        gs1_message=meaning.message,
    )


@functools.lru_cache(maxsize=4096)
def interpret(symbology: str | None, text: str, as_gs1: bool) -> _Meaning:
    """biip's reading of one code's data: GS1 element strings, or a checked GTIN.

    Cached per distinct ``(symbology, text, as_gs1)``: the result is immutable.

    Args:
        symbology: the AIM identifier, or ``None``.
        text: the data after the AIM identifier, GS as the separator.
        as_gs1: read as GS1 element strings; otherwise as a GTIN (EAN/UPC/ITF-14).
    """
    if not as_gs1:
        # "]E3" is EAN-13/UPC with an add-on: the GTIN is the first 13 digits.
        data = text[:13] if symbology == "]E3" else text
        try:
            parsed = Gtin.parse(data, config=_BIIP_CONFIG)
        except _BIIP_FAILURES as exc:
            return _Meaning(error=f"not a valid GTIN: {exc}")
        return _Meaning(gtin=parsed.as_gtin_14())
    try:
        message = parse_gs1_message(text)
    except _BIIP_FAILURES as exc:
        return _Meaning(error=f"not valid GS1 element strings: {exc}")
    if not message.element_strings:
        return _Meaning(error="GS1 code without element strings")
    return _meaning_of(message)


#: A GS1 Digital Link path names a product (01, GTIN), a unit (00, SSCC) or another primary key.
_DIGITAL_LINK_KEY = re.compile(r"/(?:01|00|253|255|401|402|414|417|8003|8004|8006|8010|8013|8017|8018)/")


@functools.lru_cache(maxsize=1024)
def interpret_link(text: str) -> _Meaning:
    """A URL read from a code (a QR Code, usually ``]Q1`` or no AIM identifier): a GS1 Digital
    Link URI (``https://id.gs1.org/01/09506000134352/10/LOT42?17=261231``, the form GS1 moves
    product QR codes to) is read by biip into the same element strings as a GS1 message; any
    other URL is just text (no error: a shop or a tracking page link is a code too). A URL
    whose path names a GS1 primary key (``/01/``...) but that biip cannot read is an error.
    """
    try:
        link = GS1DigitalLinkURI.parse(text, config=_BIIP_CONFIG)
    except _BIIP_FAILURES as exc:
        if _DIGITAL_LINK_KEY.search(text):
            return _Meaning(error=f"not a valid GS1 Digital Link: {exc}")
        return _NOTHING
    if not link.element_strings:
        return _NOTHING
    return _meaning_of(link.as_gs1_message())


def _meaning_of(message: GS1Message) -> _Meaning:
    """What the pack line reads from a GS1 message: its element strings, GTIN, SSCC, expiry
    and the check-digit problems biip found."""
    problems: list[str] = []
    gtin: str | None = None
    sscc: str | None = None
    expiry: dt.date | None = None
    for element in message.element_strings:
        ai = element.ai.ai
        problems.extend(p for p in (element.gtin_error, element.sscc_error, element.gln_error) if p)
        if ai == "01" and element.gtin is not None and gtin is None:
            gtin = element.gtin.as_gtin_14()
        elif ai == "00" and element.sscc is not None and sscc is None:
            sscc = element.sscc.value
        elif ai == "17" and expiry is None:
            expiry = element.date
    return _Meaning(
        gs1=tuple((element.ai.ai, element.value) for element in message.element_strings),
        gtin=gtin, sscc=sscc, expiry=expiry, message=message,
        error="; ".join(problems) if problems else None,
    )


def parse_gs1_message(text: str) -> GS1Message:
    """``biip.GS1Message.parse(text)``, with the work cached per GS-separated segment.

    Element strings never span a GS (fixed-length data is digits; variable-length data
    ends at GS), so parsing the segments one by one gives exactly biip's result. A
    batch's GTIN, expiry and lot repeat from read to read while only the serial changes:
    the cached segments make a unique-serial GS1 DataMatrix cost ~30 us instead of ~160.

    Raises:
        biip.ParseError (and ValueError, IndexError: see ``_BIIP_FAILURES``).
    """
    value = text.strip()  # as biip does: whitespace and GS (str.isspace) at either end
    elements = GS1ElementStrings()
    for segment in value.split(GS):
        elements.extend(_segment_elements(segment))
    return GS1Message(value=value, element_strings=elements)


@functools.lru_cache(maxsize=4096)
def _segment_elements(segment: str) -> tuple[GS1ElementString, ...]:
    """The element strings of one GS-free segment: biip's own parse loop, cached."""
    found = []
    rest = segment
    while rest:
        element = _extract(rest)
        found.append(element)
        rest = rest[len(element):]
    return tuple(found)


@functools.lru_cache(maxsize=4096)
def _ai_of(prefix: str) -> GS1ApplicationIdentifier:
    """biip's ``GS1ApplicationIdentifier.extract`` of a code's first four characters.

    An AI is two to four digits and no AI is the prefix of another, so the first four
    characters decide it; biip finds it by trying ``startswith`` over its whole AI table
    (~500 entries, up to ~20 us for an AI late in the table), so it is cached per prefix.
    """
    return GS1ApplicationIdentifier.extract(prefix)


#: AI code -> its data pattern, for the AIs whose element string biip builds from the
#: pattern alone: no GTIN, SSCC, GLN, date or decimal is read from the value (serials,
#: lots, most text AIs). Learnt from biip's own result the first time an AI is seen (which
#: of those it reads depends on the AI only); an AI that reads one is never added.
_PLAIN_AIS: dict[str, re.Pattern[str]] = {}


def _extract(rest: str) -> GS1ElementString:
    """``GS1ElementString.extract(rest)`` for a GS-free ``rest``, the same result, cheaper.

    For a plain AI (``_PLAIN_AIS``) the element string is built from biip's AI and its own
    pattern, as biip builds it, without biip's AI table scan and five no-op copies: a
    pack line's unique serial (AI 21) then costs ~3 us instead of ~15. A value that does
    not match the pattern goes to biip, which raises its own ``ParseError``.
    """
    try:
        ai = _ai_of(rest[:4])
    except ParseError:  # no AI: biip says so, naming the whole value
        return GS1ElementString.extract(rest, config=_BIIP_CONFIG)
    pattern = _PLAIN_AIS.get(ai.ai)
    if pattern is not None:
        matches = pattern.match(rest)
        if matches is not None:
            groups = [group for group in matches.groups() if group is not None]
            return GS1ElementString(ai=ai, value="".join(groups), pattern_groups=groups)
    element = GS1ElementString.extract(rest, config=_BIIP_CONFIG)
    if pattern is None and element == GS1ElementString(ai=element.ai, value=element.value,
                                                       pattern_groups=element.pattern_groups):
        _PLAIN_AIS[ai.ai] = re.compile(ai.pattern.removesuffix("$"))
    return element


def _strip_affixes(frame: Frame, config: FramingConfig, errors: list[str]) -> bytes:
    """The frame without the configured prefix and suffix; a missing one is noted."""
    body = frame.data
    if config.prefix:
        if body.startswith(config.prefix):
            body = body[len(config.prefix):]
        elif frame.complete:
            errors.append(f"configured prefix {config.prefix!r} missing")
    if config.suffix:
        if body.endswith(config.suffix):
            body = body[:-len(config.suffix)]
        elif frame.complete:
            errors.append(f"configured suffix {config.suffix!r} missing")
    return body


def _to_text(body: bytes, encoding: str, errors: list[str]) -> str:
    """The bytes as text; undecodable bytes (and unknown keys, U+FFFD) are flagged."""
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError:
        errors.append(f"bytes that are not valid {encoding} (replaced by U+FFFD)")
        return body.decode(encoding, errors="replace")
    if "\ufffd" in text:
        errors.append("characters the scanner could not send (U+FFFD)")
    return text


__all__ = ["AIM_IDENTIFIER", "GS", "decode_scan", "interpret", "interpret_link", "parse_gs1_message"]
