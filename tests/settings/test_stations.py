"""Pack stations and their devices in gateway.toml (``gateway._settings.stations``)."""

from __future__ import annotations

import pytest

from gateway._errors import ConfigError
from gateway._settings import load_settings

FULL = """
[nvrs.main]
url = "http://127.0.0.1:18080/"
username = "admin"
password_env = "TEST_NVR_PASSWORD"

[stations.A1]
nvr = "main"
nvr_channel = 3

[[stations.A1.scanners]]
kind = "serial"
path = "/dev/serial/by-id/usb-Honeywell_1900-if00"
terminator = "crlf"
fnc1_substitute = "|"

[[stations.A1.scanners]]
kind = "tcp_client"
host = "127.0.0.1"
port = 2001
name = "fixed-mount"

[stations.A1.printer]
host = "127.0.0.1"

[stations.A1.scale]
path = "/dev/serial/by-id/usb-Mettler-if00"

[stations.B2]
[[stations.B2.scanners]]
kind = "hid"
path = "/dev/input/by-id/usb-Scanner-event-kbd"
"""


def write(tmp_path, text):
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_full_station_config_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_NVR_PASSWORD", "s3cret-nvr")
    settings = load_settings(write(tmp_path, FULL))
    a1 = settings.stations["A1"]
    assert [s.kind for s in a1.scanners] == ["serial", "tcp_client"]
    assert a1.scanners[0].terminator == "crlf" and a1.scanners[0].fnc1_substitute == "|"
    assert a1.scanners[1].device_id == "fixed-mount"
    assert a1.printer is not None and a1.printer.port == 9100 and a1.printer.device_id == "tcp:127.0.0.1:9100"
    assert a1.scale is not None and a1.scale.protocol == "sics"
    assert a1.nvr == "main" and a1.nvr_channel == 3
    nvr = settings.nvrs["main"]
    assert nvr.url == "http://127.0.0.1:18080" and nvr.password.reveal() == b"s3cret-nvr"
    assert "s3cret" not in repr(settings)
    assert settings.stations["B2"].scanners[0].grab is True


def test_no_stations_is_fine(tmp_path):
    settings = load_settings(write(tmp_path, "[gateway]\nid = 'x'\n"))
    assert settings.stations == {} and settings.nvrs == {}


@pytest.mark.parametrize(("text", "line", "key", "words"), [
    ("[stations.A1]\n[[stations.A1.scanners]]\nkind = 'usb'\npath = '/dev/x'\n", 3, "stations.A1.scanners[0].kind",
     "must be one of"),
    ("[stations.A1]\n[[stations.A1.scanners]]\nkind = 'serial'\n", 2, "stations.A1.scanners[0]", "needs path"),
    ("[stations.A1]\n[[stations.A1.scanners]]\nkind = 'serial'\npath = '/dev/a'\n"
     "[[stations.A1.scanners]]\nkind = 'serial'\npath = '/dev/a'\n", 5, "stations.A1.scanners[1]",
     "already configured at stations.A1.scanners[0]"),
    ("[stations.A1]\nnvr = 'cam'\n[[stations.A1.scanners]]\nkind = 'hid'\npath = '/dev/b'\n", 2, "stations.A1.nvr",
     "no [nvrs.cam]"),
    ("[stations.A1]\nscanners = []\n", 2, "stations.A1.scanners", "one or more"),
    ("[stations.A1]\n[[stations.A1.scanners]]\nkind = 'tcp_client'\nhost = 'h'\n", 2, "stations.A1.scanners[0]",
     "needs host and port"),
    ("[stations.A1]\n[[stations.A1.scanners]]\nkind = 'hid'\npath = '/dev/c'\nencoding = 'klingon'\n", 5,
     "stations.A1.scanners[0].encoding", "unknown encoding"),
    ("[stations.A1]\n[[stations.A1.scanners]]\nkind = 'hid'\npath = '/dev/c'\nterminatr = 'cr'\n", 5,
     "stations.A1.scanners[0].terminatr", "unknown key"),
    ("[stations.A1]\n[[stations.A1.scanners]]\nkind = 'hid'\npath = '/dev/c'\n[stations.A1.printer]\nkind = 'serial'\n",
     5, "stations.A1.printer", "needs path"),
    ("[stations.'A 1']\n", 1, "stations.A 1", "station names"),
    ("[nvrs.main]\nurl = 'http://admin:pw@192.0.2.1'\nusername = 'admin'\npassword = 'pw'\n", 2, "nvrs.main.url",
     "must not carry a user or password"),
    ("[nvrs.main]\nurl = 'http://192.0.2.1'\nusername = 'admin'\n", 1, "nvrs.main", "needs username and a password"),
    ("[nvrs.main]\nurl = 'rtsp://192.0.2.1'\nusername = 'a'\npassword = 'p'\n", 2, "nvrs.main.url", "http://"),
])
def test_a_wrong_station_config_names_file_line_and_key(tmp_path, text, line, key, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as refused:
        load_settings(path)
    error = refused.value
    assert (error.line, error.key) == (line, key), str(error)
    assert words in error.message, str(error)
    assert str(path) in str(error)
    assert "pw@" not in str(error), "a password in a URL is never echoed"


def test_an_unset_password_variable_is_named_as_the_file_spells_it(tmp_path, monkeypatch):
    monkeypatch.delenv("NVR_PW_NOT_SET", raising=False)
    path = write(tmp_path, "[nvrs.main]\nurl = 'http://192.0.2.1'\nusername = 'admin'\npassword_env = 'NVR_PW_NOT_SET'\n")
    with pytest.raises(ConfigError) as refused:
        load_settings(path)
    assert (refused.value.line, refused.value.key) == (4, "nvrs.main.password_env")
    assert "NVR_PW_NOT_SET" in refused.value.message
