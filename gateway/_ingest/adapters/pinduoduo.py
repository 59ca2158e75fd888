"""Pinduoduo (拼多多) messages: the WebSocket frame helpers and the relayed-webhook adapter.

Pinduoduo pushes messages over a WebSocket the *client* opens (PROTOCOLS.md)::

    wss://message-api.pinduoduo.com/message/{client_id}/{timestamp_ms}/{sign}
    sign = urlencode(base64(md5_hex_text(client_id + timestamp_ms + client_secret)))

Frames are JSON objects::

    {"id": 123, "commandType": "Common", "sendTime": 1764036000000,
     "message": {"type": "pdd_refund_RefundCreated", "mallID": 9, "content": "{\\"tid\\": ...}"}}

``commandType`` is ``Common`` (a message), ``HeartBeat``, ``Ack`` or ``Fail``; ``content`` is a
JSON string. Each Common frame is acknowledged with an ``Ack`` frame naming its id, type and
mall. The pure helpers for all of this live here so that the outbound WebSocket client
(``gateway._ingest.pdd_ws``) and this module's webhook adapter share one implementation:
``connection_sign``, ``connection_url``, ``decode_frame``, ``ack_frame``,
``heartbeat_frame``, ``api_sign``.

The relayed webhook (``POST /webhooks/pinduoduo/{tenant}``) is for installations where a
relay holds the WebSocket and POSTs the frames to us. It is signed with the Pinduoduo API
sign rule over its parameters, which are EITHER the form fields of an
``application/x-www-form-urlencoded`` body::

    client_id=<PDD client_id>&timestamp=<unix seconds>&data=<frame JSON>&sign=<sign>

OR, when the query string carries ``sign``, the query parameters, with the raw body (the
frame JSON) standing for ``data``::

    POST /webhooks/pinduoduo/t1?client_id=...&timestamp=...&sign=...      body: <frame JSON>

``sign = UPPER(hex MD5(client_secret + concat(k + v for k in sorted(params)) + client_secret))``
over every parameter except ``sign`` and empty values — so ``client_id``, ``timestamp``
and ``data`` (and anything else the relay adds) are covered. ``timestamp`` is required and
must be within ``REPLAY_WINDOW_S`` (300 s) of our clock. When the tenant's ``app_key`` is
configured, ``client_id`` must equal it. ``data`` is one frame or a JSON array of frames;
HeartBeat, Ack and Fail frames are skipped (they are connection chatter, not events).

Replies (our choice; the relay is ours to write): success
``{"success": true, "error_code": 0, "error_msg": "", "accepted": N}``, refusal
``{"success": false, "error_code": <HTTP status>, "error_msg": "<reason>"}``. The relay acks
the frames over its WebSocket only after our 200.
"""

from __future__ import annotations

import base64
import hashlib
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

import orjson

from gateway._errors import MalformedEventError, SignatureError
from gateway._ingest.adapters.base import RawRequest, Reply, check_allow_list, digest_equal
from gateway._ingest.adapters.forms import parse_form, top_concat
from gateway._settings import SourceCredentials

REPLAY_WINDOW_S = 300
COMMON = "Common"
HEARTBEAT = "HeartBeat"
ACK = "Ack"
FAIL = "Fail"
COMMAND_TYPES = frozenset({COMMON, HEARTBEAT, ACK, FAIL})


# -- the WebSocket side (pure; used by gateway._ingest.pdd_ws) ----------------------------------------

def connection_sign(client_id: str, timestamp_ms: int, secret: bytes) -> str:
    """The ``{sign}`` path segment of the message WebSocket URL.

    ``urlencode(base64(md5_hex_text(client_id + timestamp_ms + client_secret)))``: the base64
    of the 32-character lower-case hex text (not of the raw digest), percent-encoded so
    ``+``, ``/`` and ``=`` survive in a path.

    Args:
        client_id: the PDD app's client_id.
        timestamp_ms: the connection time, epoch milliseconds (the same value goes in the URL).
        secret: the client_secret.
    """
    hex_text = hashlib.md5(client_id.encode() + str(timestamp_ms).encode() + secret).hexdigest()
    return urllib.parse.quote(base64.b64encode(hex_text.encode()).decode(), safe="")


