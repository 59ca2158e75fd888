"""The OpenAPI description (``gateway._server.openapi``) against the real application: every
``Route`` of ``build_app`` is documented with the same methods and every documented path
is served, so the two cannot drift; the document is valid OpenAPI 3.1 and is served
without a token.

The application is the one ``tests.server.test_catalog_api.catalog_gateway`` serves: the
real ``build_app`` over a real store and pipeline, on 127.0.0.1.
"""

from __future__ import annotations

import re

import httpx
import pytest
from starlette.routing import Route

from gateway._metrics import Metrics
from gateway._pipeline import Pipeline
from gateway._rules import RuleHolder
from gateway._server import Services, build_app, load_or_create_token
from gateway._server.openapi import (
    OPENAPI_PATH,
    OPERATIONS,
    TENANT_PATTERN,
    Operation,
    openapi_document,
    openapi_path,
    route_methods,
)
from gateway._store import open_store, store_settings
from tests.server.test_catalog_api import catalog_gateway, settings_in

METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}


@pytest.fixture
def app_routes(tmp_path):
    """The routes of the real app (no extra routes: those are the daemon's demo's)."""
    settings = settings_in(tmp_path)
    store = open_store(store_settings(settings))
    try:
        pipeline = Pipeline(store, settings.pipeline, Metrics())
        services = Services(settings=settings, store=store, pipeline=pipeline, rules=RuleHolder(settings.rules_path),
                            metrics=pipeline.metrics, api_token=load_or_create_token(settings.token_path))
        yield build_app(services).routes
    finally:
        store.close()


def documented(document: dict) -> dict[str, set[str]]:
    return {path: {m.upper() for m in item if m in METHODS} for path, item in document["paths"].items()}


def test_every_route_is_documented_with_its_methods_and_nothing_else(app_routes):
    served = route_methods(app_routes)
    described = documented(openapi_document())
    assert len(served) > 30 and all(isinstance(r, Route) for r in app_routes)
    missing = {p: m - described.get(p, set()) for p, m in served.items() if m - described.get(p, set())}
    assert missing == {}, f"routes without a description (add them to OPERATIONS): {missing}"
    extra = {p: m - served.get(p, set()) for p, m in described.items() if m - served.get(p, set())}
    assert extra == {}, f"described but not served: {extra}"


def test_a_new_route_without_a_description_is_caught(app_routes):
    served = route_methods([*app_routes, Route("/api/v1/new/{thing:path}", lambda r: None, methods=["PUT"])])
    assert served["/api/v1/new/{thing}"] == {"PUT"}
    assert "/api/v1/new/{thing}" not in documented(openapi_document())


def test_path_parameters_match_the_templates_and_tenant_has_its_pattern():
    for path, item in openapi_document()["paths"].items():
        names = set(re.findall(r"\{(\w+)\}", path))
        for method, operation in item.items():
            given = {p["name"]: p for p in operation["parameters"] if p["in"] == "path"}
            assert set(given) == names, (method, path)
            assert all(p["required"] for p in given.values())
            if "tenant" in given:
                assert given["tenant"]["schema"]["pattern"] == TENANT_PATTERN == "^[A-Za-z0-9_-]{1,64}$"


def test_security_errors_and_webhooks():
    document = openapi_document()
    assert document["openapi"] == "3.1.0"
    assert document["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert document["components"]["schemas"]["Error"]["required"] == ["error", "code"]
    operations = {op["operationId"]: op for item in document["paths"].values() for op in item.values()}
    assert len(operations) == len(OPERATIONS)
    order = operations["order"]
    assert order["x-role"] == "viewer" and "security" not in order  # the document's bearerAuth applies
    assert {"400", "401", "403", "404", "503"} <= set(order["responses"])
    assert order["responses"]["404"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    for name in ("livez", "healthz", "openapi", "webhook", "erp_catalog", "station_page"):
        assert operations[name]["security"] == [], name
    for name in ("webhook", "erp_catalog"):
        webhook = operations[name]
        assert webhook["tags"] == ["webhooks"] and "401" in webhook["responses"]
        headers = {p["name"] for p in webhook["parameters"] if p["in"] == "header"}
        assert {"X-Gateway-Timestamp", "X-Gateway-Signature"} <= headers
    source = next(p for p in operations["webhook"]["parameters"] if p["name"] == "source")
    assert {"erp", "douyin", "pinduoduo"} <= set(source["schema"]["enum"])
    for name in ("events", "outbox_dead", "quarantine", "labels", "catalog", "watch_list", "anomalies"):
        assert "cursor" in {p["name"] for p in operations[name]["parameters"]}, name


def test_a_duplicate_operation_is_refused():
    with pytest.raises(ValueError, match="twice"):
        openapi_document([*OPERATIONS, Operation("GET", "/livez", "livez2", "health", "again", None)])


def test_openapi_path_drops_convertors():
    assert openapi_path("/api/v1/tenants/{tenant}/orders/{order_id:path}") == "/api/v1/tenants/{tenant}/orders/{order_id}"


async def test_the_document_is_valid_json_schema_and_served_without_a_token(tmp_path):
    import schemathesis

    document = openapi_document()
    loaded = schemathesis.openapi.from_dict(document)  # schemathesis reads every operation of it
    operations = [result.ok() for result in loaded.get_all_operations()]
    assert len(operations) == len(OPERATIONS)
    async with catalog_gateway(settings_in(tmp_path)) as gw, httpx.AsyncClient(base_url=gw.base) as client:
        reply = await client.get(OPENAPI_PATH)
        assert reply.status_code == 200 and reply.headers["content-type"] == "application/json"
        assert reply.json() == document


async def test_starlette_own_404_and_405_in_the_api_error_shape_once_registered():
    """``http.http_error_json``, for ``app.py``'s ``exception_handlers`` (not registered there yet)."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.responses import PlainTextResponse

    from gateway._server.http import http_error_json

    async def hello(request):
        return PlainTextResponse("hi")

    app = Starlette(routes=[Route("/api/v1/things/{thing:path}", hello, methods=["GET"])],
                    exception_handlers={HTTPException: http_error_json})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        missing = await client.get("/api/v1/things/a%0Ab")  # {thing:path} does not match a newline
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/json"
        assert missing.json()["code"] == "not_found" and "openapi.json" in missing.json()["error"]
        assert "message_zh" in missing.json()
        wrong = await client.post("/api/v1/things/a")
        assert wrong.status_code == 405 and wrong.json()["code"] == "method_not_allowed"
        assert set(wrong.headers["allow"].split(", ")) == {"GET", "HEAD"} and "GET" in wrong.json()["error"]
