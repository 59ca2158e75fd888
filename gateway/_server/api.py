"""The local API for operators and engineers (``/api/v1/...``, bearer token).

Routes, with the least role each needs and what a token of one tenant (not ``*``) gets
(``gateway._server.http.token_guard``; another tenant's ``{tenant}`` is always the route's
own 404)::

    GET  /api/v1/rules                              viewer      live rule set, last reload error
    POST /api/v1/rules/reload                       supervisor  reload rule files now (``*`` only:
                                                                every tenant's rules)
    GET  /api/v1/tenants/{tenant}/orders/{order_id} viewer      order + its audit trail
    GET  /api/v1/tenants/{tenant}/quarantine?cursor=C&limit=N   viewer   quarantined events
    POST /api/v1/tenants/{tenant}/quarantine/release  supervisor  {"ids": [...]} | {"all": true}:
                                                                re-read under the live rules
    GET  /api/v1/tenants/{tenant}/events?after=N&limit=M   viewer   the event log
    GET  /api/v1/tenants/{tenant}/audit/verify      viewer      check the audit hash chain
    GET  /api/v1/channels                           viewer      outbound message channels (PDD
                                                                WebSocket); only its own tenant's
    GET  /api/v1/devices?station=S                  viewer      the stations' devices: state, since,
                                                                reconnects, events, last error, detail
                                                                (no tenant's data: any token)
    GET  /api/v1/outbox                             viewer      backlog, oldest age, last error
                                                                (``*`` only: every tenant's backlog)
    GET  /api/v1/outbox/dead?after=N&limit=M&tenant=T   viewer  dead letters with reasons; only its
                                                                own tenant's (``count`` too)
    POST /api/v1/outbox/requeue  {"ids": [...]} | {"all": true}   supervisor   dead letters back;
                                                                only its own tenant's (others' ids
                                                                are skipped as if absent)
    GET  /api/v1/tokens                             admin, ``*``  the tokens (never a secret)
    POST /api/v1/tokens  {"name", "tenant", "role"} admin, ``*``  201 with the secret, shown once
    DELETE /api/v1/tokens/{name}                    admin, ``*``  revoke (refused within a second)

Lists page by cursor (``gateway._ops.paging``): the quarantine, the event log and the dead
letters answer ``next_cursor`` (``null`` on the last page), passed back as ``cursor``; one not
handed out is a 400 ``bad_cursor``. The event log and the dead letters also answer
``next_after`` for clients that page with ``after=N`` (the CLI). ``limit`` is clamped to
1..10,000 (default 100).
"""

from __future__ import annotations

import logging
from itertools import islice
from typing import Any

import orjson
import trio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway._errors import BackpressureError, GatewayError, StoreError
from gateway._ops.paging import encode_cursor
from gateway._pipeline import now_ms, plan_release
from gateway._server.http import (
    Protect,
    cursor_param,
    ids_or_all,
    int_param,
    json_response,
    page_limit,
    read_body,
    request_token,
)
from gateway._server.services import Services
from gateway._server.tokens import (
    ALL_TENANTS,
    TokenExistsError,
    UnknownTokenError,
    create_token,
    revoke_token,
)

log = logging.getLogger(__name__)


