"""Source adapters: verify a platform's signature and unwrap its envelope into plain dicts.

An adapter is pure: it takes a ``RawRequest`` (headers, body, query, peer address — no
sockets) and the tenant's ``SourceCredentials``, and either raises an ``IngestError``
(``SignatureError`` -> 401, ``MalformedEventError`` -> 400) or returns the decoded events
that the source's mapping rules read. It also renders the reply body the platform
expects, because platforms retry until they see their own success shape.

Adapters are registered by source name in ``ADAPTERS``; the HTTP layer routes
``POST /webhooks/{source}/{tenant}`` to ``ADAPTERS[source]``. One module per source, each
documenting its envelope, signature rule, replay window, reply bodies and what is
UNCONFIRMED: ``erp`` (our own dialect), ``douyin``, ``youzan``, ``xiaohongshu``, ``tmall``,
``pinduoduo`` (relayed WebSocket frames; also the frame helpers the WebSocket client uses),
``kuaidi100``, ``cainiao``.
"""

from __future__ import annotations

from gateway._ingest.adapters.base import Adapter, RawRequest, Reply
from gateway._ingest.adapters.cainiao import CainiaoAdapter
from gateway._ingest.adapters.douyin import DouyinAdapter
from gateway._ingest.adapters.erp import ErpAdapter
from gateway._ingest.adapters.kuaidi100 import Kuaidi100Adapter
from gateway._ingest.adapters.pinduoduo import PinduoduoAdapter
from gateway._ingest.adapters.tmall import TmallAdapter
from gateway._ingest.adapters.xiaohongshu import XiaohongshuAdapter
from gateway._ingest.adapters.youzan import YouzanAdapter

ADAPTERS: dict[str, Adapter] = {
    adapter.source: adapter
    for adapter in (
        ErpAdapter(),
        DouyinAdapter(),
        YouzanAdapter(),
        XiaohongshuAdapter(),
        TmallAdapter(),
        PinduoduoAdapter(),
        Kuaidi100Adapter(),
        CainiaoAdapter(),
    )
}

__all__ = [
    "ADAPTERS", "Adapter", "CainiaoAdapter", "DouyinAdapter", "ErpAdapter", "Kuaidi100Adapter",
    "PinduoduoAdapter", "RawRequest", "Reply", "TmallAdapter", "XiaohongshuAdapter", "YouzanAdapter",
]
