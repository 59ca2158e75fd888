"""The gateway's log: readable on stderr by default, JSON lines for log shipping, a rotated
file for boxes without journald (``[logging]``, reference in ``gateway._settings.loader``).

* ``format = "text"`` (default): one line per record, ``2026-11-26 10:02:03,120 INFO
  gateway.forward: ...`` - what the journal shows (``journalctl -u edge-gateway``).
* ``format = "json"``: one JSON object per line, ``{"time", "level", "logger", "message"}``
  plus ``"exception"`` (the traceback text) when the record carries one; ``time`` is ISO
  8601 with the offset, milliseconds included. Each line parses alone (``jq``, Vector,
  Filebeat, Loki's promtail).
* ``file = "..."``: the same lines also go to that file, rotated at ``max_bytes`` with
  ``backups`` old files kept (``logging.handlers.RotatingFileHandler``).

``configure_logging`` is called once by ``gateway run`` (``gateway.cli``) before anything
logs. Libraries whose INFO lines are noise at a warehouse (``QUIET_LOGGERS``) log WARNING
and above unless the level is DEBUG.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from datetime import datetime
from pathlib import Path
from typing import TextIO

import orjson

from gateway._errors import ConfigError
from gateway._settings import Settings
from gateway._settings.model import LoggingSection

#: Libraries whose INFO lines are noise at a warehouse (httpx logs every batch POST):
#: WARNING and above unless the level is DEBUG.
QUIET_LOGGERS = ("httpx", "httpcore", "hpack", "trio-websocket", "trio_websocket", "asyncio", "urllib3")
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
#: Marks the handlers this module installed, so a second call replaces them.
_OURS = "_gateway_handler"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and exception text."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


def formatter_for(section: LoggingSection) -> logging.Formatter:
    """The formatter ``[logging] format`` names."""
    return JsonFormatter() if section.format == "json" else logging.Formatter(TEXT_FORMAT)


def log_file_path(settings: Settings) -> Path | None:
    """``[logging] file`` resolved against the config's directory; ``None`` when unset."""
    if not settings.logging.file:
        return None
    return (settings.config_dir / settings.logging.file).resolve()


def _file_handler(path: Path, section: LoggingSection, settings: Settings | None) -> logging.Handler:
    try:
        return logging.handlers.RotatingFileHandler(path, maxBytes=section.max_bytes, backupCount=section.backups,
                                                    encoding="utf-8")
    except OSError as exc:
        config = settings.path if settings is not None and settings.path else "gateway.toml"
        line = None
        if settings is not None and settings.path is not None:
            from gateway._settings import TomlDocument

            line = TomlDocument.load(settings.path).line_of(("logging", "file"))
        raise ConfigError(config, line, "logging.file", f"cannot open {path} for the log ({exc.strerror}): create "
                          "its directory for the gateway's user, or set file = \"\" to log to stderr only") from exc


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (not the one it was made
    with: a command run in a test, or anything that swaps stderr, must not log to a closed stream)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure_logging(level: str, section: LoggingSection | None = None, *, settings: Settings | None = None,
                      stream: TextIO | None = None) -> None:
    """Send the root logger's records to stderr (and the ``[logging] file``), in the format
    ``[logging]`` names; replaces what an earlier call installed.

    Args:
        level: ``DEBUG`` | ``INFO`` | ``WARNING`` | ``ERROR``.
        section: ``[logging]`` (``None``: text on stderr, as before the section existed).
        settings: the settings it came from, to resolve a relative ``file`` and name the
            config's line in an error.
        stream: instead of ``sys.stderr`` (tests).

    Raises:
        ConfigError: the log file cannot be opened (names ``logging.file``).
    """
    section = section or LoggingSection()
    formatter = formatter_for(section)
    handlers: list[logging.Handler] = [logging.StreamHandler(stream) if stream is not None else _StderrHandler()]
    path = log_file_path(settings) if settings is not None else (Path(section.file) if section.file else None)
    if path is not None:
        handlers.append(_file_handler(path, section, settings))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        handler.setFormatter(formatter)
        setattr(handler, _OURS, True)
        root.addHandler(handler)
    root.setLevel(getattr(logging, level))
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)


__all__ = ["QUIET_LOGGERS", "TEXT_FORMAT", "JsonFormatter", "configure_logging", "formatter_for", "log_file_path"]
