"""``gateway doctor`` on the command line: text lines, ``--json`` shape, exit status 0/1/2,
and a running gateway (its port and its audit chains through its API)."""

from __future__ import annotations

import orjson
import pytest
import trio

from gateway._daemon import serve_gateway
from gateway._settings import load_settings
from gateway.cli import main
from tests._support import write_config
from tests.test_devices_cli import free_port


def test_exit_0_when_all_ok_and_text_lines(tmp_path, capsys):
    config = write_config(tmp_path)
    assert main(["doctor", "--config", str(config), "--only", "data_dir", "secrets", "store"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"gateway doctor: {config}"
    assert any(line.startswith("ok    data_dir") for line in out.splitlines())
    assert "0 warning(s), 0 failure(s): all good" in out


def test_exit_1_on_warnings_only_and_json_shape(tmp_path, capsys):
    config = write_config(tmp_path)
    assert main(["doctor", "--config", str(config), "--json", "--only", "upstream"]) == 1
    report = orjson.loads(capsys.readouterr().out)
    assert set(report) == {"config", "status", "exit_status", "counts", "checks"}
    assert report["status"] == "warn" and report["exit_status"] == 1 and report["counts"]["warn"] == 1
    for check in report["checks"]:
        assert set(check) == {"name", "subject", "status", "message", "fix", "details"}
    assert [c["name"] for c in report["checks"]] == ["config", "upstream"]


def test_exit_2_on_a_config_error(tmp_path, capsys):
    config = write_config(tmp_path, "[store]\nsync = 'never'\n")
    assert main(["doctor", "--config", str(config), "--json"]) == 2
    report = orjson.loads(capsys.readouterr().out)
    (check,) = report["checks"]
    assert check["name"] == "config" and check["status"] == "fail" and "store.sync" in check["message"]


def test_unknown_check_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["doctor", "--only", "nonsense"])
    assert exit_info.value.code == 2


async def test_a_running_gateway_holds_the_port_and_verifies_its_chains(tmp_path, capsys):
    port = free_port()
    config = write_config(tmp_path, port=port)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_gateway, load_settings(config), trio.Event())
        args = ["doctor", "--config", str(config), "--json", "--only", "http_port", "store"]
        status = await trio.to_thread.run_sync(main, args)
        nursery.cancel_scope.cancel()
    report = orjson.loads(capsys.readouterr().out)
    assert status == 0, report
    checks = {(c["name"], c["subject"]): c for c in report["checks"]}
    assert "held by a running gateway" in checks[("http_port", "")]["message"]
    assert "checked by the running gateway" in checks[("store", "_gateway")]["message"]
