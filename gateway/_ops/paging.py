"""Cursor pagination for the operators' lists: opaque cursors, pages of a sorted list. Pure.

A list is sorted by a key (a tuple of ints and strings: ``(since_ms, anomaly_id)`` for the
board, ``(order_id,)`` for a drill-down). A page holds the first ``limit`` items whose key is
greater than the cursor's; its ``next_cursor`` is the key of its last item, or ``None`` at
the end. Walking a list that changes between pages skips nothing that stayed and repeats
nothing: a cursor names a position in the order, not an offset.

The cursor text is ``base64url(orjson([kind, *key]))`` without padding; ``kind`` names the
list it belongs to, so a board cursor handed to a drill-down is refused rather than
misread. Clients treat it as opaque.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import orjson

Key = tuple[int | str, ...]
T = TypeVar("T")
MAX_CURSOR_CHARS = 2048
_INT_LIMIT = 2**63


class CursorError(ValueError):
    """A cursor that this API did not hand out (or for another list)."""


def encode_cursor(kind: str, key: Key) -> str:
    """The opaque cursor of position ``key`` in the list ``kind``."""
    return base64.urlsafe_b64encode(orjson.dumps([kind, *key])).rstrip(b"=").decode()


def decode_cursor(text: str, kind: str, shape: tuple[type, ...]) -> Key:
    """The key a cursor of list ``kind`` names.

    Args:
        text: the cursor as the client sent it.
        kind: the list being walked.
        shape: the types of the key's items (``(int, str)``).

    Raises:
        CursorError: not a cursor of this list.
    """
    if len(text) > MAX_CURSOR_CHARS:
        raise CursorError("cursor is too long")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
        raise CursorError("cursor is not one this API handed out") from exc
    if not isinstance(value, list) or len(value) != len(shape) + 1 or value[0] != kind:
        raise CursorError("cursor belongs to another list")
    key = value[1:]
    for item, wanted in zip(key, shape, strict=True):
        if type(item) is not wanted or (isinstance(item, int) and not -_INT_LIMIT <= item < _INT_LIMIT):
            raise CursorError("cursor is not one this API handed out")
    return tuple(key)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page: its items and the cursor of the next page (``None``: this was the last)."""

    items: list[T]
    next_cursor: str | None


def page_of(items: Sequence[T], key: Callable[[T], Key], kind: str, after: Key | None, limit: int) -> Page[T]:
    """The page after ``after`` of ``items`` (sorted by ``key``), at most ``limit`` long."""
    start = 0
    if after is not None:
        low, high = 0, len(items)
        while low < high:  # first item with key > after
            middle = (low + high) // 2
            if key(items[middle]) <= after:
                low = middle + 1
            else:
                high = middle
        start = low
    chosen = list(items[start:start + limit])
    more = start + limit < len(items)
    return Page(chosen, encode_cursor(kind, key(chosen[-1])) if chosen and more else None)


__all__ = ["CursorError", "Key", "Page", "decode_cursor", "encode_cursor", "page_of"]
