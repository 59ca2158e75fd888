"""The head rules the server adds to llhttp (``gateway._server.h1_limits``), pure: no sockets."""

from __future__ import annotations

import httptools
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway._server.h1_limits import (
    Refused,
    absolute_form_authority,
    check_host_field,
    check_transfer_encoding,
    check_version_and_host,
)

_host_chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%!$&'()*+,;=:[]"


@given(st.text(alphabet=_host_chars, max_size=40))
def test_a_host_of_uri_host_characters_passes(value):
    check_host_field(value.encode())


@given(st.text(alphabet=_host_chars, max_size=20), st.sampled_from(" \t/@?#\\\"<>{}|^`\x7f\x80\xff"),
       st.text(alphabet=_host_chars, max_size=20))
def test_a_host_with_anything_else_is_400(before, bad, after):
    with pytest.raises(Refused) as refused:
        check_host_field((before + bad + after).encode("latin-1"))
    assert refused.value.status == 400


@pytest.mark.parametrize(("values", "status"), [
    ([b"chunked"], None), ([b"Chunked "], None), ([b"\tCHUNKED"], None),
    ([b"gzip, chunked"], 501), ([b"chunked,chunked"], 501), ([b"identity, chunked"], 501),
    ([b"chunked", b"chunked"], 400), ([b"identity", b"chunked"], 400),
])
def test_transfer_encoding_is_chunked_alone_on_one_line(values, status):
    if status is None:
        check_transfer_encoding(values)
    else:
        with pytest.raises(Refused) as refused:
            check_transfer_encoding(values)
        assert refused.value.status == status


@pytest.mark.parametrize(("version", "hosts", "transfer_encoding", "status"), [
    ("1.1", 1, True, None), ("1.1", 0, False, 400), ("1.1", 2, False, 400), ("1.0", 0, False, None),
    ("1.0", 2, False, 400), ("1.0", 1, True, 400), ("0.9", 0, False, 505), ("2.0", 1, False, 505),
])
def test_versions_and_host_counts(version, hosts, transfer_encoding, status):
    if status is None:
        check_version_and_host(version, hosts, transfer_encoding)
    else:
        with pytest.raises(Refused) as refused:
            check_version_and_host(version, hosts, transfer_encoding)
        assert refused.value.status == status


@pytest.mark.parametrize(("target", "authority"), [
    (b"http://h/p", b"h"), (b"http://h:81", b"h:81"), (b"https://[::1]:8443/x", b"[::1]:8443"),
])
def test_an_absolute_form_target_names_the_host(target, authority):
    assert absolute_form_authority(httptools.parse_url(target)) == authority
    with pytest.raises(Refused):
        absolute_form_authority(httptools.parse_url(target.replace(b"http", b"ftp", 1)))
