"""Youzan (有赞) message push.

Request (PROTOCOLS.md)::

    POST /webhooks/youzan/{tenant}
    Content-Type: application/json
    Event-Sign: <lower-case hex MD5(client_id + raw_body + client_secret)>

    {"client_id": "...", "id": "E2020...", "kdt_id": 56232, "kdt_name": "...",
     "msg": "%7B%22tid%22%3A%22E2020...%22...%7D", "msg_id": "6dc15f0b-...", "sendCount": 1,
     "status": "TRADE_SUCCESS", "type": "trade_TradeSuccess", "version": 1621946649}

Legacy pushes carry no ``Event-Sign`` header but a body field ``sign`` with the same rule
over ``msg`` instead of the body: ``MD5(client_id + msg + client_secret)``, ``msg`` exactly as
sent (still URL-encoded). The header wins when both exist. ``client_id`` is the tenant's
configured ``app_key`` (``[tenants.T.youzan] app_key``, required at config load; 401 here
if absent), and a body ``client_id`` naming another app is refused (401). Youzan sends no
timestamp: a replayed push has the same ``msg_id`` and is de-duplicated (Youzan retries up
to 4 times with a growing ``sendCount``, which is why the fingerprint ignores it).

``msg`` is URL-decoded (``+`` is a space, as Java's URLEncoder writes it) and JSON-decoded in
place for ``config/rules/youzan.toml``, which also reads ``version`` (a higher version
supersedes a lower one; the processing step compares them). A body with ``"test": true``
(Youzan's push-URL check) is answered with success and stores nothing.

Replies: ``{"code": "200", "msg": "success"}``; a refusal ``{"code": "<HTTP status>", "msg":
"<reason>"}`` with that status.
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.parse
from collections.abc import Mapping
from typing import Any

import orjson

from gateway._errors import MalformedEventError, SignatureError
from gateway._ingest.adapters.base import RawRequest, Reply, check_allow_list, digest_equal
from gateway._ingest.adapters.forms import embedded_object, json_body
from gateway._settings import SourceCredentials

SUCCESS = orjson.dumps({"code": "200", "msg": "success"})


def sign(client_id: str, signed: bytes, secret: bytes) -> str:
    """Lower-case hex MD5(client_id + signed + secret); ``signed`` is the body (or legacy ``msg``)."""
    return hashlib.md5(client_id.encode() + signed + secret).hexdigest()


def decode_msg(value: Any) -> dict[str, Any]:
    """The ``msg`` field: URL-encoded JSON text -> dict (an object is kept).

    Raises:
        MalformedEventError: not a string of URL-encoded JSON object text.
    """
    # URL-encoded JSON never starts with "{" (that is %7B): such a msg is plain JSON already.
    if isinstance(value, str) and not value.lstrip().startswith("{"):
        value = urllib.parse.unquote_plus(value, errors="strict")
    return embedded_object(value, "msg")


class YouzanAdapter:
    """Adapter for the Youzan message push (source ``youzan``)."""

    source = "youzan"

    def verify(self, request: RawRequest, credentials: SourceCredentials, now_s: float) -> None:
        check_allow_list(request, credentials)
        client_id = credentials.app_key
        if not client_id:
            raise SignatureError("no app_key (client_id) configured for this tenant's youzan source")
        given = request.headers.get("event-sign", "")
        secret = credentials.secret.reveal()
        body: Any = None
        if given:
            expected = sign(client_id, request.body, secret)
        else:
            try:
                body = orjson.loads(request.body)
            except orjson.JSONDecodeError:
                raise SignatureError("missing Event-Sign header (and no legacy body sign)") from None
            legacy = body.get("sign") if isinstance(body, dict) else None
            msg = body.get("msg") if isinstance(body, dict) else None
            if not isinstance(legacy, str) or not legacy or not isinstance(msg, str):
                raise SignatureError("missing Event-Sign header (and no legacy body sign)")
            expected, given = sign(client_id, msg.encode(), secret), legacy
        if not digest_equal(expected, given):
            raise SignatureError("signature does not verify")
        if body is None:
            try:
                body = orjson.loads(request.body)
            except orjson.JSONDecodeError:
                return  # signed garbage: decode() refuses it with the reason
        sender = body.get("client_id") if isinstance(body, dict) else None
        if sender not in (None, "") and not hmac.compare_digest(str(sender).encode(), client_id.encode()):
            raise SignatureError("client_id is not this tenant's app")

    def decode(self, request: RawRequest) -> list[dict[str, Any]]:
        body = json_body(request.body)
        if not isinstance(body, dict):
            raise MalformedEventError("body must be a JSON object")
        if body.get("test") is True:
            return []
        if "msg" not in body:
            raise MalformedEventError("no msg field")
        try:
            body["msg"] = decode_msg(body["msg"])
        except UnicodeDecodeError as exc:
            raise MalformedEventError("msg is not URL-encoded UTF-8") from exc
        return [body]

    def success(self, summary: Mapping[str, Any]) -> Reply:
        return Reply(200, SUCCESS)

    def failure(self, status: int, reason: str) -> Reply:
        return Reply(status, orjson.dumps({"code": str(status), "msg": reason}))
