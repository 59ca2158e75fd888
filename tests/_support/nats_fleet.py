"""Helpers of the fleet tests: an outbox backlog, the ``[upstream]`` table of a NATS sink, and the
checks on what a stream holds (complete, once per ``event_id``, per-order order)."""

from __future__ import annotations

from typing import Any

import orjson
import trio

from gateway._forward import Forwarder
from gateway._forward.nats_sink import NatsSink
from gateway._settings import UpstreamSection
from gateway._settings.model import Secret
from gateway._settings.nats import NatsSettings
from gateway._store import StepWrite, Store
from tests._support.nats_cluster import PASSWORD, STREAM, USER, NatsCluster

_CHUNK = 20_000


def record(n: int, tenant: str = "t1") -> dict[str, Any]:
    """Outbox record ``n``: four events per order, ``seq`` 1..4 in outbox order."""
    return {
        "tenant": tenant, "event_id": f"ev-{n:08d}", "order_id": f"douyin|DY{n // 4:010d}",
        "seq": n % 4 + 1, "type": "order", "source": "erp", "status": "PAID", "prev_status": "CREATED",
        "occurred_at": "2026-11-25T02:00:00.000Z", "data": {"data.amount": 129.0},
    }


def fill_outbox(store: Store, first: int, count: int) -> None:
    for start in range(first, first + count, _CHUNK):
        end = min(first + count, start + _CHUNK)
        store.commit(StepWrite(outbox=[record(n) for n in range(start, end)]))


def nats_settings(cluster: NatsCluster, **overrides: Any) -> NatsSettings:
    values: dict[str, Any] = {"servers": tuple(cluster.servers), "stream": STREAM, "user": USER,
                              "password": Secret(PASSWORD), "connect_timeout_s": 1.0}
    values.update(overrides)
    return NatsSettings(**values)


def upstream_settings(cluster: NatsCluster, batch: int = 500, timeout_s: float = 3.0,
                      **nats: Any) -> UpstreamSection:
    return UpstreamSection(kind="nats", nats=nats_settings(cluster, **nats), batch_max_events=batch,
                           linger_s=0.0, timeout_s=timeout_s, retry_initial_s=0.05, retry_max_s=0.5,
                           progress_every_s=0)


def nats_forwarder(store: Store, upstream: UpstreamSection, gateway_id: str = "gw-1") -> Forwarder:
    return Forwarder(store, NatsSink(upstream.nats, gateway_id, upstream.timeout_s), upstream, gateway_id)


async def wait_drained(store: Store, limit_s: float) -> None:
    with trio.fail_after(limit_s):
        while store.outbox_stats().count:  # noqa: ASYNC110  (the store has no event to wait on)
            await trio.sleep(0.05)


def upstream_toml(cluster: NatsCluster, upstream: dict[str, Any] | None = None,
                  nats: dict[str, Any] | None = None, drop: tuple[str, ...] = ()) -> str:
    """``[upstream]`` + ``[upstream.nats]`` for a config file; ``upstream`` / ``nats`` override
    keys, ``drop`` removes ``[upstream.nats]`` keys."""
    top: dict[str, Any] = {"kind": "nats", "linger_s": 0.01, "timeout_s": 3.0, "retry_initial_s": 0.05,
                           "retry_max_s": 0.5, "progress_every_s": 0, **(upstream or {})}
    sub: dict[str, Any] = {"servers": cluster.servers, "stream": STREAM, "user": USER, "password": PASSWORD,
                           "connect_timeout_s": 1.0, "heartbeat_interval_s": 1.0, **(nats or {})}
    for key in drop:
        sub.pop(key, None)
    lines = ["[upstream]", *(f"{k} = {orjson.dumps(v).decode()}" for k, v in top.items()), "[upstream.nats]",
             *(f"{k} = {orjson.dumps(v).decode()}" for k, v in sub.items())]
    return "\n".join(lines) + "\n"


def check_stream(messages: list[tuple[int, str | None, bytes]], expected_ids: set[str]) -> list[str]:
    """Problems of a stream's content against the ``event_id``s that must be in it, each once."""
    problems: list[str] = []
    ids = [msg_id for _, msg_id, _ in messages]
    if len(ids) != len(set(ids)):
        problems.append(f"{len(ids) - len(set(ids))} duplicate Nats-Msg-Id(s) in the stream")
    missing = expected_ids - set(ids)
    if missing:
        problems.append(f"{len(missing)} events missing, e.g. {sorted(missing)[:3]}")
    last: dict[tuple[str, str], int] = {}
    for _, msg_id, payload in messages:
        event = orjson.loads(payload)
        if event["event_id"] != msg_id:
            problems.append(f"Nats-Msg-Id {msg_id} carries event {event['event_id']}")
            break
        key = (event["tenant"], event["order_id"])
        if event["seq"] <= last.get(key, 0):
            problems.append(f"per-order order violated for {key}: seq {event['seq']} after {last[key]}")
            break
        last[key] = event["seq"]
    return problems
