"""The committer's backpressure: the outbox bound, and the reserve kept for pack-line scans."""

from __future__ import annotations

import pytest
import trio

from gateway._errors import BackpressureError
from gateway._mapping import load_rules
from gateway._metrics import Metrics
from gateway._normalize import normalise_batch
from gateway._pipeline import Pipeline
from gateway._settings import PipelineSection
from gateway._store import StoreSettings, open_store
from tests._support import RULES, erp_event


def events(first: int, count: int):
    rules = load_rules(RULES).get("erp")
    return normalise_batch(rules, "t1", [erp_event(n) for n in range(first, first + count)], 0)


async def test_webhooks_stop_at_the_reserve_and_stations_use_it(tmp_path):
    settings = StoreSettings(path=tmp_path / "db", outbox_max_events=10, outbox_reserve_events=4)
    with open_store(settings) as store:
        pipeline = Pipeline(store, PipelineSection(), Metrics())
        async with trio.open_nursery() as nursery:
            await nursery.start(pipeline.serve)
            await pipeline.submit(events(0, 6))  # 6 of 10: the webhook share (10 - 4) is used up
            with pytest.raises(BackpressureError, match="outbox_max - outbox_reserve_events"):
                await pipeline.submit(events(100, 1))
            report = await pipeline.submit(events(200, 3), priority="station")  # a packer is waiting
            assert [r.outcome for r in report.results] == ["new"] * 3
            await pipeline.submit(events(300, 1), priority="station")
            with pytest.raises(BackpressureError, match="outbox_max_events"):  # the hard bound holds for all
                await pipeline.submit(events(400, 1), priority="station")
            assert store.outbox_stats().count == 10
            store.delete_outbox(range(1, 6))  # the forwarder delivered some: webhooks flow again
            await pipeline.submit(events(500, 1))
            pipeline.close()
        assert store.outbox_stats().count == 6


async def test_the_reserve_is_capped_at_half_the_bound(tmp_path):
    settings = StoreSettings(path=tmp_path / "db", outbox_max_events=4)  # default reserve 100,000
    with open_store(settings) as store:
        pipeline = Pipeline(store, PipelineSection(), Metrics())
        async with trio.open_nursery() as nursery:
            await nursery.start(pipeline.serve)
            await pipeline.submit(events(0, 2))
            with pytest.raises(BackpressureError):
                await pipeline.submit(events(10, 1))
            pipeline.close()
