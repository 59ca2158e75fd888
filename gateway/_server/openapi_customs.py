"""The customs routes' OpenAPI entries (``gateway._server.customs_api``), joined into
``gateway._server.openapi.OPERATIONS``.

It builds on ``Operation`` and the schema helpers of ``gateway._server.openapi``, which imports
this module once those are defined (import ``gateway._server.openapi`` first, never this
module on its own).
"""

from __future__ import annotations

from gateway._server.openapi import (
    _ANY,
    _STATIC_MEDIA,
    _STRING,
    _TENANT_API,
    Operation,
    Param,
    _err,
    _list,
    _obj,
    _ok,
)

_CUSTOMS = _TENANT_API + "/customs"
_KIND = {"kind": {"type": "string", "enum": ["products", "suppliers", "values"]}}

OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", _CUSTOMS + "/attributes", "customs_attributes", "customs",
              "the required declaration attributes, the cross-border policy and the fill rules",
              responses={200: _ok(_obj("enabled", "attributes", "cross_border", "rules", attributes=_list(),
                                       rules=_list()))}),
    Operation("GET", _CUSTOMS + "/board", "customs_board", "customs",
              "the pre-declaration board: open cross-border orders with missing attributes and the record "
              "that fills each (format=csv: the fill file)",
              params=(Param("all", {"type": "string", "enum": ["1", "0", "true", "false"]},
                            "also the complete declarations"),
                      Param("format", {"type": "string", "enum": ["json", "csv"]})),
              responses={200: _ok({"oneOf": [_obj("enabled", "count", "orders", orders=_list()), _STRING]},
                                   "the board (JSON), or the fill file (CSV)", "application/json|text/csv")}),
    Operation("GET", _CUSTOMS + "/orders/{order_id}", "customs_order", "customs",
              "one order's declaration: cross-border or not, values and their sources, what is missing",
              path_params={"order_id": {"type": "string", "minLength": 1}},
              responses={200: _ok(_obj("cross_border")), 404: _err("no such order")}),
    Operation("POST", _CUSTOMS + "/{kind}", "customs_import", "customs",
              "import product or supplier master data, or declaration values (CSV or JSON)", "supervisor",
              path_params=_KIND,
              params=(Param("dry_run", {"type": "string", "enum": ["1", "0", "true", "false"]}),
                      Param("filename", _STRING)),
              body={"text/csv": _STRING, "application/json": _ANY},
              responses={200: _ok(_obj("ok", "kind", "rows", "completed")), 409: _err("the customs check is off"),
                         413: _err("file too large"),
                         422: _ok(_obj("ok", "errors", "error", errors=_list()), "refused, every problem listed")}),
    Operation("GET", "/customs", "customs_page", "dashboard", "the pre-declaration board page", None,
              responses={200: _ok(_STRING, "page", "text/html")}),
    Operation("GET", "/customs/_static/{file}", "customs_static", "dashboard", "its script", None,
              responses={200: _ok(_STRING, "file", _STATIC_MEDIA), 404: _err("no such file")}),
)

__all__ = ["OPERATIONS"]
