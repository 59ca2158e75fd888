"""The adapters' shared checks: keyed HMAC, constant-time digest comparison, IP allow-list."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway._errors import SignatureError
from gateway._ingest.adapters.base import RawRequest, check_allow_list, digest_equal, hmac_hex
from gateway._settings import Secret, SourceCredentials


@given(secret=st.binary(min_size=1, max_size=200), parts=st.lists(st.binary(max_size=300), max_size=4),
       digest=st.sampled_from(["sha256", "md5"]))
def test_hmac_hex_is_the_hmac_of_the_concatenated_parts(secret, parts, digest):
    expected = hmac.new(secret, b"".join(parts), getattr(hashlib, digest)).hexdigest()
    assert hmac_hex(secret, digest, *parts) == expected
    assert hmac_hex(secret, digest, *parts) == expected  # the cached keyed state is copied, never fed


def test_hmac_hex_keeps_secrets_and_digests_apart():
    body = b'{"events": []}'
    assert hmac_hex(b"tenant-a", "sha256", body) != hmac_hex(b"tenant-b", "sha256", body)
    assert hmac_hex(b"tenant-a", "sha256", body) != hmac_hex(b"tenant-a", "md5", body)
    # a key longer than the block is hashed first (RFC 2104), as hmac.new does
    long_key = b"k" * 100
    assert hmac_hex(long_key, "sha256", body) == hmac.new(long_key, body, hashlib.sha256).hexdigest()


def test_digest_equal_ignores_case_and_surrounding_space_only():
    digest = hashlib.sha256(b"x").hexdigest()
    assert digest_equal(digest, f"  {digest.upper()}\n")
    assert not digest_equal(digest, digest[:-1] + ("0" if digest[-1] != "0" else "1"))
    assert not digest_equal(digest, digest[:-1])
    assert not digest_equal(digest, "")


@pytest.mark.parametrize(("allow", "peer", "allowed"), [
    ((), "203.0.113.9", True),                       # no list: anyone
    (("127.0.0.1",), "127.0.0.1", True),
    (("127.0.0.1",), "127.0.0.2", False),
    (("10.1.0.0/16",), "10.1.200.7", True),
    (("10.1.0.0/16",), "10.2.0.1", False),
    (("::1", "192.168.0.0/24"), "::1", True),
    (("192.168.0.0/24",), "", False),                # unknown peer: refused when a list is set
])
def test_allow_list_takes_addresses_and_networks(allow, peer, allowed):
    credentials = SourceCredentials(secret=Secret("s"), allow_ips=allow)
    request = RawRequest(headers={}, body=b"", peer=peer)
    if allowed:
        check_allow_list(request, credentials)
    else:
        with pytest.raises(SignatureError, match="allow-list"):
            check_allow_list(request, credentials)
