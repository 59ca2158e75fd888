"""``gateway outbox status|dead|requeue``: against a stopped gateway's store and a running one's API."""

from __future__ import annotations

import httpx
import orjson
import pytest
import trio

from gateway._daemon import serve_gateway
from gateway._settings import load_settings
from gateway._store import StepWrite, open_store, store_settings
from gateway.cli import main
from tests._support import erp_event, signed, write_config
from tests._support.upstream import Upstream, upstream_config


def outbox_records(n: int) -> list[dict]:
    return [{"tenant": "t1", "event_id": f"{i:016x}", "order_id": f"douyin|{i}", "seq": 1, "status": "PAID"}
            for i in range(n)]


def test_status_dead_and_requeue_on_a_stopped_gateway(tmp_path, capsys):
    config = write_config(tmp_path)
    settings = load_settings(config)
    with open_store(store_settings(settings)) as store:
        store.commit(StepWrite(outbox=outbox_records(3)))
        store.dead_letter([(2, {"status": 422, "response": '{"error":"unknown sku"}'})])

    assert main(["outbox", "status", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "backlog:       2 events" in out and "dead letters:  1" in out and "[stopped]" in out

    assert main(["outbox", "status", "--json", "--config", str(config)]) == 0
    report = orjson.loads(capsys.readouterr().out)
    assert report["backlog_events"] == 2 and report["dead_letters"] == 1 and report["oldest_age_s"] >= 0

    assert main(["outbox", "dead", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "1 dead letters" in out and "id 2:" in out and "HTTP 422" in out and "unknown sku" in out

    assert main(["outbox", "requeue", "--id", "77", "--config", str(config)]) == 1  # not a dead letter
    capsys.readouterr()
    assert main(["outbox", "requeue", "--all", "--config", str(config)]) == 0
    assert "requeued 1 dead letters" in capsys.readouterr().out
    with open_store(store_settings(settings)) as store:
        assert store.dead_count() == 0 and store.outbox_stats().count == 3


def test_requeue_needs_ids_or_all(tmp_path):
    with pytest.raises(SystemExit):
        main(["outbox", "requeue", "--config", str(write_config(tmp_path))])


async def test_status_and_watch_through_the_running_gateways_api(tmp_path, capsys):
    upstream = Upstream().start()
    upstream.stop()  # down: a backlog stays
    config = write_config(tmp_path, upstream_config(upstream))
    settings = load_settings(config)
    try:
        async with trio.open_nursery() as nursery:
            services = await nursery.start(serve_gateway, settings, trio.Event())
            base = services.bound[0]
            port = base.rsplit(":", 1)[1]
            async with httpx.AsyncClient(base_url=base) as client:
                body, headers = signed([erp_event(1), erp_event(2)])
                assert (await client.post("/webhooks/erp/t1", content=body, headers=headers)).status_code == 200
            # the running gateway holds the store: the CLI must go through the API
            args = ["outbox", "status", "--config", str(config)]
            cli_settings = ["--data-dir", str(settings.data_path)]
            # the config says port 0; point the CLI at the bound port
            config.write_text(config.read_text().replace("port = 0", f"port = {port}"))
            with trio.fail_after(20):
                while services.forwarder.status.consecutive_failures < 2:  # noqa: ASYNC110
                    await trio.sleep(0.02)
            assert await trio.to_thread.run_sync(main, [*args, *cli_settings]) == 0
            out = capsys.readouterr().out
            assert "backlog:       2 events" in out and "ConnectError" in out
            upstream.start()
            assert await trio.to_thread.run_sync(main, ["outbox", "status", "--watch", "0.05", "--config",
                                                        str(config)]) == 0
            out = capsys.readouterr().out
            assert "backlog 2 events" in out or "backlog 0 events" in out
            assert out.rstrip().endswith("outbox empty")
            nursery.cancel_scope.cancel()
    finally:
        upstream.stop()
    assert len(upstream.unique_events()) == 2


def test_quarantine_list_works_offline_and_release_needs_the_gateway(tmp_path, capsys):
    config = write_config(tmp_path)
    settings = load_settings(config)
    record = {"tenant": "t1", "source": "erp", "order_id": "douyin|DY1", "raw_status": "ODD",
              "reason": "unknown_status", "raw": erp_event(1, "ODD", order="DY1")}
    with open_store(store_settings(settings)) as store:
        store.commit(StepWrite(quarantine=[record]))
    assert main(["quarantine", "list", "--tenant", "t1", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "1 quarantined events" in out and "raw status 'ODD': unknown_status" in out
    assert main(["quarantine", "release", "--tenant", "t1", "--all", "--config", str(config)]) == 1
    assert "needs the running gateway" in capsys.readouterr().err


async def test_quarantine_release_through_the_running_gateway(tmp_path, capsys):
    config = write_config(tmp_path)
    settings = load_settings(config)
    async with trio.open_nursery() as nursery:
        services = await nursery.start(serve_gateway, settings, trio.Event())
        config.write_text(config.read_text().replace("port = 0", f"port = {services.bound[0].rsplit(':', 1)[1]}"))
        async with httpx.AsyncClient(base_url=services.bound[0]) as client:
            body, headers = signed([erp_event(1, "ODD")])
            assert (await client.post("/webhooks/erp/t1", content=body, headers=headers)).status_code == 200
        args = ["quarantine", "release", "--tenant", "t1", "--id", "1", "--config", str(config)]
        assert await trio.to_thread.run_sync(main, args) == 0
        out = capsys.readouterr().out
        assert "released 0; 1 stay quarantined" in out and "still unknown" in out
        nursery.cancel_scope.cancel()
