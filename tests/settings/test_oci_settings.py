"""``[oci]`` (``gateway._settings.oci``): defaults, values, and every mistake refused with
file, line and key."""

from __future__ import annotations

import pytest

from gateway._errors import ConfigError
from gateway._settings import Settings, load_settings
from gateway._settings.oci import OciSettings


def write(tmp_path, text):
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_and_values(tmp_path):
    assert load_settings(write(tmp_path, "")).oci == OciSettings() == Settings().oci
    settings = load_settings(write(tmp_path, "[oci]\nfreshness_s = 60\nweight_traceability = 2\ninterval_s = 600\n"))
    assert settings.oci.freshness_s == 60.0 and settings.oci.interval_s == 600.0
    assert settings.oci.weights == {"freshness": 1.0, "consistency": 1.0, "traceability": 2.0}


def test_every_key_is_in_the_reference():
    import gateway._settings.oci as oci

    for name in OciSettings.__dataclass_fields__:
        assert f"\n    {name} = " in (oci.__doc__ or ""), name


@pytest.mark.parametrize(("text", "line", "key", "words"), [
    ("[oci]\nfreshness = 60\n", 2, "oci.freshness", "unknown key"),
    ("[oci]\nfreshness_s = 0\n", 2, "oci.freshness_s", "greater than 0"),
    ("[oci]\nweight_freshness = 'high'\n", 2, "oci.weight_freshness", "must be a number"),
    ("[oci]\nweight_freshness = 0\nweight_consistency = 0\nweight_traceability = 0\n", 4, "oci.weight_traceability",
     "at least one weight"),
    ("[oci]\ninterval_s = 5\n", 2, "oci.interval_s", "at least 10"),
])
def test_errors_name_file_line_and_key(tmp_path, text, line, key, words):
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    error = caught.value
    assert error.key == key and error.line == line and words in error.message, error
    assert str(error).startswith(str(tmp_path / "gateway.toml"))
