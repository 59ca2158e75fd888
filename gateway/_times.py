"""Source timestamps -> epoch milliseconds UTC (the mapping rules' ``occurred_at``), and back
to ISO 8601 for the upstream (``iso_ms``).

``occurred_at`` is read into epoch milliseconds UTC by ``parse_occurred_at``:

* ``epoch_s`` / ``epoch_ms``: an integer (or decimal) number of seconds / milliseconds;
* ``iso8601``: ``2026-11-25T10:00:00+08:00`` (also ``Z``; a time without offset is read as
  China time, UTC+08:00);
* ``gmt8``: ``yyyy-MM-dd HH:mm:ss`` (optionally ``.SSS``) in China time, as TOP and Kuaidi100
  send it.

A missing or unreadable time, or one outside the years 2000-2099 (a unit mistake, seconds
read as milliseconds), gives 0, "unknown": it never refuses the event.
"""

from __future__ import annotations

import functools
import math
import time
from datetime import datetime, timedelta, timezone

TIME_FORMATS = ("epoch_s", "epoch_ms", "iso8601", "gmt8")

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


@functools.lru_cache(maxsize=4096)
def _iso_seconds(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def iso_ms(epoch_ms: int) -> str:
    """``1764036000123`` -> ``"2025-11-25T02:00:00.123Z"``; 0 -> ``""``."""
    if not epoch_ms:
        return ""
    seconds, millis = divmod(epoch_ms, 1000)
    return f"{_iso_seconds(seconds)}.{millis:03d}Z"


__all__ = ["TIME_FORMATS", "iso_ms", "parse_occurred_at"]
