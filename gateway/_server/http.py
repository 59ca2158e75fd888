"""Small HTTP helpers every route module shares: JSON replies, bounded body reads, the
local API's token guard (who, which tenant, which role: ``token_guard``; the tokens
themselves are ``gateway._server.tokens``) and its query/body conventions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway._errors import MalformedEventError, PayloadTooLargeError
from gateway._ops.paging import CursorError, Key, decode_cursor
from gateway._server.tokens import ADMIN_NAME, ALL_TENANTS, ROLES, ApiToken, Role, TokenRegistry
from gateway._settings import TENANT_NAME

Handler = Callable[[Request], Awaitable[Response]]


#: The ``code`` an error answer carries when its route names none, by HTTP status.
ERROR_CODES: dict[int, str] = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                               405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_type",
                               422: "invalid", 429: "too_many_requests", 500: "internal", 501: "not_implemented",
                               503: "unavailable"}


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``data`` as an ``application/json`` response (orjson).

    Every error answer of the API has one shape: ``{"error": "<what is wrong, in English>",
    "code": "<machine-readable code>", ...}``, optionally with ``message_zh`` (the same in
    Chinese) and fields of its own (``needed_role``, ``errors``...). A body with ``"error"``
    and no ``"code"`` gets the status's code (``ERROR_CODES``) here, so no route can answer
    an error without one.
    """
    if status >= 400 and isinstance(data, dict) and "error" in data and "code" not in data:
        data = {**data, "code": ERROR_CODES.get(status, "error")}
    return Response(orjson.dumps(data), status, headers, media_type="application/json")


def error_response(status: int, code: str, message: str, message_zh: str = "",
                   headers: dict[str, str] | None = None, **extra: Any) -> Response:
    """An error answer: ``{"error": message, "code": code, "message_zh"?: ..., **extra}``."""
    body: dict[str, Any] = {"error": message, "code": code, **({"message_zh": message_zh} if message_zh else {}),
                            **extra}
    return json_response(body, status, headers)


