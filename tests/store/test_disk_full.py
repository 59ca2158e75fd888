"""A full disk: explicit 503s, nothing acknowledged lost, and the gateway heals without a restart.

The store lives on a real tmpfs of a few MiB that the test mounts (skipped where mounting is
not permitted). Signed ERP batches are posted until the disk is full; then the disk grows
(``mount -o remount,size=...``) and the same gateway process must accept events again.
"""

from __future__ import annotations

import subprocess

import httpx
import pytest
import trio

from gateway._daemon import serve_gateway
from gateway._settings import load_settings, with_overrides
from tests._support import erp_event, signed, write_config


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


async def post(client, events):
    body, headers = signed(events)
    return await client.post("/webhooks/erp/t1", content=body, headers=headers)


async def test_full_disk_gives_503_loses_nothing_and_heals_without_restart(tmp_path, small_disk):
    settings = with_overrides(load_settings(write_config(tmp_path)), gateway={"data_dir": str(small_disk / "data")})
    acked: list[str] = []
    async with trio.open_nursery() as nursery:
        services = await nursery.start(serve_gateway, settings, trio.Event())
        async with httpx.AsyncClient(base_url=services.bound[0], timeout=30) as client:
            refused = None
            for batch in range(400):
                events = [erp_event(batch * 20 + i, remark="x" * 20_000) for i in range(20)]
                reply = await post(client, events)
                if reply.status_code != 200:
                    refused = reply
                    break
                acked += [e["event_id"] for e in events]
            assert refused is not None, "the disk never filled up"
            assert refused.status_code == 503 and int(refused.headers["Retry-After"]) > 0
            assert "store" in refused.json()["error"]
            health = (await client.get("/healthz")).json()
            assert health["status"] == "degraded" and "write failed" in health["store"]
            again = await post(client, [erp_event(10**6)])  # within the pause: refused at once
            assert again.status_code == 503

            await trio.run_process(["mount", "-o", "remount,size=96m", str(small_disk)])
            with trio.fail_after(60):  # a hang guard: the pipeline reopens the store within ~5 s
                while (reply := await post(client, [erp_event(10**6 + 1)])).status_code != 200:  # noqa: ASYNC110
                    await trio.sleep(0.5)
            assert reply.json()["counts"] == {"new": 1}
            assert (await client.get("/healthz")).json()["status"] == "ok"
            stored = {record["source_event_id"] for record in services.store.iter_events("t1")}
            assert set(acked) <= stored  # every acknowledged event survived the full disk
            assert services.store.verify_audit_chain("t1").ok
        nursery.cancel_scope.cancel()


async def test_the_forwarder_heals_too_when_no_event_comes_in(tmp_path, small_disk):
    from tests._support.upstream import Upstream, upstream_config

    upstream = Upstream().start()
    upstream.stop()  # down while the disk fills: the backlog stays
    config = write_config(tmp_path, upstream_config(upstream, retry_max_s=0.3))
    settings = with_overrides(load_settings(config), gateway={"data_dir": str(small_disk / "data")})
    acked: list[str] = []
    try:
        async with trio.open_nursery() as nursery:
            services = await nursery.start(serve_gateway, settings, trio.Event())
            async with httpx.AsyncClient(base_url=services.bound[0], timeout=30) as client:
                for batch in range(400):
                    events = [erp_event(batch * 20 + i, remark="x" * 20_000) for i in range(20)]
                    if (await post(client, events)).status_code != 200:
                        break
                    acked += [e["event_id"] for e in events]
                assert acked and services.pipeline.store_error is not None
                upstream.start()  # the ERP is back, but deleting what it took needs disk space
                await trio.run_process(["mount", "-o", "remount,size=96m", str(small_disk)])
                with trio.fail_after(60):  # no event comes in: the forwarder must reopen the store itself
                    while services.store.outbox_stats().count:  # noqa: ASYNC110
                        await trio.sleep(0.1)
            assert {e["order_id"] for e in upstream.unique_events().values()} == {
                f"douyin|DY{int(eid.split('-')[1]):08d}" for eid in acked}
            nursery.cancel_scope.cancel()
    finally:
        upstream.stop()
