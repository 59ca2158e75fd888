"""``[packline]`` and ``[alerts]`` (``gateway._settings.packline``): defaults, values, the robot
URL as a secret, and every mistake refused with file, line and key."""

from __future__ import annotations

import logging

import pytest

from gateway._errors import ConfigError
from gateway._settings import AlertsSection, PackLineSection, Secret, Settings, load_settings

ROBOT = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-SECRET-KEY"
STATION = "[stations.A1]\n[[stations.A1.scanners]]\nkind = 'tcp_client'\nhost = '127.0.0.1'\nport = 9000\n"


def write(tmp_path, text):
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_documented_values(tmp_path):
    settings = load_settings(write(tmp_path, ""))
    assert settings.packline == PackLineSection() == Settings().packline
    assert settings.packline.waybill_timeout_s == 900.0 and settings.packline.close_mode == "auto"
    assert (settings.packline.close_code, settings.packline.cancel_code, settings.packline.reprint_code) == \
        ("#CLOSE", "#CANCEL", "#REPRINT")
    assert (settings.packline.badge_prefix, settings.packline.supervisor_prefix) == ("OP-", "SV-")
    assert (settings.packline.weight_tolerance_g, settings.packline.weight_tolerance_pct) == (0, 5.0)
    assert settings.alerts == AlertsSection() == Settings().alerts
    assert not settings.alerts.url and settings.alerts.format == "markdown"
    assert settings.alerts.mentioned_mobiles == ()
    assert (settings.alerts.retry_initial_s, settings.alerts.retry_max_s, settings.alerts.timeout_s) == \
        (1.0, 300.0, 10.0)
    assert settings.alerts.max_queued == 10_000


def test_every_key_is_in_the_reference():
    import gateway._settings.packline as packline

    reference = packline.__doc__ or ""
    for name in [*PackLineSection.__dataclass_fields__, "url", "url_env", "url_file",
                 *(n for n in AlertsSection.__dataclass_fields__ if n != "url")]:
        assert f"\n    {name} = " in reference, name


def test_values_are_read(tmp_path):
    settings = load_settings(write(tmp_path, f"""
[packline]
waybill_timeout_s = 600
close_mode = "next_order"
close_code = "#END"
cancel_code = "#ABORT"
reprint_code = "#PRINT"
badge_prefix = "EMP"
supervisor_prefix = "BOSS"
weight_tolerance_g = 20
weight_tolerance_pct = 3.5

[alerts]
url = "{ROBOT}"
format = "text"
mentioned_mobiles = ["13800001111", "@all"]
retry_initial_s = 2
retry_max_s = 120
timeout_s = 5
max_queued = 50
"""))
    assert settings.packline == PackLineSection(600.0, "next_order", "#END", "#ABORT", "#PRINT", "EMP", "BOSS", 20,
                                                3.5, "")
    assert settings.alerts == AlertsSection(Secret(ROBOT), "text", ("13800001111", "@all"), 2.0, 120.0, 5.0, 50)


