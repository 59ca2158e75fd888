"""Mapping rules: one TOML file per source maps its raw statuses and field names onto the model.

This docstring is the operators' reference for ``config/rules/*.toml``.

Where the files live and when they are read
-------------------------------------------
Every ``*.toml`` file in the rules directory (``[gateway] rules_dir``) is one source; files
whose name starts with ``.`` (editor locks and swap files) and files with other endings are
ignored. The daemon reads the whole directory at start (a broken set refuses to start) and
again whenever a file changes or on SIGHUP; a broken edit is refused as a whole, logged with
``file:line: key: what is wrong``, and the previous rules stay live. ``gateway check-config``
prints every error of a tree before you deploy it.

File layout
-----------
::

    [source]
    name = "douyin"          # REQUIRED. Equals the file name without .toml; [a-z0-9_], 1-32 chars.
    kind = "shop"            # REQUIRED. shop | logistics | erp
    version = 3              # REQUIRED. Integer >= 1. Bump it on every edit: each event's audit
                             # record names the rule that mapped it, "douyin.toml@v3:status.101".
    description = "..."      # optional free text: what the file expects, what is unconfirmed.

    [fields]                 # where the standard fields are in the decoded event
    event_id = "msg_id"                      # REQUIRED. The sender's id of this delivery.
    order_id = ["=douyin", "data.p_id"]      # the order key, always "channel|platform order id".
    status = "tag"                           # REQUIRED. The raw status (looked up in [status]).
    event_type = "tag"                       # optional; default: the source kind.
    occurred_at = "data.update_time"         # optional; when the source says it happened.
    occurred_at_format = "epoch_s"           # REQUIRED with occurred_at: epoch_s | epoch_ms |
                                             # iso8601 | gmt8
    waybill = "data.logistics_msg.logistics_code"   # optional; the carrier waybill number.
    buyer = [ { kind = "phone", path = "data.receiver_msg.tel" } ]   # optional

    [data]                   # optional: extra data fields carried onto the order, name = path
    pay_amount_fen = "data.pay_amount"

    [status]                 # REQUIRED: raw status = standard state (or a pseudo target)
    "101" = "PENDING_REVIEW"
    "207" = "@resume"

At least one of ``order_id`` and ``waybill`` is required: an event that names only a waybill
(a carrier push) is attached to the order that reported that waybill.

Paths
-----
A path is a dotted walk into the decoded event: ``data.p_id`` is ``event["data"]["p_id"]``; a
component made of digits indexes a list (``param.lastResult.data.0.ftime`` is the first
entry of the list ``data``). ``[0]``-style indexes, empty components, spaces and ``|`` are
refused. A value starting with ``=`` is a literal (``"=douyin"``). A field may be one path or
a list of them (a *composite*): the values are joined with ``|``, and the field is absent when
any required part is absent (missing, empty text, an object or a list). An event lacking a
required part of a composite ``status`` has no status and is quarantined.

A part of a composite that some events lack can be made OPTIONAL by ending its path in ``?``:
``status = ["message.type", "message.content.order_status?"]``. An absent optional part reads
as empty text, so a frame without ``order_status`` has the raw status
``"pdd_refund_RefundCreated|"`` (matched by the key ``"pdd_refund_RefundCreated|"`` or, more
usefully, the wildcard ``"pdd_refund_RefundCreated|*"``). A field whose parts are ALL absent
is still absent. ``?`` is only for a part of a composite of ``event_id``, ``order_id``,
``status``, ``waybill`` or ``event_type``; a literal cannot be optional (``"=x?"`` is
refused), nor can a single path (it is simply absent when missing), nor ``occurred_at``,
``buyer`` or ``[data]`` paths. Only the last ``?`` is the mark: ``"a.b??"`` reads the key
``"b?"`` optionally; a key ending in ``?`` cannot otherwise be the end of a path.

``event_id``, ``order_id`` and ``status`` need at least one real path; ``occurred_at``,
``buyer`` paths and ``[data]`` paths are single paths without literals (``[data]`` values are
carried as they are: numbers stay numbers, lists stay lists).

Status table
------------
Keys are raw statuses exactly as the ``status`` field reads them (quote them: ``"101"``). A
composite status gives composite keys (``"pdd_refund_RefundCreated|cancelled"``); the key
``"<first part>|*"`` matches every raw status whose first part is that, when no exact key
does. A key must have as many ``|`` parts as the status field has paths (or be such a
wildcard); a part may be empty only where its path is optional (``"<type>|"`` for the
``["type", "status?"]`` event without a status), and not every part (such an event has no
status). Values are standard states -- ``CREATED PAID PENDING_REVIEW READY_TO_PACK PACKING
PACKED SHIPPED FULFILLMENT_STARTED IN_TRANSIT DELIVERED REFUND_INITIATED REFUNDED CANCELLED
ON_HOLD`` -- or a pseudo target:

* ``"@resume"``: back to the state the order had before it was put on hold or a refund was
  opened (a refund request withdrawn, an after-sale case closed);
* ``"@none"``: record the event (data fields, waybill, audit, upstream) without changing the
  order's state (address changed, remark added, logistics changed).

A raw status not in the table is *quarantined* at run time (kept and visible, never dropped);
so is an event without a status. Add the status here and bump ``version``. Each event's
audit record names the key that mapped it: ``douyin.toml@v3:status.101`` (or the wildcard
key); a quarantined event names only ``douyin.toml@v3``.

Raw statuses are compared as the core reads them: surrounding spaces dropped, numbers as
their decimal text (``101`` and ``"101"`` are one status), ``true``/``false`` for booleans.
A key with surrounding spaces is refused rather than silently never matching.

Buyer identities
----------------
``buyer`` is a list of ``{ kind, path }``; the first identity present in the event is used
for the buyer-group key (merge-pack across channels). Kinds: ``phone`` (normalised digits),
``phone_hash`` (already hashed by the platform), ``device``, ``buyer_id``, ``address``.

Times
-----
``occurred_at`` is read into epoch milliseconds UTC by ``parse_occurred_at``:

* ``epoch_s`` / ``epoch_ms``: an integer (or decimal) number of seconds / milliseconds;
* ``iso8601``: ``2026-11-25T10:00:00+08:00`` (also ``Z``; a time without offset is read as
  China time, UTC+08:00);
* ``gmt8``: ``yyyy-MM-dd HH:mm:ss`` (optionally ``.SSS``) in China time, as TOP and Kuaidi100
  send it.

A missing or unreadable time, or one outside the years 2000-2099 (a unit mistake, seconds
read as milliseconds), gives 0, "unknown": it never refuses the event.

Errors
------
Loading is strict: an unknown (often misspelt) key anywhere, a value of the wrong type, an
unknown state name, a bad path, a ``name`` that differs from the file name, a missing
required field, an unknown time format or buyer kind -- each is reported as
``file:line: key: what is wrong``. Every file is checked and every independent problem is
reported at once (``RuleErrors``); one bad file refuses the whole set, so the daemon never
runs half the rules of an edit. An empty or missing directory is an error too.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import core_ext
from gateway._errors import ConfigError
from gateway._model import PSEUDO_TARGETS, Status, target_code
from gateway._toml import KeyPath, TomlDocument, check_keys

SOURCE_KINDS = ("shop", "logistics", "erp")
TIME_FORMATS = ("epoch_s", "epoch_ms", "iso8601", "gmt8")
BUYER_KINDS = ("phone", "phone_hash", "device", "buyer_id", "address")

_SOURCE_NAME = re.compile(r"^[a-z0-9_]{1,32}$")
_DATA_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_PATH = re.compile(r"^[^.\s|=\[\]][^.\s|\[\]]*(?:\.[^.\s|\[\]]+)*$")
_LITERAL = re.compile(r"^=[^|\n\r]+$")
_TARGETS = ", ".join([*(s.value for s in Status), *PSEUDO_TARGETS])

_SOURCE_KEYS = ("name", "kind", "version", "description")
_FIELD_KEYS = ("event_id", "order_id", "status", "event_type", "occurred_at", "occurred_at_format",
               "waybill", "buyer")
_TOP_KEYS = ("source", "fields", "data", "status")

_T = TypeVar("_T")


class RuleErrors(ConfigError):
    """Every error found in a rules directory; behaves as its first error.

    Args:
        errors: one or more ``ConfigError`` values, each naming file, line and key.

    Attributes:
        errors: all of them, in file order.
    """

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        if not errors:
            raise ValueError("RuleErrors needs at least one error")
        self.errors: tuple[ConfigError, ...] = tuple(errors)
        first = self.errors[0]
        super().__init__(first.path, first.line, first.key, first.message)

    def __str__(self) -> str:
        return "\n".join(ConfigError.__str__(error) for error in self.errors)


@dataclass(frozen=True, eq=False)
class SourceRules:
    """The validated, compiled rules of one source (one rule file).

    Path fields hold tuples of paths (a composite when longer than one; empty when the file
    does not set the field). ``status`` is the table as written (raw status -> target name);
    ``spec`` is the same compiled for ``core_ext.process_batch``.
    """

    name: str
    kind: str
    version: int
    description: str
    path: Path
    event_id: tuple[str, ...]
    order_id: tuple[str, ...]
    status_paths: tuple[str, ...]
    event_type: tuple[str, ...]
    occurred_at: tuple[str, ...]
    occurred_at_format: str
    waybill: tuple[str, ...]
    buyer: tuple[tuple[str, str], ...]
    data: Mapping[str, str]
    status: Mapping[str, str]
    spec: core_ext.SourceSpec = field(repr=False)
    _refs: Mapping[str, str] = field(init=False, repr=False)
    #: ``data`` split for reading: one-key paths ``(name, key)`` and dotted ones ``(name, parts)``.
    flat_data: tuple[tuple[str, str], ...] = field(init=False, repr=False)
    nested_data: tuple[tuple[str, tuple[str, ...]], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        prefix = f"{self.ref}:status."
        object.__setattr__(self, "_refs", {raw: prefix + raw for raw in self.status})
        object.__setattr__(self, "flat_data", tuple((n, p) for n, p in self.data.items() if "." not in p))
        object.__setattr__(self, "nested_data",
                           tuple((n, tuple(p.split("."))) for n, p in self.data.items() if "." in p))

    @property
    def ref(self) -> str:
        """``douyin.toml@v3``: the file and its version, as audit records cite it."""
        return f"{self.path.name}@v{self.version}"

    def rule_ref(self, raw_status: str | None) -> str:
        """The rule that maps ``raw_status``: ``"douyin.toml@v3:status.101"``.

        A raw status matched by a wildcard names the wildcard key
        (``...:status.pdd_refund_RefundCreated|*``); an unmapped or missing status names the
        file and version only (``"douyin.toml@v3"``): no rule produced it.
        """
        if raw_status is None:
            return self.ref
        found = self._refs.get(raw_status)
        if found is not None:
            return found
        first, bar, _ = raw_status.partition("|")
        if bar:
            return self._refs.get(first + "|*", self.ref)
        return self.ref


@dataclass(frozen=True, eq=False)
class RuleSet:
    """Every source's rules, loaded together from one directory; immutable.

    Attributes:
        directory: where the files were read.
        rules: source name -> its rules.
        digest: a short stable hash of the file names and contents (for display and metrics).
    """

    directory: Path
    rules: Mapping[str, SourceRules]
    digest: str

    def get(self, source: str) -> SourceRules | None:
        """The rules of ``source``, or ``None`` when no file names it."""
        return self.rules.get(source)

    @property
    def sources(self) -> tuple[str, ...]:
        """The source names, sorted."""
        return tuple(sorted(self.rules))

    def items(self) -> Iterator[tuple[str, SourceRules]]:
        """``(source, rules)`` pairs, sorted by source."""
        return iter(sorted(self.rules.items()))

    def __len__(self) -> int:
        return len(self.rules)

    def __contains__(self, source: object) -> bool:
        return source in self.rules

    def __repr__(self) -> str:
        return f"RuleSet({str(self.directory)!r}, sources={list(self.sources)}, digest={self.digest!r})"


def rule_files(directory: Path) -> list[Path]:
    """The rule files of ``directory``, sorted: ``*.toml`` except names starting with ``.``.

    Raises:
        OSError: the directory cannot be listed.
    """
    return sorted(p for p in directory.glob("*.toml") if not p.name.startswith(".") and p.is_file())


def load_rules(directory: str | Path) -> RuleSet:
    """Load, validate and compile every rule file in ``directory``.

    Args:
        directory: the rules directory.

    Returns:
        The rule set, one ``SourceRules`` per file.

    Raises:
        RuleErrors: (a ``ConfigError``) with every problem found, each naming file, line and
            key; nothing is returned unless every file is valid.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise RuleErrors([ConfigError(directory, None, "", "rules directory does not exist")])
    try:
        files = rule_files(directory)
    except OSError as exc:
        raise RuleErrors([ConfigError(directory, None, "", f"cannot list rules directory: {exc}")]) from exc
    if not files:
        raise RuleErrors([ConfigError(directory, None, "", "no rule files (*.toml) in the rules directory")])
    errors: list[ConfigError] = []
    rules: dict[str, SourceRules] = {}
    digest = hashlib.sha256()
    for path in files:
        try:
            content = path.read_bytes()
            text = content.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(ConfigError(path, None, "", f"cannot read: {exc}"))
            continue
        digest.update(path.name.encode() + b"\0" + content + b"\0")
        try:
            doc = TomlDocument(path, text)
        except ConfigError as exc:
            errors.append(exc)
            continue
        loaded = _FileLoader(doc).load(errors)
        if loaded is None:
            continue
        if loaded.name in rules:
            errors.append(doc.error(("source", "name"),
                                    f"source {loaded.name!r} is already defined by {rules[loaded.name].path}"))
            continue
        rules[loaded.name] = loaded
    if errors:
        raise RuleErrors(errors)
    return RuleSet(directory, MappingProxyType(rules), digest.hexdigest()[:16])


