"""Shared parts of the Pinduoduo message tests: real store + pipeline + rules, frames, lookups."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import trio

from gateway._metrics import Metrics
from gateway._pipeline import Pipeline
from gateway._rules import RuleHolder
from gateway._settings import PipelineSection
from gateway._store import StoreSettings, open_store
from tests._support import RULES
from tests._support.pdd_ws_server import common_frame

CLIENT_ID = "pdd-app-7f3a"
SECRET = "pdd-client-secret-e2c1"
TENANT = "t1"
HANG_GUARD_S = 30


@asynccontextmanager
async def real_parts(tmp_path: Any, **store_settings: Any) -> AsyncIterator[SimpleNamespace]:
    store = open_store(StoreSettings(path=tmp_path / "db", **store_settings))
    metrics = Metrics()
    pipeline = Pipeline(store, PipelineSection(), metrics)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(pipeline.serve)
            yield SimpleNamespace(store=store, pipeline=pipeline, metrics=metrics, rules=RuleHolder(RULES))
            pipeline.close()
    finally:
        store.close()


def stored_ids(store, tenant: str = TENANT) -> list[str]:
    return [record["source_event_id"] for record in store.iter_events(tenant)]


def order_status(store, tid: str) -> str | None:
    order = store.get_order(TENANT, f"pinduoduo|{tid}")
    return order.status.value if order is not None and order.status is not None else None


def confirmed(frame_id: int, tid: str) -> str:
    return common_frame(frame_id, "pdd_trade_TradeConfirmed",
                        {"tid": tid, "mall_id": 9001, "order_status": 1, "refund_status": 1})
