"""The committer's backpressure: the outbox bound, and the reserve kept for pack-line scans."""

from __future__ import annotations

import orjson
import pytest
import trio

from gateway._errors import BackpressureError
from gateway._metrics import Metrics
from gateway._pipeline import Pipeline
from gateway._rules import load_rules, normalise_batch
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


async def _handled_then_submitted(pipeline: Pipeline, n: int, results: list) -> None:
    for _ in range(3 + 5 * n):  # a request being parsed, verified and mapped: trips through the loop
        await trio.lowlevel.checkpoint()
    results.append(await pipeline.submit(events(n, 1)))


@pytest.mark.parametrize(("delay_ms", "one_group"), [(1000, True), (0, False)])
async def test_requests_being_handled_join_the_group_of_the_first_one(tmp_path, delay_ms, one_group):
    # One fsync for all of them: the committer waits until the loop has no other work.
    with open_store(StoreSettings(path=tmp_path / "db")) as store:
        pipeline = Pipeline(store, PipelineSection(commit_delay_ms=delay_ms), Metrics())
        results: list = []
        async with trio.open_nursery() as nursery:
            await nursery.start(pipeline.serve)
            async with trio.open_nursery() as requests:
                for n in range(10):
                    requests.start_soon(_handled_then_submitted, pipeline, n, results)
            pipeline.close()
        assert (pipeline.groups_committed == 1) == one_group and len(results) == 10
        assert all(report.results[0].outcome == "new" for report in results)


async def test_a_busy_loop_delays_a_commit_by_commit_delay_at_most(tmp_path):
    async def busy(cancel_scope: trio.CancelScope) -> None:
        with cancel_scope:
            while True:  # never blocks: the loop is never idle
                await trio.lowlevel.checkpoint()

    with open_store(StoreSettings(path=tmp_path / "db")) as store:
        pipeline = Pipeline(store, PipelineSection(commit_delay_ms=50), Metrics())
        async with trio.open_nursery() as nursery:
            await nursery.start(pipeline.serve)
            spinning = trio.CancelScope()
            nursery.start_soon(busy, spinning)
            with trio.fail_after(10):  # generous: the machine is shared; the bound is 50 ms
                report = await pipeline.submit(events(0, 1))
            assert report.results[0].outcome == "new"
            spinning.cancel()
            pipeline.close()


async def test_a_packers_scan_is_not_held_by_the_commit_delay_nor_are_the_webhooks_gathered_with_it(tmp_path):
    async def busy(cancel_scope: trio.CancelScope) -> None:
        with cancel_scope:
            while True:  # never blocks: without a station's submission the delay would run out
                await trio.lowlevel.checkpoint()

    with open_store(StoreSettings(path=tmp_path / "db")) as store:
        pipeline = Pipeline(store, PipelineSection(commit_delay_ms=600_000), Metrics())  # ten minutes
        async with trio.open_nursery() as nursery:
            await nursery.start(pipeline.serve)
            spinning = trio.CancelScope()
            nursery.start_soon(busy, spinning)
            with trio.fail_after(10):
                report = await pipeline.submit(events(0, 1), priority="station")
                assert report.results[0].outcome == "new"
                webhook_done = trio.Event()

                async def webhook() -> None:
                    await pipeline.submit(events(1, 1))  # its group waits out the delay...
                    webhook_done.set()

                nursery.start_soon(webhook)
                await trio.sleep(0.2)
                assert not webhook_done.is_set()
                await pipeline.submit(events(2, 1), priority="station")  # ...until a packer's scan comes
                await webhook_done.wait()
            spinning.cancel()
            pipeline.close()
        assert store.outbox_stats().count == 3


async def test_no_commit_delay_commits_at_once(tmp_path):
    with open_store(StoreSettings(path=tmp_path / "db")) as store:
        pipeline = Pipeline(store, PipelineSection(commit_delay_ms=0), Metrics())
        async with trio.open_nursery() as nursery:
            await nursery.start(pipeline.serve)
            for n in range(3):
                await pipeline.submit(events(n, 1))
            pipeline.close()
        assert pipeline.groups_committed == 3


async def test_extra_records_are_durable_with_the_events_and_listeners_see_the_commit(tmp_path):
    from dataclasses import replace

    from gateway._store import StepWrite

    with open_store(StoreSettings(path=tmp_path / "db")) as store:
        pipeline = Pipeline(store, PipelineSection(), Metrics())
        seen: list[StepWrite] = []
        pipeline.add_listener(seen.append)
        pipeline.add_listener(lambda write: 1 / 0)  # a broken listener changes nothing
        async with trio.open_nursery() as nursery:
            await nursery.start(pipeline.serve)
            scan = replace(events(0, 1)[0], actor="operator:OP-7@station:A1", detail={"verdict": "OK"})
            extra = StepWrite(records=[("t1", "session", "s-1", {"state": "open"})])
            report = await pipeline.submit([scan], "station", extra=extra)
            assert [r.outcome for r in report.results] == ["new"]
            await pipeline.submit([], "station", extra=StepWrite(records=[("t1", "session", "s-2", {})]))
            pipeline.close()
        assert store.get_record("t1", "session", "s-1") == {"state": "open"}
        assert store.get_record("t1", "session", "s-2") == {}
        assert len(seen) == 2 and seen[0].records[0][2] == "s-1"
        audit = list(store.iter_audit("t1"))
        assert audit[0]["actor"] == "operator:OP-7@station:A1" and audit[0]["detail"] == {"verdict": "OK"}
        assert next(iter(store.iter_events("t1")))["detail"] == {"verdict": "OK"}
        (_, first), = store.read_outbox(10, 1 << 20)
        assert orjson.loads(first)["detail"] == {"verdict": "OK"}
