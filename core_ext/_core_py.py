"""The accelerated core, in typed pure Python: this module is the SPECIFICATION.

``core_ext/_core.pyx`` mirrors it name for name and must return the same values for the
same inputs (the test suite runs every core test against both). Change the canonical
forms below only deliberately: fingerprints and buyer keys are stored, so a change
re-keys every order. The golden values in ``tests/core_ext/test_core_ext.py`` fail loudly if
anything here drifts.

Canonical forms
===============

**Text** -- ``canonical_text(value)``:

* ``str`` (a subclass is read as its plain string): Unicode NFC, then ``str.strip()``
  (Python's whitespace: ASCII space, ``\\t \\n \\v \\f \\r``, ``\\x1c``-``\\x1f`` and the
  Unicode spaces such as U+00A0 and U+3000). An empty result is ``None``. An ASCII string
  is already NFC, so it is only stripped.
* ``bool``: ``"true"`` / ``"false"`` (checked before ``int``, as bool is an int).
* ``int``: its decimal digits, ``-`` for negatives (``123`` and ``"123"`` are one value).
* ``float``: the decimal of the integer when it is integral (``3.0`` -> ``"3"``,
  ``-0.0`` -> ``"0"``), else ``repr`` (``0.5`` -> ``"0.5"``, ``1e-05``, ``inf``, ``nan``).
* anything else (``None``, dict, list, bytes, ...): ``None``.

``canonical_text`` is idempotent on its own output.

**Paths** -- a path is a dotted string into the decoded JSON: ``"data.p_id"``. Each
component is a key of a JSON object; a component of ASCII digits only also indexes a
JSON array (``"lines.0.sku"``); on an object it is still a key (``{"0": ...}``). A path
starting with ``=`` is a literal: ``"=douyin"`` always yields ``canonical_text("douyin")``.
A missing key, an index past the end, or a step into anything but a dict / list yields
"missing"; reading never raises.

A path ending in ``?`` is OPTIONAL (``"content.order_status?"``): the ``?`` is not part of
the path (only that one last character is dropped: ``"a??"`` is the optional path ``"a?"``,
so a key ending in ``?`` cannot be the last component of a plain path). Optional matters only
in a field of two or more paths (below); alone, or as a buyer path, it reads like the path
without it. A literal cannot be optional: a path starting with ``=`` and ending in ``?``
(``"=x?"``) is a ``ValueError`` wherever a path is parsed (``extract``, ``SourceSpec``).

**Fields** -- a field is a sequence of paths; ``extract`` returns the canonical texts of all
of them joined with ``"|"`` (``("platform", "order_no")`` -> ``"douyin|DY123"``), or
``None`` if ANY required (not optional) part is missing, ``None``, empty or not a scalar.
An optional part that is missing, ``None``, empty or not a scalar contributes the empty
text instead: ``("message.type", "content.order_status?")`` reads
``"pdd_refund_RefundCreated|"`` from a frame without ``order_status`` (``StatusMap.lookup``
then falls back to the ``"pdd_refund_RefundCreated|*"`` wildcard). When every part is
missing -- which with a present required part cannot happen, so only when all parts are
optional -- the field is ``None``: ``("a?", "b?")`` gives ``"A|"``, ``"|B"``, ``"A|B"`` or
``None``. A field without ``?`` reads exactly as before optional parts existed (its
fingerprints are unchanged). A field of no paths yields ``None``. A bare ``str`` is refused
(``TypeError``): it would be read as one path per character.

**Buyer identities** -- ``normalise_identity(kind, value)``: the value first goes through
``canonical_text`` (``None`` -> ``""``), then by kind:

* ``phone``: only the decimal digits are kept (any script, e.g. full-width ``１３８``,
  written as ASCII ``0-9``); then a leading ``0086`` is dropped, or else a leading ``86``
  when the digit string is exactly 13 long; fewer than 5 digits left -> ``""``.
  ``"+86 138-0013-8000"``, ``"13800138000"`` and ``"0086 13800138000"`` are one phone.
* ``phone_hash``, ``device``, ``buyer_id``: ``str.casefold()`` of the canonical text.
* ``address``: NFKC, ``casefold()``, then every character whose Unicode category starts
  with P (punctuation), Z (separators), S (symbols) or C (controls, format, ...) is
  dropped; letters, digits and marks stay. ``"北京市 朝阳区（三里屯）１号"`` and
  ``"北京市朝阳区三里屯1号"`` are one address.

An unknown kind is a ``ValueError``. Normalisation follows the Unicode database of the
running Python; only characters unassigned in an older database can change meaning.

Hash encoding
=============

A hashed tuple of fields is encoded as, for each field in order, the field's UTF-8
bytes (lone surrogates pass through as their 3-byte form) prefixed by their length as
a uint32 little-endian, or the four bytes ``ff ff ff ff`` for ``None``. The length prefix
makes the encoding injective: two different tuples never share an encoding. A field
of 4 GiB or more raises ``OverflowError``. The hash is XXH3-64 with seed 0
(``xxhash.xxh3_64_intdigest``), an unsigned 64-bit int.

* ``fingerprint(tenant, source, event_id, order_id, raw_status)`` hashes those five fields;
  ``event_id``, ``order_id`` and ``raw_status`` go through ``canonical_text`` first,
  ``tenant`` and ``source`` are used as given.
* ``buyer_key(tenant, kind, value)`` hashes ``(tenant, kind, normalise_identity(kind,
  value))``, or ``(salt, tenant, kind, identity)`` once ``set_buyer_salt(salt)`` gave a
  non-empty salt (a per-install secret: the keys of a copied store cannot be matched
  against a list of phone numbers without it); an empty identity gives ``0`` ("no buyer"),
  and a hash that happens to be 0 becomes 1.
* A **key token** ``"#bk:"`` + 16 lowercase hex digits (``key_token``), for any kind, IS the
  key it spells (0 spelled as 1): the event log stores a phone number or address as the
  token of its key instead of the text (``gateway._rules.normalize``), and reading the
  token back gives the very same key, so a recorded event replays into the same buyer.

Status lookup
=============

``StatusMap(table)`` maps raw status texts to integer codes (the special codes such as
100 / 101 pass through untouched). Keys are canonicalised with ``canonical_text`` when
the map is built; an empty key, or two keys canonicalising alike with different codes,
is a ``ValueError``. ``lookup(raw)`` expects canonical text (what ``extract`` returns):
``None`` -> ``CODE_MISSING``; an exact key -> its code; else, when ``raw`` contains ``"|"``,
the key ``"<text before the first |>|*"``; else ``CODE_UNKNOWN``.

Batches
=======

``process_batch(spec, tenant, events)`` returns one row per event, in order:
``(fingerprint, buyer_key, status_code, event_id, order_id, raw_status)`` where the three
texts are the ``extract`` results of the spec's fields, the buyer key comes from the
FIRST ``(kind, path)`` pair of ``spec.buyer`` whose value normalises to a non-empty
identity (0 when none does), and the code is ``spec.status_map.lookup(raw_status)``.
An item that is not a dict gets ``(fingerprint(tenant, source, None, None, None), 0,
CODE_MISSING, None, None, None)``. Bad event content never raises.

Dicts and lists (subclasses included) are recognised with ``isinstance``. Events are
decoded JSON: a subclass that overrides item access, or a dict key that is not a str, is
outside the contract.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import xxhash

__all__ = [
    "CODE_MISSING",
    "CODE_UNKNOWN",
    "IDENTITY_KINDS",
    "IMPLEMENTATION",
    "Row",
    "SourceSpec",
    "StatusMap",
    "buyer_key",
    "canonical_text",
    "extract",
    "fingerprint",
    "key_token",
    "normalise_identity",
    "process_batch",
    "set_buyer_salt",
]

IMPLEMENTATION: Final[str] = "python"
CODE_UNKNOWN: Final[int] = -1
CODE_MISSING: Final[int] = -2

#: One ``process_batch`` row: (fingerprint, buyer_key, status_code, event_id, order_id, raw_status).
Row = tuple[int, int, int, str | None, str | None, str | None]

_NONE_FIELD: Final = b"\xff\xff\xff\xff"
_MAX_FIELD_BYTES: Final = 0xFFFFFFFF  # exclusive: that length would read as the None marker

_hash64 = xxhash.xxh3_64_intdigest
_normalize = unicodedata.normalize


# --- canonical text -------------------------------------------------------------------


def canonical_text(value: object) -> str | None:
    """The canonical text of a scalar JSON value, or ``None`` (see the module docstring).

    Args:
        value: any decoded JSON value.

    Returns:
        NFC-normalised, stripped text for strings; ``"true"``/``"false"`` for bools;
        decimal for ints and integral floats; ``repr`` for other floats; ``None`` for
        empty strings, ``None`` and containers.
    """
    if type(value) is str:
        return (value if value.isascii() else _normalize("NFC", value)).strip() or None
    if isinstance(value, str):  # a subclass: read its plain string value
        return canonical_text(str.__str__(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        number = float.__float__(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return None


# --- buyer identities -----------------------------------------------------------------


_DROP_ASCII_NON_DIGITS: Final = {code: None for code in range(128) if not chr(code).isdigit()}


def _phone(text: str) -> str:
    if text.isascii():
        digits = text.translate(_DROP_ASCII_NON_DIGITS)
    else:
        digits = "".join(str(unicodedata.decimal(char)) for char in text if char.isdecimal())
    if digits.startswith("0086"):
        digits = digits[4:]
    elif len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits if len(digits) >= 5 else ""


def _folded(text: str) -> str:
    return text.casefold()


def _address(text: str) -> str:
    folded = _normalize("NFKC", text).casefold()
    if folded.isascii():
        # In ASCII, "not P/Z/S/C" is exactly the letters and digits.
        return "".join(filter(str.isalnum, folded))
    category = unicodedata.category
    return "".join(char for char in folded if category(char)[0] not in "PZSC")


_NORMALISERS: Final = {
    "phone": _phone,
    "phone_hash": _folded,
    "device": _folded,
    "buyer_id": _folded,
    "address": _address,
}

#: The buyer identity kinds ``normalise_identity``, ``buyer_key`` and ``SourceSpec`` accept.
IDENTITY_KINDS: Final = frozenset(_NORMALISERS)


def _normaliser(kind: str) -> Any:
    try:
        return _NORMALISERS[kind]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown buyer identity kind {kind!r}; expected one of {', '.join(sorted(IDENTITY_KINDS))}"
        ) from None


def normalise_identity(kind: str, value: object) -> str:
    """The normalised buyer identity of ``value`` for ``kind``; ``""`` when there is none.

    Args:
        kind: ``phone``, ``phone_hash``, ``device``, ``buyer_id`` or ``address``.
        value: the raw value (passed through ``canonical_text`` first).

    Raises:
        ValueError: ``kind`` is not one of the kinds.
    """
    normalise = _normaliser(kind)
    text = canonical_text(value)
    return normalise(text) if text is not None else ""


# --- hashing --------------------------------------------------------------------------


def _encode_field(text: str | None) -> bytes:
    if text is None:
        return _NONE_FIELD
    data = text.encode("utf-8", "surrogatepass")
    if len(data) >= _MAX_FIELD_BYTES:
        raise OverflowError("a hashed field must be shorter than 4 GiB")
    return len(data).to_bytes(4, "little") + data


def _encode(fields: Iterable[str | None]) -> bytes:
    """The injective length-prefixed encoding of ``fields`` (exposed for the tests)."""
    return b"".join(map(_encode_field, fields))


def fingerprint(tenant: str, source: str, event_id: object, order_id: object, raw_status: object) -> int:
    """The de-duplication key of an event: XXH3-64 of its length-prefixed fields.

    Args:
        tenant: used as given.
        source: used as given.
        event_id: canonicalised with ``canonical_text``.
        order_id: canonicalised with ``canonical_text``.
        raw_status: canonicalised with ``canonical_text``.

    Returns:
        An unsigned 64-bit int.
    """
    fields = (tenant, source, canonical_text(event_id), canonical_text(order_id), canonical_text(raw_status))
    return _hash64(_encode(fields))


_salt_field = b""  # encode_field(salt) once set_buyer_salt gave one; b"": unsalted keys


def set_buyer_salt(salt: str) -> None:
    """Salt every buyer key computed from now on in this process (``""``: no salt). The
    daemon sets it once at start, from the install's secret salt file."""
    global _salt_field
    _salt_field = _encode_field(salt) if salt else b""


