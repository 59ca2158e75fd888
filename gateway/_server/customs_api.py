"""The customs-declaration routes: the pre-declaration board, one order's declaration, imports.

Routes (an import needs the role ``supervisor``, a read ``viewer``; another tenant's
``{tenant}`` is a 404)::

    GET  /api/v1/tenants/{tenant}/customs/attributes
         the required attributes, the cross-border policy and the fill rules
    GET  /api/v1/tenants/{tenant}/customs/board[?all=1][&format=csv]
         the open cross-border orders with missing attributes (``all``: the complete ones
         too), each missing value with the record that would fill it; ``format=csv``: the
         fill file (one row per record and field to fill: fill ``value``, import it back)
    GET  /api/v1/tenants/{tenant}/customs/orders/{order_id}
         one order's declaration (404 when there is no such order)
    POST /api/v1/tenants/{tenant}/customs/{kind}?filename=F&dry_run=1     kind: products,
         suppliers or values; body = the CSV or JSON file (``gateway._customs.master``);
         422 with every problem (``errors``: file, row, column, message, message_en);
         200 with counts and the orders the import completed (their ``declaration``
         events are forwarded upstream, committed with the import)
    GET  /customs, /customs/_static/customs.js   the board's page (no token: it holds no data;
         its calls carry one, as the dashboard's; zh-CN with an English switch)

Writes go through ``services.pipeline.submit(declaration events, "webhook", extra=...)``:
durable and ordered with every other commit, 503 under backpressure. One lock serialises
the imports, so a file is applied to the master data it was checked against.
"""

from __future__ import annotations

import csv
import io
import logging
from functools import partial
from typing import Any

import trio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway._customs import (
    CustomsConfig,
    CustomsImportError,
    Declaration,
    MasterKind,
    apply_master,
    apply_values,
    board,
    completions,
    declare_stored,
    import_write,
    load_customs,
    load_master,
    master_counts,
    parse_master,
    parse_values,
)
from gateway._customs.problems import Problems
from gateway._customs.records import PRODUCT, SUPPLIER
from gateway._errors import BackpressureError, MalformedEventError, PayloadTooLargeError
from gateway._pipeline import now_ms
from gateway._server.dashboard import HEADERS, STATIC_DIR
from gateway._server.http import Protect, json_response, read_body
from gateway._server.services import Services
from gateway._store import Store

log = logging.getLogger(__name__)

#: The largest import file the API takes.
CUSTOMS_MAX_BYTES = 32 * 1024 * 1024
KINDS = ("products", "suppliers", "values")
_YES = ("1", "true", "yes")


def customs_config(services: Services) -> CustomsConfig:
    """The daemon's customs configuration (read from ``[customs] dir`` once when not given)."""
    if services.customs is None:
        services.customs = load_customs(services.settings.customs_path)
    return services.customs


def config_json(config: CustomsConfig) -> dict[str, Any]:
    """The configuration as the API shows it."""
    border = config.cross_border
    return {
        "enabled": config.enabled, "source": config.source,
        "cross_border": {"home_country": border.home_country, "country_fields": list(border.country_fields),
                         "flag_fields": list(border.flag_fields), "shops": list(border.shops),
                         "warehouses": list(border.warehouses),
                         "codes": {path: list(values) for path, values in border.codes}},
        "attributes": [{"id": a.id, "label": a.label, "label_en": a.label_en, "type": a.type, "values": list(a.values),
                        "pattern": a.pattern, "min": a.min, "max": a.max, "hint": a.hint, "hint_en": a.hint_en,
                        "applies_to": {"skus": list(a.applies_to.skus), "categories": list(a.applies_to.categories),
                                       "names": list(a.applies_to.names),
                                       "destinations": list(a.applies_to.destinations)}}
                       for a in config.attributes.values()],
        "rules": [{"name": r.name, "attribute": r.attribute, "from": r.source, "field": r.field,
                   "name_matches": r.name_matches, "categories": list(r.categories), "skus": list(r.skus),
                   "overrides": r.overrides} for r in config.rules],
    }


