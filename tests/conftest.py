"""Shared fixtures.

``core``: each accelerated-core implementation module in turn (the pure-Python
specification ``core_ext._core_py`` and the Cython ``core_ext._core``), so every core
test runs against both. The Cython one is skipped when it is not built, unless
``GATEWAY_REQUIRE_EXTENSION=1`` (CI), where a missing extension fails the run.
"""

from __future__ import annotations

import importlib
import os
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


@pytest.fixture(scope="session", params=["python", "cython"])
def core(request: pytest.FixtureRequest) -> ModuleType:
    if request.param == "python":
        return importlib.import_module("core_ext._core_py")
    return load_extension()