def key_token(key: int) -> str:
    """The token that stands for buyer key ``key`` (``"#bk:"`` + 16 hex digits)."""
    return f"#bk:{key:016x}"


def _token_key(text: str) -> int:
    """The key a token spells, 0 when ``text`` is not a token."""
    if len(text) == 20 and text.startswith("#bk:"):
        digits = text[4:]
        if all(c in "0123456789abcdef" for c in digits):
            return int(digits, 16) or 1
    return 0


def buyer_key(tenant: str, kind: str, value: object) -> int:
    """The buyer-group key of a buyer identity; 0 when ``value`` names no buyer.

    Raises:
        ValueError: ``kind`` is not one of the identity kinds.
    """
    normalise = _normaliser(kind)
    text = canonical_text(value)
    if text is None:
        return 0
    if text.startswith("#"):
        token = _token_key(text)
        if token:
            return token
    identity = normalise(text)
    if not identity:
        return 0
    return _hash64(_salt_field + _encode((tenant, kind, identity))) or 1


# --- paths ----------------------------------------------------------------------------


class _Path:
    """A parsed path: a literal, or steps of (key, list index or None), maybe optional.

    ``key`` is the key of a one-component path (the common case, read without a loop).
    ``optional``: the path ended in ``?`` (dropped from the steps; ``text`` keeps it).
    """

    __slots__ = ("is_literal", "key", "literal", "optional", "steps", "text")

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"a path must be a str, not {type(text).__name__}")
        self.text = text
        self.is_literal = text.startswith("=")
        if self.is_literal and text.endswith("?"):
            raise ValueError(f"a literal cannot be optional: {text!r} ends in '?'")
        self.optional = not self.is_literal and text.endswith("?")
        self.literal = canonical_text(text[1:]) if self.is_literal else None
        self.steps: tuple[tuple[str, int | None], ...] = ()
        if not self.is_literal:
            body = text[:-1] if self.optional else text
            self.steps = tuple(
                (part, int(part) if part.isascii() and part.isdigit() else None) for part in body.split(".")
            )
        self.key = self.steps[0][0] if len(self.steps) == 1 else None

    def __repr__(self) -> str:
        return f"_Path({self.text!r})"


