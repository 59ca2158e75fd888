"""Strict TOML loading with line numbers, shared by the daemon config and the rule files.

``tomllib`` parses but forgets where a key stood; operators need ``file:line: key`` in
every error. ``TomlDocument`` keeps the parsed data and a small locator that scans the
source text for table headers and ``key =`` lines. The locator handles what our files use
(tables, arrays of tables, bare, quoted and dotted keys); when a key cannot be placed it
answers the line of its nearest placed parent, so an error always names a line.

``check_keys`` is the strictness helper: an unknown (often misspelt) key is an error that
says which keys are allowed.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gateway._errors import ConfigError

KeyPath = tuple[str | int, ...]

_HEADER = re.compile(r"^\s*(\[\[?)\s*(.+?)\s*\]\]?\s*(#.*)?$")
_KEY_LINE = re.compile(r"""^\s*((?:[A-Za-z0-9_\-]+|"(?:[^"\\]|\\.)*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_\-]+|"(?:[^"\\]|\\.)*"|'[^']*'))*)\s*=""")
_PART = re.compile(r"""[A-Za-z0-9_\-]+|"(?:[^"\\]|\\.)*"|'[^']*'""")


def _split_key(text: str) -> list[str]:
    parts = []
    for match in _PART.finditer(text):
        part = match.group(0)
        if part.startswith('"'):
            part = part[1:-1].encode().decode("unicode_escape") if "\\" in part else part[1:-1]
        elif part.startswith("'"):
            part = part[1:-1]
        parts.append(part)
    return parts


class TomlDocument:
    """A parsed TOML file that can say on which line a key stands.

    Args:
        path: the file, used in error messages.
        text: its content.

    Raises:
        ConfigError: the text is not valid TOML (with tomllib's line number).
    """

    def __init__(self, path: str | Path, text: str) -> None:
        self.path = Path(path)
        try:
            self.data: dict[str, Any] = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            line = getattr(exc, "lineno", None)
            if line is None:
                found = re.search(r"line (\d+)", str(exc))
                line = int(found.group(1)) if found else None
            raise ConfigError(path, line, "", f"not valid TOML: {exc}") from exc
        self._lines: dict[KeyPath, int] = {}
        self._index(text)

    @classmethod
    def load(cls, path: str | Path) -> TomlDocument:
        """Read and parse ``path``.

        Raises:
            ConfigError: the file is missing, unreadable, not UTF-8 or not TOML.
        """
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(path, None, "", f"cannot read: {exc}") from exc
        return cls(path, text)

    def _index(self, text: str) -> None:
        table: KeyPath = ()
        array_counts: dict[KeyPath, int] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            header = _HEADER.match(line)
            if header and not _KEY_LINE.match(line):
                path: KeyPath = tuple(_split_key(header.group(2)))
                if header.group(1) == "[[":
                    index = array_counts.get(path, 0)
                    array_counts[path] = index + 1
                    self._lines.setdefault(path, number)
                    path = (*path, index)
                table = path
                self._mark(table, number)
                continue
            key = _KEY_LINE.match(line)
            if key:
                self._mark((*table, *_split_key(key.group(1))), number)

    def _mark(self, path: KeyPath, number: int) -> None:
        # Parents defined implicitly ([a.b.c] defines a and a.b) point at their first use.
        for end in range(1, len(path) + 1):
            self._lines.setdefault(path[:end], number)

    def line_of(self, key_path: Iterable[str | int]) -> int | None:
        """The line of ``key_path``, else of its nearest located parent, else ``None``."""
        path = tuple(key_path)
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return None

    def error(self, key_path: Iterable[str | int], message: str) -> ConfigError:
        """A ``ConfigError`` pointing at ``key_path`` in this file."""
        path = tuple(key_path)
        return ConfigError(self.path, self.line_of(path), dotted(path), message)


def dotted(key_path: Iterable[str | int]) -> str:
    """``("status", "101")`` -> ``status.101``; list indexes as ``[0]``."""
    text = ""
    for part in key_path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + part
    return text


def check_keys(
    doc: TomlDocument,
    table: Mapping[str, Any],
    at: KeyPath,
    allowed: Iterable[str],
    required: Iterable[str] = (),
) -> None:
    """Refuse unknown keys and missing required keys in ``table`` (found at ``at``).

    Raises:
        ConfigError: naming the first unknown or missing key, with the allowed keys.
    """
    allowed_set = set(allowed)
    for key in table:
        if key not in allowed_set:
            raise doc.error((*at, key), f"unknown key (allowed: {', '.join(sorted(allowed_set))})")
    for key in required:
        if key not in table:
            raise doc.error(at, f"missing required key {key!r}")
