"""Quarantine releases in a replay: each side re-reads the event it holds, under its own rules.

When operations staff release quarantined events after a rule fix (``gateway quarantine
release``, ``POST .../quarantine/release``: ``gateway._pipeline.quarantine.plan_release``),
or the pipeline releases an event that waited for its waybill, the event log gets a record
with ``released_from_quarantine``; the export turns it into a *release line* that names the
recorded line of the quarantined event (``release_of``, ``gateway._sandbox.recorded``).

A replay applies the release where it sits in the log, on each side, as the live gateway did:

* a side that holds that line's event in quarantine re-reads the line's recorded input under
  **its own** rules (the live rules on the live side, the candidate's on the candidate side; a
  source without rules on either side is rebuilt from the release line's recorded fields, as
  any such event is) and steps it with release semantics (``Event.release_of`` set to the
  side's quarantine seq, as ``plan_release`` sets the store's): the duplicate check is skipped,
  the quarantine record goes if the event maps now, and the state machine, the outbox and the
  pack groups see it like any event;
* if it still does not map there (unknown status, unknown waybill, does not normalise), it
  stays held on that side, as ``plan_release`` keeps it;
* a side that does not hold it (the candidate mapped the status from the start, the pipeline
  released it already when its waybill came, the candidate refuses the source) makes a no-op
  of it: the view ``("", "not_in_quarantine", "", "")``, with the rule that reads the input on
  that side (what a difference is charged to: the candidate's status rule that mapped it).

Each side's rules are the same for the whole replay, so a release maps on a side only where
something else than the rules changed since the event was held (its waybill indexed meanwhile,
or a source rebuilt from what was recorded): on the live rules that already hold the fix, the
event maps when it first comes and the release is a no-op on both sides; that is how a replay
of the live log on the live rules ends as the live store did.

The views are compared between the sides and a difference is charged like any event's
(``gateway._sandbox.engine``); the reason of a released event is ``released from
quarantine``, without the side's own quarantine seq (the sides number differently).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gateway._model import Event
from gateway._rules import SourceRules
from gateway._sandbox.runs import normalise_run
from gateway._sandbox.side import Side, View

#: The outcome of a release line on a side that does not hold the event.
NOT_HELD = "not_in_quarantine"
#: The reason of a release line whose event a side released.
RELEASED = "released from quarantine"


def release_views(side: Side, rules: SourceRules | None, refused: str, lines: list[dict[str, Any]],
                  now_ms: int) -> tuple[list[tuple[View, str, Any]], list[Event]]:
    """Apply release lines (one tenant, one source, one received time) on ``side``.

    Args:
        side: the side; its state changes for every event it releases.
        rules: the side's rules for the lines' source (``None``: rebuilt as recorded).
        refused: non-empty when the side refuses the source altogether (the candidate deletes
            its file): the reason, and nothing is re-read.
        lines: release lines (``release_of`` set), in log order.
        now_ms: the release's recorded received time (the clock of the step).

    Returns:
        ``(view, rule, data)`` per line, and the events stepped (for the divergence check).
    """
    tenant = lines[0]["tenant"]
    views: list[tuple[View, str, Any]] = []
    stepped: list[tuple[int, Event]] = []
    for index, line in enumerate(lines):
        seq, order_id = side.holding(tenant, int(line["release_of"]))
        made = refused or normalise_run(rules, tenant, [line], now_ms, True)[0]
        if not seq:  # the rule that reads it on this side is what made the release a no-op here
            views.append((("", NOT_HELD, "", ""), made.rule if isinstance(made, Event) else "", None))
            continue
        if isinstance(made, str):  # does not normalise under this side's rules: stays held
            views.append(((order_id, "quarantined", "", made), "", None))
            continue
        event = dataclasses.replace(made, release_of=seq)
        stepped.append((index, event))
        views.append((("", "", "", ""), event.rule, event.data))  # replaced once stepped
    if stepped:
        events = [event for _, event in stepped]
        for (index, event), result in zip(stepped, side.step(events, now_ms), strict=True):
            reason = result.reason if result.outcome == "quarantined" else RELEASED
            views[index] = ((result.order_id, result.outcome, result.status or "", reason), event.rule, event.data)
        return views, events
    return views, []


__all__ = ["NOT_HELD", "RELEASED", "release_views"]