class _FileLoader:
    """Validates one parsed rule file, collecting independent errors instead of stopping."""

    def __init__(self, doc: TomlDocument) -> None:
        self.doc = doc
        self.errors: list[ConfigError] = []

    def load(self, sink: list[ConfigError]) -> SourceRules | None:
        try:
            return self._load()
        except ConfigError as exc:
            self.errors.append(exc)
            return None
        finally:
            sink.extend(self.errors)

    def _load(self) -> SourceRules | None:
        doc = self.doc
        check_keys(doc, doc.data, (), _TOP_KEYS, required=("source", "fields", "status"))
        source = self._table("source")
        fields = self._table("fields")
        data_table = self._table("data") if "data" in doc.data else {}
        status_table = self._table("status")
        check_keys(doc, source, ("source",), _SOURCE_KEYS, required=("name", "kind", "version"))
        check_keys(doc, fields, ("fields",), _FIELD_KEYS, required=("event_id", "status"))

        name = self._attempt("", self._source_name, source)
        kind = self._attempt("", self._choice, ("source", "kind"), source["kind"], SOURCE_KINDS)
        version = self._attempt(0, self._version, source["version"])
        description = self._attempt("", self._string, ("source", "description"), source.get("description", ""))

        empty: tuple[str, ...] = ()
        event_id = self._attempt(empty, self._paths, "event_id", fields["event_id"])
        status_paths = self._attempt(empty, self._paths, "status", fields["status"])
        order_id = self._attempt(empty, self._paths, "order_id", fields.get("order_id"))
        waybill = self._attempt(empty, self._paths, "waybill", fields.get("waybill"))
        event_type = self._attempt(empty, self._paths, "event_type", fields.get("event_type"), need_path=False)
        if "order_id" not in fields and "waybill" not in fields:
            self.errors.append(doc.error(("fields",), "needs order_id or waybill (or both)"))
        occurred_at, time_format = self._attempt((empty, ""), self._time, fields)
        no_buyer: tuple[tuple[str, str], ...] = ()
        buyer = self._attempt(no_buyer, self._buyer, fields.get("buyer", []))
        data = {key: path for key, value in data_table.items()
                if (path := self._attempt("", self._data_path, key, value))}
        status = self._status(status_table, status_paths)
        if self.errors:
            return None
        try:
            spec = core_ext.SourceSpec(
                name, event_id, order_id, status_paths, buyer,
                core_ext.StatusMap({raw: target_code(target) for raw, target in status.items()}),
            )
        except (TypeError, ValueError) as exc:  # our checks should have caught it; still name the file
            raise doc.error(("fields",), f"the core refuses these rules: {exc}") from exc
        return SourceRules(
            name=name, kind=kind, version=version, description=description, path=doc.path,
            event_id=event_id, order_id=order_id, status_paths=status_paths, event_type=event_type,
            occurred_at=occurred_at, occurred_at_format=time_format, waybill=waybill, buyer=buyer,
            data=MappingProxyType(data), status=MappingProxyType(status), spec=spec,
        )

    # -- helpers: each raises ConfigError; _attempt turns that into a collected error ----------

    def _attempt(self, fallback: _T, check: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        try:
            return check(*args, **kwargs)
        except ConfigError as exc:
            self.errors.append(exc)
            return fallback

    def _table(self, name: str) -> dict[str, Any]:
        value = self.doc.data[name]
        if not isinstance(value, dict):
            raise self.doc.error((name,), f"must be a table ([{name}]), not {_kind(value)}")
        return value

    def _string(self, at: KeyPath, value: Any) -> str:
        if not isinstance(value, str):
            raise self.doc.error(at, f"must be a string, not {_kind(value)}")
        return value

    def _choice(self, at: KeyPath, value: Any, choices: Sequence[str]) -> str:
        text = self._string(at, value)
        if text not in choices:
            raise self.doc.error(at, f"{text!r} is not one of: {', '.join(choices)}")
        return text

    def _source_name(self, source: Mapping[str, Any]) -> str:
        at = ("source", "name")
        name = self._string(at, source["name"])
        if not _SOURCE_NAME.match(name):
            raise self.doc.error(at, f"{name!r} is not a source name ([a-z0-9_], 1-32 characters)")
        if name != self.doc.path.stem:
            raise self.doc.error(at, f"{name!r} must equal the file name {self.doc.path.stem!r}")
        return name

    def _version(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.doc.error(("source", "version"), f"must be an integer, not {_kind(value)}")
        if value < 1:
            raise self.doc.error(("source", "version"), "must be 1 or more")
        return value

    def _one_path(self, at: KeyPath, value: Any, *, literal: bool, optional: bool = False) -> str:
        """One path; ``literal``: may be ``=text``; ``optional``: may end in ``?`` (a composite part)."""
        text = self._string(at, value)
        if literal and text.startswith("="):
            if text.endswith("?"):
                raise self.doc.error(at, f"bad literal {text!r}: a literal cannot be optional ('?'): it always has a value")
            if not _LITERAL.match(text) or core_ext.canonical_text(text[1:]) != text[1:]:
                raise self.doc.error(at, f"bad literal {text!r}: '=' then text without '|' or surrounding spaces")
            return text
        marked = text.endswith("?")
        if marked and not optional:
            raise self.doc.error(at, f"bad path {text!r}: only a part of a composite (a list of paths) of "
                                     "event_id, order_id, status, waybill or event_type can be optional ('?')")
        body = text[:-1] if marked else text
        if not _PATH.match(body):
            hint = " (index lists with a digit component: data.0.ftime)" if "[" in body else ""
            mark = " then '?'" if marked else ""
            raise self.doc.error(at, f"bad path {text!r}: dotted names without spaces or '|'{mark}{hint}")
        return text

    def _paths(self, name: str, value: Any, *, need_path: bool = True) -> tuple[str, ...]:
        at: KeyPath = ("fields", name)
        if value is None:  # an optional field the file does not set
            return ()
        if isinstance(value, list):
            if not value:
                raise self.doc.error(at, "must name at least one path")
            composite = len(value) >= 2
            paths = tuple(self._one_path((*at, i), item, literal=True, optional=composite)
                          for i, item in enumerate(value))
        elif isinstance(value, str):
            paths = (self._one_path(at, value, literal=True),)
        else:
            raise self.doc.error(at, f"must be a path or a list of paths, not {_kind(value)}")
        if need_path and all(p.startswith("=") for p in paths):
            raise self.doc.error(at, "needs at least one path that is not a literal")
        return paths

    def _time(self, fields: Mapping[str, Any]) -> tuple[tuple[str, ...], str]:
        if "occurred_at" not in fields:
            if "occurred_at_format" in fields:
                raise self.doc.error(("fields", "occurred_at_format"), "set without occurred_at")
            return (), ""
        path = self._one_path(("fields", "occurred_at"), fields["occurred_at"], literal=False)
        if "occurred_at_format" not in fields:
            raise self.doc.error(("fields", "occurred_at"),
                                 f"needs occurred_at_format ({', '.join(TIME_FORMATS)})")
        time_format = self._choice(("fields", "occurred_at_format"), fields["occurred_at_format"], TIME_FORMATS)
        return (path,), time_format

    def _buyer(self, value: Any) -> tuple[tuple[str, str], ...]:
        at: KeyPath = ("fields", "buyer")
        if not isinstance(value, list):
            raise self.doc.error(at, f"must be a list of {{ kind, path }} tables, not {_kind(value)}")
        identities = []
        for index, item in enumerate(value):
            where = (*at, index)
            if not isinstance(item, dict):
                raise self.doc.error(where, f"must be a {{ kind = ..., path = ... }} table, not {_kind(item)}")
            check_keys(self.doc, item, where, ("kind", "path"), required=("kind", "path"))
            kind = self._choice((*where, "kind"), item["kind"], BUYER_KINDS)
            identities.append((kind, self._one_path((*where, "path"), item["path"], literal=False)))
        return tuple(identities)

    def _data_path(self, name: str, value: Any) -> str:
        at = ("data", name)
        if not _DATA_NAME.match(name):
            raise self.doc.error(at, "data field names are lower_snake_case (a-z, 0-9, _), at most 64 chars")
        return self._one_path(at, value, literal=False)

    def _status(self, table: Mapping[str, Any], status_paths: tuple[str, ...]) -> dict[str, str]:
        parts = len(status_paths)
        optional = [_is_optional(path) for path in status_paths]
        status: dict[str, str] = {}
        if not table:
            self.errors.append(self.doc.error(("status",), "the status table is empty"))
        for raw, target in table.items():
            at = ("status", raw)
            if not isinstance(target, str):
                self.errors.append(self.doc.error(at, f"must be a state name string, not {_kind(target)}"))
                continue
            if target not in PSEUDO_TARGETS and target not in Status.__members__:
                self.errors.append(self.doc.error(at, f"unknown target {target!r} (valid: {_TARGETS})"))
                continue
            if core_ext.canonical_text(raw) != raw:
                self.errors.append(self.doc.error(
                    at, "an empty raw status cannot be mapped" if not raw.strip() else
                    f"is read as {core_ext.canonical_text(raw)!r} (surrounding spaces dropped, "
                    "Unicode normalised); write it that way"))
                continue
            wildcard = parts >= 2 and raw.endswith("|*") and "|" not in raw[:-2]
            if parts and not wildcard and raw.count("|") + 1 != parts:
                self.errors.append(self.doc.error(
                    at, f"has {raw.count('|') + 1} '|' part(s) but [fields] status has {parts} path(s)"
                        + (" (a wildcard key is '<first part>|*')" if parts >= 2 else "")))
                continue
            if parts >= 2:
                pieces = raw[:-2].split("|") if wildcard else raw.split("|")
                empty = [i for i, piece in enumerate(pieces) if not piece]
                if any(not optional[i] for i in empty):
                    i = next(i for i in empty if not optional[i])
                    self.errors.append(self.doc.error(
                        at, f"part {i + 1} is empty, but the status path {status_paths[i]!r} is not optional "
                            "(end it in '?' if events may lack it)"))
                    continue
                if not wildcard and len(empty) == parts:
                    self.errors.append(self.doc.error(
                        at, "never matches: every part is empty, and an event lacking every part has no status"))
                    continue
            status[raw] = target
        return status


def _is_optional(path: str) -> bool:
    """Whether a (validated) field path is an optional composite part: ends in ``?``, not a literal."""
    return path.endswith("?") and not path.startswith("=")


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
             list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)


# -- times ------------------------------------------------------------------------------------

_CHINA = timezone(timedelta(hours=8))
_MIN_MS = 946_684_800_000      # 2000-01-01T00:00:00Z
_MAX_MS = 4_102_444_800_000    # 2100-01-01T00:00:00Z


def _number_ms(value: str, scale: int) -> int:
    number = float(value) * scale
    return int(number) if math.isfinite(number) else 0


def _iso_ms(value: str) -> int:
    moment = datetime.fromisoformat(value.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_CHINA)
    return int(moment.timestamp() * 1000)


def _gmt8_ms(value: str) -> int:
    text = value.strip()
    layout = "%Y-%m-%d %H:%M:%S.%f" if "." in text else "%Y-%m-%d %H:%M:%S"
    return int(datetime.strptime(text, layout).replace(tzinfo=_CHINA).timestamp() * 1000)


_TIME_PARSERS = {
    "epoch_s": lambda v: _number_ms(v, 1000),
    "epoch_ms": lambda v: _number_ms(v, 1),
    "iso8601": _iso_ms,
    "gmt8": _gmt8_ms,
}


def parse_occurred_at(value: str | None, fmt: str) -> int:
    """A source timestamp as epoch milliseconds UTC; 0 when missing or unreadable.

    Never raises: a bad time must not refuse an event (the order state does not depend on
    it), so garbage, an unknown ``fmt`` and times outside 2000-2099 (usually a unit mistake)
    all give 0, which the model reads as "unknown".

    Args:
        value: the raw value as ``core_ext.extract`` returns it, or ``None``.
        fmt: one of ``TIME_FORMATS``.
    """
    if not value:
        return 0
    parser = _TIME_PARSERS.get(fmt)
    if parser is None:
        return 0
    try:
        result: int = parser(value)
    except (ValueError, OverflowError, OSError):
        return 0
    return result if _MIN_MS <= result < _MAX_MS else 0


# -- display ----------------------------------------------------------------------------------

def _show(paths: Sequence[str]) -> str:
    return " + ".join(f'"{p[1:]}"' if p.startswith("=") else p for p in paths) if paths else "-"


def describe(ruleset: RuleSet) -> str:
    """A human summary of a rule set, for ``gateway check-config``."""
    lines = [f"{ruleset.directory}: OK  {len(ruleset)} sources, digest {ruleset.digest}"]
    for name, rules in ruleset.items():
        targets = sorted(set(rules.status.values()))
        lines.append(f"  {name:<12} {rules.ref:<22} {rules.kind:<9} {len(rules.status):>3} statuses"
                     f" -> {len(targets)} targets  {rules.description}")
        fields = [f"event_id={_show(rules.event_id)}", f"order_id={_show(rules.order_id)}",
                  f"status={_show(rules.status_paths)}"]
        if rules.waybill:
            fields.append(f"waybill={_show(rules.waybill)}")
        if rules.occurred_at:
            fields.append(f"occurred_at={_show(rules.occurred_at)} ({rules.occurred_at_format})")
        if rules.event_type:
            fields.append(f"event_type={_show(rules.event_type)}")
        if rules.buyer:
            fields.append("buyer=" + ", ".join(f"{kind}:{path}" for kind, path in rules.buyer))
        if rules.data:
            fields.append("data=" + ", ".join(sorted(rules.data)))
        lines.append("               " + "; ".join(fields))
    return "\n".join(lines)
