"""Taobao / Tmall (TOP) messages pushed to us, TMC-style, signed with the TOP sign rule.

TMC itself is a channel the client pulls; installations relay its messages (or use a TOP
HTTP push) to ``POST /webhooks/tmall/{tenant}`` in one of two shapes.

**Form** (``application/x-www-form-urlencoded``; query parameters count too)::

    app_key=<TOP app_key>&timestamp=2026-11-25 10:00:00&sign_method=hmac-sha256&sign=<SIGN>
    &id=6142200092063758446&topic=taobao_trade_TradeBuyerPay&pub_time=2026-11-25 10:00:00
    &user_id=...&user_nick=...&content={"tid":586070597376760,"oid":...,"status":"..."}

    sign over concat(k + v for k in sorted(params)), params = every field except ``sign``
    and empty values. Several messages may come as one field ``messages`` = a JSON array of
    message objects instead of the single message's fields.

**JSON** (the body starts with ``{`` or ``[``; the TOP/Qimen convention for bodies)::

    POST /webhooks/tmall/t1?app_key=...&timestamp=...&sign_method=md5&sign=<SIGN>
    {"id": 6142200092063758446, "topic": "...", "pub_time": "...", "content": "{...}"}
    (or a JSON array of such messages)

    sign over concat(k + v for k in sorted(query params)) + raw body.

Sign methods (PROTOCOLS.md), hex compared case-insensitively in constant time:
``md5`` = UPPER(hex MD5(secret + S + secret)); ``hmac`` = UPPER(hex HMAC-MD5(secret, S));
``hmac-sha256`` = UPPER(hex HMAC-SHA256(secret, S)). The ``sign_method`` parameter picks one
(absent = ``md5``, TOP's default); ``[tenants.T.tmall] sign_method`` restricts it to one
method (default: any of the three). ``timestamp`` (``yyyy-MM-dd HH:mm:ss``, GMT+8) is
required and must be within ``REPLAY_WINDOW_S`` (±10 minutes, TOP's window); the sign
covers it. When ``app_key`` is configured the ``app_key`` parameter must equal it.

Each message's ``content`` JSON string is decoded in place, giving the shape
``config/rules/tmall.toml`` reads: ``{"id", "topic", "pub_time", "user_id", "user_nick",
"content": {"tid", "oid", "status", ...}}``.

Replies (the TOP/Qimen response shape): ``{"response": {"flag": "success", "code": "0",
"message": "success"}}``; a refusal ``{"response": {"flag": "failure", "code": "<HTTP
status>", "message": "<reason>"}}`` with that status.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from gateway._errors import MalformedEventError, SignatureError
from gateway._ingest.adapters.base import RawRequest, Reply, check_allow_list, digest_equal, hmac_hex
from gateway._ingest.adapters.forms import embedded_object, json_body, parse_form, top_concat
from gateway._settings import SourceCredentials

REPLAY_WINDOW_S = 600
SIGN_METHODS = ("md5", "hmac", "hmac-sha256")
GMT8 = timezone(timedelta(hours=8))
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
# Request parameters that belong to the TOP call, not to the message.
SYSTEM_PARAMS = frozenset({"app_key", "timestamp", "sign_method", "sign", "v", "format", "method",
                           "partner_id", "target_app_key", "session", "simplify"})
SUCCESS = orjson.dumps({"response": {"flag": "success", "code": "0", "message": "success"}})


def sign(method: str, secret: bytes, signed: bytes) -> str:
    """The TOP sign of the already-concatenated ``signed`` bytes, upper-case hex.

    Raises:
        ValueError: ``method`` is not md5, hmac or hmac-sha256.
    """
    if method == "md5":
        return hashlib.md5(secret + signed + secret).hexdigest().upper()
    if method == "hmac":
        return hmac_hex(secret, "md5", signed).upper()
    if method == "hmac-sha256":
        return hmac_hex(secret, "sha256", signed).upper()
    raise ValueError(f"unknown TOP sign_method {method!r}")


def format_timestamp(epoch_s: float) -> str:
    """``epoch_s`` as TOP writes it: ``yyyy-MM-dd HH:mm:ss`` in GMT+8."""
    return datetime.fromtimestamp(epoch_s, GMT8).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> float:
    """A TOP ``timestamp`` (GMT+8) as epoch seconds.

    Raises:
        ValueError: not ``yyyy-MM-dd HH:mm:ss``.
    """
    return datetime.strptime(text.strip(), TIMESTAMP_FORMAT).replace(tzinfo=GMT8).timestamp()


def _is_json(body: bytes) -> bool:
    return body.lstrip()[:1] in (b"{", b"[")


def signed_parts(request: RawRequest) -> tuple[dict[str, str], bytes]:
    """The request's parameters and the bytes its sign covers (see the module docstring).

    Raises:
        MalformedEventError: a form that does not parse, or a field given twice.
    """
    params = dict(request.query)
    if _is_json(request.body):
        return params, top_concat(params) + request.body
    for key, value in parse_form(request.body).items():
        if key in params:
            raise MalformedEventError(f"parameter {key!r} given in both the query and the form")
        params[key] = value
    return params, top_concat(params)


def _message(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise MalformedEventError(f"{where}: a message must be a JSON object")
    if not isinstance(item.get("topic"), str) or not item["topic"]:
        raise MalformedEventError(f"{where}: topic missing or not a string")
    item["content"] = embedded_object(item.get("content"), f"{where}.content")
    return item


class TmallAdapter:
    """Adapter for TOP/TMC messages (source ``tmall``; Taobao and Tmall share it)."""

    source = "tmall"

    def verify(self, request: RawRequest, credentials: SourceCredentials, now_s: float) -> None:
        check_allow_list(request, credentials)
        params, signed = signed_parts(request)
        given = params.get("sign", "")
        timestamp = params.get("timestamp", "")
        if not given or not timestamp:
            raise SignatureError("missing sign or timestamp parameter")
        method = params.get("sign_method", "md5").strip().lower()
        if method not in SIGN_METHODS:
            raise SignatureError(f"unsupported sign_method (want one of {', '.join(SIGN_METHODS)})")
        if credentials.sign_method and method != credentials.sign_method:
            raise SignatureError(f"sign_method {method} is not allowed for this tenant")
        try:
            sent_at = parse_timestamp(timestamp)
        except ValueError:
            raise SignatureError("timestamp is not yyyy-MM-dd HH:mm:ss") from None
        if abs(now_s - sent_at) > REPLAY_WINDOW_S:
            raise SignatureError(f"timestamp outside the {REPLAY_WINDOW_S} s replay window")
        if credentials.app_key and not hmac.compare_digest(
                params.get("app_key", "").encode(), credentials.app_key.encode()):
            raise SignatureError("app_key is not this tenant's app")
        if not digest_equal(sign(method, credentials.secret.reveal(), signed), given):
            raise SignatureError("signature does not verify")

    def decode(self, request: RawRequest) -> list[dict[str, Any]]:
        if _is_json(request.body):
            body = json_body(request.body)
            items = body if isinstance(body, list) else [body]
            return [_message(item, f"[{index}]") for index, item in enumerate(items)]
        params, _ = signed_parts(request)
        if "messages" in params:
            items = json_body(params["messages"], "messages")
            if not isinstance(items, list):
                raise MalformedEventError("messages must be a JSON array of message objects")
            return [_message(item, f"messages[{index}]") for index, item in enumerate(items)]
        message = {k: v for k, v in params.items() if k not in SYSTEM_PARAMS}
        return [_message(message, "form")]

    def success(self, summary: Mapping[str, Any]) -> Reply:
        return Reply(200, SUCCESS)

    def failure(self, status: int, reason: str) -> Reply:
        return Reply(status, orjson.dumps({"response": {"flag": "failure", "code": str(status), "message": reason}}))
