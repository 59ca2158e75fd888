"""Fleet status: heartbeats judged and rendered (pure), then three real gateways feeding one
three-node cluster: ``gateway fleet status`` lists all three, and flags the one that stopped."""

from __future__ import annotations

import orjson
import pytest
import trio

from gateway._daemon import serve_gateway
from gateway._fleet import Heartbeat, box_key, heartbeat_of, judge, render
from gateway._settings import load_settings
from gateway.cli import main
from tests._support import write_config
from tests._support.nats_cluster import NatsCluster
from tests._support.nats_fleet import upstream_toml

NOW = 1_764_900_000.0


def beat(gateway_id: str, age_s: float, **values) -> tuple[str, bytes, float]:
    heartbeat = Heartbeat(gateway_id=gateway_id, at=NOW - age_s, interval_s=15.0, **values)
    return box_key(gateway_id), heartbeat.to_json(), NOW - age_s


def test_a_box_is_silent_after_three_of_its_intervals():
    boxes = judge([beat("b", 44.0), beat("a", 46.0)], NOW)
    assert [(b.key, b.silent) for b in boxes] == [("a", True), ("b", False)]
    assert [b.silent for b in judge([beat("a", 46.0)], NOW, silent_after_s=60)] == [False]


def test_an_unreadable_value_is_shown_not_fatal():
    boxes = judge([("x", b"not json", NOW - 5), beat("a", 1.0)], NOW)
    assert boxes[1].heartbeat is None and "not JSON" in boxes[1].problem
    assert "unreadable" in render(boxes, "en", "fleet", 15)


def test_heartbeat_round_trips_and_ignores_unknown_keys():
    heartbeat = heartbeat_of("wh-01", 15.0, {"backlog_events": 3, "backlog_bytes": 900, "oldest_age_s": 2.5,
                                            "state": "backoff", "last_error": "NATS: down"},
                             [{"station": "s1", "kind": "printer", "state": "down"},
                              {"station": "s1", "kind": "scanner", "state": "up"}], {"shop": 0.97}, "0.1.0", NOW)
    data = orjson.loads(heartbeat.to_json())
    assert Heartbeat.from_json(orjson.dumps({**data, "added_later": 1})) == heartbeat
    assert heartbeat.devices_up == 1 and heartbeat.devices_down == ["s1/printer"]
    with pytest.raises(ValueError):
        Heartbeat.from_json(b"[1]")


def test_render_in_chinese_by_default_and_english_on_request():
    boxes = judge([beat("wh-01", 2.0, backlog_events=1204, oldest_age_s=151.0, devices_up=6,
                        devices_down=["s2/printer"], forwarder="backoff"), beat("wh-02", 100.0)], NOW)
    zh = render(boxes, "zh-CN", "fleet", 15)
    assert "最后心跳" in zh and "失联" in zh and "1,204" in zh and "6 在线, 1 离线" in zh
    en = render(boxes, "en", "fleet", 15)
    assert "SILENT" in en and "2 boxes, 1 silent, 1,204 events waiting in all" in en
    assert "no box has published" in render([], "en", "fleet", 15)


def test_box_keys_are_valid_bucket_keys():
    assert box_key("wh 01/ä") == "wh_01/_" and box_key("...") == "_"


@pytest.mark.slow
async def test_three_gateways_show_in_fleet_status_and_a_stopped_one_goes_silent(tmp_path, capsys):
    cluster = NatsCluster(tmp_path).start()
    try:
        cluster.create_stream()
        configs = []
        for index in range(3):
            box_dir = tmp_path / f"box{index}"
            box_dir.mkdir()
            config = write_config(box_dir, upstream_toml(cluster, nats={"heartbeat_interval_s": 1.0}))
            config.write_text(config.read_text().replace("id = 'test-gw'", f"id = 'box-{index}'"))
            configs.append(config)
        async with trio.open_nursery() as nursery:
            shutdowns = []
            for config in configs:
                shutdown = trio.Event()
                await nursery.start(serve_gateway, load_settings(config), shutdown)
                shutdowns.append(shutdown)
            await trio.sleep(2.5)
            status = await trio.to_thread.run_sync(main, ["fleet", "status", "--config", str(configs[0]), "--lang", "en"])
            table = capsys.readouterr().out
            assert status == 0, table
            assert all(f"box-{i}" in table for i in range(3)) and "SILENT" not in table
            assert "3 boxes, 0 silent" in table

            shutdowns[2].set()
            await trio.sleep(3.5)  # three of its 1-second intervals
            status = await trio.to_thread.run_sync(main, ["fleet", "status", "--config", str(configs[0]), "--json"])
            report = orjson.loads(capsys.readouterr().out)
            assert status == 1
            assert {b["key"]: b["silent"] for b in report["boxes"]} == {"box-0": False, "box-1": False, "box-2": True}
            for shutdown in shutdowns[:2]:
                shutdown.set()
    finally:
        cluster.stop()
