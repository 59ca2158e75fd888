"""The station screens: a page per pack station that follows its scans live.

Routes::

    GET /stations                      the stations, as links (HTML)
    GET /stations/{name}               the station's screen (HTML; 404 for an unknown station)
    GET /stations/{name}/view          its current view (JSON, ``gateway._packline.display``)
    GET /stations/{name}/events        its views as Server-Sent Events
    GET /stations/_static/{file}       the page's script and style sheet

The events stream (``text/event-stream``) starts with a ``retry:`` hint (the browser's
``EventSource`` reconnects by itself after that many milliseconds), then sends one
``data: <json view>`` event with the current view and one per new view; a slow screen skips
to the newest (``StationDisplay.subscribe``). A comment line (``: keep-alive``) goes out
every ``keepalive_s`` (15 s) without a view, so proxies keep the stream open and the server
notices a screen that went away: the builtin server (``gateway._server.h1``) does not read a
connection while its app works, so a client gone is noticed by a write: the first after it
closed may still be accepted by the kernel, the next fails (EPIPE / ECONNRESET), at most two
keep-alives later. The server then marks the connection gone and its ``receive()`` returns
``http.disconnect``, which Starlette's ``StreamingResponse`` (ASGI spec 2.3: it listens for
it) turns into cancelling the stream: the subscription ends. The stream also ends when the
display is closed (``StationDisplay.close()`` at shutdown), so open screens do not hold the
server's graceful shutdown. A ``HEAD`` of the stream gets the head only (a stream that never
writes would never notice its client leave).

No API token, on purpose: a station screen on the pack line is a wall-mounted monitor or a
tablet without a keyboard, where nobody can type the local API's token. The server binds to
127.0.0.1 or the line's LAN (``[http] host``), and these routes only read: they show SKUs,
product names, order ids, the operator's badge id and device states -- no buyer names,
addresses or phone numbers, which a view never carries. Do not expose them past the LAN.

The page is plain HTML, JavaScript and CSS from ``static/`` (no build step, no CDN: the box
may have no internet), read once when the routes are made. Its Content-Security-Policy
allows only this origin.
"""

from __future__ import annotations

import html
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from pathlib import Path

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway._packline.display import StationDisplay, empty_view
from gateway._server.http import json_response

STATIC_DIR = Path(__file__).with_name("static")
KEEPALIVE_S = 15.0
RETRY_MS = 2000
_STATIC_TYPES = {"station.js": "text/javascript; charset=utf-8", "station.css": "text/css; charset=utf-8"}
_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; "
                                "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
                                "form-action 'none'; frame-ancestors 'none'"),
}


def sse_event(view: object) -> bytes:
    """One Server-Sent Event carrying ``view`` as JSON (orjson escapes newlines: one line)."""
    return b"data: " + orjson.dumps(view) + b"\n\n"


async def sse_stream(display: StationDisplay, station: str, keepalive_s: float) -> AsyncGenerator[bytes, None]:
    """The events of ``station``: the ``retry:`` hint, its current (or empty) view, then each
    new view, with a comment every ``keepalive_s`` without one. Ends when the display closes."""
    yield f"retry: {RETRY_MS}\n\n".encode()
    if display.current(station) is None:
        yield sse_event(empty_view(station))
    async with aclosing(display.subscribe_with_keepalive(station, keepalive_s)) as views:
        async for view in views:
            yield b": keep-alive\n\n" if view is None else sse_event(view)


def _station_list_page(names: list[str]) -> str:
    items = "\n".join(
        f'    <li><a href="/stations/{html.escape(name, quote=True)}">{html.escape(name)}</a></li>'
        for name in names)
    empty = "" if names else "    <li>没有配置工位 / no stations configured ([stations.*])</li>\n"
    return ("<!doctype html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            "<title>工位 / Stations</title>\n<link rel=\"stylesheet\" href=\"/stations/_static/station.css\">\n"
            "</head>\n<body class=\"station-list\">\n<h1>工位屏幕 / Station screens</h1>\n<ul>\n"
            f"{empty}{items}\n</ul>\n</body>\n</html>\n")


def station_routes(display: StationDisplay, station_names: Callable[[], list[str]], *,
                   keepalive_s: float = KEEPALIVE_S) -> list[Route]:
    """The station screens' routes (open: no API token, see the module docstring).

    Args:
        display: the views the station services publish.
        station_names: the configured stations (asked at each request, so a reload shows);
            a station that published a view counts as known too.
        keepalive_s: seconds between keep-alive comments of an idle event stream.

    Raises:
        OSError: the page's static files cannot be read (a broken install).
    """
    page_template = (STATIC_DIR / "station.html").read_text("utf-8")
    static = {name: (STATIC_DIR / name).read_bytes() for name in _STATIC_TYPES}

    def known() -> list[str]:
        return sorted({*station_names(), *display.stations()})

    def station_of(request: Request) -> str | None:
        name: str = request.path_params["name"]
        return name if name in known() else None

    def not_found(request: Request) -> Response:
        name = request.path_params.get("name", "")
        return json_response({"error": f"unknown station {name!r}: open /stations for the list of stations"}, 404)

    async def list_stations(request: Request) -> Response:
        return Response(_station_list_page(known()), media_type="text/html; charset=utf-8", headers=_HEADERS)

    async def page(request: Request) -> Response:
        station = station_of(request)
        if station is None:
            body = _station_list_page(known()).replace(
                "<ul>", f"<p class=\"error\">没有这个工位 / unknown station: {html.escape(request.path_params['name'])}"
                        "</p>\n<ul>", 1)
            return Response(body, 404, media_type="text/html; charset=utf-8", headers=_HEADERS)
        body = page_template.replace("{{station}}", html.escape(station, quote=True))
        return Response(body, media_type="text/html; charset=utf-8", headers=_HEADERS)

    async def current_view(request: Request) -> Response:
        station = station_of(request)
        if station is None:
            return not_found(request)
        return json_response(display.current(station) or empty_view(station), headers={"Cache-Control": "no-cache"})

    async def events(request: Request) -> Response:
        station = station_of(request)
        if station is None:
            return not_found(request)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        if request.method == "HEAD":  # no body is ever written: the stream would never notice the client leave
            return Response(media_type="text/event-stream", headers=headers)
        return StreamingResponse(sse_stream(display, station, keepalive_s), media_type="text/event-stream",
                                 headers=headers)

    async def static_file(request: Request) -> Response:
        name = request.path_params["file"]
        if name not in static:
            return json_response({"error": f"no static file {name!r}"}, 404)
        return Response(static[name], media_type=_STATIC_TYPES[name], headers=_HEADERS)

    return [
        Route("/stations", list_stations, methods=["GET"]),
        Route("/stations/_static/{file}", static_file, methods=["GET"]),
        Route("/stations/{name}", page, methods=["GET"]),
        Route("/stations/{name}/view", current_view, methods=["GET"]),
        Route("/stations/{name}/events", events, methods=["GET"]),
    ]


__all__ = ["KEEPALIVE_S", "station_routes"]