_parse_path = functools.lru_cache(maxsize=4096)(_Path)


def _parse_paths(paths: Sequence[str]) -> tuple[_Path, ...]:
    if isinstance(paths, str):
        raise TypeError(f"a field is a sequence of paths, not the str {paths!r}")
    return tuple(_parse_path(path) for path in paths)


def _read(node: object, path: _Path) -> object:
    if path.key is not None and isinstance(node, dict):
        return node.get(path.key)
    if path.is_literal:
        return path.literal
    for key, index in path.steps:
        if isinstance(node, dict):
            node = node.get(key)
        elif isinstance(node, list) and index is not None and index < len(node):
            node = node[index]
        else:
            return None
    return node


def _extract(event: object, paths: tuple[_Path, ...]) -> str | None:
    if len(paths) == 1:
        return canonical_text(_read(event, paths[0]))
    parts = []
    missing = 0
    for path in paths:
        text = canonical_text(_read(event, path))
        if text is None:
            if not path.optional:
                return None
            text = ""
            missing += 1
        parts.append(text)
    return "|".join(parts) if missing < len(parts) else None


def extract(event: object, paths: Sequence[str]) -> str | None:
    """The canonical text of a field: its paths' texts joined with ``"|"``, or ``None``.

    Args:
        event: a decoded JSON value (normally a dict).
        paths: the field's paths (see the module docstring).

    Returns:
        ``None`` when any required part is missing, ``None``, empty or not a scalar, or
        when every part is (an optional part, ending in ``?``, reads as ``""`` otherwise).

    Raises:
        TypeError: ``paths`` is a bare str, or holds something that is not a str.
        ValueError: a literal path ends in ``?`` (a literal cannot be optional).
    """
    return _extract(event, _parse_paths(paths))


