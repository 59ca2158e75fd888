"""The adapter protocol and the request/reply values it works on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway._addresses import address_in, parse_networks
from gateway._errors import SignatureError
from gateway._settings import SourceCredentials
from gateway._signing import digest_equal, hmac_hex


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


__all__ = ["Adapter", "RawRequest", "Reply", "check_allow_list", "digest_equal", "hmac_hex"]
