"""Validation of one rule file: every independent problem collected, each naming file, line
and key (the format and its rules: ``gateway._rules.mapping``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, TypeVar

import core_ext
from gateway._errors import ConfigError
from gateway._model import PSEUDO_TARGETS, Status, target_code
from gateway._rules.ruleset import SourceRules
from gateway._settings import KeyPath, TomlDocument, check_keys
from gateway._times import TIME_FORMATS

SOURCE_KINDS = ("shop", "logistics", "erp")
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


class RuleFileLoader:
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


__all__ = ["BUYER_KINDS", "SOURCE_KINDS", "RuleFileLoader"]