# --- status map -----------------------------------------------------------------------


class StatusMap:
    """Raw status text -> integer status code, with ``"<first part>|*"`` wildcards.

    Args:
        table: raw status -> code. Keys are canonicalised; codes are ints, passed through.

    Raises:
        TypeError: a key is not a str or a code not an int.
        ValueError: a key is empty, or two keys canonicalise alike with different codes.
    """

    __slots__ = ("_table",)

    def __init__(self, table: Mapping[str, int]) -> None:
        self._table: dict[str, int] = _canonical_table(table)

    def lookup(self, raw_status: str | None) -> int:
        """The code of ``raw_status`` (canonical text), ``CODE_MISSING`` or ``CODE_UNKNOWN``."""
        if raw_status is None:
            return CODE_MISSING
        code = self._table.get(raw_status)
        if code is not None:
            return code
        head, bar, _ = raw_status.partition("|")
        if bar:
            return self._table.get(head + "|*", CODE_UNKNOWN)
        return CODE_UNKNOWN

    def __len__(self) -> int:
        return len(self._table)

    def __repr__(self) -> str:
        return f"StatusMap({len(self._table)} statuses)"


def _canonical_table(table: Mapping[str, int]) -> dict[str, int]:
    """The canonical-keyed table of ``StatusMap`` (shared by both implementations)."""
    result: dict[str, int] = {}
    for key, code in table.items():
        if not isinstance(key, str):
            raise TypeError(f"status map key {key!r} is not a str")
        if not isinstance(code, int) or isinstance(code, bool):
            raise TypeError(f"status map code {code!r} for {key!r} is not an int")
        text = canonical_text(key)
        if text is None:
            raise ValueError(f"status map key {key!r} is empty")
        if result.get(text, code) != code:
            raise ValueError(f"status map keys canonicalise to {text!r} with codes {result[text]} and {code}")
        result[text] = int(code)
    return result