def fill_csv(config: CustomsConfig, declarations: list[Declaration]) -> str:
    """The board as a values file: one row per record and field to fill, ``value`` empty."""
    rows: dict[tuple[str, str, str, str], list[str]] = {}
    for declaration in declarations:
        for need in declaration.missing:
            if need.reason == "no_supplier" and not need.fill_id:
                key = ("product", need.sku, "", "supplier")  # name the supplier first
            elif need.fill_kind == "order":
                key = ("order", declaration.order_id, need.sku, need.attribute)
            else:
                key = (need.fill_kind, need.fill_id, "", need.field)
            rows.setdefault(key, []).append(declaration.order_id)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["target", "id", "sku", "attribute", "value", "orders", "label"])
    for (target, record_id, sku, name), orders in rows.items():
        attribute = config.attributes.get(name) or config.field_attribute(target, name)
        label = f"{attribute.label} / {attribute.label_en}" if attribute else "supplier"
        writer.writerow([target, record_id, sku, name, "", " ".join(dict.fromkeys(orders)), label])
    return out.getvalue()


def _refused(exc: CustomsImportError) -> Response:
    return json_response({"ok": False, "error": f"refused: {len(exc.problems) + exc.more} problem(s)",
                          "errors": [p.to_dict() for p in exc.problems], "more": exc.more}, 422)


def plan_import(store: Store, config: CustomsConfig, tenant: str, kind: str, body: bytes, name: str, actor: str,
                at_ms: int) -> tuple[Any, Any, dict[str, Any]]:
    """``(declaration events, write, counts)`` of an import file. Blocking.

    Raises:
        CustomsImportError: every problem of the file; nothing to store.
    """
    master = load_master(store, tenant)
    if kind == "values":
        problems = Problems(name)
        rows = parse_values(body, config, name=name, problems=problems)
        records = apply_values(store, master, tenant, rows, name, problems)
        counts: dict[str, Any] = {"rows": len(rows), "records": len(records)}
    else:
        master_kind: MasterKind = "products" if kind == "products" else "suppliers"
        parsed = parse_master(body, master_kind, config, name=name)
        counts = master_counts(master.products if kind == "products" else master.suppliers, parsed)
        table = PRODUCT if kind == "products" else SUPPLIER
        records = [(table, r["sku"] if kind == "products" else r["supplier"], r)
                   for r in apply_master(master, master_kind, parsed)]
    events, done, declarations = completions(store, config, tenant, master, at_ms, actor)
    write = import_write(tenant, records, actor=actor, note=f"customs {kind} import {name}: {counts['rows']} rows, "
                         f"{len(events)} declarations completed", now_ms=at_ms)
    write.merge(done)
    counts.update(completed=[e.order_id for e in events],
                  incomplete=sum(1 for d in declarations if not d.complete))
    return events, write, counts