async def http_error_json(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (404: no route matches, 405: the path has no such method) in
    the API's error shape instead of its plain-text ``Not Found``; ``Allow`` is kept.

    For ``Starlette(exception_handlers={HTTPException: http_error_json})``."""
    status = getattr(exc, "status_code", 500)
    headers = dict(getattr(exc, "headers", None) or {})
    if status == 404:
        message = f"no route {request.url.path!r}: GET /api/v1/openapi.json lists every route"
        zh = "没有这个地址；GET /api/v1/openapi.json 列出全部接口"
    elif status == 405:
        allowed = next((v for k, v in headers.items() if k.lower() == "allow"), "another method")
        message = f"{request.method} is not allowed here: use {allowed}"
        zh = f"此地址不支持 {request.method}"
    else:
        message, zh = str(getattr(exc, "detail", "") or "refused"), ""
    return error_response(status, ERROR_CODES.get(status, "error"), message, zh, headers)


async def read_body(request: Request, limit: int, declared: str | None) -> bytes:
    """The whole body, refused past ``limit`` bytes (by its ``declared`` Content-Length,
    before reading).

    Reads the ASGI messages directly (Starlette's ``stream()`` would wrap each in an async
    generator): the body is read once, here, for every webhook.

    Raises:
        PayloadTooLargeError: over ``limit``.
        MalformedEventError: the client left before the whole body arrived.
    """
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"body of {declared} bytes is over max_body_bytes={limit}")
    chunks: list[bytes] = []
    size = 0
    receive = request.receive
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise MalformedEventError("the client left before the whole body arrived")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"body is over max_body_bytes={limit}")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class Protect(Protocol):
    """``protected(handler, role=None, *, any_tenant=False, missing="not found")``: the
    guard a route module wraps each of its handlers in (see ``token_guard``)."""

    def __call__(self, handler: Handler, role: Role | None = None, *, any_tenant: bool = False,
                 missing: str | Mapping[str, str] = "not found") -> Handler: ...


#: Called after a request that changed something (not GET/HEAD/OPTIONS, status < 400).
AuditHook = Callable[[Request, Response, ApiToken], Awaitable[None]]
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


def token_guard(authenticate: Callable[[str], ApiToken | None], audit: AuditHook | None = None) -> Protect:
    """The local API's guard: who calls (401), which tenant (404), which role (403).

    ``protected(handler, role, any_tenant=..., missing=...)`` answers, in this order:

    * 401 without ``Authorization: Bearer <secret>`` of a known token;
    * 400 for a malformed ``{tenant}`` path parameter;
    * 404 ``{"error": missing, "code": "not_found"}`` (or ``missing`` itself, a whole body)
      when the route has a ``{tenant}`` the token does not see:
      the very body the route answers for a resource that is not there, so a token of
      tenant A cannot tell B's data from nothing at all;
    * 403 on a route without ``{tenant}`` that shows every tenant (``any_tenant=False``,
      the default) for a token of one tenant;
    * 403 with ``needed_role`` when the token's role is below ``role``. Without ``role``:
      ``viewer`` for GET/HEAD, ``supervisor`` for every other method, the safe choice for
      a route module that does not say.

    Then the handler runs with the token on ``request.state.token``; a call that changed
    something (any method but GET/HEAD/OPTIONS answered below 400) is passed to ``audit``
    before the answer goes out (the handler may add ``request.state.audit``, a dict, to
    the record's detail).

    Args:
        authenticate: the token of a secret, or ``None`` (``TokenRegistry.authenticate``).
        audit: records a change (``gateway._server.app`` writes it to the audit trail).
    """

    def protected(handler: Handler, role: Role | None = None, *, any_tenant: bool = False,
                  missing: str | Mapping[str, str] = "not found") -> Handler:
        if role is not None and role not in ROLES:
            raise ValueError(f"unknown role {role!r} for {handler.__name__}: one of {', '.join(ROLES)}")

        async def guarded(request: Request) -> Response:
            scheme, _, value = request.headers.get("authorization", "").partition(" ")
            token = authenticate(value.strip()) if scheme.lower() == "bearer" and value.strip() else None
            if token is None:
                return json_response({"error": "missing or wrong API token"}, 401, {"WWW-Authenticate": "Bearer"})
            tenant = request.path_params.get("tenant")
            if tenant is not None:
                if not TENANT_NAME.match(tenant):
                    return json_response({"error": "bad tenant name"}, 400)
                if not token.sees(tenant):
                    return json_response({"error": missing} if isinstance(missing, str) else dict(missing), 404)
            elif not any_tenant and token.tenant != ALL_TENANTS:
                return json_response({"error": "this route shows every tenant: use a token of tenant '*'"}, 403)
            needed: Role = role or ("viewer" if request.method in _READS else "supervisor")
            if not token.has_role(needed):
                return json_response({"error": f"this needs the role {needed} or above; token {token.name!r} is "
                                               f"{token.role}", "needed_role": needed}, 403)
            request.state.token = token
            response = await handler(request)
            if audit is not None and request.method not in _READS and response.status_code < 400:
                await audit(request, response, token)
            return response

        return guarded

    return protected


def bearer_guard(token: str) -> Protect:
    """The guard admitting only ``token`` (as the admin token, nothing audited): for
    tests and tools that serve routes with one secret."""
    return token_guard(TokenRegistry(token, None).authenticate)


def request_token(request: Request) -> ApiToken:
    """The token ``token_guard`` put on the request (the admin token when unguarded)."""
    token: ApiToken = getattr(request.state, "token", None) or ApiToken(ADMIN_NAME, ALL_TENANTS, "admin")
    return token


async def ids_or_all(request: Request) -> list[int] | None | Response:
    """The ``{"ids": [positive ints]}`` (a list) or ``{"all": true}`` (``None``) of a request,
    or the 400 response for anything else."""
    try:
        body = orjson.loads(await read_body(request, 1024 * 1024, request.headers.get("content-length")) or b"{}")
    except (orjson.JSONDecodeError, PayloadTooLargeError, MalformedEventError) as exc:
        return json_response({"error": f"body must be JSON: {exc}"}, 400)
    ids = body.get("ids") if isinstance(body, dict) else None
    if isinstance(body, dict) and body.get("all") is True:
        return None
    if isinstance(ids, list) and ids and all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in ids):
        return ids
    return json_response({"error": 'give {"ids": [positive ids]} or {"all": true}'}, 400)


def int_param(request: Request, name: str, default: int) -> int:
    """A non-negative integer query parameter, ``default`` when absent or not a number
    (ASCII digits only, at most 18 of them: ``"²"`` or a 5,000-digit number is no number)."""
    value = request.query_params.get(name, "")
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else default


#: The most items one page of a list may hold, whatever ``limit`` asks.
MAX_PAGE_ITEMS = 10_000


def page_limit(request: Request, default: int, high: int = MAX_PAGE_ITEMS) -> int:
    """The ``limit`` query parameter clamped to ``1..high`` (``default`` when absent)."""
    return max(1, min(int_param(request, "limit", default), high))


def cursor_param(request: Request, kind: str, shape: tuple[type, ...]) -> Key | None | Response:
    """The position the ``cursor`` query parameter names in the list ``kind``
    (``gateway._ops.paging``), ``None`` without one, or the 400 ``bad_cursor`` answer."""
    text = request.query_params.get("cursor") or None
    if text is None:
        return None
    try:
        return decode_cursor(text, kind, shape)
    except CursorError as exc:
        return error_response(400, "bad_cursor", f"{exc}: start again from the first page (no cursor)",
                              "cursor 无效：请从第一页重新开始（不带 cursor）")


__all__ = ["MAX_PAGE_ITEMS", "AuditHook", "Handler", "Protect", "bearer_guard", "cursor_param", "http_error_json",
           "ids_or_all", "int_param", "json_response", "page_limit", "read_body", "request_token", "token_guard"]