# --- source spec and batches ----------------------------------------------------------


class SourceSpec:
    """Where one source's events keep the fields the core reads, plus its status map.

    Args:
        source: the source name (hashed into every fingerprint as given).
        event_id: the paths of the source event id.
        order_id: the paths of the order id (e.g. ``("platform", "order_no")``).
        status: the paths of the raw status (e.g. ``("message.type", "content.order_status?")``).
        buyer: ``(kind, path)`` pairs tried in order; the first non-empty identity wins.
        status_map: the source's status map.

    Raises:
        TypeError: a field is a bare str, a path not a str, a buyer item not a pair, or
            ``status_map`` not a ``StatusMap``.
        ValueError: a buyer kind is unknown, or a literal path ends in ``?`` (a literal
            cannot be optional).
    """

    __slots__ = (
        "_buyer",
        "_buyer_rules",
        "_event_id",
        "_event_id_paths",
        "_order_id",
        "_order_id_paths",
        "_source",
        "_status",
        "_status_map",
        "_status_paths",
    )

    def __init__(
        self,
        source: str,
        event_id: Sequence[str],
        order_id: Sequence[str],
        status: Sequence[str],
        buyer: Sequence[tuple[str, str]],
        status_map: StatusMap,
    ) -> None:
        if not isinstance(source, str):
            raise TypeError(f"source must be a str, not {type(source).__name__}")
        if not isinstance(status_map, StatusMap):
            raise TypeError(f"status_map must be a StatusMap, not {type(status_map).__name__}")
        self._source = source
        self._event_id_paths = _parse_paths(event_id)
        self._order_id_paths = _parse_paths(order_id)
        self._status_paths = _parse_paths(status)
        self._event_id = tuple(path.text for path in self._event_id_paths)
        self._order_id = tuple(path.text for path in self._order_id_paths)
        self._status = tuple(path.text for path in self._status_paths)
        self._buyer = _buyer_pairs(buyer)
        self._buyer_rules = tuple((kind, _NORMALISERS[kind], _parse_path(path)) for kind, path in self._buyer)
        self._status_map = status_map

    @property
    def source(self) -> str:
        return self._source

    @property
    def event_id(self) -> tuple[str, ...]:
        return self._event_id

    @property
    def order_id(self) -> tuple[str, ...]:
        return self._order_id

    @property
    def status(self) -> tuple[str, ...]:
        return self._status

    @property
    def buyer(self) -> tuple[tuple[str, str], ...]:
        return self._buyer

    @property
    def status_map(self) -> StatusMap:
        return self._status_map

    def __repr__(self) -> str:
        return (
            f"SourceSpec(source={self._source!r}, event_id={self._event_id!r}, order_id={self._order_id!r}, "
            f"status={self._status!r}, buyer={self._buyer!r}, status_map={self._status_map!r})"
        )


