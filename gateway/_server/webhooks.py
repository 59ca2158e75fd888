"""``POST /webhooks/{source}/{tenant}``: the internet-facing route.

Each request is verified by its source's adapter with the tenant's own secret (constant
time, replay window, allow-list), decoded, normalised under the live rules and submitted to
the pipeline; the platform's own reply goes back only once the events are durable.
Status codes: 200 stored durably (or a duplicate of something stored), 400 malformed, 401
signature / tenant / allow-list, 404 unknown source, 413 body or batch too large, 503
backpressure or store failure with ``Retry-After``: on every non-2xx nothing was stored.
"""

from __future__ import annotations

import logging
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway._addresses import Network, client_address, parse_networks
from gateway._errors import BackpressureError, IngestError, PayloadTooLargeError, StoreError
from gateway._ingest import ADAPTERS, RawRequest, Reply
from gateway._pipeline import now_ms
from gateway._rules import normalise_batch
from gateway._server.http import json_response, read_body
from gateway._server.services import Services
from gateway._settings import TENANT_NAME

log = logging.getLogger(__name__)


def _reply(reply: Reply, headers: dict[str, str] | None = None) -> Response:
    return Response(reply.body, reply.status, headers, media_type=reply.content_type)


def _headers(request: Request) -> dict[str, str]:
    """The request's headers, names lower-cased (ASGI gives them so); a repeated header
    keeps its last value."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in request.scope["headers"]}


def _raw_request(request: Request, headers: dict[str, str], body: bytes,
                 trusted_proxies: tuple[Network, ...]) -> RawRequest:
    """The adapters' view of ``request``: ``_headers``, the peer resolved through trusted
    proxies (``gateway._addresses``)."""
    scope = request.scope
    query = scope.get("query_string", b"")
    client = scope.get("client")
    peer = client[0] if client else ""
    if trusted_proxies:
        forwarded = [v.decode("latin-1") for n, v in scope["headers"] if n == b"x-forwarded-for"]
        peer = client_address(peer, ",".join(forwarded) or None, trusted_proxies)
    return RawRequest(headers=headers, body=body, query=dict(request.query_params) if query else {}, peer=peer)


def webhook_routes(services: Services) -> list[Route]:
    """The webhook route bound to ``services``."""
    settings = services.settings
    metrics = services.metrics
    trusted_proxies = parse_networks(settings.http.trusted_proxies)

    async def webhook(request: Request) -> Response:
        source = request.path_params["source"]
        tenant = request.path_params["tenant"]
        adapter = ADAPTERS.get(source)
        rules = services.rules.current.get(source)
        if adapter is None or rules is None:
            metrics.refused.labels(source[:32], "unknown_source").inc()
            return json_response({"ok": False, "error": f"unknown source {source!r}"}, 404)
        credentials = settings.credentials(tenant, source) if TENANT_NAME.match(tenant) else None
        if credentials is None:
            metrics.refused.labels(source, "unknown_tenant").inc()
            return _reply(adapter.failure(401, "unknown tenant for this source"))
        try:
            headers = _headers(request)
            body = await read_body(request, settings.http.max_body_bytes, headers.get("content-length"))
            raw = _raw_request(request, headers, body, trusted_proxies)
            adapter.verify(raw, credentials, time.time())
            decoded = adapter.decode(raw)
            if len(decoded) > settings.http.max_events_per_request:
                raise PayloadTooLargeError(
                    f"{len(decoded)} events is over max_events_per_request={settings.http.max_events_per_request}")
            events = normalise_batch(rules, tenant, decoded, now_ms())
            report = await services.pipeline.submit(events)
        except IngestError as exc:
            reason = type(exc).__name__.removesuffix("Error").lower()
            metrics.refused.labels(source, reason).inc()
            log.info("refused %s webhook for tenant %s: %s", source, tenant, exc)
            return _reply(adapter.failure(exc.http_status, str(exc)))
        except BackpressureError as exc:
            metrics.refused.labels(source, "backpressure").inc()
            return _reply(adapter.failure(503, str(exc)), {"Retry-After": str(exc.retry_after_s)})
        except StoreError:
            metrics.refused.labels(source, "store").inc()
            return _reply(adapter.failure(503, "store unavailable"), {"Retry-After": "5"})
        return _reply(adapter.success({
            "accepted": len(report.results),
            "counts": report.counts(),
            "results": [r.to_dict() for r in report.results],
        }))

    return [Route("/webhooks/{source}/{tenant}", webhook, methods=["POST"])]


__all__ = ["webhook_routes"]
