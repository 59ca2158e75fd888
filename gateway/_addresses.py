"""Client addresses: IP allow-lists with CIDR ranges, and the client behind a trusted reverse proxy.

Platforms publish the addresses their webhooks come from as single IPs and as ranges, so an
allow-list entry (``[tenants.T.SOURCE] allow_ips``) is an IPv4/IPv6 address or a CIDR network
(``"203.0.113.0/24"``). An IPv4 client seen as an IPv4-mapped IPv6 address
(``::ffff:203.0.113.7``, a dual-stack listener) matches IPv4 entries.

Behind a reverse proxy (the gateway speaks plain HTTP; TLS ends at nginx or Caddy), every peer
is the proxy. ``[http] trusted_proxies`` lists the proxies (addresses or networks); when the
direct peer is one of them, the client is read from ``X-Forwarded-For``, right to left,
skipping trusted proxies: the first address not trusted is the client (what each proxy
appends can be trusted; what the client wrote itself, further left, cannot). A peer not in
``trusted_proxies`` is the client whatever headers it sends, so a client cannot spoof its
address by writing the header itself. With no ``trusted_proxies`` (the default) the header is
ignored. A hop may carry a port (``203.0.113.7:443``, ``[2001:db8::1]:443``); it is dropped. The
RFC 7239 ``Forwarded`` header is not read (nginx and Caddy send ``X-Forwarded-For``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=256)
def parse_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """Each entry as a network (a bare address is a /32 or /128).

    Raises:
        ValueError: an entry is neither an address nor a network; the message names it.
    """
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or a CIDR network") from None
    return tuple(networks)


def _host(address: str) -> str:
    """``address`` without a port: ``"203.0.113.7:443"`` and ``"[2001:db8::1]:443"`` as some
    proxies write them, or a bare address as is."""
    address = address.strip()
    if address.startswith("["):
        return address[1:address.find("]")] if "]" in address else address
    if address.count(":") == 1:
        return address.partition(":")[0]
    return address


def address_in(address: str, networks: Iterable[Network]) -> bool:
    """Whether ``address`` (text, with or without a port) lies in one of ``networks``; an
    unreadable address never does."""
    try:
        ip = ipaddress.ip_address(_host(address))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def client_address(peer: str, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str:
    """The client's address: ``peer``, or from ``X-Forwarded-For`` when ``peer`` is a trusted proxy.

    Args:
        peer: the TCP peer's address.
        forwarded_for: the ``X-Forwarded-For`` header (all its values joined by commas), or ``None``.
        trusted: ``parse_networks([http] trusted_proxies)``.
    """
    if not trusted or not forwarded_for or not address_in(peer, trusted):
        return peer
    hops = [_host(hop) for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not address_in(hop, trusted):
            return hop
    return hops[0] if hops else peer  # every hop is a trusted proxy: the first one is the origin


__all__ = ["Network", "address_in", "client_address", "parse_networks"]
