"""The local API for operators and engineers (``/api/v1/...``, bearer token).

Routes::

    GET  /api/v1/rules                              live rule set, last reload error
    POST /api/v1/rules/reload                       reload rule files now
    GET  /api/v1/tenants/{tenant}/orders/{order_id} order + its audit trail
    GET  /api/v1/tenants/{tenant}/quarantine        quarantined events
    POST /api/v1/tenants/{tenant}/quarantine/release  {"ids": [...]} | {"all": true}:
                                                    re-read under the live rules
    GET  /api/v1/tenants/{tenant}/events?after=N&limit=M   the event log
    GET  /api/v1/tenants/{tenant}/audit/verify      check the audit hash chain
    GET  /api/v1/channels                           outbound message channels (PDD WebSocket)
    GET  /api/v1/devices?station=S                  the stations' devices: state, since, reconnects,
                                                    events, last error, detail
    GET  /api/v1/outbox                             backlog, oldest age, last error
    GET  /api/v1/outbox/dead?after=N&limit=M&tenant=T   dead letters with reasons
    POST /api/v1/outbox/requeue  {"ids": [...]} | {"all": true}   dead letters back
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from itertools import islice

import trio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway._errors import BackpressureError, StoreError
from gateway._pipeline import now_ms, plan_release
from gateway._server.http import Handler, ids_or_all, int_param, json_response
from gateway._server.services import Services

log = logging.getLogger(__name__)


def api_routes(services: Services, protected: Callable[[Handler], Handler]) -> list[Route]:
    """The local API's routes bound to ``services``, each behind ``protected``."""
    settings = services.settings

    async def rules_info(request: Request) -> Response:
        holder = services.rules
        live = holder.current
        return json_response({
            "digest": live.digest,
            "sources": {name: {"version": r.version, "kind": r.kind, "statuses": len(r.status)}
                        for name, r in sorted(live.items())},
            "reloads_ok": holder.successes,
            "reloads_failed": holder.failures,
            "last_error": str(holder.last_error) if holder.last_error else None,
        })

    async def rules_reload(request: Request) -> Response:
        outcome = services.rules.reload()
        return json_response({"ok": outcome.ok, "error": str(outcome.error) if outcome.error else None,
                              "digest": services.rules.current.digest}, 200 if outcome.ok else 422)

    async def order(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        order_id = request.path_params["order_id"]
        state = services.store.get_order(tenant, order_id)
        if state is None:
            return json_response({"error": "no such order"}, 404)
        return json_response({"order": state.to_dict(), "audit": list(services.store.iter_audit(tenant, order_id))})

    async def quarantine(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        limit = int_param(request, "limit", 100)
        items = list(islice(services.store.iter_quarantine(tenant), limit))
        return json_response({"count": services.store.quarantine_count(tenant), "items": items})

    async def quarantine_release(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        ids = await ids_or_all(request)
        if isinstance(ids, Response):
            return ids
        release = await trio.to_thread.run_sync(
            plan_release, services.store, services.rules.current, tenant, ids, now_ms(),
            settings.http.max_events_per_request)
        try:
            report = await services.pipeline.submit(release.events)
        except BackpressureError as exc:
            return json_response({"error": str(exc)}, 503, {"Retry-After": str(exc.retry_after_s)})
        results = [{"seq": e.release_of, **r.to_dict()} for e, r in zip(release.events, report.results, strict=True)]
        released = sum(1 for r in report.results if r.outcome != "quarantined")
        log.info("tenant %s: released %d quarantined events, %d stay", tenant, released,
                 len(release.kept) + len(results) - released)
        return json_response({"released": released, "results": results, "kept": release.kept,
                              "more": release.more, "quarantined": services.store.quarantine_count(tenant)})

    async def events(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        after = int_param(request, "after", 0)
        limit = int_param(request, "limit", 100)
        return json_response({"items": list(islice(services.store.iter_events(tenant, after), limit))})

    async def audit_verify(request: Request) -> Response:
        result = services.store.verify_audit_chain(request.path_params["tenant"])
        return json_response({"ok": result.ok, "records": result.records, "first_bad_seq": result.first_bad_seq,
                              "reason": result.reason}, 200 if result.ok else 409)

    async def channels(request: Request) -> Response:
        return json_response({"channels": [{"source": "pinduoduo", "tenant": c.tenant, "endpoint": c.url_base,
                                            "client_id": c.client_id, **c.stats.report()}
                                           for c in services.channels]})

    async def devices(request: Request) -> Response:
        station = request.query_params.get("station") or None
        return json_response({"devices": services.devices.report(station), "summary": services.devices.summary()})

    async def outbox(request: Request) -> Response:
        return json_response(services.outbox_report())

    async def outbox_dead(request: Request) -> Response:
        after = int_param(request, "after", 0)
        limit = int_param(request, "limit", 100)
        tenant = request.query_params.get("tenant")
        letters = services.store.iter_dead(after)
        if tenant:
            letters = (d for d in letters if d.get("event", {}).get("tenant") == tenant)
        return json_response({"count": services.store.dead_count(), "items": list(islice(letters, limit))})

    async def outbox_requeue(request: Request) -> Response:
        ids = await ids_or_all(request)
        if isinstance(ids, Response):
            return ids
        try:
            seqs = await trio.to_thread.run_sync(services.store.requeue_dead, ids)
        except StoreError as exc:
            return json_response({"error": f"store: {exc}"}, 503, {"Retry-After": "5"})
        log.info("requeued %d dead letters through the API", len(seqs))
        return json_response({"requeued": len(seqs), "outbox_seqs": seqs})

    return [
        Route("/api/v1/rules", protected(rules_info), methods=["GET"]),
        Route("/api/v1/rules/reload", protected(rules_reload), methods=["POST"]),
        Route("/api/v1/tenants/{tenant}/orders/{order_id:path}", protected(order), methods=["GET"]),
        Route("/api/v1/tenants/{tenant}/quarantine", protected(quarantine), methods=["GET"]),
        Route("/api/v1/tenants/{tenant}/quarantine/release", protected(quarantine_release), methods=["POST"]),
        Route("/api/v1/tenants/{tenant}/events", protected(events), methods=["GET"]),
        Route("/api/v1/tenants/{tenant}/audit/verify", protected(audit_verify), methods=["GET"]),
        Route("/api/v1/channels", protected(channels), methods=["GET"]),
        Route("/api/v1/devices", protected(devices), methods=["GET"]),
        Route("/api/v1/outbox", protected(outbox), methods=["GET"]),
        Route("/api/v1/outbox/dead", protected(outbox_dead), methods=["GET"]),
        Route("/api/v1/outbox/requeue", protected(outbox_requeue), methods=["POST"]),
    ]


__all__ = ["api_routes"]
