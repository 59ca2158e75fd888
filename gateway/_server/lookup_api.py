"""After-sales lookup and packing proofs in the local API (bearer token).

Routes::

    GET /api/v1/tenants/{tenant}/buyers/lookup?phone=|order_id=|waybill=|nick=[&keyword=][&days=]
        the buyer's orders of the last 30 days (``days``, 1-90) across every channel, newest
        first, each component's status in words and its clip at the second it was scanned
    GET /api/v1/tenants/{tenant}/orders/{order_id}/proof         the packing proof (JSON)
    GET /api/v1/tenants/{tenant}/orders/{order_id}/proof.html    a self-contained page (zh-CN;
                                                                 ``?lang=en`` for English)
    GET /api/v1/tenants/{tenant}/orders/{order_id}/proof.png     the same as a PNG (``?lang=en``)

Errors are the API's ``{"error" (English), "code", "message_zh"}``: ``bad_query`` (400: no
identifier, two at once, a phone of fewer than five digits), ``not_found`` (404: a proof of
no order), ``renderer_missing`` (501: Pillow is not installed; the HTML proof works). A lookup
that finds nothing is a 200 with no ``orders`` and ``notes`` saying why. A phone number never comes back: the answer echoes it masked.

These routes must be registered BEFORE ``api_routes``: its
``/api/v1/tenants/{tenant}/orders/{order_id:path}`` would otherwise take ``.../proof``.
"""

from __future__ import annotations

import trio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway._ops_lookup import (
    LookupInputError,
    RendererMissingError,
    find_buyer,
    load_snapshot,
    proof_data,
    proof_html,
    proof_png,
)
from gateway._server.http import Protect, error_response, json_response
from gateway._server.services import Services

#: The longest window a lookup may ask for, in days.
MAX_DAYS = 90
#: Query parameters longer than this are refused (no identifier is that long).
MAX_PARAM_CHARS = 128
_LIMITER = trio.CapacityLimiter(4)  # lookups and renderings share the two cores with the pipeline


def _error(code: str, status: int, zh: str, en: str) -> Response:
    return error_response(status, code, en, zh)


def lookup_routes(services: Services, protected: Protect) -> list[Route]:
    """The after-sales routes bound to ``services``, each behind ``protected``."""
    store = services.store

    async def lookup(request: Request) -> Response:
        tenant, query = request.path_params["tenant"], request.query_params
        params = {name: query.get(name) for name in ("phone", "order_id", "waybill", "nick", "keyword", "days")}
        if any(value is not None and len(value) > MAX_PARAM_CHARS for value in params.values()):
            return _error("bad_query", 400, f"参数过长（最多 {MAX_PARAM_CHARS} 个字符）",
                          f"a parameter is too long (at most {MAX_PARAM_CHARS} characters)")
        days_text = params["days"] or "30"
        if not (days_text.isascii() and days_text.isdigit()) or not 1 <= int(days_text) <= MAX_DAYS:  # not "²"
            return _error("bad_query", 400, f"days 应为 1 到 {MAX_DAYS} 的整数",
                          f"days must be a whole number from 1 to {MAX_DAYS}")
        try:
            found = await trio.to_thread.run_sync(lambda: find_buyer(
                store, tenant, phone=params["phone"], order_id=params["order_id"], waybill=params["waybill"],
                nick=params["nick"], keyword=params["keyword"] or "", window_days=int(days_text)),
                limiter=_LIMITER)
        except LookupInputError as exc:
            return _error("bad_query", 400, exc.message_zh, exc.message_en)
        return json_response(found.to_dict())  # no order found: 200, empty ``orders``, ``notes`` say why

    async def proof_json(request: Request) -> Response:
        tenant, order_id = request.path_params["tenant"], request.path_params["order_id"]
        proof = await trio.to_thread.run_sync(lambda: proof_data(store, tenant, order_id), limiter=_LIMITER)
        if proof is None:
            return _error("not_found", 404, f"没有订单 {order_id}（订单号要带渠道前缀，如 douyin|123）",
                          f"no order {order_id} (give the channel prefix, e.g. douyin|123)")
        return json_response(proof.to_dict())

    async def proof_page(request: Request) -> Response:
        tenant, order_id = request.path_params["tenant"], request.path_params["order_id"]
        lang = "en" if request.query_params.get("lang") == "en" else "zh"

        def render() -> str | None:
            proof = proof_data(store, tenant, order_id)
            return None if proof is None else proof_html(proof, lang=lang, snapshot=load_snapshot(proof))

        page = await trio.to_thread.run_sync(render, limiter=_LIMITER)
        if page is None:
            return _error("not_found", 404, f"没有订单 {order_id}", f"no order {order_id}")
        return Response(page, media_type="text/html; charset=utf-8",
                        headers={"Content-Language": "en" if lang == "en" else "zh-CN"})

    async def proof_image(request: Request) -> Response:
        tenant, order_id = request.path_params["tenant"], request.path_params["order_id"]
        lang = "en" if request.query_params.get("lang") == "en" else "zh"

        def render() -> bytes | None:
            proof = proof_data(store, tenant, order_id)
            return None if proof is None else proof_png(proof, lang=lang, snapshot=load_snapshot(proof))

        try:
            image = await trio.to_thread.run_sync(render, limiter=_LIMITER)
        except RendererMissingError as exc:
            return _error("renderer_missing", 501, "未安装 Pillow，无法生成图片凭证；请使用 proof.html",
                          f"{exc}")
        if image is None:
            return _error("not_found", 404, f"没有订单 {order_id}", f"no order {order_id}")
        return Response(image, media_type="image/png")

    return [
        Route("/api/v1/tenants/{tenant}/buyers/lookup", protected(lookup), methods=["GET"]),
        Route("/api/v1/tenants/{tenant}/orders/{order_id}/proof", protected(proof_json), methods=["GET"]),
        Route("/api/v1/tenants/{tenant}/orders/{order_id}/proof.html", protected(proof_page), methods=["GET"]),
        Route("/api/v1/tenants/{tenant}/orders/{order_id}/proof.png", protected(proof_image), methods=["GET"]),
    ]


__all__ = ["MAX_DAYS", "lookup_routes"]
