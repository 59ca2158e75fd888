"""Allow-lists with CIDR ranges, and the client behind a trusted reverse proxy."""

from __future__ import annotations

import ipaddress

import httpx
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from gateway._addresses import address_in, client_address, parse_networks
from gateway._daemon import serve_gateway
from gateway._settings import load_settings
from tests._support import erp_event, signed, write_config

PROXIES = parse_networks(("127.0.0.1", "10.0.0.0/8"))


def test_entries_are_addresses_or_networks():
    networks = parse_networks(("203.0.113.7", "198.51.100.0/24", "2001:db8::/32", " 192.0.2.1 "))
    assert address_in("203.0.113.7", networks) and not address_in("203.0.113.8", networks)
    assert address_in("198.51.100.200", networks) and address_in("2001:db8::1", networks)
    assert address_in("192.0.2.1", networks)
    assert address_in("::ffff:198.51.100.9", networks)  # an IPv4 client on a dual-stack listener
    assert not address_in("not-an-ip", networks) and not address_in("", networks)
    with pytest.raises(ValueError, match="'localhost' is not an IP address"):
        parse_networks(("localhost",))


@pytest.mark.parametrize(("peer", "header", "client"), [
    ("127.0.0.1", "203.0.113.7", "203.0.113.7"),                 # one proxy
    ("127.0.0.1", "203.0.113.7, 10.1.2.3", "203.0.113.7"),       # two proxies, both ours
    ("127.0.0.1", "198.51.100.1, 203.0.113.7", "203.0.113.7"),   # the client wrote a fake hop first
    ("127.0.0.1", None, "127.0.0.1"),                            # a proxy that added nothing
    ("127.0.0.1", "10.0.0.1, 10.0.0.2", "10.0.0.1"),             # only proxies: the first is the origin
    ("192.0.2.50", "203.0.113.7", "192.0.2.50"),                 # not a proxy: its header is ignored
    ("127.0.0.1", "203.0.113.7:51000, 10.0.0.1:443", "203.0.113.7"),  # hops written with ports
    ("127.0.0.1", "[2001:db8::7]:443", "2001:db8::7"),
])
def test_the_client_is_the_first_untrusted_hop_from_the_right(peer, header, client):
    assert client_address(peer, header, PROXIES) == client


def test_without_trusted_proxies_the_header_is_ignored():
    assert client_address("127.0.0.1", "203.0.113.7", ()) == "127.0.0.1"


@given(st.integers(0, 2**32 - 1), st.integers(8, 32))
def test_an_ipv4_address_is_in_exactly_the_networks_that_contain_it(value, prefix):
    address = ipaddress.IPv4Address(value)
    network = ipaddress.IPv4Network((value, prefix), strict=False)
    assert address_in(str(address), parse_networks((str(network),)))
    outside = ipaddress.IPv4Address((int(network.network_address) - 1) % 2**32)
    assert address_in(str(outside), (network,)) == (outside in network)


@given(st.lists(st.sampled_from(["203.0.113.7", "10.0.0.1", "127.0.0.1", "x", "", " "]), max_size=6))
def test_a_client_behind_proxies_never_comes_from_the_trusted_set_unless_all_are(hops):
    header = ", ".join(hops)
    found = client_address("127.0.0.1", header, PROXIES)
    untrusted = [h.strip() for h in hops if h.strip() and not address_in(h, PROXIES)]
    if untrusted:
        assert found == untrusted[-1]


@pytest.mark.parametrize(("trusted", "forwarded", "status"), [
    ("['127.0.0.1']", "203.0.113.7", 200),                  # the proxy names an allowed client
    ("['127.0.0.1']", "198.51.100.9", 401),                 # the proxy names another client
    ("[]", "203.0.113.7", 401),                             # no trusted proxy: the peer is 127.0.0.1
    ("['127.0.0.1']", "203.0.113.7, 198.51.100.9", 401),    # the rightmost untrusted hop decides
])
async def test_allow_lists_see_the_client_behind_a_trusted_proxy(tmp_path, trusted, forwarded, status):
    extra = (f"trusted_proxies = {trusted}\n"
             "[tenants.proxied.erp]\nsecret = 'proxied-secret'\nallow_ips = ['203.0.113.0/24']\n")
    settings = load_settings(write_config(tmp_path, extra))
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        services = await nursery.start(serve_gateway, settings, shutdown)
        async with httpx.AsyncClient(base_url=services.bound[0], timeout=10) as client:
            body, headers = signed([erp_event(1)], "proxied", secret="proxied-secret")
            response = await client.post("/webhooks/erp/proxied", content=body,
                                         headers={**headers, "X-Forwarded-For": forwarded})
            assert response.status_code == status, response.text
            assert len(list(services.store.iter_events("proxied"))) == (1 if status == 200 else 0)
        shutdown.set()
