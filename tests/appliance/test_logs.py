"""``gateway._appliance.logs`` and ``[logging]``: text by default, JSON lines that parse one by
one, a rotating file that rotates, and settings refused with file:line:key."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from gateway._appliance.logs import configure_logging
from gateway._errors import ConfigError
from gateway._settings import load_settings
from gateway._settings.model import LoggingSection
from tests._support import write_config


@pytest.fixture(autouse=True)
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def test_text_by_default():
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    logging.getLogger("gateway.forward").warning("upstream DOWN")
    assert stream.getvalue().rstrip().endswith("WARNING gateway.forward: upstream DOWN")


def test_json_lines_parse_one_by_one_with_the_exception():
    stream = io.StringIO()
    configure_logging("INFO", LoggingSection(format="json"), stream=stream)
    log = logging.getLogger("gateway.test")
    log.info("first %s", "line")
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        log.exception("it failed; what to do: nothing")
    logging.getLogger("gateway.test").debug("not shown")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (orjson.loads(line) for line in lines)
    assert set(first) == {"time", "level", "logger", "message"}
    assert first["level"] == "INFO" and first["logger"] == "gateway.test" and first["message"] == "first line"
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exception"]


def test_the_rotating_file_rotates(tmp_path):
    config = write_config(tmp_path, "[logging]\nformat = 'json'\nfile = 'logs/gateway.log'\nmax_bytes = 2048\n"
                                    "backups = 2\n")
    (tmp_path / "logs").mkdir()
    settings = load_settings(config)
    configure_logging("INFO", settings.logging, settings=settings, stream=io.StringIO())
    for n in range(200):
        logging.getLogger("gateway.test").info("line %d %s", n, "x" * 40)
    files = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert files == ["gateway.log", "gateway.log.1", "gateway.log.2"]
    for path in (tmp_path / "logs").iterdir():
        assert path.stat().st_size <= 2048
        for line in path.read_text().splitlines():
            orjson.loads(line)


def test_a_log_file_that_cannot_be_opened_names_the_key(tmp_path):
    config = write_config(tmp_path, "[logging]\nfile = 'missing-dir/gateway.log'\n")
    settings = load_settings(config)
    with pytest.raises(ConfigError) as caught:
        configure_logging("INFO", settings.logging, settings=settings, stream=io.StringIO())
    assert caught.value.key == "logging.file" and caught.value.line is not None and "create" in caught.value.message


@pytest.mark.parametrize(("text", "key"), [("format = 'xml'", "logging.format"), ("backups = 0", "logging.backups"),
                                           ("max_bytes = 10", "logging.max_bytes"), ("colour = true", "logging.colour")])
def test_logging_settings_are_checked_with_file_line_and_key(tmp_path, text, key):
    config = write_config(tmp_path, f"[logging]\n{text}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    line = next(i for i, row in enumerate(config.read_text().splitlines(), 1) if row == text)
    assert caught.value.key == key and caught.value.line == line, caught.value
