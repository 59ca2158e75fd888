"""Daemon settings: defaults, strictness with file/line/key, secrets never shown."""

from __future__ import annotations

import logging

import pytest

from gateway._errors import ConfigError
from gateway._settings import Settings, TomlDocument, default_config_path, load_settings, with_overrides


def write(tmp_path, text):
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_default_config_loads():
    settings = load_settings(default_config_path())
    assert settings.http.host == "127.0.0.1"
    assert settings.demo.enabled
    assert settings.credentials("demo", "erp") is not None
    assert settings.rules_path.name == "rules"


def test_empty_file_means_all_defaults(tmp_path):
    settings = load_settings(write(tmp_path, ""))
    defaults = Settings()
    assert settings.store == defaults.store
    assert settings.http.port == 8780
    assert settings.store.sync == "group"


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        ("[gateway]\nid = 'x'\n\n[http]\nprot = 8080\n", 5, "http.prot", "unknown key"),
        ("[store]\nsync = 'never'\n", 2, "store.sync", "must be one of"),
        ("[http]\nport = '80'\n", 2, "http.port", "must be an integer"),
        ("[pipeline]\nqueue_batches = -1\n", 2, "pipeline.queue_batches", "negative"),
        ("[demo]\nenabled = 1\n", 2, "demo.enabled", "true or false"),
        ("[stor]\nsync = 'os'\n", 1, "stor", "unknown key"),
        ("[tenants.'bad tenant'.erp]\nsecret = 'x'\n", 1, "tenants.bad tenant", "tenant names"),
        ("[tenants.t1.erp]\nsecret = 'x'\nsecrte = 'y'\n", 3, "tenants.t1.erp.secrte", "unknown key"),
        ("[tenants.t1.erp]\nallow_ips = []\n", 1, "tenants.t1.erp", "no secret"),
        ("[tenants.t1.erp]\nsecret_env = 'GATEWAY_TEST_SURELY_UNSET'\n", 2, "tenants.t1.erp.secret_env", "not set"),
        ("[upstream]\nurl = 'http://127.0.0.1:9/x'\n", 1, "upstream", "no secret"),
        ("[upstream]\nurl = 'ftp://x'\nsecret = 's'\n", 2, "upstream.url", "http:// or https://"),
        ("[upstream]\nbatch_max_event = 5\n", 2, "upstream.batch_max_event", "unknown key"),
        ("[upstream]\nretry_initial_s = 5\nretry_max_s = 1\n", 3, "upstream.retry_max_s", "at least retry_initial_s"),
        ("[upstream]\ntimeout_s = 0\n", 2, "upstream.timeout_s", "greater than 0"),
        ("[http]\nserver = 'nginx'\n", 2, "http.server", "must be one of"),
        ("[http]\nmax_connections = 0\n", 2, "http.max_connections", "greater than 0"),
        ("[http]\nkeep_alive_timeout_s = 0\n", 2, "http.keep_alive_timeout_s", "greater than 0"),
        ("[http]\nrequest_timeout_s = 0\n", 2, "http.request_timeout_s", "greater than 0"),
        ("[http]\ntrusted_proxies = ['localhost']\n", 2, "http.trusted_proxies", "not an IP address"),
        ("[tenants.t1.erp]\nsecret = 'x'\nallow_ips = ['10.0.0.0/33']\n", 3, "tenants.t1.erp.allow_ips",
         "not an IP address or a CIDR network"),
        ("[tenants.t1.douyin]\nsecret = 'x'\n", 1, "tenants.t1.douyin", "give app_key"),
        ("[tenants.t1.youzan]\nsecret = 'x'\n", 1, "tenants.t1.youzan", "give app_key"),
        ("[tenants.t1.tmall]\nsecret = 'x'\nsign_method = 'sha1'\n", 3, "tenants.t1.tmall.sign_method",
         "must be one of"),
        ("[tenants.t1.tmall]\nsecret = 'x'\napp_key = 'has space'\n", 3, "tenants.t1.tmall.app_key", "printable"),
        ("[tenants.t1.tmall]\nsecret = 'x'\napp_key = 12\n", 3, "tenants.t1.tmall.app_key", "must be a string"),
        ("[tenants.t1.xiaohongshu]\nsecret = 'x'\nsignature_header = 'x sig'\n", 3,
         "tenants.t1.xiaohongshu.signature_header", "HTTP header name"),
        ("[tenants.t1.pinduoduo]\nsecret = 'x'\nws_url = 'https://x'\n", 3, "tenants.t1.pinduoduo.ws_url",
         "ws:// or wss://"),
        ("[tenants.t1.pinduoduo]\nsecret = 'x'\nwsurl = 'wss://x'\n", 3, "tenants.t1.pinduoduo.wsurl", "unknown key"),
        ("[tenants.t1.pinduoduo]\nsecret = 'x'\nws_url = 'wss://x'\n", 3, "tenants.t1.pinduoduo.ws_url", "give app_key"),
    ],
)
def test_errors_name_file_line_and_key(tmp_path, text, line, key, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    error = info.value
    assert error.path == str(path)
    assert error.line == line
    assert error.key == key
    assert words in error.message
    assert str(error).startswith(f"{path}:{line}: {key}: ")


def test_invalid_toml_names_the_line(tmp_path):
    path = write(tmp_path, "[http]\nport = = 1\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.line == 2


def test_secret_sources(tmp_path, monkeypatch):
    (tmp_path / "erp.secret").write_text("from-file\n")
    monkeypatch.setenv("GATEWAY_TEST_SECRET", "from-env")
    path = write(tmp_path, "[tenants.a.erp]\nsecret_file = 'erp.secret'\n[tenants.b.erp]\nsecret_env = 'GATEWAY_TEST_SECRET'\n")
    settings = load_settings(path)
    assert settings.credentials("a", "erp").secret.reveal() == b"from-file"
    assert settings.credentials("b", "erp").secret.reveal() == b"from-env"
    assert settings.credentials("a", "douyin") is None
    assert settings.credentials("zzz", "erp") is None


def test_secrets_never_show_in_repr_or_logs(tmp_path, caplog):
    path = write(tmp_path, "[tenants.a.erp]\nsecret = 'hunter2-very-secret'\n")
    settings = load_settings(path)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("settings: %s %r", settings, settings)
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings)
    assert "hunter2" not in caplog.text


def test_two_secret_kinds_are_refused(tmp_path):
    path = write(tmp_path, "[tenants.a.erp]\nsecret = 'x'\nsecret_env = 'HOME'\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.line == 3


def test_relative_paths(tmp_path):
    path = write(tmp_path, "[gateway]\nrules_dir = 'my-rules'\ndata_dir = 'var/data'\n")
    settings = load_settings(path)
    assert settings.rules_path == (tmp_path / "my-rules").resolve()
    assert settings.token_path.name == "api-token"


def test_overrides_replace_only_named_fields(tmp_path):
    settings = load_settings(write(tmp_path, "[http]\nport = 9000\nmax_body_bytes = 10\n"))
    changed = with_overrides(settings, http={"port": 0})
    assert changed.http.port == 0 and changed.http.max_body_bytes == 10


def test_locator_handles_quoted_dotted_and_array_tables(tmp_path):
    doc = TomlDocument(tmp_path / "x.toml", '[a]\n"x.y" = 1\nb.c = 2\n[[t]]\nk = 1\n[[t]]\nk = 2\n')
    assert doc.line_of(("a", "x.y")) == 2
    assert doc.line_of(("a", "b", "c")) == 3
    assert doc.line_of(("t", 1, "k")) == 7
    assert doc.line_of(("a", "missing")) == 1


# -- per-source credential keys (platform adapters) -----------------------------------------------

def test_credential_keys_defaults_and_values(tmp_path):
    path = write(tmp_path, (
        "[tenants.t1.douyin]\nsecret = 'x'\napp_key = 'dy-app'\n"
        "[tenants.t1.tmall]\nsecret = 'x'\nsign_method = 'hmac-sha256'\n"
        "[tenants.t1.xiaohongshu]\nsecret = 'x'\nsignature_header = 'X-Ark-Sign'\n"
        "[tenants.t1.pinduoduo]\nsecret = 'x'\napp_key = 'pdd-client'\nws_url = 'wss://relay.example/message'\n"
    ))
    settings = load_settings(path)
    douyin = settings.credentials("t1", "douyin")
    assert douyin.app_key == "dy-app" and douyin.sign_method == ""
    assert douyin.signature_header == "x-xhs-signature"
    assert douyin.ws_url == ""  # the Pinduoduo WebSocket is opt-in
    assert settings.credentials("t1", "tmall").sign_method == "hmac-sha256"
    assert settings.credentials("t1", "tmall").app_key == ""
    assert settings.credentials("t1", "xiaohongshu").signature_header == "x-ark-sign"  # headers arrive lower-cased
    assert settings.credentials("t1", "pinduoduo").ws_url == "wss://relay.example/message"
    assert "'x'" not in repr(settings.credentials("t1", "pinduoduo").secret)


def test_upstream_settings_and_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("ERP_UPSTREAM_SECRET", "from-the-environment")
    path = write(tmp_path, "[upstream]\nurl = 'http://127.0.0.1:9/erp'\nsecret_env = 'ERP_UPSTREAM_SECRET'\n"
                           "batch_max_events = 200\n")
    upstream = load_settings(path).upstream
    assert upstream.url == "http://127.0.0.1:9/erp" and upstream.batch_max_events == 200
    assert upstream.secret.reveal() == b"from-the-environment"
    assert "from-the-environment" not in repr(upstream)
    assert (upstream.linger_s, upstream.timeout_s, upstream.retry_initial_s, upstream.retry_max_s) == (0.05, 10.0, 0.5, 60.0)
    assert load_settings(write(tmp_path, "")).upstream.url == ""  # forwarding off by default


SHARED = "[tenants.{t}.pinduoduo]\nsecret = '{secret}'\napp_key = 'isv-app'\nws_url = 'wss://relay.example/message'\n"


def test_tenants_sharing_one_pinduoduo_websocket_split_it_by_shop(tmp_path):
    text = (SHARED.format(t="a", secret="s") + "mall_ids = [9001, '9002']\n"
            + SHARED.format(t="b", secret="s") + "mall_ids = [9003]\n")
    settings = load_settings(write(tmp_path, text))
    assert settings.credentials("a", "pinduoduo").mall_ids == ("9001", "9002")
    assert settings.credentials("b", "pinduoduo").mall_ids == ("9003",)
    # relay-only tenants (no ws_url) may share the app without mall_ids
    load_settings(write(tmp_path, SHARED.format(t="a", secret="s").replace("ws_url", "#")
                        + SHARED.format(t="b", secret="s")))


@pytest.mark.parametrize(("text", "key", "words"), [
    (SHARED.format(t="a", secret="s") + SHARED.format(t="b", secret="s"), "tenants.a.pinduoduo.ws_url",
     "give each of them mall_ids"),
    (SHARED.format(t="a", secret="s") + "mall_ids = [1]\n" + SHARED.format(t="b", secret="s")
     + "mall_ids = [2, 1]\n", "tenants.b.pinduoduo.mall_ids", "shop 1 is already tenant 'a'"),
    (SHARED.format(t="a", secret="s") + "mall_ids = [1]\n" + SHARED.format(t="b", secret="x")
     + "mall_ids = [2]\n", "tenants.b.pinduoduo.secret", "one app secret"),
    ("[tenants.a.douyin]\nsecret = 's'\napp_key = 'k'\nmall_ids = [1]\n", "tenants.a.douyin.mall_ids",
     "only pinduoduo"),
    (SHARED.format(t="a", secret="s") + "mall_ids = ['shop-1']\n", "tenants.a.pinduoduo.mall_ids",
     "mallID numbers"),
    (SHARED.format(t="a", secret="s") + "mall_ids = [1, 1]\n", "tenants.a.pinduoduo.mall_ids", "listed twice"),
])
def test_pinduoduo_shop_routing_errors_name_the_key(tmp_path, text, key, words):
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    assert info.value.key == key and words in info.value.message, info.value
