"""Xiaohongshu (小红书, ark open platform) message push.

Request::

    POST /webhooks/xiaohongshu/{tenant}
    Content-Type: application/json
    x-xhs-signature: <hex HMAC-SHA256(secret, raw_body)>     (a "sha256=" prefix is accepted)

    [{"msgTag": "msg_fulfillment_status_change", "sellerId": "...",
      "data": "{\\"orderId\\": \\"P7...\\", \\"orderStatus\\": 4, ...}"}, ...]

UNCONFIRMED: the push signature. PROTOCOLS.md records no published rule for the push (the
legacy API sign covers requests *to* Xiaohongshu, not pushes), so this adapter implements
the scheme the platform's business article names — an HMAC-SHA256 of the raw body, hex
(either case), in a header — and makes the header configurable
(``[tenants.T.xiaohongshu] signature_header``, default ``x-xhs-signature``). Pair it with the
IP allow-list (``allow_ips``) of Xiaohongshu's published push addresses. No timestamp is
sent, so there is no replay window; a replayed message has the same composed event id and
is de-duplicated.

The envelope (a JSON array of ``{msgTag, sellerId, data}`` with ``data`` a JSON string) is as
PROTOCOLS states; ``data`` is decoded in place for ``config/rules/xiaohongshu.toml``.
``msg_item_create`` (product created) names no order and is skipped (answered, not stored).

Cross-border: ``orderStatus`` 3 ("customs clearance") is only ever reached by a cross-border
order, but the next push (4, awaiting shipment) overwrites the order's ``platform_status``.
So the adapter adds ``"crossBorder": true`` to a decoded ``data`` whose ``orderStatus`` is 3
(the number or its digits); the gateway adds it, the platform does not send it. The rules map
it to the order's ``xhs_cross_border``, which later pushes (that lack it) leave as it is.

Replies: ``{"success": true, "error_code": 0, "error_msg": ""}``; a refusal
``{"success": false, "error_code": <HTTP status>, "error_msg": "<reason>"}`` with that status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gateway._errors import MalformedEventError, SignatureError
from gateway._ingest.adapters.base import RawRequest, Reply, check_allow_list, digest_equal, hmac_hex
from gateway._ingest.adapters.forms import embedded_object, json_array_of_objects
from gateway._settings import SourceCredentials

SUCCESS = orjson.dumps({"success": True, "error_code": 0, "error_msg": ""})
SKIPPED_TAGS = frozenset({"msg_item_create"})
#: ``data.orderStatus`` of an order in customs clearance: a cross-border order.
CUSTOMS_CLEARANCE = 3
#: What the adapter adds to ``data`` of such a push (``[data] xhs_cross_border`` reads it).
CROSS_BORDER_KEY = "crossBorder"


def sign(secret: bytes, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``body`` keyed by the tenant secret (the header value)."""
    return hmac_hex(secret, "sha256", body)


def _in_customs_clearance(status: Any) -> bool:
    if isinstance(status, bool):
        return False
    if isinstance(status, int):
        return status == CUSTOMS_CLEARANCE
    return isinstance(status, str) and status.strip() == str(CUSTOMS_CLEARANCE)


class XiaohongshuAdapter:
    """Adapter for the Xiaohongshu push (source ``xiaohongshu``); signature UNCONFIRMED."""

    source = "xiaohongshu"

    def verify(self, request: RawRequest, credentials: SourceCredentials, now_s: float) -> None:
        check_allow_list(request, credentials)
        header = credentials.signature_header
        given = request.headers.get(header, "").strip()
        if not given:
            raise SignatureError(f"missing {header} header")
        if given[:7].lower() == "sha256=":
            given = given[7:]
        if not digest_equal(sign(credentials.secret.reveal(), request.body), given):
            raise SignatureError("signature does not verify")

    def decode(self, request: RawRequest) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for index, item in enumerate(json_array_of_objects(request.body, "{msgTag, sellerId, data}")):
            if not isinstance(item.get("msgTag"), str) or not item["msgTag"]:
                raise MalformedEventError(f"[{index}]: msgTag missing or not a string")
            item["data"] = embedded_object(item.get("data"), f"[{index}].data")
            if item["msgTag"] in SKIPPED_TAGS:
                continue
            if _in_customs_clearance(item["data"].get("orderStatus")):
                item["data"][CROSS_BORDER_KEY] = True
            events.append(item)
        return events

    def success(self, summary: Mapping[str, Any]) -> Reply:
        return Reply(200, SUCCESS)

    def failure(self, status: int, reason: str) -> Reply:
        return Reply(status, orjson.dumps({"success": False, "error_code": status, "error_msg": reason}))
