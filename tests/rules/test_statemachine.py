"""The state machine: explicit table, forward jumps, holds, late events never regress."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway._model import CODE_NO_CHANGE, CODE_RESUME, Status
from gateway._rules.statemachine import HOLDING, TRANSITIONS, Decision, can_transition, decide

S = Status
FLOW = [S.CREATED, S.PAID, S.PENDING_REVIEW, S.READY_TO_PACK, S.PACKING, S.PACKED,
        S.SHIPPED, S.FULFILLMENT_STARTED, S.IN_TRANSIT, S.DELIVERED]


def test_table_covers_every_state():
    assert set(TRANSITIONS) == set(Status)
    for targets in TRANSITIONS.values():
        assert targets <= set(Status)


def test_no_state_transitions_to_itself():
    for state, targets in TRANSITIONS.items():
        assert state not in targets


@pytest.mark.parametrize("i", range(len(FLOW)))
def test_flow_moves_forward_and_never_back(i):
    for j, later in enumerate(FLOW):
        if j > i:
            assert can_transition(FLOW[i], later), (FLOW[i], later)
        elif j < i and not (FLOW[i] is S.PACKING and later is S.READY_TO_PACK):
            assert not can_transition(FLOW[i], later), (FLOW[i], later)


def test_first_event_of_unknown_order_is_accepted_in_any_state():
    for state in Status:
        verdict = decide(None, None, state.code)
        assert verdict.decision is Decision.NEW
        assert verdict.status is state


def test_late_paid_after_pickup_is_refused_and_keeps_state():
    verdict = decide(S.FULFILLMENT_STARTED, None, S.PAID.code)
    assert verdict.decision is Decision.LATE
    assert verdict.status is S.FULFILLMENT_STARTED
    assert verdict.refused is S.PAID


def test_carrier_pickup_may_overtake_seller_shipped():
    assert decide(S.PACKED, None, S.FULFILLMENT_STARTED.code).decision is Decision.APPLIED
    late = decide(S.FULFILLMENT_STARTED, None, S.SHIPPED.code)
    assert late.decision is Decision.LATE and late.status is S.FULFILLMENT_STARTED


def test_refund_remembers_and_resume_returns():
    opened = decide(S.READY_TO_PACK, None, S.REFUND_INITIATED.code)
    assert opened.decision is Decision.APPLIED
    assert opened.status is S.REFUND_INITIATED and opened.resume_status is S.READY_TO_PACK
    resumed = decide(opened.status, opened.resume_status, CODE_RESUME)
    assert resumed.decision is Decision.APPLIED
    assert resumed.status is S.READY_TO_PACK and resumed.resume_status is None


def test_hold_during_refund_keeps_the_original_resume_point():
    verdict = decide(S.REFUND_INITIATED, S.PACKED, S.ON_HOLD.code)
    assert verdict.status is S.ON_HOLD and verdict.resume_status is S.PACKED


def test_resume_without_hold_is_late():
    verdict = decide(S.SHIPPED, None, CODE_RESUME)
    assert verdict.decision is Decision.LATE and verdict.status is S.SHIPPED


def test_no_change_target_keeps_status():
    verdict = decide(S.PAID, None, CODE_NO_CHANGE)
    assert verdict.decision is Decision.UNCHANGED and verdict.status is S.PAID


def test_terminal_states_refuse_everything():
    for terminal in (S.REFUNDED, S.CANCELLED):
        for target in Status:
            if target is not terminal:
                assert decide(terminal, None, target.code).decision is Decision.LATE


def test_shipped_order_cannot_be_cancelled_only_refunded():
    assert decide(S.SHIPPED, None, S.CANCELLED.code).decision is Decision.LATE
    assert decide(S.SHIPPED, None, S.REFUND_INITIATED.code).decision is Decision.APPLIED


@given(st.lists(st.sampled_from([*(s.code for s in Status), CODE_RESUME, CODE_NO_CHANGE]), max_size=40))
def test_any_event_sequence_only_follows_table_edges(codes):
    status, resume = None, None
    for code in codes:
        verdict = decide(status, resume, code)
        if verdict.decision is Decision.APPLIED and code != CODE_RESUME:
            assert status is not None and can_transition(status, verdict.status)
        if verdict.decision in (Decision.LATE, Decision.UNCHANGED):
            assert verdict.status is status and verdict.resume_status is resume
        if verdict.resume_status is not None:
            assert verdict.status in HOLDING
        status, resume = verdict.status, verdict.resume_status
