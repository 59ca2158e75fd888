"""The NATS sink: subjects and messages (pure), then a real three-node JetStream cluster on
127.0.0.1: a 100,000-event drain arrives complete, once and in per-order order; wrong
credentials give a clear error and delete nothing."""

from __future__ import annotations

import orjson
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from gateway._forward.nats_sink import (
    NatsSink,
    NatsUnavailableError,
    explain,
    messages_of,
    subject_for,
    subject_token,
)
from gateway._forward.sink import build_batch
from gateway._settings.model import Secret
from gateway._settings.nats import DEFAULT_SUBJECT, NatsSettings
from gateway._store import StoreSettings, open_store
from tests._support.nats_cluster import STREAM, NatsCluster
from tests._support.nats_fleet import (
    check_stream,
    fill_outbox,
    nats_forwarder,
    nats_settings,
    record,
    upstream_settings,
    wait_drained,
)

DRAIN_EVENTS = 100_000


@pytest.fixture
def cluster(tmp_path):
    nodes = NatsCluster(tmp_path).start()
    nodes.create_stream()
    yield nodes
    nodes.stop()


@pytest.fixture
def store(tmp_path):
    with open_store(StoreSettings(path=tmp_path / "db", outbox_max_events=10**7, outbox_max_bytes=1 << 34)) as opened:
        yield opened


# -- pure parts -------------------------------------------------------------------------------
def test_the_default_subject_names_tenant_gateway_and_type():
    event = record(7)
    assert subject_for(DEFAULT_SUBJECT, "wh-01", event) == "gateway.t1.wh-01.order"
    assert subject_for("fleet.<source>.<tenant>", "x", event) == "fleet.erp.t1"


@given(st.text(max_size=30))
def test_any_value_becomes_one_safe_subject_token(value):
    token = subject_token(value)
    assert token and all(c.isalnum() and c.isascii() or c in "_-" for c in token)
    assert "." not in subject_for(DEFAULT_SUBJECT, value, {"tenant": value, "type": value}).replace(".", "", 3)


def test_messages_keep_the_batch_order_and_carry_event_id_as_msg_id():
    records = [(n + 1, orjson.dumps(record(n))) for n in range(5)]
    messages = messages_of(build_batch("gw", records), DEFAULT_SUBJECT, "gw")
    assert [m.msg_id for m in messages] == [f"ev-{n:08d}" for n in range(5)]
    assert [orjson.loads(m.payload) for m in messages] == [record(n) for n in range(5)]


def test_an_authorization_violation_is_explained_with_what_to_check():
    settings = NatsSettings(servers=("nats://h:4222",), stream="S", user="u", password=Secret("p"))
    import nats.errors

    text = explain(nats.errors.Error("nats: 'Authorization Violation'"), settings)
    assert "refused the credentials" in text and "user 'u'" in text and "nothing leaves the outbox" in text


# -- a real cluster ---------------------------------------------------------------------------
@pytest.mark.slow
async def test_a_100k_drain_arrives_complete_once_and_in_per_order_order(cluster, store):
    fill_outbox(store, 0, DRAIN_EVENTS)
    forwarder = nats_forwarder(store, upstream_settings(cluster, batch=500))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(forwarder.serve)
        await wait_drained(store, 120)
        forwarder.request_stop()
    assert forwarder.status.delivered_events == DRAIN_EVENTS
    messages = await trio.to_thread.run_sync(cluster.stream_messages)
    assert check_stream(messages, {f"ev-{n:08d}" for n in range(DRAIN_EVENTS)}) == []
    assert len(messages) == DRAIN_EVENTS


async def test_wrong_credentials_give_a_clear_error_and_delete_nothing(cluster, store):
    fill_outbox(store, 0, 50)
    upstream = upstream_settings(cluster, timeout_s=1.0, password=Secret("not-the-password"))
    forwarder = nats_forwarder(store, upstream)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(forwarder.serve)
        with trio.fail_after(20):  # a server may reset a refused connection before its -ERR is read: it retries
            while forwarder.status.retries < 2 or "refused the credentials" not in forwarder.status.last_error:  # noqa: ASYNC110
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    assert "user 'gateway'" in forwarder.status.last_error
    assert store.outbox_stats().count == 50
    assert await trio.to_thread.run_sync(cluster.stream_count) == 0


async def test_a_missing_stream_is_named_and_nothing_is_deleted(cluster, store):
    fill_outbox(store, 0, 10)
    forwarder = nats_forwarder(store, upstream_settings(cluster, timeout_s=1.0, stream="NO_SUCH"))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(forwarder.serve)
        with trio.fail_after(20):
            while not forwarder.status.retries:  # noqa: ASYNC110  (polling the forwarder's state)
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    assert "stream NO_SUCH not found" in forwarder.status.last_error
    assert store.outbox_stats().count == 10


async def test_no_server_at_all_is_a_retry_naming_the_servers(store):
    settings = NatsSettings(servers=("nats://127.0.0.1:9",), stream=STREAM, connect_timeout_s=0.2)
    sink = NatsSink(settings, "gw", timeout_s=0.5)
    try:
        delivery = await sink.deliver(build_batch("gw", [(1, orjson.dumps(record(1)))]))
        assert delivery.outcome == "retry"
        assert "not connected to nats://127.0.0.1:9 after 0.5 s" in delivery.reason
        with pytest.raises(NatsUnavailableError):
            await sink.call(lambda js: js.account_info())
    finally:
        await sink.aclose()


async def test_the_sink_closes_cleanly_after_use(cluster):
    sink = NatsSink(nats_settings(cluster), "gw", timeout_s=3.0)
    delivery = await sink.deliver(build_batch("gw", [(1, orjson.dumps(record(1)))]))
    assert delivery.outcome == "ok"
    again = await sink.deliver(build_batch("gw", [(1, orjson.dumps(record(1)))]))
    assert again.outcome == "ok" and sink.duplicates == 1  # de-duplicated by Nats-Msg-Id
    await sink.aclose()
    assert not sink.io._thread.is_alive()