def _buyer_pairs(buyer: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Validated ``(kind, path)`` pairs (shared by both implementations)."""
    candidate: object = buyer  # a bare str type-checks as a sequence, but would be read per character
    if isinstance(candidate, str):
        raise TypeError(f"buyer is a sequence of (kind, path) pairs, not the str {candidate!r}")
    pairs = []
    for item in buyer:
        if isinstance(item, str) or len(item) != 2:
            raise TypeError(f"buyer item {item!r} is not a (kind, path) pair")
        kind, path = item
        _normaliser(kind)
        if not isinstance(path, str):
            raise TypeError(f"buyer path {path!r} is not a str")
        pairs.append((kind, path))
    return tuple(pairs)


def process_batch(spec: SourceSpec, tenant: str, events: list[Any]) -> list[Row]:
    """Fingerprint, buyer key, status code and the three texts of each event, in order.

    Args:
        spec: the source's spec.
        tenant: the tenant the events belong to (hashed as given).
        events: decoded JSON objects; anything that is not a dict gets a fixed row.

    Returns:
        One ``(fingerprint, buyer_key, status_code, event_id, order_id, raw_status)`` per event.
    """
    hash64 = _hash64
    encode_field = _encode_field
    lookup = spec.status_map.lookup
    event_id_paths = spec._event_id_paths
    order_id_paths = spec._order_id_paths
    status_paths = spec._status_paths
    prefix = encode_field(tenant) + encode_field(spec.source)
    buyer_rules = [(_salt_field + encode_field(tenant) + encode_field(kind), normalise, path)
                   for kind, normalise, path in spec._buyer_rules]
    not_an_object: Row | None = None
    rows: list[Row] = []
    append = rows.append
    for event in events:
        if not isinstance(event, dict):
            if not_an_object is None:
                not_an_object = (hash64(prefix + _NONE_FIELD * 3), 0, CODE_MISSING, None, None, None)
            append(not_an_object)
            continue
        event_id = _extract(event, event_id_paths)
        order_id = _extract(event, order_id_paths)
        raw_status = _extract(event, status_paths)
        buyer = 0
        for key_prefix, normalise, path in buyer_rules:
            text = canonical_text(_read(event, path))
            if text is not None:
                if text.startswith("#"):
                    token = _token_key(text)
                    if token:
                        buyer = token
                        break
                identity = normalise(text)
                if identity:
                    buyer = hash64(key_prefix + encode_field(identity)) or 1
                    break
        fingerprint = hash64(prefix + encode_field(event_id) + encode_field(order_id) + encode_field(raw_status))
        append((fingerprint, buyer, lookup(raw_status), event_id, order_id, raw_status))
    return rows


def _floor_batch(events: list[Any], keys: tuple[str, ...]) -> int:
    """Benchmark floor: read ``keys`` of each dict, hash the first key's value once.

    Returns a checksum so the work cannot be skipped.
    """
    hash64 = _hash64
    first, *rest = keys
    checksum = 0
    for event in events:
        if isinstance(event, dict):
            present = sum(event.get(key) is not None for key in rest)
            event_id = event.get(first)
            if isinstance(event_id, str):
                checksum ^= hash64(event_id.encode("utf-8", "surrogatepass"))
            checksum += present
    return checksum & 0xFFFFFFFFFFFFFFFF
