"""The catalog and gift-stock routes: file imports, lookups, and the ERP's signed updates.

Routes (an import needs the role ``supervisor``, a read ``viewer``; another tenant's
``{tenant}`` is a 404)::

    POST /api/v1/tenants/{tenant}/catalog?format=csv|json&dry_run=1&filename=F   (token)
         body = the catalog file (CSV or JSON, ``gateway._packline.catalog``); 422 with every
         problem (``errors``: file, row, column, message, message_en) when it is refused;
         200 with counts when it is stored (or, with ``dry_run``, would be)
    GET  /api/v1/tenants/{tenant}/catalog?sku=S | ?barcode=B | ?cursor=C&limit=N   (token)
         one product (404 when none), or the products in SKU order: ``next_cursor`` to
         pass back as ``cursor`` (``null`` on the last page); the older ``after=SKU`` with
         ``next`` (the last SKU) works too; ``limit`` 1..10,000 (1,000)
    GET  /api/v1/tenants/{tenant}/stock                                          (token)
         every gift stock level with ``age_s`` (how old the ERP's figure is)
    POST /webhooks/erp/{tenant}/catalog     signed like ``/webhooks/erp/{tenant}``
         one event ``{"event_id", "type": "product"|"stock", ...}``, or several as
         ``{"events": [...]}`` or a bare JSON array (applied in order, all or nothing)

Writes go through ``services.pipeline.submit([], "webhook", extra=...)``: durable and ordered
with every other commit, refused with 503 under backpressure. One lock serialises the
catalog's writers, so a file is validated against the catalog it is committed onto and an
ERP event id is checked and remembered without a race. ERP updates: 401 (and nothing
stored) on a bad signature, unknown tenant or address; 200 with ``outcome`` ``applied`` or
``duplicate`` per event (an event id already applied is answered, not re-applied); 422 with
every problem (nothing of the batch stored); 413 past ``[http] max_body_bytes``.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import Any

import orjson
import trio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway._addresses import parse_networks
from gateway._errors import BackpressureError, IngestError, MalformedEventError, PayloadTooLargeError
from gateway._ingest import ADAPTERS
from gateway._ops.paging import encode_cursor
from gateway._packline.catalog import (
    CatalogFormat,
    CatalogImportError,
    CatalogProblem,
    ParsedCatalog,
    catalog_event_seen,
    catalog_write,
    claim_barcodes,
    fresher_levels,
    load_catalog,
    load_stock,
    parse_catalog,
    parse_catalog_update,
    product_to_json,
    stock_age_s,
)
from gateway._packline.values import Catalog, Product, StockLevel
from gateway._pipeline import now_ms
from gateway._server.http import Protect, cursor_param, json_response, page_limit, read_body
from gateway._server.services import Services
from gateway._server.webhooks import _headers, _raw_request
from gateway._settings import TENANT_NAME
from gateway._store import StepWrite

log = logging.getLogger(__name__)

#: The largest catalog file the API takes (a 100,000-SKU CSV is about 10 MiB).
CATALOG_MAX_BYTES = 32 * 1024 * 1024
_YES = ("1", "true", "yes")
_FORMATS: dict[str, CatalogFormat | None] = {"": None, "csv": "csv", "json": "json"}


def _refused(exc: CatalogImportError, what: str) -> Response:
    return json_response({"ok": False, "error": f"{what} refused: {len(exc.problems) + exc.more} problem(s)",
                          "errors": [p.to_dict() for p in exc.problems], "more": exc.more}, 422)


def _counts(existing: Catalog, parsed: ParsedCatalog) -> dict[str, int]:
    new = sum(1 for p in parsed.products if existing.product(p.sku) is None)
    unchanged = sum(1 for p in parsed.products if existing.product(p.sku) == p)
    return {"products": len(parsed.products), "new": new, "updated": len(parsed.products) - new - unchanged,
            "unchanged": unchanged, "kits": sum(1 for p in parsed.products if p.parts),
            "barcodes": sum(len(p.barcodes) for p in parsed.products), "stock": len(parsed.stock)}


def _level_json(level: StockLevel, at_ms: int) -> dict[str, Any]:
    return {**level.to_dict(), "age_s": stock_age_s(level, at_ms)}


def catalog_routes(services: Services, protected: Protect) -> list[Route]:
    """The catalog's routes bound to ``services``; the ``/api/v1`` ones behind ``protected``."""
    settings = services.settings
    store = services.store
    trusted_proxies = parse_networks(settings.http.trusted_proxies)
    writing = trio.Lock()

    async def submit(write: StepWrite) -> Response | None:
        try:
            await services.pipeline.submit([], "webhook", extra=write)
        except BackpressureError as exc:
            return json_response({"ok": False, "error": str(exc)}, 503, {"Retry-After": str(exc.retry_after_s)})
        return None

    async def import_catalog(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        params = request.query_params
        if params.get("format", "") not in _FORMATS:
            return json_response({"ok": False, "error": "format must be csv or json"}, 400)
        fmt = _FORMATS[params.get("format", "")]
        dry_run = params.get("dry_run", "").lower() in _YES
        name = (params.get("filename") or "<upload>")[:200]
        try:
            body = await read_body(request, CATALOG_MAX_BYTES, request.headers.get("content-length"))
        except (PayloadTooLargeError, MalformedEventError) as exc:
            return json_response({"ok": False, "error": str(exc)}, exc.http_status)
        actor = "api" + (f":{request.headers['x-gateway-actor'][:64]}" if "x-gateway-actor" in request.headers else "")
        async with writing:
            existing = await trio.to_thread.run_sync(load_catalog, store, tenant)
            at_ms = now_ms()
            try:
                parsed = await trio.to_thread.run_sync(partial(
                    parse_catalog, body, fmt, name=name, existing=existing, now_ms=at_ms))
            except CatalogImportError as exc:
                log.info("tenant %s: catalog %s refused: %d problems", tenant, name, len(exc.problems) + exc.more)
                return _refused(exc, "catalog")
            counts = _counts(existing, parsed)
            if not dry_run:
                note = f"import {name}: {counts['products']} products, {counts['stock']} stock levels"
                write = catalog_write(tenant, parsed.products, parsed.stock, actor=actor, note=note, now_ms=at_ms)
                refused = await submit(write)
                if refused is not None:
                    return refused
                log.info("tenant %s: %s (%s)", tenant, note, actor)
        return json_response({"ok": True, "dry_run": dry_run, **counts})

    async def show_catalog(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        sku, barcode = request.query_params.get("sku"), request.query_params.get("barcode")
        if sku is not None:
            raw = store.get_record(tenant, "product", sku)
            if raw is None:
                return json_response({"error": f"no product with sku {sku!r}"}, 404)
            return json_response({"product": product_to_json(Product.from_dict(raw))})
        catalog = await trio.to_thread.run_sync(load_catalog, store, tenant)
        if barcode is not None:
            product = catalog.by_barcode(barcode)
            if product is None:
                return json_response({"error": f"no product with barcode {barcode!r}"}, 404)
            return json_response({"product": product_to_json(product)})
        cursor = cursor_param(request, "catalog", (str,))
        if isinstance(cursor, Response):
            return cursor
        after = str(cursor[0]) if cursor else request.query_params.get("after", "")
        limit = page_limit(request, 1000)
        page = sorted((p for p in catalog if p.sku > after), key=lambda p: p.sku)
        more = len(page) > limit
        page = page[:limit]
        return json_response({"count": len(catalog), "products": [product_to_json(p) for p in page],
                              "next": page[-1].sku if more else None,
                              "next_cursor": encode_cursor("catalog", (page[-1].sku,)) if more else None})

    async def show_stock(request: Request) -> Response:
        levels = await trio.to_thread.run_sync(load_stock, store, request.path_params["tenant"])
        at_ms = now_ms()
        return json_response({"stock": [_level_json(levels[sku], at_ms) for sku in sorted(levels)]})

    async def erp_catalog(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        adapter = ADAPTERS["erp"]
        credentials = settings.credentials(tenant, "erp") if TENANT_NAME.match(tenant) else None
        if credentials is None:
            services.metrics.refused.labels("erp", "unknown_tenant").inc()
            return json_response({"ok": False, "error": "unknown tenant for this source"}, 401)
        try:
            headers = _headers(request)
            body = await read_body(request, settings.http.max_body_bytes, headers.get("content-length"))
            adapter.verify(_raw_request(request, headers, body, trusted_proxies), credentials, time.time())
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return json_response({"ok": False, "error": f"body is not JSON: {exc}"}, 400)
        except IngestError as exc:
            services.metrics.refused.labels("erp", type(exc).__name__.removesuffix("Error").lower()).inc()
            log.info("refused an ERP catalog update for tenant %s: %s", tenant, exc)
            return json_response({"ok": False, "error": str(exc)}, exc.http_status)
        batch = isinstance(payload, list) or (isinstance(payload, dict) and isinstance(payload.get("events"), list))
        events: list[Any] = payload if isinstance(payload, list) else payload["events"] if batch else [payload]
        if len(events) > settings.http.max_events_per_request:
            return json_response({"ok": False, "error": f"{len(events)} events is over max_events_per_request"}, 413)
        async with writing:
            try:
                outcome = await trio.to_thread.run_sync(_plan_updates, store, tenant, events, batch, now_ms())
            except CatalogImportError as exc:
                services.metrics.refused.labels("erp", "catalog").inc()
                log.info("tenant %s: ERP catalog update refused: %s", tenant, exc)
                return _refused(exc, "catalog update")
            write, results = outcome
            if write.records:
                refused = await submit(write)  # a StoreError is the app's 503
                if refused is not None:
                    return refused
        return json_response({"ok": True, "accepted": len(events), "results": results})

    return [
        Route("/api/v1/tenants/{tenant}/catalog", protected(import_catalog, "supervisor"), methods=["POST"]),
        Route("/api/v1/tenants/{tenant}/catalog", protected(show_catalog, "viewer"), methods=["GET"]),
        Route("/api/v1/tenants/{tenant}/stock", protected(show_stock, "viewer"), methods=["GET"]),
        Route("/webhooks/erp/{tenant}/catalog", erp_catalog, methods=["POST"]),
    ]


def _plan_updates(store: Any, tenant: str, events: list[Any], batch: bool,
                  at_ms: int) -> tuple[StepWrite, list[dict[str, Any]]]:
    """The write of a batch of ERP catalog events (each after the ones before it) and one
    result per event; every problem of every event raised together."""
    catalog = load_catalog(store, tenant)
    levels = load_stock(store, tenant)
    write = StepWrite()
    results: list[dict[str, Any]] = []
    problems: list[CatalogProblem] = []
    applied: set[str] = set()
    for index, event in enumerate(events):
        event_id = event.get("event_id") if isinstance(event, dict) else None
        if isinstance(event_id, str) and (event_id in applied or (event_id and catalog_event_seen(store, tenant,
                                                                                                  event_id))):
            results.append({"event_id": event_id, "outcome": "duplicate"})
            continue
        try:
            update = parse_catalog_update(event, existing=catalog, now_ms=at_ms)
        except CatalogImportError as exc:
            problems.extend(CatalogProblem(f"events[{index}] {p.file}", p.row, p.column, p.message, p.message_en)
                            if batch else p for p in exc.problems)
            continue
        applied.add(update.event_id)
        products = [*claim_barcodes(catalog, update.products), *update.products]
        catalog = catalog.with_products(products)
        stock, stale = fresher_levels(levels, update.stock)
        levels.update((s.sku, s) for s in stock)
        note = f"ERP {event['type']} event: {len(update.products)} products, {len(stock)} stock levels" + (
            f", {len(stale)} older figures ignored" if stale else "")
        write.merge(catalog_write(tenant, products, stock, actor="source:erp", note=note, now_ms=at_ms,
                                  event_id=update.event_id))
        results.append({"event_id": update.event_id, "outcome": "applied", "products": len(products),
                        "stock": len(stock), "stale": stale})
    if problems:
        raise CatalogImportError(problems)
    return write, results


__all__ = ["CATALOG_MAX_BYTES", "catalog_routes"]
