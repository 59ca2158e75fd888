"""Kuaidi100 (快递100) subscription push.

Request (PROTOCOLS.md; partly confirmed)::

    POST /webhooks/kuaidi100/{tenant}
    Content-Type: application/x-www-form-urlencoded

    param=<JSON>&sign=<UPPER(hex MD5(param + salt))>

``param`` is the JSON text exactly as sent (after form decoding); ``salt`` is the tenant's
secret (the salt given when subscribing). ``param`` holds ``status`` (polling / shutdown /
abort / updateall), ``message`` and ``lastResult`` ``{state, com, nu, ischeck, data[]}``.
Kuaidi100 sends no timestamp, so there is no replay window: a replayed push composes the
same event id (waybill | state | latest trace time) and is de-duplicated.

``param`` is JSON-decoded in place, giving ``{"param": {...}, "sign": "..."}`` (plus any other
form fields) for ``config/rules/kuaidi100.toml``.

Replies: ``{"result": true, "returnCode": "200", "message": "成功"}``; a refusal ``{"result":
false, "returnCode": "<HTTP status>", "message": "<reason>"}`` with that status (Kuaidi100
retries a push that was not answered with success).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from gateway._errors import MalformedEventError, SignatureError
from gateway._ingest.adapters.base import RawRequest, Reply, check_allow_list, digest_equal
from gateway._ingest.adapters.forms import embedded_object, parse_form
from gateway._settings import SourceCredentials

SUCCESS = orjson.dumps({"result": True, "returnCode": "200", "message": "成功"})


def sign(param: str, salt: bytes) -> str:
    """The ``sign`` field: UPPER(hex MD5(param + salt))."""
    return hashlib.md5(param.encode() + salt).hexdigest().upper()


class Kuaidi100Adapter:
    """Adapter for the Kuaidi100 tracking push (source ``kuaidi100``)."""

    source = "kuaidi100"

    def verify(self, request: RawRequest, credentials: SourceCredentials, now_s: float) -> None:
        check_allow_list(request, credentials)
        fields = parse_form(request.body)
        param = fields.get("param", "")
        given = fields.get("sign", "")
        if not param or not given:
            raise SignatureError("missing param or sign field")
        if not digest_equal(sign(param, credentials.secret.reveal()), given):
            raise SignatureError("signature does not verify")

    def decode(self, request: RawRequest) -> list[dict[str, Any]]:
        fields: dict[str, Any] = dict(parse_form(request.body))
        if "param" not in fields:
            raise MalformedEventError("no param field")
        fields["param"] = embedded_object(fields["param"], "param")
        return [fields]

    def success(self, summary: Mapping[str, Any]) -> Reply:
        return Reply(200, SUCCESS)

    def failure(self, status: int, reason: str) -> Reply:
        return Reply(status, orjson.dumps({"result": False, "returnCode": str(status), "message": reason}))