def connection_url(ws_url: str, client_id: str, timestamp_ms: int, secret: bytes) -> str:
    """``{ws_url}/{client_id}/{timestamp_ms}/{sign}`` (``ws_url`` as in ``[tenants.T.pinduoduo]``)."""
    sign = connection_sign(client_id, timestamp_ms, secret)
    return f"{ws_url.rstrip('/')}/{urllib.parse.quote(client_id, safe='')}/{timestamp_ms}/{sign}"


def decode_content(frame: dict[str, Any]) -> dict[str, Any]:
    """Decode a Common frame's ``message.content`` JSON string in place; return the frame.

    A ``content`` that is already an object is kept. Non-Common frames are returned as is.

    Raises:
        MalformedEventError: ``message`` is not an object, or ``content`` is not a JSON object.
    """
    if frame.get("commandType") != COMMON:
        return frame
    message = frame.get("message")
    if not isinstance(message, dict):
        raise MalformedEventError("Common frame without a message object")
    content = message.get("content")
    if isinstance(content, str | bytes):
        try:
            content = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise MalformedEventError(f"message.content is not JSON: {exc}") from exc
        message["content"] = content
    if not isinstance(content, dict):
        raise MalformedEventError("message.content must be a JSON object (or a JSON string of one)")
    return frame


def check_frame(frame: Any) -> dict[str, Any]:
    """Validate one already-parsed frame and decode its content in place.

    Raises:
        MalformedEventError: not an object, unknown ``commandType``, bad Common message.
    """
    if not isinstance(frame, dict):
        raise MalformedEventError("a frame must be a JSON object")
    command = frame.get("commandType")
    if not isinstance(command, str) or command not in COMMAND_TYPES:
        raise MalformedEventError(f"unknown commandType {command!r} (want one of {sorted(COMMAND_TYPES)})")
    return decode_content(frame)


def decode_frame(raw: bytes | str) -> dict[str, Any]:
    """Parse one WebSocket text frame; a Common frame's ``message.content`` is decoded in place.

    Args:
        raw: the frame text as received.

    Returns:
        The frame dict: ``frame["commandType"]`` says what it is; for ``Common`` frames
        ``frame["message"]["content"]`` is a dict.

    Raises:
        MalformedEventError: not JSON, not an object, unknown ``commandType``, or a Common
            frame whose message/content is not an object.
    """
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedEventError(f"frame is not JSON: {exc}") from exc
    return check_frame(frame)


def ack_frame(frame_id: Any, message_type: str = "", mall_id: Any = 0, *, now_ms: int | None = None,
              send_time: Any = None) -> bytes:
    """The ``Ack`` frame for a received Common frame (send it after the event is durable).

    Args:
        frame_id: the received frame's ``id``, echoed as is (PDD ids are integers).
        message_type: the received ``message.type``.
        mall_id: the received ``message.mallID``.
        now_ms: the ack's own ``time``, epoch ms (default: now).
        send_time: the received frame's ``sendTime``, echoed as the public clients
            (Cherrs/pdd-rs, bububa/openpdd) do; ``None``: the ack's own time.

    Returns:
        ``{"id", "commandType": "Ack", "time", "sendTime", "type", "mallID"}`` as JSON bytes.
    """
    sent = int(time.time() * 1000) if now_ms is None else now_ms
    return orjson.dumps({"id": frame_id, "commandType": ACK, "time": sent,
                         "sendTime": sent if send_time is None else send_time,
                         "type": message_type, "mallID": mall_id})


