"""Wire helpers shared by the adapters: form bodies, embedded JSON, the TOP/PDD parameter concat."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

import orjson

from gateway._errors import MalformedEventError

MAX_FORM_FIELDS = 200


def parse_form(body: bytes) -> dict[str, str]:
    """The fields of an ``application/x-www-form-urlencoded`` body, strictly.

    Raises:
        MalformedEventError: not UTF-8, a field without ``=``, a repeated field (which one
            was signed would be ambiguous), or more than ``MAX_FORM_FIELDS`` fields.
    """
    try:
        text = body.decode("utf-8")
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text),
                                       encoding="utf-8", errors="strict", max_num_fields=MAX_FORM_FIELDS)
    except UnicodeDecodeError as exc:
        raise MalformedEventError("form body is not UTF-8") from exc
    except ValueError as exc:
        raise MalformedEventError(f"body is not a form (k=v&k=v): {exc}") from exc
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:
            raise MalformedEventError(f"form field {key!r} is repeated")
        fields[key] = value
    return fields


def top_concat(params: Mapping[str, str]) -> bytes:
    """``concat(k + v for k in sorted(params))`` as UTF-8, without ``sign`` and empty values.

    The string both TOP (Taobao/Tmall) and Pinduoduo sign; keys sort by code point.
    """
    return "".join(k + v for k, v in sorted(params.items()) if k != "sign" and v != "").encode()


def json_body(body: bytes | str, what: str = "body") -> Any:
    """``body`` parsed as JSON.

    Raises:
        MalformedEventError: ``what`` is not JSON (the reason names it).
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedEventError(f"{what} is not JSON: {exc}") from exc


def embedded_object(value: Any, what: str) -> dict[str, Any]:
    """A JSON object sent as a JSON *string* inside the envelope, decoded (an object is kept).

    Raises:
        MalformedEventError: ``value`` is neither an object nor a JSON string of one.
    """
    if isinstance(value, str | bytes):
        value = json_body(value, what)
    if not isinstance(value, dict):
        raise MalformedEventError(f"{what} must be a JSON object (or a JSON string of one)")
    return value


def json_array_of_objects(body: bytes, shape: str) -> list[dict[str, Any]]:
    """A body that must be a JSON array of objects (the Douyin and Xiaohongshu envelopes).

    Args:
        shape: how the elements look, for the error (``"{tag, msg_id, data}"``).

    Raises:
        MalformedEventError: not JSON, not an array, or an element is not an object (named by index).
    """
    items = json_body(body)
    if not isinstance(items, list):
        raise MalformedEventError(f"body must be a JSON array of {shape}")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise MalformedEventError(f"[{index}]: not a JSON object")
    return items
