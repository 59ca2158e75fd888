"""The gateway's exception tree.

Every boundary (HTTP, serial, RocksDB, upstream, config files) translates foreign
exceptions into one of these with ``raise ... from exc``, so callers handle a small,
meaningful set::

    GatewayError
    ├── ConfigError            a config or rule file is wrong (names file, line, key)
    ├── IngestError            an inbound event batch is refused; nothing was stored
    │   ├── SignatureError         bad or missing signature           -> HTTP 401
    │   ├── MalformedEventError    body cannot be decoded/understood  -> HTTP 400
    │   └── PayloadTooLargeError   body over the configured limit     -> HTTP 413
    ├── StoreError             RocksDB failed; the step was not committed
    │   ├── StoreLockedError       another process holds the store open
    │   └── BackpressureError      a configured bound is reached      -> HTTP 503
    ├── DeviceError            a device (scanner, printer, NVR, scale) failed; the message says what to do
    │   ├── DeviceUnavailableError not there, connection lost or timed out (the supervisor reopens it)
    │   └── DeviceAuthError        the device refused our credentials (NVR digest auth)
    └── StateTransitionError   a programming error: an impossible transition was forced
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class GatewayError(Exception):
    """Base class of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """A configuration or mapping-rule file is invalid.

    The message always says where: ``file:line: key: what is wrong``. ``line`` is
    ``None`` only when the problem is not tied to one line (e.g. a missing file).

    Args:
        path: the offending file.
        line: 1-based line number, or ``None``.
        key: dotted key path inside the file (``"status.101"``), or ``""``.
        message: what is wrong, in operator's words.
    """

    def __init__(self, path: str | Path, line: int | None, key: str, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.key = key
        self.message = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")


class IngestError(GatewayError):
    """An inbound batch was refused before anything was stored."""

    http_status = 400


class SignatureError(IngestError):
    """The request's signature, tenant secret or timestamp window does not verify."""

    http_status = 401


class MalformedEventError(IngestError):
    """The request body cannot be decoded or lacks what the source's rules require."""

    http_status = 400


class PayloadTooLargeError(IngestError):
    """The request body is over the configured ``max_body_bytes``."""

    http_status = 413


class StoreError(GatewayError):
    """The durable store failed; the processing step was not committed."""


class StoreLockedError(StoreError):
    """The store's directory is locked: another gateway (or command) has it open.

    RocksDB is single-writer: stop the other process, or give this one its own data directory.
    """


class BackpressureError(StoreError):
    """A configured bound (store, outbox, queue) is reached; retry later.

    Args:
        message: which bound and its value.
        retry_after_s: the hint given to clients (``Retry-After``).
    """

    def __init__(self, message: str, retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DeviceError(GatewayError):
    """A device failed or answered something we cannot use.

    Args:
        device: the device's configured name or path (never a password or a URL with one).
        message: what is wrong and, where there is one, what to do.
    """

    def __init__(self, device: str, message: str) -> None:
        super().__init__(f"{device}: {message}")
        self.device = device
        self.message = message


class DeviceUnavailableError(DeviceError):
    """The device is not there, its connection was lost, or it did not answer in time."""


class DeviceAuthError(DeviceError):
    """The device refused our credentials (an NVR's digest auth); retrying will not help."""


class StateTransitionError(GatewayError):
    """An impossible state transition was forced; a bug, never operator input."""


# -- import files: every problem at once, each where it is ---------------------------------

MAX_FILE_PROBLEMS = 1000


@dataclass(frozen=True, slots=True)
class FileProblem:
    """One thing wrong in an imported file (a catalog, customs master data), where it is and
    what to do, in Chinese and English: ``file:row:column: message``."""

    file: str
    row: int | None
    column: str
    message: str
    message_en: str

    def __str__(self) -> str:
        return f"{self.file}:{'-' if self.row is None else self.row}:{self.column or '-'}: {self.message}"

    def text(self, lang: str = "zh-CN") -> str:
        """The ``file:row:column: message`` line in ``lang`` (``zh-CN`` or ``en``)."""
        if lang == "en":
            return f"{self.file}:{'-' if self.row is None else self.row}:{self.column or '-'}: {self.message_en}"
        return str(self)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "row": self.row, "column": self.column, "message": self.message,
                "message_en": self.message_en}


class FileImportError(GatewayError):
    """An imported file is refused; nothing was stored.

    Args:
        problems: every problem found (up to ``MAX_FILE_PROBLEMS``), each ``file:row:column: message``.
        more: how many more were found beyond those.
    """

    def __init__(self, problems: Sequence[FileProblem], more: int = 0) -> None:
        self.problems = tuple(problems)
        self.more = more
        lines = [str(p) for p in self.problems] + ([f"... {more} more"] if more else [])
        super().__init__("\n".join(lines))


class FileProblems:
    """Collects the problems of one file (``check`` raises them all at once, row by row).

    Subclasses give ``MESSAGES`` (``code -> (zh, en)`` templates) and ``ERROR`` (the
    ``FileImportError`` subclass raised)."""

    MESSAGES: Mapping[str, tuple[str, str]] = {}
    ERROR: type[FileImportError] = FileImportError

    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[FileProblem] = []
        self.more = 0

    def add(self, row: int | None, column: str, code: str, /, **params: Any) -> None:
        """One problem: the message ``code`` with ``params``; beyond ``MAX_FILE_PROBLEMS`` only counted."""
        if len(self.items) >= MAX_FILE_PROBLEMS:
            self.more += 1
            return
        zh, en = self.MESSAGES[code]
        self.items.append(FileProblem(self.file, row, column, zh.format(**params), en.format(**params)))

    def check(self) -> None:
        """Raise every problem so far (a row's own before those across rows); none: return."""
        if self.items or self.more:
            raise self.ERROR(sorted(self.items, key=lambda p: -1 if p.row is None else p.row), self.more)
