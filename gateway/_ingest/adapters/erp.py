"""The generic ERP feed: our own documented JSON dialect that ERP integrators target.

Request::

    POST /webhooks/erp/{tenant}
    Content-Type: application/json
    X-Gateway-Timestamp: 1764036000                 (unix seconds)
    X-Gateway-Signature: sha256=<hex>               HMAC-SHA256(secret, timestamp + "." + body)

    {"events": [ {"event_id": "...", "platform": "douyin", "order_no": "...",
                  "status": "WAIT_AUDIT", "occurred_at": "2026-11-25T10:00:00+08:00", ...}, ... ]}

A bare JSON array of events is accepted too. Fields and statuses are read by
``config/rules/erp.toml``. The timestamp must be within ``REPLAY_WINDOW_S`` (300 s) of the
gateway's clock, so a captured request cannot be replayed later; the signature covers the
timestamp. The secret is per tenant (``[tenants.NAME.erp]``).

Reply (200): ``{"ok": true, "accepted": N, "counts": {...}, "results": [...]}`` with one
result per event in order (``outcome``: new, applied, unchanged, late, duplicate,
quarantined). Refusals: ``{"ok": false, "error": "<reason>"}`` with 400/401/413/503.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gateway._errors import MalformedEventError, SignatureError
from gateway._ingest.adapters.base import RawRequest, Reply, check_allow_list, digest_equal
from gateway._settings import SourceCredentials
from gateway._signing import sign

REPLAY_WINDOW_S = 300



class ErpAdapter:
    """Adapter for the generic ERP feed (source name ``erp``)."""

    source = "erp"

    def verify(self, request: RawRequest, credentials: SourceCredentials, now_s: float) -> None:
        check_allow_list(request, credentials)
        timestamp = request.headers.get("x-gateway-timestamp", "")
        given = request.headers.get("x-gateway-signature", "")
        if not timestamp or not given:
            raise SignatureError("missing X-Gateway-Timestamp or X-Gateway-Signature")
        try:
            sent_at = int(timestamp)
        except ValueError:
            raise SignatureError("X-Gateway-Timestamp is not unix seconds") from None
        if abs(now_s - sent_at) > REPLAY_WINDOW_S:
            raise SignatureError(f"timestamp outside the {REPLAY_WINDOW_S} s replay window")
        expected = sign(credentials.secret.reveal(), timestamp, request.body)
        if not digest_equal(expected, given):
            raise SignatureError("signature does not verify")

    def decode(self, request: RawRequest) -> list[dict[str, Any]]:
        try:
            body = orjson.loads(request.body)
        except orjson.JSONDecodeError as exc:
            raise MalformedEventError(f"body is not JSON: {exc}") from exc
        events = body.get("events") if isinstance(body, dict) else body
        if not isinstance(events, list):
            raise MalformedEventError('body must be {"events": [...]} or a JSON array of events')
        return events

    def success(self, summary: Mapping[str, Any]) -> Reply:
        return Reply(200, orjson.dumps({"ok": True, **summary}))

    def failure(self, status: int, reason: str) -> Reply:
        return Reply(status, orjson.dumps({"ok": False, "error": reason}))
