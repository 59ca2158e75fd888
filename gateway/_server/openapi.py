"""The OpenAPI 3.1 description of every route the gateway serves, at ``GET /api/v1/openapi.json``.

The description is written here, as a table (``OPERATIONS``: one ``Operation`` per path and
method), not derived from the handlers: a handler knows its query parameters only by
reading them, and the table is where their schemas, the least role each route needs and
the answers it gives are said once. ``tests/server/test_openapi.py`` checks the table
against the real application's routes both ways (every ``Route`` documented with the same
methods, every documented path served), so the two cannot drift apart, and
``tests/server/test_schemathesis.py`` has schemathesis call every operation of it against
the running daemon (no answer may be a 5xx, every status must be one documented). The
entries are written in the words of ``gateway._server.openapi_model`` (``Operation``,
``Param``, the schema helpers; still importable from here, as the route modules' own tables
``openapi_customs`` and ``openapi_sandbox`` do); this module holds the table, adds the
answers every route shares and serves the document.

Conventions the document states (``info.description``)::

    errors      {"error": "<English>", "code": "<machine code>", "message_zh"?: "<zh-CN>", ...}
                (``components.schemas.Error``; ``gateway._server.http.error_response``)
    auth        Authorization: Bearer <token> (``bearerAuth``); the role each operation needs
                is its ``x-role``; another tenant's ``{tenant}`` is the route's own 404
    cursors     a list answers ``next_cursor`` (``null`` on the last page); pass it back as
                ``cursor`` for the next page; it is opaque; a cursor not handed out is a
                400 ``bad_cursor``
    webhooks    tag ``webhooks``: no token, each platform's own signature (headers or
                form fields) with the tenant's secret; a bad one is a 401, never a 5xx

The document itself needs no token: it describes the routes and reveals no data. The HEAD
that Starlette adds to every GET route is not listed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway._ingest import ADAPTERS
from gateway._server.openapi_model import _ANY as _ANY
from gateway._server.openapi_model import _CURSOR as _CURSOR
from gateway._server.openapi_model import _OBJECT as _OBJECT
from gateway._server.openapi_model import _ORDER_ID as _ORDER_ID
from gateway._server.openapi_model import _STATIC_MEDIA as _STATIC_MEDIA
from gateway._server.openapi_model import _STRING as _STRING
from gateway._server.openapi_model import _TENANT_API as _TENANT_API
from gateway._server.openapi_model import AFTER as AFTER
from gateway._server.openapi_model import CURSOR as CURSOR
from gateway._server.openapi_model import IDS_BODY as IDS_BODY
from gateway._server.openapi_model import LANG as LANG
from gateway._server.openapi_model import LIMIT as LIMIT
from gateway._server.openapi_model import TENANT_PATTERN as TENANT_PATTERN
from gateway._server.openapi_model import Operation as Operation
from gateway._server.openapi_model import Param as Param
from gateway._server.openapi_model import Schema as Schema
from gateway._server.openapi_model import _err as _err
from gateway._server.openapi_model import _int as _int
from gateway._server.openapi_model import _list as _list
from gateway._server.openapi_model import _obj as _obj
from gateway._server.openapi_model import _ok as _ok
from gateway._server.packline_api import WATCH_KINDS
from gateway._server.tokens import ROLES

#: Where the document is served.
OPENAPI_PATH = "/api/v1/openapi.json"
_ERROR_REF: Schema = {"$ref": "#/components/schemas/Error"}
_OCI_PARTS = ("freshness", "consistency", "traceability")


def _webhook_headers() -> tuple[Param, ...]:
    described = (("X-Gateway-Timestamp", "erp: unix seconds, within the replay window"),
                 ("X-Gateway-Signature", "erp: hex HMAC-SHA256 of timestamp + '.' + body with the tenant's secret"),
                 ("app-id", "douyin: the tenant's app_key"),
                 ("event-sign", "douyin, youzan: hex MD5(app_key + body + secret)"),
                 ("x-xhs-signature", "xiaohongshu: hex HMAC-SHA256(secret, body)"))
    return tuple(Param(name, _STRING, text, "header") for name, text in described)


_WEBHOOK_REPLIES: Mapping[int, tuple[str, Schema | None, str]] = {
    200: _ok(_OBJECT, "stored durably (the platform's own success reply)"),
    400: _ok(_OBJECT, "malformed: nothing stored"),
    401: _ok(_OBJECT, "bad signature, unknown tenant or address outside the allow-list: nothing stored"),
    404: _ok(_OBJECT, "unknown source"),
    413: _ok(_OBJECT, "body or batch too large"),
    422: _ok(_OBJECT, "catalog update refused, with every problem"),
}

from gateway._server.openapi_customs import OPERATIONS as _CUSTOMS_OPERATIONS  # noqa: E402 (builds on the above)
from gateway._server.openapi_sandbox import OPERATIONS as _SANDBOX_OPERATIONS  # noqa: E402 (builds on the above)

OPERATIONS: tuple[Operation, ...] = (
    # health
    Operation("GET", "/livez", "livez", "health", "liveness: answers without touching anything", None,
              responses={200: _ok(_obj("status", status=_STRING))}),
    Operation("GET", "/healthz", "healthz", "health", "store, core, rules, channels, devices", None,
              responses={200: _ok(_obj("status", "store", "core", "rules"))}),
    Operation("GET", "/metrics", "metrics", "health", "Prometheus metrics (tenant '*')",
              responses={200: _ok(_STRING, "Prometheus text", "text/plain")}),
    Operation("GET", OPENAPI_PATH, "openapi", "meta", "this document", None, responses={200: _ok(_OBJECT)}),
    # api
    Operation("GET", "/api/v1/rules", "rules_info", "api", "the live rule set and the last reload error",
              responses={200: _ok(_obj("digest", "sources"))}),
    Operation("POST", "/api/v1/rules/reload", "rules_reload", "api", "reload the rule files now (tenant '*')",
              "supervisor", responses={200: _ok(_obj("ok", "digest")), 422: _ok(_obj("ok", "digest"), "refused")}),
    Operation("GET", _TENANT_API + "/orders/{order_id}", "order", "api", "an order and its audit trail",
              path_params=_ORDER_ID, responses={200: _ok(_obj("order", "audit", audit=_list()))}),
    Operation("GET", _TENANT_API + "/quarantine", "quarantine", "api", "quarantined events, oldest first",
              params=(LIMIT, CURSOR),
              responses={200: _ok(_obj("count", "items", "next_cursor", items=_list(), next_cursor=_CURSOR))}),
    Operation("POST", _TENANT_API + "/quarantine/release", "quarantine_release", "api",
              "re-read quarantined events under the live rules", "supervisor", body=IDS_BODY,
              responses={200: _ok(_obj("released", "results", "kept", "more"))}),
    Operation("GET", _TENANT_API + "/events", "events", "api", "the event log, by seq", params=(AFTER, LIMIT, CURSOR),
              responses={200: _ok(_obj("items", "next_cursor", "next_after", items=_list(), next_cursor=_CURSOR,
                                       next_after={"type": ["integer", "null"]}))}),
    Operation("GET", _TENANT_API + "/audit/verify", "audit_verify", "api", "check the audit hash chain",
              responses={200: _ok(_obj("ok", "records")), 409: _ok(_obj("ok", "first_bad_seq"), "chain broken")}),
    Operation("GET", "/api/v1/channels", "channels", "api", "outbound message channels",
              responses={200: _ok(_obj("channels", channels=_list()))}),
    Operation("GET", "/api/v1/devices", "devices", "api", "the stations' devices",
              params=(Param("station", _STRING, "only this station's devices"),),
              responses={200: _ok(_obj("devices", "summary"))}),
    Operation("GET", "/api/v1/outbox", "outbox", "api", "outbox backlog and forwarding state (tenant '*')",
              responses={200: _ok(_OBJECT)}),
    Operation("GET", "/api/v1/outbox/dead", "outbox_dead", "api", "dead letters with their reasons",
              params=(AFTER, LIMIT, CURSOR, Param("tenant", {"type": "string", "pattern": TENANT_PATTERN})),
              responses={200: _ok(_obj("count", "items", "next_cursor", "next_after", items=_list(),
                                       next_cursor=_CURSOR, next_after={"type": ["integer", "null"]}))}),
    Operation("POST", "/api/v1/outbox/requeue", "outbox_requeue", "api", "dead letters back into the outbox",
              "supervisor", body=IDS_BODY, responses={200: _ok(_obj("requeued", "outbox_seqs"))}),
    Operation("GET", "/api/v1/tokens", "tokens", "api", "the API tokens (never a secret)", "admin",
              responses={200: _ok(_obj("tokens", tokens=_list()))}),
    Operation("POST", "/api/v1/tokens", "token_create", "api", "create a token; its secret is shown once", "admin",
              body={"application/json": _obj("name", "tenant", "role", name=_STRING, tenant=_STRING,
                                             role={"type": "string", "enum": list(ROLES)})},
              responses={201: _ok(_obj("token", "secret"), "created"), 409: _err("a token of that name exists")}),
    Operation("DELETE", "/api/v1/tokens/{name}", "token_revoke", "api", "revoke a token", "admin",
              responses={200: _ok(_obj("revoked")), 404: _err("no such token"), 400: _err("cannot be revoked")}),
    # administration
    Operation("POST", "/api/v1/admin/backup", "admin_backup", "api",
              "a consistent backup of the live store into a new or empty directory (writes on the box)", "admin",
              body={"application/json": _obj("dir", dir=_STRING)},
              responses={200: _ok(_obj("dir", "file_count", "bytes")), 409: _err("a backup is already running"),
                         503: _err("the backup failed")}),
    # catalog
    Operation("POST", _TENANT_API + "/catalog", "catalog_import", "catalog", "import a catalog file (CSV or JSON)",
              "supervisor", params=(Param("format", {"type": "string", "enum": ["csv", "json"]}),
                                    Param("dry_run", {"type": "string", "enum": ["1", "0", "true", "false"]}),
                                    Param("filename", _STRING)),
              body={"text/csv": _STRING, "application/json": _ANY},
              responses={200: _ok(_obj("ok", "products")), 413: _err("file too large"),
                         422: _ok(_obj("ok", "errors", "error", errors=_list()), "refused, every problem listed")}),
    Operation("GET", _TENANT_API + "/catalog", "catalog", "catalog", "one product (sku, barcode) or a page of them",
              params=(Param("sku", _STRING), Param("barcode", _STRING), Param("after", _STRING, "older form"),
                      LIMIT, CURSOR),
              responses={200: _ok({"oneOf": [_obj("product"), _obj("count", "products", "next", "next_cursor",
                                                                     products=_list(), next_cursor=_CURSOR)]})}),
    Operation("GET", _TENANT_API + "/stock", "stock", "catalog", "gift stock levels with their age",
              responses={200: _ok(_obj("stock", stock=_list()))}),
    # pack line
    Operation("GET", "/api/v1/stations", "stations_api", "packline", "each station's state (tenant '*')",
              responses={200: _ok(_obj("stations", stations=_list())), 404: _err("no stations are configured")}),
    Operation("GET", _TENANT_API + "/sessions/{session_id}", "session", "packline", "a pack session",
              responses={200: _ok(_OBJECT)}),
    Operation("GET", _TENANT_API + "/labels", "labels", "packline", "label jobs, newest first",
              params=(Param("state", _STRING), LIMIT, CURSOR),
              responses={200: _ok(_obj("labels", "next_cursor", labels=_list(), next_cursor=_CURSOR))}),
    Operation("POST", _TENANT_API + "/labels/{job_id}/decide", "label_decide", "packline",
              "decide an uncertain label job", "operator",
              body={"application/json": _obj("decision", "by", decision={"enum": ["printed", "reprint", "cancel"]},
                                             by=_STRING)},
              responses={200: _ok(_obj("job")), 409: _err("the job is not waiting for that decision")}),
    Operation("GET", _TENANT_API + "/evidence/{order_id}", "evidence", "packline", "clip references of an order",
              path_params=_ORDER_ID, responses={200: _ok(_obj("order_id", "evidence", "pending"))}),
    Operation("GET", _TENANT_API + "/packline/{kind}", "watch_list", "packline", "a watch list",
              path_params={"kind": {"type": "string", "enum": list(WATCH_KINDS)}}, params=(LIMIT, CURSOR),
              responses={200: _ok(_obj("kind", "items", "next_cursor", items=_list(), next_cursor=_CURSOR))}),
    # after-sales lookup
    Operation("GET", _TENANT_API + "/buyers/lookup", "buyer_lookup", "lookup", "a buyer's recent orders",
              params=tuple(Param(n, {"type": "string", "maxLength": 128}) for n in
                           ("phone", "order_id", "waybill", "nick", "keyword")) + (Param("days", _int(1, 90)),),
              responses={200: _ok(_obj("orders"))}),
    Operation("GET", _TENANT_API + "/orders/{order_id}/proof", "proof", "lookup", "the packing proof (JSON)",
              path_params=_ORDER_ID, responses={200: _ok(_OBJECT)}),
    Operation("GET", _TENANT_API + "/orders/{order_id}/proof.html", "proof_html", "lookup", "the proof as a page",
              path_params=_ORDER_ID, params=(LANG,), responses={200: _ok(_STRING, "the page", "text/html")}),
    Operation("GET", _TENANT_API + "/orders/{order_id}/proof.png", "proof_png", "lookup", "the proof as a PNG",
              path_params=_ORDER_ID, params=(LANG,),
              responses={200: _ok({"type": "string", "contentMediaType": "image/png"}, "the image", "image/png"),
                         501: _err("Pillow is not installed: use proof.html")}),
    # operators' view
    Operation("GET", _TENANT_API + "/anomalies", "anomalies", "ops", "the anomaly board, oldest first",
              params=(Param("kind", _STRING), Param("acked", {"type": "string", "enum": ["true", "false"]}),
                      Param("limit", _int(1, 1000)), CURSOR),
              responses={200: _ok(_obj("items", "counts", "next_cursor", items=_list(), next_cursor=_CURSOR))}),
    Operation("POST", _TENANT_API + "/anomalies/{anomaly_id}/ack", "anomaly_ack", "ops", "acknowledge an anomaly",
              "operator", body={"application/json": _obj("by", by={"type": "string", "minLength": 1,
                                                                   "maxLength": 64})},
              responses={200: _ok(_obj("anomaly")), 413: _err("body too large")}),
    Operation("GET", _TENANT_API + "/oci", "oci", "ops", "the Order Credibility Index and its trend",
              params=(Param("hours", _int(1)),), responses={200: _ok(_obj("now", "formula", "weights", "trend"))}),
    Operation("GET", _TENANT_API + "/oci/{part}/orders", "oci_drilldown", "ops", "the orders pulling a part down",
              path_params={"part": {"type": "string", "enum": list(_OCI_PARTS)}},
              params=(Param("limit", _int(1, 1000)), CURSOR),
              responses={200: _ok(_obj("items", "next_cursor", items=_list(), next_cursor=_CURSOR))}),
    # webhooks
    Operation("POST", "/webhooks/{source}/{tenant}", "webhook", "webhooks",
              "a platform's push, signed with the tenant's secret", None,
              path_params={"source": {"type": "string", "enum": sorted(ADAPTERS)}}, params=_webhook_headers(),
              body={"application/json": _ANY, "application/x-www-form-urlencoded": _OBJECT},
              responses={**_WEBHOOK_REPLIES, 503: _ok(_OBJECT, "queue full or store failing: retry")}),
    Operation("POST", "/webhooks/erp/{tenant}/catalog", "erp_catalog", "webhooks",
              "the ERP's product and stock updates, signed like /webhooks/erp/{tenant}", None,
              params=_webhook_headers()[:2], body={"application/json": _ANY},
              responses={**_WEBHOOK_REPLIES, 503: _ok(_OBJECT, "queue full or store failing: retry")}),
    # station screens (no token: the pack line's monitors)
    Operation("GET", "/stations", "station_list", "stations", "the stations, as links", None,
              responses={200: _ok(_STRING, "page", "text/html")}),
    Operation("GET", "/stations/_static/{file}", "station_static", "stations", "the screen's script and style", None,
              responses={200: _ok(_STRING, "file", _STATIC_MEDIA), 404: _err("no such file")}),
    Operation("GET", "/stations/{name}", "station_page", "stations", "a station's screen", None,
              responses={200: _ok(_STRING, "page", "text/html"), 404: _ok(_STRING, "unknown station", "text/html")}),
    Operation("GET", "/stations/{name}/view", "station_view", "stations", "a station's current view", None,
              responses={200: _ok(_OBJECT), 404: _err("unknown station")}),
    Operation("GET", "/stations/{name}/events", "station_events", "stations", "a station's views (SSE)", None,
              responses={200: _ok(_STRING, "Server-Sent Events", "text/event-stream"), 404: _err("unknown station")}),
    # the operators' dashboard (no token: the page holds no data; its calls to the API carry one)
    Operation("GET", "/dashboard", "dashboard_page", "dashboard", "the dashboard page", None,
              responses={200: _ok(_STRING, "page", "text/html")}),
    Operation("GET", "/dashboard/_static/{file}", "dashboard_static", "dashboard", "its script and style sheets",
              None, responses={200: _ok(_STRING, "file", _STATIC_MEDIA), 404: _err("no such file")}),
    *_CUSTOMS_OPERATIONS,
    *_SANDBOX_OPERATIONS,
)

ERROR_SCHEMA: Schema = {
    "type": "object", "required": ["error", "code"],
    "properties": {"error": {"type": "string", "description": "what is wrong and what to do, in English"},
                   "code": {"type": "string", "description": "machine-readable, e.g. not_found, bad_cursor"},
                   "message_zh": {"type": "string", "description": "the same in Chinese"},
                   "needed_role": {"type": "string", "enum": list(ROLES)}},
}
_DESCRIPTION = (
    "The warehouse edge gateway's local API, its webhooks, probes and station screens.\n\n"
    "* Errors: `{\"error\": \"<English>\", \"code\": \"<code>\", \"message_zh\"?: \"<zh-CN>\"}`.\n"
    "* Auth: `Authorization: Bearer <token>`; each operation's `x-role` is the least role it needs; another "
    "tenant's `{tenant}` answers the route's own 404.\n"
    "* Lists page by cursor: `next_cursor` (null on the last page) goes back as `cursor`; it is opaque; "
    "a cursor not handed out is a 400 `bad_cursor`.\n"
    "* Webhooks take no token: each platform's signature with the tenant's secret; a bad one is a 401.")


def _parameters(operation: Operation) -> list[dict[str, Any]]:
    names = re.findall(r"\{(\w+)\}", operation.path)
    found = []
    for name in names:
        schema = ({"type": "string", "pattern": TENANT_PATTERN} if name == "tenant"
                  else operation.path_params.get(name, {"type": "string", "minLength": 1}))
        found.append({"name": name, "in": "path", "required": True, "schema": schema})
    return found + [p.to_dict() for p in operation.params]


def _responses(operation: Operation) -> dict[str, Any]:
    replies: dict[int, tuple[str, Schema | None, str]] = {}
    if operation.tag not in ("webhooks", "stations", "dashboard"):
        replies[503] = _err("store unavailable or queue full: retry after Retry-After")
    if operation.role is not None:
        replies[401] = _err("missing or wrong API token")
        replies[403] = _err("the token's role or tenant is not enough")
    if "{tenant}" in operation.path and operation.tag != "webhooks":
        replies[400] = _err("bad parameter or body (bad tenant name, bad cursor...)")
        replies[404] = _err("not found (also: another tenant's data)")
    if operation.body is not None and operation.tag != "webhooks":
        replies[400] = _err("bad body")
    if any(p.where == "query" for p in operation.params) and operation.tag != "webhooks":
        replies[400] = _err("bad parameter (bad cursor, limit out of range...)")
    if len(re.findall(r"\{(\w+)\}", operation.path)) > ("{tenant}" in operation.path):
        replies.setdefault(404, _err("not found"))
    replies.update(operation.responses)
    replies[414] = _ok(_STRING, "request line over the HTTP server's limit (before any route runs)", "text/plain")
    if any(p.where == "header" for p in operation.params):
        replies[431] = _ok(_STRING, "headers over the HTTP server's limit (before any route runs)", "text/plain")
    answer: dict[str, Any] = {}
    for status in sorted(replies):
        description, schema, media = replies[status]
        answer[str(status)] = {"description": description,
                               "content": {one: {"schema": _ERROR_REF if schema is None else schema}
                                           for one in media.split("|")}}
    return answer


def _operation(operation: Operation) -> dict[str, Any]:
    entry: dict[str, Any] = {"operationId": operation.operation_id, "tags": [operation.tag],
                             "summary": operation.summary, "parameters": _parameters(operation),
                             "responses": _responses(operation)}
    if operation.role is None:
        entry["security"] = []
    else:
        entry["x-role"] = operation.role
    if operation.body is not None:
        entry["requestBody"] = {"required": operation.tag != "webhooks",
                                "content": {media: {"schema": schema} for media, schema in operation.body.items()}}
    return entry


def openapi_document(operations: Iterable[Operation] = OPERATIONS, *, version: str = "1") -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``operations`` (every route of the gateway by default).

    Raises:
        ValueError: two operations share a path and method, or an operation id.
    """
    paths: dict[str, dict[str, Any]] = {}
    ids: set[str] = set()
    for operation in operations:
        methods = paths.setdefault(operation.path, {})
        method = operation.method.lower()
        if method in methods or operation.operation_id in ids:
            raise ValueError(f"{operation.method} {operation.path} ({operation.operation_id}) is documented twice")
        ids.add(operation.operation_id)
        methods[method] = _operation(operation)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Warehouse edge gateway", "version": version, "description": _DESCRIPTION},
        "tags": [{"name": name} for name in ("health", "meta", "api", "catalog", "customs", "packline", "lookup", "ops",
                                             "webhooks", "stations", "dashboard")],
        "paths": paths,
        "components": {"schemas": {"Error": ERROR_SCHEMA},
                       "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearerAuth": []}],
    }


def openapi_path(starlette_path: str) -> str:
    """A Starlette route path as an OpenAPI template: ``{order_id:path}`` becomes ``{order_id}``."""
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", starlette_path)


def route_methods(routes: Sequence[BaseRoute]) -> dict[str, set[str]]:
    """``{OpenAPI path: methods}`` of the ``Route``\\ s among ``routes`` (HEAD left out)."""
    found: dict[str, set[str]] = {}
    for route in routes:
        if isinstance(route, Route):
            found.setdefault(openapi_path(route.path), set()).update((route.methods or set()) - {"HEAD"})
    return found


def openapi_routes(operations: Sequence[Operation] = OPERATIONS) -> list[Route]:
    """``GET /api/v1/openapi.json`` (no token), the document rendered once."""
    body = orjson.dumps(openapi_document(operations))

    async def document(request: Request) -> Response:
        return Response(body, media_type="application/json", headers={"Cache-Control": "no-cache"})

    return [Route(OPENAPI_PATH, document, methods=["GET"])]


__all__ = ["ERROR_SCHEMA", "OPENAPI_PATH", "OPERATIONS", "Operation", "Param", "openapi_document", "openapi_path",
           "openapi_routes", "route_methods"]
