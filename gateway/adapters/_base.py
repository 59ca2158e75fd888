"""The adapter protocol and the request/reply values it works on."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway._addresses import address_in, parse_networks
from gateway._errors import SignatureError
from gateway._settings import SourceCredentials


@dataclass(slots=True)
class RawRequest:
    """An inbound HTTP request as an adapter sees it.

    Attributes:
        headers: header names lower-cased.
        body: the raw body bytes, exactly as received (signatures cover these).
        query: query parameters.
        peer: the client's IP address, or ``""``.
    """

    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)
    peer: str = ""


@dataclass(slots=True)
class Reply:
    """What to answer: status code, body bytes and content type."""

    status: int
    body: bytes
    content_type: str = "application/json"


class Adapter(Protocol):
    """One source's wire format."""

    source: str

    def verify(self, request: RawRequest, credentials: SourceCredentials, now_s: float) -> None:
        """Check the signature (constant time) and replay window.

        Raises:
            SignatureError: the request must not be processed.
        """

    def decode(self, request: RawRequest) -> list[dict[str, Any]]:
        """The decoded events, embedded JSON strings decoded in place.

        Raises:
            MalformedEventError: with a reason the sender can act on.
        """

    def success(self, summary: Mapping[str, Any]) -> Reply:
        """The reply the platform expects when everything was stored."""

    def failure(self, status: int, reason: str) -> Reply:
        """The reply for a refused request (401/400/413/503)."""


def check_allow_list(request: RawRequest, credentials: SourceCredentials) -> None:
    """Refuse peers outside the source's optional IP allow-list (addresses or CIDR networks).

    ``request.peer`` is the client behind a trusted reverse proxy (``gateway._addresses``).

    Raises:
        SignatureError: the allow-list is set and the peer is not on it.
    """
    if credentials.allow_ips and not address_in(request.peer, parse_networks(credentials.allow_ips)):
        raise SignatureError("peer address not on the source's allow-list")


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
