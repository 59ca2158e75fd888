"""The operators' dashboard: one page, served by the daemon, over the local API.

Routes::

    GET /dashboard                     the page (HTML; no token: it holds no data)
    GET /dashboard/_static/{file}      its script, style sheet (404 for any other name)

The page is plain HTML, JavaScript and CSS from ``static/`` (no build step, no CDN: the box
may have no internet), read once when the routes are made. Everything it shows comes from
the local API, called by the page's script with ``fetch`` and the operator's token
(``Authorization: Bearer``, kept in the tab's ``sessionStorage``, never in a URL): stations
and devices, the outbox, the anomaly board, the OCI and its trend, the after-sales lookup
and the packing proof; the live verdicts come from each station's open event stream
(``/stations/{name}/events``, ``gateway._server.station_page``). Serving the page without a
token is therefore safe: a visitor without one sees only the sign-in form.

**Content-Security-Policy.** Scripts, styles, fetches and images from this origin only;
``img-src`` also allows ``blob:`` and ``data:`` (the proof PNG is fetched with the token and
shown from a blob URL) and ``frame-src blob:`` (the proof page is fetched the same way and
shown in a sandboxed frame). ``style-src`` allows ``'unsafe-inline'`` for one reason: a
document loaded from a ``blob:`` URL inherits the policy of the page that made it, and the
packing proof (``gateway._ops_lookup.proof_html``, a self-contained page meant to be sent to
a buyer) carries its own ``<style>``. Scripts stay ``'self'`` only, and the dashboard
writes every value with ``textContent``, never as HTML.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway._server.http import json_response

STATIC_DIR = Path(__file__).with_name("static")
#: The files ``/dashboard/_static/`` serves, with their media types.
STATIC_TYPES: dict[str, str] = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; "
    "img-src 'self' data: blob:; frame-src blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS: dict[str, str] = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
}


def dashboard_routes() -> list[Route]:
    """The dashboard's routes: the page and its static files (open: see the module docstring).

    Returns:
        ``GET /dashboard`` and ``GET /dashboard/_static/{file}``.

    Raises:
        OSError: the page's static files cannot be read (a broken install).
    """
    page_body = (STATIC_DIR / "dashboard.html").read_bytes()
    static = {name: (STATIC_DIR / name).read_bytes() for name in STATIC_TYPES}

    async def page(request: Request) -> Response:
        return Response(page_body, media_type="text/html; charset=utf-8", headers=HEADERS)

    async def static_file(request: Request) -> Response:
        name = request.path_params["file"]
        if name not in static:
            return json_response({"error": f"no static file {name!r}: the dashboard has "
                                           f"{', '.join(sorted(static))}"}, 404)
        return Response(static[name], media_type=STATIC_TYPES[name], headers=HEADERS)

    return [
        Route("/dashboard", page, methods=["GET"]),
        Route("/dashboard/_static/{file}", static_file, methods=["GET"]),
    ]


__all__ = ["CONTENT_SECURITY_POLICY", "dashboard_routes"]