def customs_routes(services: Services, protected: Protect) -> list[Route]:
    """The customs routes bound to ``services``, behind ``protected``."""
    store = services.store
    writing = trio.Lock()

    async def attributes(request: Request) -> Response:
        return json_response(config_json(customs_config(services)))

    async def show_board(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        config = customs_config(services)
        declarations = await trio.to_thread.run_sync(board, store, config, tenant)
        if request.query_params.get("format") == "csv":
            text = fill_csv(config, declarations)
            return Response(text.encode("utf-8-sig"), 200, media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": f'attachment; filename="customs-fill-{tenant}.csv"'})
        shown = declarations if request.query_params.get("all", "").lower() in _YES else [
            d for d in declarations if not d.complete]
        return json_response({"enabled": config.enabled, "count": len(shown),
                              "incomplete": sum(1 for d in declarations if not d.complete),
                              "complete": sum(1 for d in declarations if d.complete),
                              "orders": [d.to_dict(config) for d in shown]})

    async def show_order(request: Request) -> Response:
        tenant, order_id = request.path_params["tenant"], request.path_params["order_id"]
        order = store.get_order(tenant, order_id)
        if order is None:
            return json_response({"error": f"no order {order_id!r}"}, 404)
        config = customs_config(services)
        declaration = await trio.to_thread.run_sync(declare_stored, store, config, order)
        forwarded = store.get_record(tenant, "declaration", order_id)
        if declaration is None:
            return json_response({"order_id": order_id, "cross_border": False, "forwarded": forwarded})
        return json_response({"cross_border": True, **declaration.to_dict(config), "forwarded": forwarded})

    async def import_file(request: Request) -> Response:
        tenant, kind = request.path_params["tenant"], request.path_params["kind"]
        if kind not in KINDS:
            return json_response({"ok": False, "error": f"unknown import {kind!r}: one of {', '.join(KINDS)}"}, 404)
        config = customs_config(services)
        if not config.enabled:
            return json_response({"ok": False, "error": "the customs check is off: no attributes.toml in "
                                  f"{services.settings.customs_path}"}, 409)
        name = (request.query_params.get("filename") or "<upload>")[:200]
        dry_run = request.query_params.get("dry_run", "").lower() in _YES
        try:
            body = await read_body(request, CUSTOMS_MAX_BYTES, request.headers.get("content-length"))
        except (PayloadTooLargeError, MalformedEventError) as exc:
            return json_response({"ok": False, "error": str(exc)}, exc.http_status)
        actor = "api" + (f":{request.headers['x-gateway-actor'][:64]}" if "x-gateway-actor" in request.headers else "")
        async with writing:
            try:
                events, write, counts = await trio.to_thread.run_sync(partial(
                    plan_import, store, config, tenant, kind, body, name, actor, now_ms()))
            except CustomsImportError as exc:
                log.info("tenant %s: customs %s %s refused: %d problems", tenant, kind, name,
                         len(exc.problems) + exc.more)
                return _refused(exc)
            if not dry_run:
                try:
                    await services.pipeline.submit(events, "webhook", extra=write)
                except BackpressureError as exc:
                    return json_response({"ok": False, "error": str(exc)}, 503,
                                         {"Retry-After": str(exc.retry_after_s)})
                log.info("tenant %s: customs %s import %s: %s", tenant, kind, name, counts)
        request.state.audit = {"kind": kind, "file": name, "rows": counts["rows"], "dry_run": dry_run}
        return json_response({"ok": True, "dry_run": dry_run, "kind": kind, **counts})

    page_body = (STATIC_DIR / "customs.html").read_bytes()
    script = (STATIC_DIR / "customs.js").read_bytes()

    async def page(request: Request) -> Response:
        return Response(page_body, media_type="text/html; charset=utf-8", headers=HEADERS)

    async def static_file(request: Request) -> Response:
        if request.path_params["file"] != "customs.js":
            return json_response({"error": "no such file: the customs page has customs.js"}, 404)
        return Response(script, media_type="text/javascript; charset=utf-8", headers=HEADERS)

    base = "/api/v1/tenants/{tenant}/customs"
    return [
        Route("/customs", page, methods=["GET"]),
        Route("/customs/_static/{file}", static_file, methods=["GET"]),
        Route(base + "/attributes", protected(attributes, "viewer"), methods=["GET"]),
        Route(base + "/board", protected(show_board, "viewer"), methods=["GET"]),
        Route(base + "/orders/{order_id:path}", protected(show_order, "viewer"), methods=["GET"]),
        Route(base + "/{kind}", protected(import_file, "supervisor"), methods=["POST"]),
    ]


__all__ = ["CUSTOMS_MAX_BYTES", "KINDS", "config_json", "customs_config", "customs_routes", "fill_csv",
           "plan_import"]