def api_routes(services: Services, protected: Protect) -> list[Route]:
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
        limit = page_limit(request, 100)
        cursor = cursor_param(request, "quarantine", (int,))
        if isinstance(cursor, Response):
            return cursor
        after = int(cursor[0]) if cursor else 0
        items = list(islice((q for q in services.store.iter_quarantine(tenant) if q["seq"] > after), limit + 1))
        return json_response({"count": services.store.quarantine_count(tenant), "items": items[:limit],
                              "next_cursor": _next_cursor("quarantine", items, limit, "seq")})

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
        request.state.audit = {"released": released, "seqs": [e.release_of for e in release.events][:100]}
        return json_response({"released": released, "results": results, "kept": release.kept,
                              "more": release.more, "quarantined": services.store.quarantine_count(tenant)})

    async def events(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        limit = page_limit(request, 100)
        cursor = cursor_param(request, "events", (int,))
        if isinstance(cursor, Response):
            return cursor
        after = int(cursor[0]) if cursor else int_param(request, "after", 0)
        items = list(islice(services.store.iter_events(tenant, after), limit + 1))
        return json_response({"items": items[:limit], **_next_page("events", items, limit, "seq")})

    async def audit_verify(request: Request) -> Response:
        result = services.store.verify_audit_chain(request.path_params["tenant"])
        return json_response({"ok": result.ok, "records": result.records, "first_bad_seq": result.first_bad_seq,
                              "reason": result.reason}, 200 if result.ok else 409)

    async def channels(request: Request) -> Response:
        token = request_token(request)
        return json_response({"channels": [{"source": "pinduoduo", "tenant": c.tenant, "endpoint": c.url_base,
                                            "client_id": c.client_id, **c.stats.report()}
                                           for c in services.channels if token.sees(c.tenant)]})

    async def devices(request: Request) -> Response:
        station = request.query_params.get("station") or None
        return json_response({"devices": services.devices.report(station), "summary": services.devices.summary()})

    async def outbox(request: Request) -> Response:
        return json_response(services.outbox_report())

    async def outbox_dead(request: Request) -> Response:
        limit = page_limit(request, 100)
        cursor = cursor_param(request, "dead", (int,))
        if isinstance(cursor, Response):
            return cursor
        after = int(cursor[0]) if cursor else int_param(request, "after", 0)
        token = request_token(request)
        tenant = request.query_params.get("tenant")
        if token.tenant != ALL_TENANTS:  # its own letters only, and their count
            if tenant and tenant != token.tenant:  # as for a tenant without dead letters
                return json_response({"count": 0, "items": [], "next_cursor": None, "next_after": None})
            mine = await trio.to_thread.run_sync(lambda: [
                d for d in services.store.iter_dead() if d.get("event", {}).get("tenant") == token.tenant])
            page = [d for d in mine if d["outbox_seq"] > after][:limit + 1]
            return json_response({"count": len(mine), "items": page[:limit],
                                  **_next_page("dead", page, limit, "outbox_seq")})
        letters = services.store.iter_dead(after)
        if tenant:
            letters = (d for d in letters if d.get("event", {}).get("tenant") == tenant)
        page = list(islice(letters, limit + 1))
        return json_response({"count": services.store.dead_count(), "items": page[:limit],
                              **_next_page("dead", page, limit, "outbox_seq")})

    async def outbox_requeue(request: Request) -> Response:
        ids = await ids_or_all(request)
        if isinstance(ids, Response):
            return ids
        token = request_token(request)
        chosen: list[int] | None = ids
        if token.tenant != ALL_TENANTS:  # only the token's own letters; others' ids as if absent
            wanted = None if ids is None else set(ids)
            chosen = await trio.to_thread.run_sync(lambda: [
                d["outbox_seq"] for d in services.store.iter_dead()
                if d.get("event", {}).get("tenant") == token.tenant and (wanted is None or d["outbox_seq"] in wanted)])
            if not chosen:
                return json_response({"requeued": 0, "outbox_seqs": []})
        try:
            seqs = await trio.to_thread.run_sync(services.store.requeue_dead, chosen)
        except StoreError as exc:
            return json_response({"error": f"store: {exc}"}, 503, {"Retry-After": "5"})
        log.info("requeued %d dead letters through the API (token %s)", len(seqs), token.name)
        request.state.audit = {"requeued": len(seqs), "dead_ids": chosen[:100] if chosen is not None else "all"}
        return json_response({"requeued": len(seqs), "outbox_seqs": seqs})

    tokens_path = settings.tokens_path

    async def tokens(request: Request) -> Response:
        assert services.tokens is not None  # build_app sets it
        return json_response({"tokens": [t.to_dict() for t in services.tokens.tokens()]})

    async def token_create(request: Request) -> Response:
        try:
            body = orjson.loads(await read_body(request, 64 * 1024, request.headers.get("content-length")))
        except orjson.JSONDecodeError:
            body = None
        fields = [body.get(k) if isinstance(body, dict) else None for k in ("name", "tenant", "role")]
        if not all(isinstance(f, str) for f in fields):
            return json_response({"error": 'give {"name": ..., "tenant": "<tenant>" or "*", "role": '
                                           '"viewer|operator|supervisor|admin"}'}, 400)
        name, tenant, role = (str(f) for f in fields)
        try:
            token, secret = await trio.to_thread.run_sync(lambda: create_token(
                tokens_path, name, tenant, role, actor=request_token(request).actor, known_tenants=settings.tenants))
        except TokenExistsError as exc:
            return json_response({"error": str(exc)}, 409)
        except GatewayError as exc:
            return json_response({"error": str(exc)}, 400)
        assert services.tokens is not None
        services.tokens.refresh(force=True)
        log.info("API token %s created (tenant %s, role %s) by %s", name, tenant, role, request_token(request).name)
        request.state.audit = {"token_created": token.to_dict()}
        return json_response({"token": token.to_dict(), "secret": secret}, 201)

    async def token_revoke(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            token = await trio.to_thread.run_sync(lambda: revoke_token(tokens_path, name,
                                                                       actor=request_token(request).actor))
        except UnknownTokenError as exc:
            return json_response({"error": str(exc)}, 404)
        except GatewayError as exc:
            return json_response({"error": str(exc)}, 400)
        assert services.tokens is not None
        services.tokens.refresh(force=True)
        log.info("API token %s revoked by %s", name, request_token(request).name)
        request.state.audit = {"token_revoked": token.to_dict()}
        return json_response({"revoked": token.to_dict()})

    return [
        Route("/api/v1/rules", protected(rules_info, "viewer", any_tenant=True), methods=["GET"]),
        Route("/api/v1/rules/reload", protected(rules_reload, "supervisor"), methods=["POST"]),
        Route("/api/v1/tenants/{tenant}/orders/{order_id:path}", protected(order, "viewer", missing="no such order"),
              methods=["GET"]),
        Route("/api/v1/tenants/{tenant}/quarantine", protected(quarantine, "viewer"), methods=["GET"]),
        Route("/api/v1/tenants/{tenant}/quarantine/release", protected(quarantine_release, "supervisor"),
              methods=["POST"]),
        Route("/api/v1/tenants/{tenant}/events", protected(events, "viewer"), methods=["GET"]),
        Route("/api/v1/tenants/{tenant}/audit/verify", protected(audit_verify, "viewer"), methods=["GET"]),
        Route("/api/v1/channels", protected(channels, "viewer", any_tenant=True), methods=["GET"]),
        Route("/api/v1/devices", protected(devices, "viewer", any_tenant=True), methods=["GET"]),
        Route("/api/v1/outbox", protected(outbox, "viewer"), methods=["GET"]),
        Route("/api/v1/outbox/dead", protected(outbox_dead, "viewer", any_tenant=True), methods=["GET"]),
        Route("/api/v1/outbox/requeue", protected(outbox_requeue, "supervisor", any_tenant=True), methods=["POST"]),
        Route("/api/v1/tokens", protected(tokens, "admin"), methods=["GET"]),
        Route("/api/v1/tokens", protected(token_create, "admin"), methods=["POST"]),
        Route("/api/v1/tokens/{name}", protected(token_revoke, "admin"), methods=["DELETE"]),
    ]


def _next_cursor(kind: str, fetched: list[dict[str, Any]], limit: int, field: str) -> str | None:
    """The cursor after the page ``fetched[:limit]`` (``fetched`` has one item more when
    the list goes on), or ``None`` on the last page."""
    return encode_cursor(kind, (fetched[limit - 1][field],)) if len(fetched) > limit else None


def _next_page(kind: str, fetched: list[dict[str, Any]], limit: int, field: str) -> dict[str, Any]:
    """``next_cursor`` and, for the clients that page with ``after=N``, ``next_after``."""
    more = len(fetched) > limit
    return {"next_cursor": _next_cursor(kind, fetched, limit, field),
            "next_after": fetched[limit - 1][field] if more else None}


__all__ = ["api_routes"]