def test_the_robot_url_is_a_secret_from_env_or_file_never_shown(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("GATEWAY_TEST_ROBOT_URL", ROBOT)
    settings = load_settings(write(tmp_path, "[alerts]\nurl_env = 'GATEWAY_TEST_ROBOT_URL'\n"))
    assert settings.alerts.url.reveal().decode() == ROBOT
    (tmp_path / "robot.url").write_text(ROBOT + "\n", encoding="utf-8")
    from_file = load_settings(write(tmp_path, "[alerts]\nurl_file = 'robot.url'\n"))
    assert from_file.alerts.url == settings.alerts.url
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("settings %r %s", settings, settings.alerts)
    assert "SECRET-KEY" not in repr(settings) and "SECRET-KEY" not in str(settings.alerts)
    assert "SECRET-KEY" not in caplog.text


def test_a_bad_url_is_refused_without_showing_it(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, "[alerts]\nurl = 'qyapi.weixin.qq.com/send?key=SECRET-KEY'\n"))
    assert caught.value.line == 2 and caught.value.key == "alerts.url"
    assert "SECRET-KEY" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        ("[packline]\nwaybill_timeout = 60\n", 2, "packline.waybill_timeout", "unknown key"),
        ("[packline]\nwaybill_timeout_s = 0\n", 2, "packline.waybill_timeout_s", "greater than 0"),
        ("[packline]\nwaybill_timeout_s = '15m'\n", 2, "packline.waybill_timeout_s", "must be a number"),
        ("[packline]\nclose_mode = 'manual'\n", 2, "packline.close_mode", "must be one of"),
        ("[packline]\nclose_code = ''\n", 2, "packline.close_code", "printable text"),
        ("[packline]\ncancel_code = ' #X'\n", 2, "packline.cancel_code", "printable text"),
        ("[packline]\nreprint_code = '#CLOSE'\n", 2, "packline.reprint_code", "the same code as close_code"),
        ("[packline]\nclose_code = 'OP-CLOSE'\n", 2, "packline.close_code", "starts with badge_prefix"),
        ("[packline]\nsupervisor_prefix = 'OP-SV'\n", 2, "packline.supervisor_prefix", "starts with badge_prefix"),
        ("[packline]\nweight_tolerance_g = -5\n", 2, "packline.weight_tolerance_g", "negative"),
        ("[packline]\nweight_tolerance_g = 2.5\n", 2, "packline.weight_tolerance_g", "must be an integer"),
        ("[packline]\nweight_tolerance_pct = 150\n", 2, "packline.weight_tolerance_pct", "at most 100"),
        ("[packline]\ntenant = 'a b'\n", 2, "packline.tenant", "tenant names"),
        ("[packline]\nstock_url = 'erp.local/stock'\n", 2, "packline.stock_url", "http:// or https:// URL"),
        ("[packline]\nstock_url = 'http://127.0.0.1:8080/stock'\n", 2, "packline.stock_url", "[upstream] secret"),
        ("[packline]\nstock_timeout_s = 0\n", 2, "packline.stock_timeout_s", "greater than 0"),
        ("[packline]\nstock_fresh_s = -1\n", 2, "packline.stock_fresh_s", "negative"),
        ("[packline]\ntenant = 'other'\n[tenants.t1.erp]\nsecret = 'x'\n", 2, "packline.tenant",
         "no [tenants.other]"),
        ("[alerts]\nformat = 'html'\n", 2, "alerts.format", "must be one of"),
        ("[alerts]\nurl_env = 'GATEWAY_TEST_SURELY_UNSET'\n", 2, "alerts.url_env", "not set"),
        ("[alerts]\nurl_file = 'missing.url'\n", 2, "alerts.url_file", "cannot read"),
        ("[alerts]\nurl = 'http://x'\nurl_env = 'Y'\n", 3, "alerts.url_env", "give only one"),
        ("[alerts]\nsecret = 'x'\n", 2, "alerts.secret", "unknown key"),
        ("[alerts]\nformat = 'text'\nmentioned_mobiles = [13800001111]\n", 3, "alerts.mentioned_mobiles",
         "strings of digits"),
        ("[alerts]\nformat = 'text'\nmentioned_mobiles = ['138-0000']\n", 3, "alerts.mentioned_mobiles",
         "strings of digits"),
        ("[alerts]\nmentioned_mobiles = ['13800001111']\n", 2, "alerts.mentioned_mobiles",
         'format = "text"'),
        ("[alerts]\nretry_initial_s = 0\n", 2, "alerts.retry_initial_s", "greater than 0"),
        ("[alerts]\nretry_initial_s = 10\nretry_max_s = 5\n", 3, "alerts.retry_max_s", "at least retry_initial_s"),
        ("[alerts]\ntimeout_s = 0\n", 2, "alerts.timeout_s", "greater than 0"),
        ("[alerts]\nmax_queued = 0\n", 2, "alerts.max_queued", "greater than 0"),
        ("[alerts]\nmax_queued = -1\n", 2, "alerts.max_queued", "negative"),
        ("[alerts]\nmax_queued = 1e3\n", 2, "alerts.max_queued", "must be an integer"),
        ("alerts = 5\n", 1, "alerts", "must be a table"),
    ],
)
def test_errors_name_file_line_and_key(tmp_path, text, line, key, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    error = caught.value
    assert (error.path, error.line, error.key) == (str(path), line, key)
    assert words in error.message
    assert str(error).startswith(f"{path}:{line}: {key}: ")


def test_the_only_tenant_is_the_stations_tenant(tmp_path):
    settings = load_settings(write(tmp_path, STATION + "[tenants.shop1.erp]\nsecret = 'x'\n"))
    assert settings.packline.tenant == "shop1"
    named = load_settings(write(tmp_path, "[packline]\ntenant = 'shop2'\n" + STATION +
                                "[tenants.shop1.erp]\nsecret = 'x'\n[tenants.shop2.erp]\nsecret = 'y'\n"))
    assert named.packline.tenant == "shop2"


def test_several_tenants_and_stations_need_the_tenant_named(tmp_path):
    path = write(tmp_path, "[packline]\nclose_mode = 'auto'\n" + STATION +
                 "[tenants.shop1.erp]\nsecret = 'x'\n[tenants.shop2.erp]\nsecret = 'y'\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.key == "packline.tenant" and caught.value.line == 1
    assert "shop1, shop2" in caught.value.message and "name the one" in caught.value.message
    # a gateway without stations does not pack: several tenants need no [packline] tenant
    plain = load_settings(write(tmp_path, "[tenants.shop1.erp]\nsecret = 'x'\n[tenants.shop2.erp]\nsecret = 'y'\n"))
    assert plain.packline.tenant == ""
