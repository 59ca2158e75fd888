"""Backup under load: a real gateway ingests signed ERP webhooks while a backup is taken
through its API; the backup restores into a new data directory with every event
acknowledged before the checkpoint, its audit chains intact and its manifest right."""

from __future__ import annotations

import dataclasses
import os
import shutil

import httpx
import orjson
import pytest
import trio

import gateway._daemon as daemon
from gateway._appliance.backup import restore_store
from gateway._server import app as app_module
from gateway._server.admin_api import admin_routes
from gateway._server.http import token_guard
from gateway._settings import load_settings
from gateway._store import open_store, store_settings
from gateway._store.backup import BackupError, verify_backup
from tests._support import erp_event, signed, write_config


@pytest.fixture
def with_admin_routes(monkeypatch):
    """``build_app`` with the admin routes, until ``gateway._server.app`` registers them."""
    original = app_module.build_app

    def build_app(services, extra_routes=()):
        built = original(services, extra_routes)
        if not any(getattr(r, "path", "") == "/api/v1/admin/backup" for r in built.routes):
            protected = token_guard(services.tokens.authenticate, app_module.audit_to_store(services))
            built.router.routes[:0] = admin_routes(services, protected)
        return built

    monkeypatch.setattr(daemon, "build_app", build_app)


@pytest.fixture
async def gateway(tmp_path, nursery, with_admin_routes):
    settings = load_settings(write_config(tmp_path))
    shutdown = trio.Event()
    services = await nursery.start(daemon.serve_gateway, settings, shutdown)
    base = services.bound[0]
    async with httpx.AsyncClient(base_url=base if "://" in base else f"http://{base}", timeout=30) as client:
        client.services = services
        client.admin = {"Authorization": f"Bearer {services.api_token}"}
        yield client
    shutdown.set()


async def test_backup_under_load_restores_every_acknowledged_event(gateway, tmp_path):
    acknowledged: list[tuple[float, str]] = []  # (when the 200 arrived, event id)
    stop, enough, went_on = trio.Event(), trio.Event(), trio.Event()
    started: list[float] = []

    async def feed(tenant: str, first: int) -> None:
        n = first
        while not stop.is_set():
            batch = [erp_event(n + i, order=f"{tenant.upper()}{n + i:08d}") for i in range(5)]
            body, headers = signed(batch, tenant)
            reply = await gateway.post(f"/webhooks/erp/{tenant}", content=body, headers=headers)
            assert reply.status_code == 200, reply.text
            now = trio.current_time()
            acknowledged.extend((now, e["event_id"]) for e in batch)
            if len(acknowledged) >= 200:
                enough.set()
            if started and sum(1 for when, _ in acknowledged if when > started[0]) >= 50:
                went_on.set()  # ingest went on during the backup
            n += 5

    target = tmp_path / "backups" / "one"
    async with trio.open_nursery() as feeders:
        feeders.start_soon(feed, "t1", 0)
        feeders.start_soon(feed, "t2", 1_000_000)
        await enough.wait()
        started.append(trio.current_time())
        reply = await gateway.post("/api/v1/admin/backup", json={"dir": str(target)}, headers=gateway.admin)
        await went_on.wait()
        stop.set()
    assert reply.status_code == 200, reply.text
    figures = reply.json()
    assert figures["taken"] == "online" and figures["gateway_id"] == "test-gw"
    before = {event_id for when, event_id in acknowledged if when < started[0]}
    assert len(before) >= 200
    manifest = verify_backup(target)
    assert manifest["buyer_salt"]["file"] == "buyer-salt" and manifest["buyer_salt"]["check"]
    assert os.stat(target / "buyer-salt").st_mode & 0o777 == 0o600

    new_home = tmp_path / "elsewhere"
    new_home.mkdir()
    shutil.copy(tmp_path / "gateway.toml", new_home / "gateway.toml")
    text = (new_home / "gateway.toml").read_text().replace(str(tmp_path / "data"), str(new_home / "data"))
    (new_home / "gateway.toml").write_text(text.replace("port = 0", "port = 1"))  # nothing answers there
    settings = load_settings(new_home / "gateway.toml")
    done = restore_store(settings, target, lambda line: None, lambda question: False)
    assert done["moved_aside"] is None
    assert (new_home / "data" / "buyer-salt").read_text() == (tmp_path / "data" / "buyer-salt").read_text()
    with open_store(store_settings(settings)) as restored:
        found = {e["source_event_id"] for t in ("t1", "t2") for e in restored.iter_events(t)}
        assert before <= found, f"{len(before - found)} acknowledged events missing"
        assert set(manifest["tenants"]) >= {"t1", "t2"}  # the backup call's own audit record comes after it
        for tenant in manifest["tenants"]:
            result = restored.verify_audit_chain(tenant)
            assert result.ok, result
            assert result.records == manifest["tenants"][tenant]["last_audit_seq"]
            assert restored._audit_head[tenant] == manifest["tenants"][tenant]["audit_head"]


async def test_the_route_refuses_bad_directories_and_other_tokens(gateway, tmp_path):
    async def ask(directory, headers=None):
        return await gateway.post("/api/v1/admin/backup", json={"dir": directory}, headers=headers or gateway.admin)

    assert (await ask("relative/dir")).json()["code"] == "bad_dir"
    assert (await ask(str(tmp_path / "data" / "inside"))).json()["code"] == "bad_dir"
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    reply = await ask(str(full))
    assert reply.status_code == 400 and "not empty" in reply.json()["error"]
    assert (await ask(str(tmp_path / "b"), {"Authorization": "Bearer nope"})).status_code == 401
    assert (await gateway.post("/api/v1/admin/backup", content=b"{", headers=gateway.admin)).status_code == 400


def test_a_damaged_backup_is_refused_and_nothing_changes(tmp_path):
    settings = load_settings(write_config(tmp_path, port=1))
    settings = dataclasses.replace(settings)
    from gateway._appliance.backup import backup_store

    with open_store(store_settings(settings)):
        pass
    backup_store(settings, tmp_path / "bk", lambda line: None)
    sst = next((tmp_path / "bk" / "store").glob("MANIFEST-*"))
    sst.write_bytes(sst.read_bytes()[:-1] + b"\0")
    with pytest.raises(BackupError, match="SHA-256"):
        restore_store(settings, tmp_path / "bk", lambda line: None, lambda question: True)
    manifest = orjson.loads((tmp_path / "bk" / "manifest.json").read_bytes())
    manifest["files"].pop("store/CURRENT")
    (tmp_path / "bk" / "manifest.json").write_bytes(orjson.dumps(manifest))
    with pytest.raises(BackupError, match="not in the manifest"):
        verify_backup(tmp_path / "bk")
    assert not list((tmp_path / "data").glob("store.*"))
