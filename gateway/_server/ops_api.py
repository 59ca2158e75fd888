"""The operators' view in the local API (bearer token): the anomaly board and the OCI.

Routes::

    GET  /api/v1/tenants/{tenant}/anomalies?kind=K&acked=true|false&cursor=C&limit=N
                                        the board, oldest first: id, kind, order id, reason
                                        (zh-CN) and reason_en, since_ms and age_s, link to
                                        the order, ack (who, when) or null; counts per kind
    POST /api/v1/tenants/{tenant}/anomalies/{anomaly_id}/ack   {"by": "<who>"}: recorded
                                        durably (and in the audit trail) before the reply
    GET  /api/v1/tenants/{tenant}/oci?hours=N      the index now, its formula and weights,
                                        and the hourly trend of the last N hours (48)
    GET  /api/v1/tenants/{tenant}/oci/{part}/orders?cursor=C&limit=N   the orders pulling
                                        ``freshness``, ``consistency`` or ``traceability``
                                        down, by order id, each with why

Lists page by cursor: ``next_cursor`` is ``null`` on the last page; pass it back as
``cursor`` for the next (it is opaque). ``limit`` is 1..1000 (default 100).

Errors are ``{"error": "<English>", "code": "...", "message_zh": "<zh-CN>"}`` (the API's one shape)
with 400 (bad parameter or body), 404 (no such anomaly or part), 413 (body too large) or
503 (queue full, store unavailable; ``Retry-After``). The board and the index are served
from the last computation (``computed_at_ms``, ``gateway._ops.serve``); acknowledgements are
read live.

Roles (once ``protected`` takes ``role=``): the GETs are ``viewer``; ``ack`` is ``operator``.
"""

from __future__ import annotations

import orjson
import trio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway._errors import BackpressureError, MalformedEventError, PayloadTooLargeError
from gateway._ops import (
    FORMULA,
    KINDS,
    PARTS,
    Anomaly,
    BoardSettings,
    CursorError,
    OpsState,
    decode_cursor,
    order_link,
    page_of,
    read_acks,
    read_trend,
)
from gateway._server.http import Protect, json_response, read_body
from gateway._server.http import error_response as http_error
from gateway._server.services import Services
from gateway._store import StepWrite

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
DEFAULT_HOURS = 48
MAX_BY_CHARS = 64
_ACK_BODY_BYTES = 16 * 1024


def error_response(status: int, code: str, message: str, message_en: str,
                   headers: dict[str, str] | None = None) -> Response:
    """The API's error answer (``gateway._server.http.error_response``) from a zh-CN
    ``message`` and its English ``message_en``."""
    return http_error(status, code, message_en, message, headers)


