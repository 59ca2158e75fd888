"""The ``gateway`` command: help, check-config, and ``run`` as a real process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

from gateway.cli import main
from tests._support import ROOT, copy_tree, edit_line, erp_event, signed, write_config

SUBCOMMANDS = ["run", "check-config", "audit-verify", "version"]


def gateway_cmd(*args, **kw):
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True,
                          timeout=60, cwd=kw.get("cwd", ROOT), env={**os.environ, **kw.get("env", {})})


def test_help_lists_every_subcommand():
    result = gateway_cmd("--help")
    assert result.returncode == 0
    for name in SUBCOMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as info:
        main([name, "--help"])
    assert info.value.code == 0
    assert "usage: gateway" in capsys.readouterr().out


def test_check_config_passes_on_the_shipped_tree(capsys):
    assert main(["check-config", str(ROOT / "config")]) == 0
    out = capsys.readouterr().out
    assert "gateway.toml: OK" in out
    for source in ("douyin", "tmall", "pinduoduo", "xiaohongshu", "youzan", "kuaidi100", "cainiao", "erp"):
        assert source in out


def broken_copy(tmp_path):
    return copy_tree(ROOT / "config", tmp_path / "config")


def test_check_config_names_file_line_and_key_of_a_broken_rule(tmp_path, capsys):
    config = broken_copy(tmp_path)
    rule = config / "rules" / "douyin.toml"
    line = edit_line(rule, '"PENDING_REVIEW"', '"PENDING_REVEIW"')
    assert main(["check-config", str(config)]) == 1
    err = capsys.readouterr().err
    assert f"{rule}:{line}: status.101" in err


def test_check_config_names_a_misspelt_daemon_key(tmp_path, capsys):
    config = broken_copy(tmp_path)
    path = config / "gateway.toml"
    text = path.read_text(encoding="utf-8").replace("port = 8780", "prot = 8780")
    path.write_text(text, encoding="utf-8")
    line = text.splitlines().index("prot = 8780") + 1
    assert main(["check-config", str(config)]) == 1
    assert f"{path}:{line}: http.prot: unknown key" in capsys.readouterr().err


def test_check_config_refuses_credentials_for_a_source_without_rules(tmp_path, capsys):
    config = broken_copy(tmp_path)
    path = config / "gateway.toml"
    path.write_text(path.read_text(encoding="utf-8") + "\n[tenants.demo.wechat]\nsecret = 'x'\n")
    assert main(["check-config", str(config)]) == 1
    assert "tenants.demo.wechat" in capsys.readouterr().err


def test_version_names_the_core():
    result = gateway_cmd("version")
    assert result.returncode == 0
    assert re.search(r"core: (cython|python)", result.stdout)


def test_run_as_a_real_process_ingests_and_stops_on_sigterm(tmp_path):
    config = write_config(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--config", str(config)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        url = None
        seen = []
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
            found = re.search(r"listening on (\S+?)[;,]", line)
            if found:
                url = found.group(1)
        assert url, "".join(seen)
        url = url if "://" in url else f"http://{url}"
        assert any("core implementation" in line for line in seen)
        body, headers = signed([erp_event(1, "PAID"), erp_event(2, "WAIT_AUDIT")])
        response = httpx.post(f"{url}/webhooks/erp/t1", content=body, headers=headers, timeout=10)
        assert response.status_code == 200
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=30)
        assert process.returncode == 0, rest
        assert "shutting down" in rest and "store closed" in rest
    finally:
        if process.poll() is None:
            process.kill()
    from gateway._settings import load_settings
    from gateway._store import open_store, store_settings

    with open_store(store_settings(load_settings(config))) as store:
        assert store.get_order("t1", "douyin|DY00000001").status.value == "PAID"
        assert len(list(store.iter_audit("t1"))) == 2
        assert store.outbox_stats().count == 2
        assert store.verify_audit_chain("t1").ok


# -- start-up failures: one clear message, a documented exit status ---------------------------


def run_briefly(config, *extra):
    return subprocess.run([sys.executable, "-m", "gateway", "run", "--config", str(config), "--no-demo", *extra],
                          capture_output=True, text=True, timeout=60, cwd=config.parent)


def test_a_broken_rule_file_stops_the_start_with_one_clear_message(tmp_path):
    config = copy_tree(ROOT / "config", tmp_path / "config")
    rule = config / "rules" / "douyin.toml"
    line = edit_line(rule, '"PENDING_REVIEW"', '"PENDING_REVEIW"')
    result = run_briefly(config / "gateway.toml", "--port", "0")
    assert result.returncode == 1, result.stderr
    errors = [entry for entry in result.stderr.splitlines() if not re.match(r"\d{4}-\d\d-\d\d ", entry)]
    assert errors[0].startswith(f"error: {rule}:{line}: status.101")
    assert "gateway check-config" in errors[1] and len(errors) == 2, result.stderr
    assert "Traceback" not in result.stderr and "ExceptionGroup" not in result.stderr


def test_a_store_locked_by_another_gateway_exits_3_and_says_what_to_do(tmp_path):
    from gateway._settings import load_settings
    from gateway._store import open_store, store_settings

    config = write_config(tmp_path)
    with open_store(store_settings(load_settings(config))):  # this process holds the RocksDB lock
        result = run_briefly(config)
        debug = run_briefly(config, "--log-level", "DEBUG")
    assert result.returncode == 3, result.stderr
    assert "store is locked" in result.stderr and "another gateway" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) <= 4, result.stderr
    assert debug.returncode == 3 and "Traceback" in debug.stderr, "the traceback is there for whoever asks"


def test_third_party_info_lines_are_quiet_unless_debugging():
    import logging

    from gateway.cli import QUIET_LOGGERS, _setup_logging

    try:
        _setup_logging("INFO")
        assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
        _setup_logging("DEBUG")
        assert logging.getLogger("httpx").getEffectiveLevel() == logging.DEBUG
    finally:
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)
