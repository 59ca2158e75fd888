"""Signing rules shared below the stages: keyed HMAC, constant-time digest comparison, and the
gateway's own request signature.

The gateway's signature (``X-Gateway-Signature: sha256=<hex HMAC-SHA256(secret, timestamp +
"." + body)>`` beside ``X-Gateway-Timestamp``) is one rule used three ways: the generic ERP
feed verifies it on inbound webhooks (``gateway._ingest.adapters.erp``), the forwarder signs
every upstream batch with it (``gateway._forward.sink``), and the demo feeder signs what it
posts (``gateway._demo``). It lives here, below all three, so no stage reaches sideways into
another for it.
"""

from __future__ import annotations

import functools
import hmac

#: Header names of the gateway's own signature.
TIMESTAMP_HEADER = "X-Gateway-Timestamp"
SIGNATURE_HEADER = "X-Gateway-Signature"


@functools.lru_cache(maxsize=1024)
def _keyed(secret: bytes, digest: str) -> hmac.HMAC:
    return hmac.new(secret, digestmod=digest)


def hmac_hex(secret: bytes, digest: str, *parts: bytes) -> str:
    """Hex HMAC (``digest``: ``"sha256"``, ``"md5"``) of the concatenated ``parts``.

    The keyed inner and outer states are computed once per secret and copied per call
    (one HMAC per webhook; at most 1,024 keyed states are kept, so a secret replaced by a
    config reload stays in this process's memory until it ages out or the process restarts).
    """
    mac = _keyed(secret, digest).copy()
    for part in parts:
        mac.update(part)
    return mac.hexdigest()


def digest_equal(expected: str, given: str) -> bool:
    """Constant-time comparison of two hex digests, case-insensitive."""
    return hmac.compare_digest(expected.lower().encode(), given.strip().lower().encode())


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Gateway-Signature`` header value for ``body`` sent at ``timestamp`` (unix seconds)."""
    return "sha256=" + hmac_hex(secret, "sha256", timestamp.encode(), b".", body)
