"""``gateway catalog import|show`` and ``gateway stock``: on a stopped gateway's store and through a
running one's API."""

from __future__ import annotations

import argparse
from functools import partial

import orjson
import pytest
import trio

from gateway._catalog_cli import add_catalog_commands, run_catalog_command
from gateway._packline.catalog import load_catalog, load_stock, parse_catalog
from gateway._settings import load_settings, with_overrides
from gateway._store import open_store, store_settings
from tests._support import write_config
from tests.server.test_catalog_api import CSV, EAN13, catalog_gateway


def run(settings, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="gateway")
    add_catalog_commands(parser.add_subparsers(dest="command", required=True))
    return run_catalog_command(parser.parse_args(list(argv)), settings)


@pytest.fixture
def offline(tmp_path):
    settings = load_settings(write_config(tmp_path))
    (tmp_path / "catalog.csv").write_bytes(CSV)
    (tmp_path / "bad.csv").write_text("sku,kind,parts\nA1,thing,\nK1,item,NOPE*2\n", encoding="utf-8")
    return settings


def test_import_show_and_stock_on_the_store(offline, tmp_path, capsys):
    file = str(tmp_path / "catalog.csv")
    assert run(offline, "catalog", "import", file, "--tenant", "t1", "--dry-run") == 0
    assert "would import 3 products (3 new, 0 updated, 0 unchanged) and 1 stock levels" in capsys.readouterr().out
    assert run(offline, "catalog", "import", file, "--tenant", "t1") == 0
    assert "catalog.csv: imported 3 products (3 new" in capsys.readouterr().out

    assert run(offline, "catalog", "show", "--tenant", "t1") == 0
    out = capsys.readouterr().out
    assert "3 products of tenant 't1'" in out and "SET-1" in out and "= A1x1 + GIFT-BAGx2" in out
    assert run(offline, "catalog", "show", "--tenant", "t1", "--barcode", EAN13, "--json") == 0
    assert orjson.loads(capsys.readouterr().out)[0]["sku"] == "A1"
    assert run(offline, "catalog", "show", "--tenant", "t1", "--csv") == 0
    exported = capsys.readouterr().out
    assert [p.sku for p in parse_catalog(exported, "csv").products] == ["A1", "GIFT-BAG", "SET-1"]
    assert run(offline, "catalog", "show", "--tenant", "t1", "--sku", "NOPE") == 1
    assert "no product with sku 'NOPE'" in capsys.readouterr().err

    assert run(offline, "stock", "--tenant", "t1") == 0
    out = capsys.readouterr().out
    assert "1 stock levels" in out and "GIFT-BAG" in out and "250" in out and "(set by import)" in out
    assert run(offline, "stock", "--tenant", "t1", "--json") == 0
    assert orjson.loads(capsys.readouterr().out)["stock"][0]["age_s"] >= 0
    with open_store(store_settings(offline)) as store:
        assert [a["actor"].split(":")[0] for a in store.iter_audit("t1")] == ["cli"]


def test_a_bad_file_exits_1_with_every_problem_on_stderr(offline, tmp_path, capsys):
    bad = str(tmp_path / "bad.csv")
    assert run(offline, "catalog", "import", bad, "--tenant", "t1") == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"error: {bad}:2:kind: kind 必须是 item、gift、gift_box、trial 之一，而不是 'thing'"
    assert err[1].startswith(f"error: {bad}:3:parts: 组件 NOPE")
    assert err[2] == "共 2 个问题；未导入任何数据"
    assert run(offline, "catalog", "import", bad, "--tenant", "t1", "--lang", "en") == 1
    assert capsys.readouterr().err.splitlines()[2] == "2 problem(s); nothing was imported"
    assert run(offline, "catalog", "import", str(tmp_path / "missing.csv"), "--tenant", "t1") == 1
    assert "cannot read" in capsys.readouterr().err
    with open_store(store_settings(offline)) as store:
        assert len(load_catalog(store, "t1")) == 0


def test_a_locked_store_without_an_api_is_an_error(offline, capsys):
    with open_store(store_settings(offline)):
        assert run(offline, "stock", "--tenant", "t1") == 1
    assert "does not answer and the store cannot be opened" in capsys.readouterr().err


async def test_the_commands_go_through_the_running_gateway(offline, tmp_path, capsys):
    async with catalog_gateway(offline) as gw:
        settings = with_overrides(offline, http={"port": int(gw.base.rsplit(":", 1)[1])})
        cli = partial(run, settings)
        file, bad = str(tmp_path / "catalog.csv"), str(tmp_path / "bad.csv")
        assert await trio.to_thread.run_sync(cli, "catalog", "import", file, "--tenant", "t1") == 0
        assert "imported 3 products" in capsys.readouterr().out
        assert len(load_catalog(gw.store, "t1")) == 3  # committed by the running gateway
        assert await trio.to_thread.run_sync(cli, "catalog", "import", bad, "--tenant", "t1") == 1
        err = capsys.readouterr().err
        assert "error: bad.csv:2:kind:" in err and "error: bad.csv:3:parts:" in err
        assert await trio.to_thread.run_sync(cli, "catalog", "show", "--tenant", "t1", "--sku", "SET-1") == 0
        assert "SET-1" in capsys.readouterr().out
        assert await trio.to_thread.run_sync(cli, "catalog", "show", "--tenant", "t1") == 0
        assert "3 products" in capsys.readouterr().out
        assert await trio.to_thread.run_sync(cli, "catalog", "show", "--tenant", "t1", "--barcode", "X") == 1
        assert await trio.to_thread.run_sync(cli, "stock", "--tenant", "t1", "--json") == 0
        assert orjson.loads(capsys.readouterr().out)["stock"][0]["sku"] == "GIFT-BAG"
        assert load_stock(gw.store, "t1")["GIFT-BAG"].quantity == 250
        assert [a["actor"] for a in gw.store.iter_audit("t1")][0].startswith("api:cli:")
