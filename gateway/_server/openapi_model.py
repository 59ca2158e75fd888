"""The words the OpenAPI table is written in: ``Operation``, ``Param`` and the schema helpers.

``gateway._server.openapi.OPERATIONS`` (and the route modules' own tables it joins, such as
``gateway._server.openapi_customs``) lists one ``Operation`` per path and method; this module
is what those entries are built from, so that each entry says only what is particular to
its route::

    Operation("GET", _TENANT_API + "/stock", "stock", "catalog", "gift stock levels",
              params=(LIMIT, CURSOR),
              responses={200: _ok(_obj("stock", stock=_list())), 409: _err("busy")})

* ``_obj``, ``_list``, ``_int`` and the constants ``_ANY``, ``_OBJECT``, ``_STRING``,
  ``_CURSOR`` write JSON Schemas (loose objects: the properties named, others allowed);
* ``_ok(schema, description, media)`` is an answer with a body of that schema (several media
  types joined by ``|``), ``_err(description)`` an answer in the error shape
  (``components.schemas.Error``);
* ``LIMIT``, ``CURSOR``, ``AFTER``, ``LANG`` and ``IDS_BODY`` are the parameters and body
  every list and bulk route shares, spelt once.

The answers every route gives anyway (401/403 for a token, 400/404 for ``{tenant}``, 503,
414, 431) are added when the document is built (``gateway._server.openapi``), not here.
Pure values: nothing in this module reads a request or a handler.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway._server.tokens import Role
from gateway._settings import TENANT_NAME

#: The ``{tenant}`` path parameter's pattern (``gateway._settings.TENANT_NAME``).
TENANT_PATTERN = TENANT_NAME.pattern
Schema = dict[str, Any]

_ANY: Schema = {}
_OBJECT: Schema = {"type": "object"}
_STRING: Schema = {"type": "string"}
_CURSOR: Schema = {"type": ["string", "null"], "description": "pass back as ``cursor``; null: last page"}


def _int(low: int, high: int | None = None, description: str = "") -> Schema:
    schema: Schema = {"type": "integer", "minimum": low}
    if high is not None:
        schema["maximum"] = high
    return {**schema, **({"description": description} if description else {})}


def _obj(*required: str, **properties: Schema) -> Schema:
    """A loose object schema: these properties (others allowed), ``required`` present."""
    return {"type": "object", "properties": properties, **({"required": list(required)} if required else {})}


def _list(items: Schema = _OBJECT) -> Schema:
    return {"type": "array", "items": items}


@dataclass(frozen=True)
class Param:
    """A query or header parameter (``where``: ``query`` or ``header``)."""

    name: str
    schema: Schema
    description: str = ""
    where: str = "query"
    required: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "in": self.where, "required": self.required, "schema": self.schema,
                **({"description": self.description} if self.description else {})}


@dataclass(frozen=True)
class Operation:
    """One documented operation.

    Args:
        method: upper-case HTTP method.
        path: the OpenAPI path template (Starlette's ``{x:path}`` written ``{x}``).
        operation_id: unique, stable name.
        tag: the route module's audience (``api``, ``catalog``, ``webhooks``...).
        summary: one line.
        role: the least token role it needs; ``None``: no token (probes, webhooks, screens).
        path_params: schemas of the path's parameters other than ``{tenant}`` (a string
            when not given).
        params: query and header parameters.
        body: request body content by media type (``None``: no body).
        responses: status -> (description, schema of the answer or ``None`` for the error
            shape, media type).
    """

    method: str
    path: str
    operation_id: str
    tag: str
    summary: str
    role: Role | None = "viewer"
    path_params: Mapping[str, Schema] = field(default_factory=dict)
    params: tuple[Param, ...] = ()
    body: Mapping[str, Schema] | None = None
    responses: Mapping[int, tuple[str, Schema | None, str]] = field(default_factory=dict)


def _ok(schema: Schema, description: str = "done", media: str = "application/json") -> tuple[str, Schema, str]:
    return (description, schema, media)


def _err(description: str) -> tuple[str, None, str]:
    return (description, None, "application/json")


LIMIT = Param("limit", _int(0, description="items per page (a route clamps it to its own bound)"))
CURSOR = Param("cursor", {"type": "string", "maxLength": 2048}, "the ``next_cursor`` of the previous page")
AFTER = Param("after", _int(0), "older form: items after this seq (``next_after`` of the previous page)")
IDS_BODY: Mapping[str, Schema] = {"application/json": {"oneOf": [
    _obj("ids", ids=_list(_int(1))), _obj("all", all={"const": True})]}}
LANG = Param("lang", {"type": "string", "enum": ["zh", "en"]}, "language of the rendering (zh-CN by default)")
_TENANT_API = "/api/v1/tenants/{tenant}"
_ORDER_ID = {"order_id": {"type": "string", "minLength": 1}}
_STATIC_MEDIA = "text/javascript|text/css|application/javascript"

__all__ = ["AFTER", "CURSOR", "IDS_BODY", "LANG", "LIMIT", "TENANT_PATTERN", "Operation", "Param", "Schema"]
