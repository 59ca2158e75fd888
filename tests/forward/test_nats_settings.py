"""``[upstream] kind = "nats"`` and ``[upstream.nats]``: parsed strictly, every mistake named with
file, line and key; ``check-config`` says what the sink will do; ``open_forwarder`` picks it."""

from __future__ import annotations

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from gateway._errors import ConfigError
from gateway._forward import open_forwarder
from gateway._forward.nats_sink import NatsSink
from gateway._settings import load_settings
from gateway._settings.nats import DEFAULT_SUBJECT, subject_problem
from gateway._store import StoreSettings, open_store
from gateway.cli import main
from tests._support import write_config

SERVERS = '["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]'


def config(tmp_path, nats: str, upstream: str = 'kind = "nats"'):
    return write_config(tmp_path, f"[upstream]\n{upstream}\n[upstream.nats]\n{nats}\n")


def refused(tmp_path, nats: str, upstream: str = 'kind = "nats"') -> str:
    path = config(tmp_path, nats, upstream)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return str(caught.value)


def test_a_full_table_is_read_with_paths_resolved(tmp_path, monkeypatch):
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("NATS_PW", "s3cret")
    settings = load_settings(config(tmp_path, f'servers = {SERVERS}\nstream = "ORDERS"\nuser = "gw"\n'
                                              'password_env = "NATS_PW"\ntls_ca_file = "ca.pem"\n'
                                              'heartbeat_interval_s = 5'))
    nats = settings.upstream.nats
    assert settings.upstream.kind == "nats" and nats.stream == "ORDERS" and nats.subject == DEFAULT_SUBJECT
    assert nats.servers == ("nats://127.0.0.1:4222", "nats://127.0.0.1:4223")
    assert nats.password.reveal() == b"s3cret" and "s3cret" not in repr(nats)
    assert nats.tls_ca_file == str((tmp_path / "ca.pem").resolve()) and nats.heartbeat_interval_s == 5.0


@pytest.mark.parametrize(("nats", "upstream", "key", "says"), [
    ('stream = "ORDERS"', 'kind = "nats"', "upstream.nats.servers", "client URLs"),
    (f'servers = {SERVERS}', 'kind = "nats"', "upstream.nats.stream", "stream's name"),
    (f'servers = {SERVERS}\nstream = "ORDERS"\nsubjct = "x"', 'kind = "nats"', "upstream.nats.subjct", ""),
    (f'servers = {SERVERS}\nstream = "ORDERS"\nsubject = "gateway.>"', 'kind = "nats"', "upstream.nats.subject",
     "no wildcards"),
    (f'servers = {SERVERS}\nstream = "ORDERS"\nsubject = "g.<order>"', 'kind = "nats"', "upstream.nats.subject",
     "unknown placeholder <order>"),
    ('servers = ["http://x:4222"]\nstream = "S"', 'kind = "nats"', "upstream.nats.servers", "nats:// or tls://"),
    (f'servers = {SERVERS}\nstream = "S"\nuser = "u"', 'kind = "nats"', "upstream.nats.password", "needs a password"),
    (f'servers = {SERVERS}\nstream = "S"\ncreds_file = "none.creds"', 'kind = "nats"', "upstream.nats.creds_file",
     "not a readable file"),
    (f'servers = {SERVERS}\nstream = "S"\nconnect_timeout_s = "5"', 'kind = "nats"',
     "upstream.nats.connect_timeout_s", "must be a number"),
    (f'servers = {SERVERS}\nstream = "S"', 'kind = "http"', "upstream.nats", 'kind = "nats"'),
    (f'servers = {SERVERS}\nstream = "S"', 'kind = "kafka"', "upstream.kind", "'http', 'nats'"),
    (f'servers = {SERVERS}\nstream = "S"', 'kind = "nats"\nurl = "http://erp"', "upstream.url", "kind = \"http\""),
])
def test_mistakes_name_file_line_and_key(tmp_path, nats, upstream, key, says):
    message = refused(tmp_path, nats, upstream)
    assert "gateway.toml:" in message and f"{key}:" in message and says in message


def test_two_ways_to_sign_in_are_refused_at_the_second(tmp_path):
    (tmp_path / "gw.creds").write_text("creds")
    message = refused(tmp_path, f'servers = {SERVERS}\nstream = "S"\ncreds_file = "gw.creds"\nuser = "u"\n'
                                'password = "p"')
    assert "upstream.nats.user" in message and "one way to sign in" in message


def test_kind_nats_without_its_table_says_what_to_add(tmp_path):
    path = write_config(tmp_path, '[upstream]\nkind = "nats"\n')
    with pytest.raises(ConfigError, match=r"upstream\.kind: kind = \"nats\" needs an \[upstream\.nats\] table"):
        load_settings(path)


@given(st.text(max_size=40))
def test_a_subject_template_is_accepted_only_when_every_token_is_plain_or_one_placeholder(template):
    problem = subject_problem(template)
    if problem is None:
        tokens = template.split(".")
        assert all(tokens) and not any(c in template for c in "*> \t")
        assert all(t.startswith("<") == t.endswith(">") for t in tokens)


def test_check_config_says_what_the_sink_will_do(tmp_path, capsys):
    path = config(tmp_path, f'servers = {SERVERS}\nstream = "ORDERS"')
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert ("upstream NATS stream ORDERS on nats://127.0.0.1:4222,nats://127.0.0.1:4223 subject "
            "gateway.<tenant>.<gateway_id>.<type> (no credentials)") in out


def test_open_forwarder_picks_the_nats_sink(tmp_path):
    settings = load_settings(config(tmp_path, f'servers = {SERVERS}\nstream = "ORDERS"'))
    with open_store(StoreSettings(path=tmp_path / "db")) as store:
        forwarder = open_forwarder(store, settings.upstream, "gw")
        assert forwarder is not None and isinstance(forwarder.sink, NatsSink)
        assert forwarder.where.startswith("NATS stream ORDERS on nats://127.0.0.1:4222")
        trio.run(forwarder.sink.aclose)
