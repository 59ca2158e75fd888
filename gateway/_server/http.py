"""Small HTTP helpers every route module shares: JSON replies, bounded body reads, the
local API's bearer-token guard and its query/body conventions."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway._errors import MalformedEventError, PayloadTooLargeError
from gateway._settings import TENANT_NAME

Handler = Callable[[Request], Awaitable[Response]]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``data`` as an ``application/json`` response (orjson)."""
    return Response(orjson.dumps(data), status, headers, media_type="application/json")


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


def bearer_guard(token: str) -> Callable[[Handler], Handler]:
    """A decorator refusing requests without ``Authorization: Bearer <token>`` (401,
    constant-time comparison) and with a malformed ``{tenant}`` path parameter (400)."""
    expected = token.encode()

    def protected(handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            given = request.headers.get("authorization", "")
            scheme, _, value = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), expected):
                return json_response({"error": "missing or wrong API token"}, 401, {"WWW-Authenticate": "Bearer"})
            tenant = request.path_params.get("tenant")
            if tenant is not None and not TENANT_NAME.match(tenant):
                return json_response({"error": "bad tenant name"}, 400)
            return await handler(request)

        return guarded

    return protected


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
    """A non-negative integer query parameter, ``default`` when absent or not a number."""
    value = request.query_params.get(name, "")
    return int(value) if value.isdigit() else default


__all__ = ["Handler", "bearer_guard", "ids_or_all", "int_param", "json_response", "read_body"]
