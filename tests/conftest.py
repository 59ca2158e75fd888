"""Shared fixtures.

``core``: each accelerated-core implementation module in turn (the pure-Python
specification ``core_ext._core_py`` and the Cython ``core_ext._core``), so every core
test runs against both. The Cython one is skipped when it is not built, unless
``GATEWAY_REQUIRE_EXTENSION=1`` (CI), where a missing extension fails the run.

``unsalted`` (autouse): the buyer-key salt is process-wide (a gateway started by a test
sets its install's salt); every test ends with none, in both implementations, so no test
sees another's keys.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterator
from types import ModuleType

import pytest


def load_extension() -> ModuleType:
    """``core_ext._core``, or skip (fail under ``GATEWAY_REQUIRE_EXTENSION=1``) if not built."""
    try:
        return importlib.import_module("core_ext._core")
    except ImportError as exc:
        if os.environ.get("GATEWAY_REQUIRE_EXTENSION") == "1":
            pytest.fail(f"GATEWAY_REQUIRE_EXTENSION=1 but core_ext._core is not importable: {exc}")
        pytest.skip(f"core_ext._core is not built ({exc}); `pip install -e . --no-build-isolation` builds it")


@pytest.fixture(autouse=True)
def logging_as_it_was() -> Iterator[None]:
    """A command run in a test configures the root logger (``gateway._appliance.logs``): undo
    it, so the next test's output is its own."""
    from gateway._appliance.logs import QUIET_LOGGERS

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    for name, was in quiet.items():  # the third-party loggers it quietened
        logging.getLogger(name).setLevel(was)


@pytest.fixture(autouse=True)
def unsalted() -> Iterator[None]:
    yield
    importlib.import_module("core_ext._core_py").set_buyer_salt("")
    try:
        importlib.import_module("core_ext._core").set_buyer_salt("")
    except ImportError:
        pass


@pytest.fixture(scope="session", params=["python", "cython"])
def core(request: pytest.FixtureRequest) -> ModuleType:
    if request.param == "python":
        return importlib.import_module("core_ext._core_py")
    return load_extension()
