"""``gateway doctor`` on a box whose upstream is a NATS stream (``gateway._appliance.doctor_nats``):
three real nats-server processes on 127.0.0.1."""

from __future__ import annotations

import orjson
import pytest

from gateway.cli import main
from tests._support import write_config
from tests._support.nats_cluster import NatsCluster
from tests._support.nats_fleet import upstream_toml


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    nodes = NatsCluster(tmp_path_factory.mktemp("doctor")).start()
    nodes.create_stream()
    nodes.create_stream("ONE", subjects=["one.>"], replicas=1, duplicate_window_s=7200)
    nodes.create_stream("LONG", subjects=["long.>"], duplicate_window_s=7200)
    yield nodes
    nodes.stop()


def upstream_check(tmp_path, capsys, toml: str) -> dict:
    config = write_config(tmp_path, toml)
    main(["doctor", "--config", str(config), "--only", "upstream", "--json"])
    report = orjson.loads(capsys.readouterr().out)
    return next(check for check in report["checks"] if check["name"] == "upstream")


def test_the_stream_answers_with_its_replicas_and_window(cluster, tmp_path, capsys):
    check = upstream_check(tmp_path, capsys, upstream_toml(cluster, nats={"stream": "LONG"}))
    assert check["status"] == "ok", check
    assert "3 replicas, duplicate window 7200 s" in check["message"]


def test_a_short_duplicate_window_is_a_warning(cluster, tmp_path, capsys):
    check = upstream_check(tmp_path, capsys, upstream_toml(cluster))  # the default window: 2 minutes
    assert check["status"] == "warn", check
    assert "--dupe-window 2h" in check["fix"]


def test_one_replica_is_a_warning_with_what_to_ask_for(cluster, tmp_path, capsys):
    check = upstream_check(tmp_path, capsys, upstream_toml(cluster, nats={"stream": "ONE"}))
    assert check["status"] == "warn", check
    assert "--replicas 3" in check["fix"]


def test_wrong_credentials_fail_with_what_to_check(cluster, tmp_path, capsys):
    check = upstream_check(tmp_path, capsys, upstream_toml(cluster, nats={"password": "wrong-password"}))
    assert check["status"] == "fail", check  # the refusal itself, or the reset the server closes with
    assert "[upstream.nats] servers and credentials" in check["fix"]
