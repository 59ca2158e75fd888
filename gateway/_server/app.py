"""The Starlette application: the routes of every audience on one server.

Routes::

    GET  /livez, /healthz, /metrics (token)       gateway._server.health
    POST /webhooks/{source}/{tenant}               gateway._server.webhooks (signed per source)
    /api/v1/...  (token)                           gateway._server.api
    /api/v1/tenants/{tenant}/catalog|stock (token) gateway._server.catalog_api
    /api/v1/tenants/{tenant}/customs/... (token)   gateway._server.customs_api
    /api/v1/stations, .../labels, .../evidence/{order} (token)  gateway._server.packline_api
    /api/v1/tenants/{tenant}/buyers/lookup, .../orders/{id}/proof[.html|.png] (token)
                                                   gateway._server.lookup_api (after-sales)
    /api/v1/tenants/{tenant}/anomalies, .../oci (token)  gateway._server.ops_api
    POST /api/v1/admin/backup (admin, tenant *)    gateway._server.admin_api
    /api/v1/sandbox/candidates..., GET /sandbox    gateway._server.sandbox_api (rule sandbox: upload,
                                                   replay, promote; tenant *)
    POST /webhooks/erp/{tenant}/catalog             the ERP's product and stock updates (signed)
    GET  /stations, /stations/{name}[/events|/view] gateway._server.station_page (no token: the
                                                   pack line's screens)
    GET  /dashboard, /dashboard/_static/{file}     gateway._server.dashboard (no token: the page;
                                                   its data calls carry one)
    extra routes the daemon adds                   e.g. the demo's /demo/upstream

The local API wants ``Authorization: Bearer <token>``: the admin token (``[api] token_file``,
created at first start, mode 0600) or a scoped one (``gateway token create``; tenant, role
and their checks in ``gateway._server.tokens`` and ``http.token_guard``). Every API call
that changes something is recorded in the audit trail's gateway chain (tenant
``_gateway``), actor ``token:<name>``, before its answer goes out. Webhooks authenticate by
their platform's signature with the tenant's secret instead. A ``StoreError`` escaping any
route is a 503 with ``Retry-After``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from gateway._errors import BackpressureError, StoreError
from gateway._server.admin_api import admin_routes
from gateway._server.api import api_routes
from gateway._server.catalog_api import catalog_routes
from gateway._server.customs_api import customs_routes
from gateway._server.dashboard import dashboard_routes
from gateway._server.health import metrics_routes, probe_routes
from gateway._server.http import AuditHook, http_error_json, json_response, token_guard
from gateway._server.lookup_api import lookup_routes
from gateway._server.openapi import openapi_routes
from gateway._server.ops_api import ops_routes
from gateway._server.packline_api import packline_routes
from gateway._server.sandbox_api import sandbox_routes
from gateway._server.services import Services
from gateway._server.station_page import station_routes
from gateway._server.tokens import ApiToken, TokenRegistry, api_call_audit
from gateway._server.webhooks import webhook_routes
from gateway._store import StepWrite

log = logging.getLogger(__name__)


def build_app(services: Services, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The Starlette application bound to ``services``, with ``extra_routes`` appended."""
    if services.tokens is None:
        services.tokens = TokenRegistry(services.api_token, services.settings.tokens_path)
    protected = token_guard(services.tokens.authenticate, audit_to_store(services))
    routes: list[BaseRoute] = [  # Starlette tries them in order: the busiest first
        *probe_routes(services),
        *webhook_routes(services),
        *metrics_routes(services, protected),
        *lookup_routes(services, protected),  # before api_routes: its orders/{order_id:path} takes .../proof
        *api_routes(services, protected),
        *catalog_routes(services, protected),
        *customs_routes(services, protected),
        *packline_routes(services, protected),
        *ops_routes(services, protected),
        *admin_routes(services, protected),
        *sandbox_routes(services, protected),
        *station_routes(services.display, lambda: list(services.settings.stations)),
        *dashboard_routes(),
        *openapi_routes(),
        *extra_routes,
    ]

    async def store_unavailable(request: Request, exc: Exception) -> Response:
        log.warning("%s %s: store unavailable: %s", request.method, request.url.path, exc)
        return json_response({"error": f"store unavailable: {exc}"}, 503, {"Retry-After": "5"})

    return Starlette(routes=routes, exception_handlers={StoreError: store_unavailable, HTTPException: http_error_json})


def audit_to_store(services: Services) -> AuditHook:
    """The guard's audit hook: one ``api_call`` record per change, committed through the
    pipeline (in order with everything else) before the answer goes out. A record that
    cannot be written (store failing, queue full) is logged as an error: the change it
    describes is already done and is not undone."""

    async def audit(request: Request, response: Response, token: ApiToken) -> None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        detail = getattr(request.state, "audit", None)
        record = api_call_audit(token, request.method, path, response.status_code, time.time_ns() // 1_000_000,
                                detail if isinstance(detail, dict) else None)
        try:
            await services.pipeline.submit([], "station", extra=StepWrite(audit=[record]))
        except (BackpressureError, StoreError) as exc:
            log.error("%s %s by token %s: done, but its audit record could not be written: %s", request.method,
                      request.url.path, token.name, exc)

    return audit


__all__ = ["audit_to_store", "build_app"]
