"""The demo's upstream ERP: a route of the gateway's own HTTP server that plays the ERP.

With ``[demo] enabled`` and no ``[upstream] url`` the daemon forwards the outbox here, so
``make run`` shows the whole path from webhook to ERP on one port.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

import orjson

from gateway._signing import sign

log = logging.getLogger("gateway.demo")

DEMO_UPSTREAM_PATH = "/demo/upstream"
DEMO_UPSTREAM_SECRET = "demo-upstream-secret"  # a demo value, used on loopback only


def demo_upstream_endpoint() -> Any:
    """A Starlette endpoint playing the upstream ERP for the demo.

    It checks the batch signature exactly as an ERP should (HMAC-SHA256 over timestamp +
    "." + body, constant-time), de-duplicates by ``event_id`` and logs what arrived, so
    ``make run`` shows events leaving the outbox. It answers ``gateway doctor``'s probe (a
    signed batch ``{"events": [], "probe": true}``) with 200. Mounted only with ``[demo] enabled``.
    """
    from starlette.requests import Request
    from starlette.responses import Response

    seen: set[str] = set()

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        timestamp = request.headers.get("x-gateway-timestamp", "")
        expected = sign(DEMO_UPSTREAM_SECRET.encode(), timestamp, body)
        if not hmac.compare_digest(expected, request.headers.get("x-gateway-signature", "")):
            return Response(b'{"ok":false,"error":"bad signature"}', 401, media_type="application/json")
        batch = orjson.loads(body)
        if batch.get("probe") is True and not batch["events"]:
            # `gateway doctor`'s signed probe (gateway._appliance.doctor_net): a batch without
            # events that an ERP following the contract accepts as a no-op.
            log.info("demo upstream ERP <- signed probe %s from gateway %s: signature OK", batch.get("batch_id"),
                     batch.get("gateway_id"))
            return Response(b'{"ok":true,"probe":true}', 200, media_type="application/json")
        fresh = [e for e in batch["events"] if e["event_id"] not in seen]
        seen.update(e["event_id"] for e in fresh)
        if len(seen) > 100_000:
            seen.clear()
        log.info("demo upstream ERP <- batch %s: %d events (%d new) %s", batch["batch_id"], len(batch["events"]),
                 len(fresh), ", ".join(f"{e['order_id']}:{e['status'] if e['type'] != 'merge_pack' else 'merge_pack'}"
                                       for e in fresh[:4])
                 + (" ..." if len(fresh) > 4 else ""))
        for event in fresh:
            if event.get("type") == "merge_pack":
                log.info("demo upstream ERP <- merge-pack instruction: pack %s in one parcel",
                         " + ".join(event["data"]["orders"]))
        return Response(b'{"ok":true}', 200, media_type="application/json")

    return endpoint
