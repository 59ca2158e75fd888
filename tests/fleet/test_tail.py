"""``gateway fleet tail``: a durable pull consumer on a real three-node cluster prints each event
and acks it; a second run resumes where the first stopped; what was fetched but never acked (the
consumer died) comes back, marked as redelivered."""

from __future__ import annotations

import orjson
import pytest
import trio

from gateway._fleet import parse_message, subject_filter, tail
from gateway._forward.nats_sink import NatsSink
from gateway._forward.sink import build_batch
from gateway.cli import main
from tests._support import write_config
from tests._support.nats_cluster import NatsCluster, run_async
from tests._support.nats_fleet import nats_settings, record, upstream_toml


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    nodes = NatsCluster(tmp_path_factory.mktemp("tail")).start()
    nodes.create_stream()
    yield nodes
    nodes.stop()


@pytest.fixture(scope="module")
def published(cluster):
    async def publish():
        sink = NatsSink(nats_settings(cluster), "box-1", timeout_s=5.0)
        try:
            records = [(n + 1, orjson.dumps(record(n))) for n in range(30)]
            assert (await sink.deliver(build_batch("box-1", records))).outcome == "ok"
        finally:
            await sink.aclose()

    trio.run(publish)
    return [f"ev-{n:08d}" for n in range(30)]


def test_the_filter_covers_every_box():
    assert subject_filter("gateway.<tenant>.<gateway_id>.<type>") == "gateway.*.*.*"


def test_a_payload_that_is_not_an_event_is_shown_raw():
    assert parse_message(1, "s", 1, b"\xff oops").event == {"raw": "\ufffd oops"}


def test_tail_prints_and_acks_then_resumes_after_the_last_ack(cluster, published):
    settings = nats_settings(cluster)
    seen: list[str] = []
    count = run_async(lambda: tail(settings, lambda e: seen.append(e.event["event_id"]), durable="t-resume",
                                   count=10))
    assert count == 10 and seen == published[:10]
    run_async(lambda: tail(settings, lambda e: seen.append(e.event["event_id"]), durable="t-resume", follow=False))
    assert seen == published  # each once, in stream order


def test_an_event_fetched_but_never_acked_comes_back_redelivered(cluster, published):
    settings = nats_settings(cluster)

    def crash(event):
        raise RuntimeError("the consumer died before acking")

    with pytest.raises(RuntimeError):
        run_async(lambda: tail(settings, crash, durable="t-crash", batch=5, ack_wait_s=1.0))
    again = []
    run_async(lambda: tail(settings, again.append, durable="t-crash", count=len(published), ack_wait_s=1.0))
    assert sorted(e.event["event_id"] for e in again) == published  # each once more, none lost
    redelivered = [e for e in again if e.delivered > 1]
    assert [e.event["event_id"] for e in redelivered] == published[:5]  # after ack_wait, behind newer ones
    assert "redelivered 1" in redelivered[0].line()


def test_the_cli_prints_lines_and_json(cluster, published, tmp_path, capsys):
    config = write_config(tmp_path, upstream_toml(cluster))
    status = main(["fleet", "tail", "--config", str(config), "--durable", "t-cli", "--count", "3", "--lang", "en"])
    printed = capsys.readouterr()
    assert status == 0, printed.err
    lines = printed.out.splitlines()
    assert len(lines) == 3, printed
    assert "douyin|DY0000000000  seq 1  order  PAID  ev-00000000  (gateway.t1.box-1.order)" in lines[0]
    status = main(["fleet", "tail", "--config", str(config), "--durable", "t-cli", "--count", "1", "--json"])
    printed = capsys.readouterr()
    assert status == 0, printed.err
    assert orjson.loads(printed.out)["event"]["event_id"] == "ev-00000003", printed


def test_the_cli_says_when_the_config_has_no_nats_upstream(tmp_path, capsys):
    config = write_config(tmp_path)
    assert main(["fleet", "status", "--config", str(config), "--lang", "en"]) == 1
    assert '[upstream] kind is not "nats"' in capsys.readouterr().err
