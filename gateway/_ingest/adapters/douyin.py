"""Douyin shop (抖店) message push.

Request (PROTOCOLS.md; zsmhub/doudian-sdk, cnJun/sdk4-jinritemai)::

    POST /webhooks/douyin/{tenant}
    app-id: <app_key>
    event-sign: <lower-case hex MD5(app_key + raw_body + app_secret)>

    [{"tag": "101", "msg_id": "...", "data": "{\\"p_id\\": 6919..., \\"order_status\\": 2, ...}"}, ...]

The signature is a plain MD5 (not an HMAC), compared case-insensitively in constant time.
``app-id`` must equal the tenant's configured ``app_key`` (``[tenants.T.douyin] app_key``,
required at config load; a tenant without one is refused with 401 here too), and the secret
is the tenant's app secret. Douyin sends no timestamp, so there is no replay window: a
replayed push has the same ``msg_id`` and is de-duplicated as a duplicate delivery.

Each element's ``data`` JSON string is decoded in place for ``config/rules/douyin.toml``.
Tag 400 (product changed) names no order: an element of tag 400 without ``data.p_id`` is
skipped (answered, not stored).

Replies: ``{"code": 0, "msg": "success"}``; a refusal ``{"code": 1, "msg": "fail"}`` with the
HTTP status (401/400/413/503). The reason goes to our log only: Douyin shows none of it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import orjson

from gateway._errors import MalformedEventError, SignatureError
from gateway._ingest.adapters.base import RawRequest, Reply, check_allow_list, digest_equal
from gateway._ingest.adapters.forms import embedded_object, json_array_of_objects
from gateway._settings import SourceCredentials

SUCCESS = orjson.dumps({"code": 0, "msg": "success"})
FAIL = orjson.dumps({"code": 1, "msg": "fail"})
PRODUCT_CHANGED = "400"


def sign(app_key: str, body: bytes, secret: bytes) -> str:
    """The ``event-sign`` header value: lower-case hex MD5(app_key + body + secret)."""
    return hashlib.md5(app_key.encode() + body + secret).hexdigest()


class DouyinAdapter:
    """Adapter for the Douyin shop message push (source ``douyin``)."""

    source = "douyin"

    def verify(self, request: RawRequest, credentials: SourceCredentials, now_s: float) -> None:
        check_allow_list(request, credentials)
        if not credentials.app_key:
            raise SignatureError("no app_key configured for this tenant's douyin source")
        app_id = request.headers.get("app-id", "")
        given = request.headers.get("event-sign", "")
        if not app_id or not given:
            raise SignatureError("missing app-id or event-sign header")
        if not hmac.compare_digest(app_id.strip().encode(), credentials.app_key.encode()):
            raise SignatureError("app-id is not this tenant's app")
        expected = sign(credentials.app_key, request.body, credentials.secret.reveal())
        if not digest_equal(expected, given):
            raise SignatureError("signature does not verify")

    def decode(self, request: RawRequest) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for index, item in enumerate(json_array_of_objects(request.body, "{tag, msg_id, data}")):
            for key in ("tag", "msg_id"):
                if not isinstance(item.get(key), str | int) or isinstance(item.get(key), bool):
                    raise MalformedEventError(f"[{index}]: {key} missing or not a string")
            item["data"] = embedded_object(item.get("data"), f"[{index}].data")
            if str(item["tag"]) == PRODUCT_CHANGED and item["data"].get("p_id") is None:
                continue
            events.append(item)
        return events

    def success(self, summary: Mapping[str, Any]) -> Reply:
        return Reply(200, SUCCESS)

    def failure(self, status: int, reason: str) -> Reply:
        return Reply(status, FAIL)
