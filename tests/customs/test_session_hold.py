"""The pack session's declaration hold (pure): held, never released by a supervisor."""

from __future__ import annotations

from gateway._packline.session import open_session
from gateway._packline.values import Bill, BillComponent, Verdict

HOLD = {"verdict": "DECLARATION_INCOMPLETE", "message_zh": "申报要素不全", "message_en": "declaration incomplete"}


def _bill(shortfalls=None) -> Bill:
    component = BillComponent.from_dict({"component_id": "c1", "order_id": "o1", "sku": "A1", "kind": "item",
                                         "quantity": 1, "packed": 0, "parcel": 1, "status": "expected",
                                         "origin": "line"})
    return Bill("o1", ["o1"], [component], dict(shortfalls or {}))


def test_an_incomplete_declaration_holds_the_session_and_no_supervisor_releases_it():
    session, result = open_session("s1", "A1", "OP-1", "t1", _bill(), 1, order_states={"o1": "READY_TO_PACK"},
                                   hold=HOLD)
    assert result.verdict is Verdict.DECLARATION_INCOMPLETE and session.state == "held"
    assert result.message_en == "declaration incomplete"
    assert session.release(2, by="SUP-1", reason="ship it").verdict is Verdict.DECLARATION_INCOMPLETE
    assert session.state == "held"


def test_the_opening_own_stops_come_first_and_a_gift_hold_is_still_released():
    session, result = open_session("s1", "A1", "OP-1", "t1", _bill(), 1, order_states={"o1": "REFUNDED"},
                                   hold=HOLD)
    assert result.verdict is Verdict.STOP_REFUND
    session, result = open_session("s2", "A1", "OP-1", "t1", _bill({"GIFT": 1}), 1,
                                   order_states={"o1": "READY_TO_PACK"})
    assert result.verdict is Verdict.STOP_NO_STOCK
    assert session.release(2, by="SUP-1", reason="no gift").verdict is Verdict.OPENED
