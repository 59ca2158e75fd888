"""Gift stock read from the ERP's stock endpoint before packing (``[packline] stock_url``).

The ERP pushes stock levels (``POST /webhooks/erp/{tenant}/catalog``, type ``stock``), and
packing decrements them; a push that never came leaves the gateway with an old figure.
Where the ERP offers a stock endpoint, the gateway also **asks** before packing: when an order
becomes ``READY_TO_PACK`` and its bill is planned (gift rules, gift stock: see
``gateway._packline.line_watch``), the gift, gift-box and trial SKUs of the bill whose figure is
older than ``stock_fresh_s`` are read first, so the hold-or-pack decision uses the ERP's
current count.

The request (signed like the upstream batches: ``X-Gateway-Timestamp``, ``X-Gateway-Signature:
sha256=<hex HMAC-SHA256(upstream secret, timestamp + "." + body)>``)::

    POST <stock_url>
    {"tenant": "shop1", "skus": ["GIFTBOX-1", "SAMPLE-5"]}

and the answer the ERP gives, the ``stock`` list of its stock push::

    200 {"stock": [{"sku": "GIFTBOX-1", "quantity": 180, "updated_at": 1764036000000}, ...]}

``updated_at`` (epoch ms or ISO 8601) is when the ERP counted; without it, the time of the
answer. A figure older than the one stored is ignored, as for pushes. SKUs the ERP does not
name keep their stored figure.

**Never a stall and never a guess.** The read has ``stock_timeout_s`` (default 2 s); a
timeout, a refused connection, a non-200 answer or a body that is not the format above is
logged (WARNING, without the secret) and counted, and the plan goes on with the stored figure
(whose age the operators see with ``gateway stock``). A read is never retried for the same
order: the next order's plan asks again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx
import orjson

from gateway._packline.catalog import CatalogImportError, parse_catalog_update
from gateway._packline.catalog_store import fresher_levels
from gateway._packline.values import StockLevel
from gateway._settings import Secret
from gateway._signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StockRead:
    """What one read gave: ``levels`` to store (fresher than the stored ones), ``asked`` SKUs,
    and ``error`` (``""`` when the ERP answered)."""

    levels: list[StockLevel] = field(default_factory=list)
    asked: tuple[str, ...] = ()
    error: str = ""


@dataclass
class StockReaderStats:
    """Counters for ``/api/v1/stations``-style reports and the tests."""

    reads: int = 0
    failures: int = 0
    last_error: str = ""


class StockReader:
    """Reads gift stock from the ERP (see the module docstring)."""

    def __init__(self, url: str, secret: Secret, *, timeout_s: float = 2.0, fresh_s: float = 60.0,
                 client: httpx.AsyncClient | None = None) -> None:
        self.url = url
        self._secret = secret
        self.timeout_s = timeout_s
        self.fresh_s = fresh_s
        self._client = client or httpx.AsyncClient(timeout=timeout_s, trust_env=False)
        self.stats = StockReaderStats()

    async def aclose(self) -> None:
        await self._client.aclose()

    def stale(self, skus: Sequence[str], known: Mapping[str, StockLevel], now_ms: int) -> list[str]:
        """The SKUs of ``skus`` worth asking about: no figure, or one older than ``fresh_s``."""
        limit = now_ms - round(self.fresh_s * 1000)
        return sorted({sku for sku in skus if sku not in known or known[sku].updated_at_ms < limit})

    async def read(self, tenant: str, skus: Sequence[str], known: Mapping[str, StockLevel]) -> StockRead:
        """Ask the ERP for ``skus`` of ``tenant``; the levels fresher than ``known``. Never raises
        for what the network or the ERP does: ``StockRead.error`` says it."""
        asked = tuple(skus)
        if not asked:
            return StockRead()
        self.stats.reads += 1
        body = orjson.dumps({"tenant": tenant, "skus": list(asked)})
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: sign(self._secret.reveal(), timestamp, body)}
        try:
            response = await self._client.post(self.url, content=body, headers=headers, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            return self._failed(tenant, asked, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        if response.status_code != 200:
            return self._failed(tenant, asked, f"HTTP {response.status_code}")
        now = time.time_ns() // 1_000_000
        try:
            answer = orjson.loads(response.content)
            stock = answer.get("stock") if isinstance(answer, dict) else None
            update = parse_catalog_update({"event_id": f"stock-read:{tenant}:{now}", "type": "stock",
                                           "stock": stock}, now_ms=now)
        except orjson.JSONDecodeError:
            return self._failed(tenant, asked, 'the answer is not JSON: expected {"stock": [{"sku", "quantity"}]}')
        except CatalogImportError as exc:
            return self._failed(tenant, asked, f"the answer is not a stock list: {exc}")
        fresh, _ = fresher_levels(known, [level for level in update.stock if level.sku in asked])
        return StockRead(fresh, asked)

    def _failed(self, tenant: str, asked: tuple[str, ...], error: str) -> StockRead:
        self.stats.failures += 1
        self.stats.last_error = error
        log.warning("tenant %s: gift stock of %s not read from the ERP (%s); planning with the stored figures",
                    tenant, ", ".join(asked), error)
        return StockRead(asked=asked, error=error)


__all__ = ["StockRead", "StockReader", "StockReaderStats"]
