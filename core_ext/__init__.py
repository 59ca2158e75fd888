"""The accelerated core: fingerprints, buyer-group keys, status lookup, field extraction.

Two implementations with one API (DESIGN section 4, STYLE habit 8):

* ``core_ext._core_py`` -- typed pure Python, the SPECIFICATION: its module docstring
  defines every canonical form;
* ``core_ext._core`` -- the Cython mirror, built by ``setup.py``, 10x+ faster
  (``python -m benchmarks core``).

This package re-exports the extension when it is importable. The environment variable
``GATEWAY_NO_EXTENSIONS`` (any non-empty value but ``"0"``), read here and by
``setup.py``, forces the pure-Python core. A missing extension that was not forced off is
reported once, loudly (``warnings`` and ``logging``). ``IMPLEMENTATION`` says which one
is live (``"cython"`` or ``"python"``); the daemon logs it at start.
"""

from __future__ import annotations

import importlib
import logging
import os
import warnings
from typing import TYPE_CHECKING

__all__ = [
    "CODE_MISSING",
    "CODE_UNKNOWN",
    "IDENTITY_KINDS",
    "IMPLEMENTATION",
    "SourceSpec",
    "StatusMap",
    "buyer_key",
    "canonical_text",
    "extract",
    "fingerprint",
    "key_token",
    "normalise_identity",
    "process_batch",
    "set_buyer_salt",
]

log = logging.getLogger(__name__)


def extensions_disabled() -> bool:
    """Whether ``GATEWAY_NO_EXTENSIONS`` forces the pure-Python core."""
    return os.environ.get("GATEWAY_NO_EXTENSIONS", "") not in ("", "0")


if TYPE_CHECKING:
    from core_ext._core_py import (
        CODE_MISSING,
        CODE_UNKNOWN,
        IDENTITY_KINDS,
        IMPLEMENTATION,
        SourceSpec,
        StatusMap,
        buyer_key,
        canonical_text,
        extract,
        fingerprint,
        key_token,
        normalise_identity,
        process_batch,
        set_buyer_salt,
    )
else:

    def _load():
        if extensions_disabled():
            from core_ext import _core_py

            return _core_py
        try:
            return importlib.import_module("core_ext._core")
        except ImportError as exc:
            message = (
                f"core_ext: the C extension core_ext._core is not importable ({exc}); "
                "using the pure-Python core, expect a ~10-15x slower core (python -m benchmarks core). Rebuild with "
                "`pip install -e . --no-build-isolation` (needs a C compiler), or set "
                "GATEWAY_NO_EXTENSIONS=1 to choose the pure-Python core on purpose."
            )
            warnings.warn(message, RuntimeWarning, stacklevel=3)
            log.warning(message)
            from core_ext import _core_py

            return _core_py

    _implementation = _load()
    CODE_MISSING = _implementation.CODE_MISSING
    CODE_UNKNOWN = _implementation.CODE_UNKNOWN
    IDENTITY_KINDS = _implementation.IDENTITY_KINDS
    IMPLEMENTATION = _implementation.IMPLEMENTATION
    SourceSpec = _implementation.SourceSpec
    StatusMap = _implementation.StatusMap
    buyer_key = _implementation.buyer_key
    canonical_text = _implementation.canonical_text
    extract = _implementation.extract
    fingerprint = _implementation.fingerprint
    key_token = _implementation.key_token
    normalise_identity = _implementation.normalise_identity
    process_batch = _implementation.process_batch
    set_buyer_salt = _implementation.set_buyer_salt
    del _implementation, _load