def ack_for(frame: Mapping[str, Any], *, now_ms: int | None = None) -> bytes:
    """``ack_frame`` filled from a decoded Common frame."""
    message = frame.get("message")
    message = message if isinstance(message, dict) else {}
    return ack_frame(frame.get("id"), str(message.get("type") or ""), message.get("mallID", 0), now_ms=now_ms,
                     send_time=frame.get("sendTime"))


def heartbeat_frame(*, now_ms: int | None = None) -> bytes:
    """A client ``HeartBeat`` frame (``{"commandType": "HeartBeat", "time", "sendTime"}``)."""
    sent = int(time.time() * 1000) if now_ms is None else now_ms
    return orjson.dumps({"commandType": HEARTBEAT, "time": sent, "sendTime": sent})


def api_sign(params: Mapping[str, str], secret: bytes) -> str:
    """The Pinduoduo API ``sign`` of ``params``.

    ``UPPER(hex MD5(secret + concat(k + v for k in sorted(params)) + secret))``, skipping
    ``sign`` and empty values.
    """
    return hashlib.md5(secret + top_concat(params) + secret).hexdigest().upper()


# -- the relayed webhook ------------------------------------------------------------------------

def _params(request: RawRequest) -> dict[str, str]:
    """The signed parameters of a relayed request (see the module docstring)."""
    if "sign" in request.query:
        params = dict(request.query)
        try:
            params["data"] = request.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedEventError("body is not UTF-8") from exc
        return params
    return parse_form(request.body)


class PinduoduoAdapter:
    """Adapter for frames relayed from the Pinduoduo message WebSocket (source ``pinduoduo``)."""

    source = "pinduoduo"

    def verify(self, request: RawRequest, credentials: SourceCredentials, now_s: float) -> None:
        check_allow_list(request, credentials)
        params = _params(request)
        given = params.get("sign", "")
        timestamp = params.get("timestamp", "")
        if not given or not timestamp:
            raise SignatureError("missing sign or timestamp parameter")
        try:
            sent_at = int(timestamp)
        except ValueError:
            raise SignatureError("timestamp is not unix seconds") from None
        if abs(now_s - sent_at) > REPLAY_WINDOW_S:
            raise SignatureError(f"timestamp outside the {REPLAY_WINDOW_S} s replay window")
        if credentials.app_key and not digest_equal(credentials.app_key, params.get("client_id", "")):
            raise SignatureError("client_id is not this tenant's app")
        expected = api_sign(params, credentials.secret.reveal())
        if not digest_equal(expected, given):
            raise SignatureError("signature does not verify")

    def decode(self, request: RawRequest) -> list[dict[str, Any]]:
        data = _params(request).get("data", "")
        if not data:
            raise MalformedEventError("no data parameter (the frame JSON)")
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise MalformedEventError(f"data is not JSON: {exc}") from exc
        frames = parsed if isinstance(parsed, list) else [parsed]
        events: list[dict[str, Any]] = []
        for index, item in enumerate(frames):
            try:
                frame = check_frame(item)
            except MalformedEventError as exc:
                raise MalformedEventError(f"frame [{index}]: {exc}") from exc
            if frame["commandType"] == COMMON:
                events.append(frame)
        return events

    def success(self, summary: Mapping[str, Any]) -> Reply:
        return Reply(200, orjson.dumps({"success": True, "error_code": 0, "error_msg": "",
                                        "accepted": summary.get("accepted", 0)}))

    def failure(self, status: int, reason: str) -> Reply:
        return Reply(status, orjson.dumps({"success": False, "error_code": status, "error_msg": reason}))


__all__ = [
    "ACK", "COMMON", "FAIL", "HEARTBEAT", "REPLAY_WINDOW_S", "PinduoduoAdapter", "ack_for", "ack_frame",
    "api_sign", "check_frame", "connection_sign", "connection_url", "decode_content", "decode_frame",
    "heartbeat_frame",
]
