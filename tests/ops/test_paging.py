"""Cursors and pages (``gateway._ops.paging``): a cursor round-trips, anything else is refused
as a ``CursorError``, and walking pages yields every item once even when the list changes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway._ops.paging import CursorError, decode_cursor, encode_cursor, page_of

ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@given(ints, st.text(max_size=200))
def test_a_board_cursor_round_trips(since, anomaly_id):
    assert decode_cursor(encode_cursor("anomalies", (since, anomaly_id)), "anomalies", (int, str)) == (since, anomaly_id)


@given(st.text(max_size=300))
def test_any_text_is_a_cursor_or_a_cursor_error(text):
    try:
        key = decode_cursor(text, "anomalies", (int, str))
    except CursorError:
        return
    assert isinstance(key[0], int) and isinstance(key[1], str)


def test_a_cursor_of_another_list_or_shape_is_refused():
    cursor = encode_cursor("oci_freshness", ("douyin|1",))
    with pytest.raises(CursorError):
        decode_cursor(cursor, "oci_consistency", (str,))
    with pytest.raises(CursorError):
        decode_cursor(encode_cursor("anomalies", ("x", 1)), "anomalies", (int, str))
    with pytest.raises(CursorError):
        decode_cursor(encode_cursor("anomalies", (True, "x")), "anomalies", (int, str))


@given(st.lists(st.integers(0, 50), unique=True), st.integers(1, 7), st.lists(st.integers(0, 50)))
def test_walking_pages_yields_each_item_that_stayed_exactly_once(items, limit, added):
    items = sorted(items)
    seen: list[int] = []
    after = None
    current = list(items)
    for round_ in range(200):
        page = page_of(current, lambda n: (n,), "numbers", after, limit)
        seen.extend(page.items)
        if page.next_cursor is None:
            break
        after = decode_cursor(page.next_cursor, "numbers", (int,))
        if round_ < len(added):  # the list changes between pages
            current = sorted(set(current) | {added[round_]})
    assert len(seen) == len(set(seen))
    assert set(items) <= set(seen)
    assert seen == sorted(seen)