class _BadParameter(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _bounded_int(request: Request, name: str, default: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= high:
        raise _BadParameter(error_response(400, f"bad_{name}", f"{name} 须为 1 到 {high} 的整数",
                                           f"{name} must be an integer from 1 to {high}"))
    return int(text)


def ops_state_of(services: Services) -> OpsState:
    """The daemon's ``OpsState`` (``services.ops``), or one made for these routes (an app built
    without the daemon, as in tests)."""
    if services.ops is not None:
        return services.ops
    board = BoardSettings(waybill_timeout_s=services.settings.packline.waybill_timeout_s)

    async def commit(write: StepWrite) -> object:
        return await services.pipeline.submit([], "webhook", extra=write)

    return OpsState(services.store, lambda: services.rules.current, services.settings.oci, board, commit=commit)


def ops_routes(services: Services, protected: Protect) -> list[Route]:
    """The anomaly board's and the OCI's routes bound to ``services``, each behind ``protected``."""
    store = services.store
    made: list[OpsState] = []

    def state() -> OpsState:
        if services.ops is not None:
            return services.ops
        if not made:
            made.append(ops_state_of(services))
        return made[0]

    async def anomalies(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        kind = request.query_params.get("kind") or None
        acked = request.query_params.get("acked")
        try:
            limit = _bounded_int(request, "limit", DEFAULT_LIMIT, MAX_LIMIT)
            if kind is not None and kind not in KINDS:
                raise _BadParameter(error_response(400, "bad_kind", f"kind 须为以下之一：{', '.join(KINDS)}",
                                                   f"kind must be one of {', '.join(KINDS)}"))
            if acked not in (None, "", "true", "false"):
                raise _BadParameter(error_response(400, "bad_acked", "acked 须为 true 或 false",
                                                   "acked must be true or false"))
            cursor = request.query_params.get("cursor") or None
            after = decode_cursor(cursor, "anomalies", (int, str)) if cursor else None
        except _BadParameter as bad:
            return bad.response
        except CursorError as exc:
            return error_response(400, "bad_cursor", "cursor 无效：请从第一页重新开始（不带 cursor）",
                                  f"{exc}: start again from the first page (no cursor)")
        ops = state()
        report = await ops.report(tenant)
        acks = await trio.to_thread.run_sync(read_acks, store, tenant)
        listed: list[Anomaly] = report.board
        if kind is not None:
            listed = [a for a in listed if a.kind == kind]
        if acked:
            want = acked == "true"
            listed = [a for a in listed if (a.anomaly_id in acks) == want]
        page = page_of(listed, lambda a: a.sort_key, "anomalies", after, limit)
        now = ops.clock()
        counts = {k: {"total": 0, "unacked": 0} for k in KINDS}
        for anomaly in report.board:
            counts[anomaly.kind]["total"] += 1
            counts[anomaly.kind]["unacked"] += anomaly.anomaly_id not in acks
        return json_response({"tenant": tenant, "computed_at_ms": report.computed_at_ms, "counts": counts,
                              "items": [a.to_dict(now, acks.get(a.anomaly_id)) for a in page.items],
                              "next_cursor": page.next_cursor})

    async def acknowledge(request: Request) -> Response:
        tenant, anomaly_id = request.path_params["tenant"], request.path_params["anomaly_id"]
        try:
            raw = await read_body(request, _ACK_BODY_BYTES, request.headers.get("content-length"))
            body = orjson.loads(raw)
        except PayloadTooLargeError:
            return error_response(413, "body_too_large", "请求体过大", f"body over {_ACK_BODY_BYTES} bytes")
        except (orjson.JSONDecodeError, MalformedEventError):
            body = None
        by = body.get("by") if isinstance(body, dict) else None
        if not isinstance(by, str) or not by.strip() or len(by.strip()) > MAX_BY_CHARS:
            return error_response(400, "bad_body", f'请求体须为 JSON：{{"by": "确认人"}}（1 到 {MAX_BY_CHARS} 个字符）',
                                  f'body must be JSON {{"by": "<who acknowledges>"}} (1 to {MAX_BY_CHARS} '
                                  "characters)")
        try:
            done = await state().acknowledge(tenant, anomaly_id, by.strip())
        except BackpressureError as exc:
            return error_response(503, "busy", "网关繁忙，确认未记录，请稍后重试",
                                  f"not recorded: {exc}; retry later", {"Retry-After": str(exc.retry_after_s)})
        if done is None:
            return error_response(404, "no_such_anomaly", "看板上没有这个异常（可能已解决）；刷新看板",
                                  "no such anomaly on the board (it may have ended); reload the board")
        anomaly, ack = done
        return json_response({"anomaly": anomaly.to_dict(state().clock(), ack)})

    async def oci(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        ops = state()
        try:
            hours = _bounded_int(request, "hours", DEFAULT_HOURS, ops.oci.trend_keep_hours)
        except _BadParameter as bad:
            return bad.response
        report = await ops.report(tenant)
        trend = await trio.to_thread.run_sync(read_trend, store, tenant, hours, ops.clock())
        settings = ops.oci
        return json_response({"tenant": tenant, "now": report.oci.to_dict(), "formula": FORMULA,
                              "weights": settings.weights, "freshness_s": settings.freshness_s,
                              "window_s": settings.window_s, "parts": list(PARTS), "trend": trend})

    async def drilldown(request: Request) -> Response:
        tenant, part = request.path_params["tenant"], request.path_params["part"]
        if part not in PARTS:
            return error_response(404, "unknown_part", f"指标须为以下之一：{', '.join(PARTS)}",
                                  f"part must be one of {', '.join(PARTS)}")
        try:
            limit = _bounded_int(request, "limit", DEFAULT_LIMIT, MAX_LIMIT)
            cursor = request.query_params.get("cursor") or None
            after = decode_cursor(cursor, f"oci_{part}", (str,)) if cursor else None
        except _BadParameter as bad:
            return bad.response
        except CursorError as exc:
            return error_response(400, "bad_cursor", "cursor 无效：请从第一页重新开始（不带 cursor）",
                                  f"{exc}: start again from the first page (no cursor)")
        report = await state().report(tenant)
        offenders = report.drilldown[part]
        page = page_of(offenders, lambda item: (item[0],), f"oci_{part}", after, limit)
        return json_response({"tenant": tenant, "part": part, "computed_at_ms": report.computed_at_ms,
                              "total": report.oci.offenders[part], "listed": len(offenders),
                              "items": [{"order_id": order_id, "link": order_link(tenant, order_id), "detail": detail}
                                        for order_id, detail in page.items],
                              "next_cursor": page.next_cursor})

    return [
        Route("/api/v1/tenants/{tenant}/anomalies", protected(anomalies, "viewer"), methods=["GET"]),
        Route("/api/v1/tenants/{tenant}/anomalies/{anomaly_id:path}/ack", protected(acknowledge, "operator"),
              methods=["POST"]),
        Route("/api/v1/tenants/{tenant}/oci", protected(oci, "viewer"), methods=["GET"]),
        Route("/api/v1/tenants/{tenant}/oci/{part}/orders", protected(drilldown, "viewer"), methods=["GET"]),
    ]


__all__ = ["error_response", "ops_routes", "ops_state_of"]
