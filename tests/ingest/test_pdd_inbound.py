"""Pinduoduo frames -> events, without a socket: normalised, or kept in quarantine when malformed."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway._errors import MalformedEventError
from gateway._ingest.adapters.pinduoduo import decode_frame
from gateway._ingest.pdd_inbound import (
    MALFORMED_RULE,
    Inbound,
    NoRulesError,
    frames_to_events,
    loose_frame,
    route,
    routed_events,
)
from gateway._model import CODE_MISSING
from gateway._rules import load_rules
from tests._support import RULES

PDD = load_rules(RULES).get("pinduoduo")


def frame_text(frame_id: int | None, tid: str | None = "251125-1", topic: str = "pdd_trade_TradeConfirmed") -> str:
    content = {"order_status": 1, **({"tid": tid} if tid else {})}
    frame = {"commandType": "Common", "sendTime": 1764036000000,
             "message": {"type": topic, "mallID": 9, "content": orjson.dumps(content).decode()}}
    if frame_id is not None:
        frame["id"] = frame_id
    return orjson.dumps(frame).decode()


def inbound(text: str) -> Inbound:
    """What the client's read loop queues for a received text frame."""
    try:
        return Inbound(text, frame=decode_frame(text))
    except MalformedEventError as exc:
        return Inbound(text, frame=loose_frame(text), error=str(exc))


def test_good_frames_become_events_in_order():
    batch = [inbound(frame_text(1, tid="A-1")), inbound(frame_text(2, tid="A-2"))]
    events, malformed = frames_to_events(PDD, "t1", batch, 1_000)
    assert [e.source_event_id for e in events] == ["1", "2"] and malformed == []
    assert all(e.tenant == "t1" and e.source == "pinduoduo" and e.received_at_ms == 1_000 for e in events)


def test_a_malformed_frame_is_kept_beside_the_good_ones_and_reported_once():
    batch = [inbound(frame_text(1)), inbound("{not json"), inbound(frame_text(3, tid=None)), inbound(frame_text(4))]
    events, malformed = frames_to_events(PDD, "t1", batch, 1_000)
    assert len(events) == 4 and len(malformed) == 2
    kept = [e for e in events if e.rule == MALFORMED_RULE]
    assert [e.source_event_id for e in kept][1] == "3"  # an id it had is kept, for the ack
    assert kept[0].source_event_id.startswith("noid-") and kept[0].raw["frame"] == "{not json"
    assert all(e.status_code == CODE_MISSING and e.order_id == "" for e in kept)
    again, malformed_again = frames_to_events(PDD, "t1", batch, 2_000)  # the batch retried after a 503
    assert malformed_again == [] and [e.fingerprint for e in again] == [e.fingerprint for e in events]


def test_without_pinduoduo_rules_nothing_is_stored():
    with pytest.raises(NoRulesError):
        frames_to_events(None, "t1", [inbound(frame_text(1))], 1_000)


@given(st.lists(st.one_of(st.text(max_size=80), st.builds(frame_text, st.integers(0, 10**6))), min_size=1,
                max_size=6))
def test_any_frames_give_one_event_each_and_never_raise(texts):
    batch = [inbound(text) for text in texts]
    events, malformed = frames_to_events(PDD, "t1", batch, 1_000)
    assert len(events) == len(batch)
    assert len(malformed) == sum(1 for e in events if e.rule == MALFORMED_RULE)


def shop_frame(frame_id: int, mall: int | None) -> Inbound:
    frame = orjson.loads(frame_text(frame_id))
    if mall is None:
        del frame["message"]["mallID"]
    else:
        frame["message"]["mallID"] = mall
    return inbound(orjson.dumps(frame).decode())


def test_frames_go_to_the_tenant_listing_their_shop_and_nowhere_else():
    routes = {"9001": "a", "9002": "b"}
    assert route(shop_frame(1, 9001), routes, ("a", "b")) == "a"
    assert route(shop_frame(2, 9002), routes, ("a", "b")) == "b"
    assert route(shop_frame(3, 9003), routes, ("a", "b")) is None  # nobody's: not stored, not acked
    assert route(shop_frame(4, None), routes, ("a", "b")) is None
    assert route(inbound("{not json"), routes, ("a", "b")) == "a"  # malformed, no shop: the first tenant keeps it
    assert route(shop_frame(5, 9003), {}, ("only",)) == "only"  # an unshared channel is all its tenant's


def test_routed_events_keep_arrival_order_across_tenants():
    routed = [(shop_frame(1, 9001), "a"), (shop_frame(2, 9002), "b"), (inbound("{x"), "a"), (shop_frame(4, 9001), "a")]
    events, malformed = routed_events(PDD, routed, 1_000)
    assert [(e.tenant, e.source_event_id[:4]) for e in events] == [("a", "1"), ("b", "2"), ("a", "noid"), ("a", "4")]
    assert [(item.text, tenant) for item, tenant in malformed] == [("{x", "a")]
