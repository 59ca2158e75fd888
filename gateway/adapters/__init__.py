"""Source adapters: verify a platform's signature and unwrap its envelope into plain dicts.

An adapter is pure: it takes a ``RawRequest`` (headers, body, query, peer address — no
sockets) and the tenant's ``SourceCredentials``, and either raises an ``IngestError``
(``SignatureError`` -> 401, ``MalformedEventError`` -> 400) or returns the decoded events
that the source's mapping rules read. It also renders the reply body the platform
expects, because platforms retry until they see their own success shape.

Adapters are registered by source name in ``ADAPTERS``; the HTTP layer routes
``POST /webhooks/{source}/{tenant}`` to ``ADAPTERS[source]``.
"""

from __future__ import annotations

from gateway.adapters._base import Adapter, RawRequest, Reply
from gateway.adapters.erp import ErpAdapter
from gateway.adapters.pinduoduo import PinduoduoAdapter

ADAPTERS: dict[str, Adapter] = {
    adapter.source: adapter
    for adapter in (
        ErpAdapter(),
        PinduoduoAdapter(),
    )
}

__all__ = ["ADAPTERS", "Adapter", "ErpAdapter", "PinduoduoAdapter", "RawRequest", "Reply"]
