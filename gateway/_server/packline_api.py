"""The pack line in the local API (bearer token): stations, sessions, labels, evidence, alerts.

Routes (reads need the role ``viewer``, a label decision ``operator``; ``/api/v1/stations``
shows sessions of every tenant, so it needs a token of tenant ``*``; another tenant's
``{tenant}`` is the route's own 404)::

    GET  /api/v1/stations                                  each station: operator, open session,
                                                           label state, last verdict
    GET  /api/v1/tenants/{tenant}/sessions/{session_id}    a session: bill, timeline, state
    GET  /api/v1/tenants/{tenant}/labels?state=S&cursor=C&limit=N   label jobs (``uncertain``
                                                           ones wait for a person), newest first
    POST /api/v1/tenants/{tenant}/labels/{job_id}/decide   {"decision": "printed" | "reprint" |
                                                           "cancel", "by": "<who>"}: audited
    GET  /api/v1/tenants/{tenant}/evidence/{order_id}      the clip reference of every
                                                           session that packed the order, with
                                                           each scan's offset into the clip
    GET  /api/v1/tenants/{tenant}/packline/{kind}          the watch lists: ``intercept``,
                                                           ``hold``, ``parcel``, ``alert``,
                                                           ``plan`` (``?cursor=C&limit=N``, 500)

Lists page by cursor (``gateway._ops.paging``): ``next_cursor`` is ``null`` on the last page;
pass it back as ``cursor``; one not handed out is a 400 ``bad_cursor``. ``limit`` is clamped
to 1..10,000.

A decision needs ``by`` (the person, recorded in the order's audit trail as ``api:<by>``; the
token's name is in the gateway's audit chain, ``token:<name>``);
without the pack line running (no ``[stations.*]``) the station routes answer 404.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

import orjson
import trio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway._errors import BackpressureError
from gateway._ops.paging import Key, Page, encode_cursor, page_of
from gateway._packline.session_records import read_session
from gateway._server.http import Protect, cursor_param, json_response, page_limit, read_body
from gateway._server.services import Services

#: The 404 of an order without evidence (and of another tenant's order).
NO_EVIDENCE = "no evidence for this order (not packed at a station with a camera)"
#: The watch lists ``GET .../packline/{kind}`` shows.
WATCH_KINDS = ("intercept", "hold", "parcel", "alert", "plan")


def packline_routes(services: Services, protected: Protect) -> list[Route]:
    """The pack line's API routes bound to ``services``, each behind ``protected``."""
    store = services.store

    async def stations(request: Request) -> Response:
        line = services.packline
        if line is None:
            return json_response({"error": "no pack stations are configured ([stations.*])"}, 404)
        return json_response({"stations": line.stations_report()})

    async def session(request: Request) -> Response:
        record = read_session(store, request.path_params["tenant"], request.path_params["session_id"])
        if record is None:
            return json_response({"error": "no such session"}, 404)
        return json_response(record)

    async def labels(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        wanted = request.query_params.get("state", "")
        limit = page_limit(request, 100)
        after = cursor_param(request, "labels", (int, str))
        if isinstance(after, Response):
            return after

        def read() -> Page[tuple[str, dict[str, Any]]]:
            jobs = [(job_id, job) for _, job_id, job in store.iter_records("print", tenant)
                    if not wanted or job.get("state") == wanted]
            jobs.sort(key=_newest_first)
            return page_of(jobs, _newest_first, "labels", after, limit)

        page = await trio.to_thread.run_sync(read)
        return json_response({"labels": [{k: v for k, v in job.items() if k != "zpl"} for _, job in page.items],
                              "next_cursor": page.next_cursor})

    async def decide(request: Request) -> Response:
        line = services.packline
        if line is None:
            return json_response({"error": "no pack stations are configured ([stations.*])"}, 404)
        try:
            body = orjson.loads(await read_body(request, 64 * 1024, request.headers.get("content-length")))
        except orjson.JSONDecodeError:
            return json_response({"error": 'body must be JSON: {"decision": "printed|reprint|cancel", "by": "..."}'},
                                 400)
        decision = body.get("decision") if isinstance(body, dict) else None
        by = body.get("by") if isinstance(body, dict) else None
        if not isinstance(decision, str) or not isinstance(by, str) or not by.strip():
            return json_response({"error": 'give "decision" (printed, reprint or cancel) and "by" (who decides)'},
                                 400)
        try:
            job = await line.decide_label(request.path_params["tenant"], request.path_params["job_id"], decision,
                                          by.strip()[:64])
        except KeyError:
            return json_response({"error": "no such label job"}, 404)
        except ValueError as exc:
            return json_response({"error": str(exc)}, 409)
        except BackpressureError as exc:
            return json_response({"error": str(exc)}, 503, {"Retry-After": str(exc.retry_after_s)})
        return json_response({"job": {k: v for k, v in job.to_dict().items() if k != "zpl"}})

    async def evidence(request: Request) -> Response:
        tenant, order_id = request.path_params["tenant"], request.path_params["order_id"]
        found = await trio.to_thread.run_sync(
            lambda: [record for _, _, record in store.iter_records("evidence", tenant, id_prefix=order_id + "|")])
        pending = await trio.to_thread.run_sync(
            lambda: [r for _, _, r in store.iter_records("evidence_pending", tenant) if order_id in r["order_ids"]])
        if not found and not pending:
            return json_response({"error": NO_EVIDENCE}, 404)
        return json_response({"order_id": order_id, "evidence": found, "pending": pending})

    async def watch(request: Request) -> Response:
        tenant, kind = request.path_params["tenant"], request.path_params["kind"]
        if kind not in WATCH_KINDS:
            return json_response({"error": f"kind must be one of {', '.join(WATCH_KINDS)}"}, 404)
        limit = page_limit(request, 500)
        cursor = cursor_param(request, f"watch_{kind}", (str,))
        if isinstance(cursor, Response):
            return cursor
        after = str(cursor[0]) if cursor else None
        items = await trio.to_thread.run_sync(
            lambda: [{"id": record_id, **value} for _, record_id, value in
                     islice((r for r in store.iter_records(kind, tenant) if after is None or r[1] > after),
                            limit + 1)])
        more = len(items) > limit
        return json_response({"kind": kind, "items": items[:limit],
                              "next_cursor": encode_cursor(f"watch_{kind}", (items[limit - 1]["id"],)) if more
                              else None})

    return [
        Route("/api/v1/stations", protected(stations, "viewer")),
        Route("/api/v1/tenants/{tenant}/sessions/{session_id}", protected(session, "viewer", missing="no such session")),
        Route("/api/v1/tenants/{tenant}/labels", protected(labels, "viewer")),
        Route("/api/v1/tenants/{tenant}/labels/{job_id:path}/decide",
              protected(decide, "operator", missing="no such label job"), methods=["POST"]),
        Route("/api/v1/tenants/{tenant}/evidence/{order_id:path}", protected(evidence, "viewer", missing=NO_EVIDENCE)),
        Route("/api/v1/tenants/{tenant}/packline/{kind}", protected(watch, "viewer")),
    ]


def _newest_first(item: tuple[str, dict[str, Any]]) -> Key:
    """The label list's order: newest first, then by job id."""
    job_id, job = item
    created = job.get("created_at_ms", 0)
    return (-created if isinstance(created, int) else 0, job_id)


__all__ = ["NO_EVIDENCE", "WATCH_KINDS", "packline_routes"]
