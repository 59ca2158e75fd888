"""The Starlette application: the routes of every audience on one server.

Routes::

    GET  /livez, /healthz, /metrics (token)       gateway._server.health
    POST /webhooks/{source}/{tenant}               gateway._server.webhooks (signed per source)
    /api/v1/...  (token)                           gateway._server.api
    /api/v1/tenants/{tenant}/catalog|stock (token) gateway._server.catalog_api
    /api/v1/stations, .../labels, .../evidence/{order} (token)  gateway._server.packline_api
    POST /webhooks/erp/{tenant}/catalog             the ERP's product and stock updates (signed)
    GET  /stations, /stations/{name}[/events|/view] gateway._server.station_page (no token: the
                                                   pack line's screens)
    extra routes the daemon adds                   e.g. the demo's /demo/upstream

The local API wants ``Authorization: Bearer <token>`` (the token file is created at first
start, mode 0600; see ``[api] token_file``). Webhooks authenticate by their platform's
signature with the tenant's secret instead. A ``StoreError`` escaping any route is a 503
with ``Retry-After``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from gateway._errors import StoreError
from gateway._server.api import api_routes
from gateway._server.catalog_api import catalog_routes
from gateway._server.health import metrics_routes, probe_routes
from gateway._server.http import bearer_guard, json_response
from gateway._server.packline_api import packline_routes
from gateway._server.services import Services
from gateway._server.station_page import station_routes
from gateway._server.webhooks import webhook_routes

log = logging.getLogger(__name__)


def build_app(services: Services, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The Starlette application bound to ``services``, with ``extra_routes`` appended."""
    protected = bearer_guard(services.api_token)
    routes: list[BaseRoute] = [  # Starlette tries them in order: the busiest first
        *probe_routes(services),
        *webhook_routes(services),
        *metrics_routes(services, protected),
        *api_routes(services, protected),
        *catalog_routes(services, protected),
        *packline_routes(services, protected),
        *station_routes(services.display, lambda: list(services.settings.stations)),
        *extra_routes,
    ]

    async def store_unavailable(request: Request, exc: Exception) -> Response:
        log.warning("%s %s: store unavailable: %s", request.method, request.url.path, exc)
        return json_response({"error": f"store unavailable: {exc}"}, 503, {"Retry-After": "5"})

    return Starlette(routes=routes, exception_handlers={StoreError: store_unavailable})


__all__ = ["build_app"]
