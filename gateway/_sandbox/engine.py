"""The replay engine: recorded inputs through two configurations, event by event.

``Replay.feed`` takes recorded-input lines (``gateway._sandbox.recorded``) in log order and
cuts them into *runs*: consecutive lines of one tenant, source and received time (what one
request delivered). Each run is normalised by each side's mapping rules and planned by the
real processing step (``gateway._pipeline.plan_step``) against that side's in-memory state
(``gateway._sandbox.side``), with the recorded received time as the clock: the same input
gives the same result, whenever and wherever it is replayed.

Per event the two sides' results (order, outcome, status, reason, data) are compared as
they happen; a difference is charged to the candidate's rule that produced the event (the
live one when the candidate refused it), which is how the report names "the rule that
caused it". The final states are compared by ``gateway._sandbox.diff`` once the input ends.

Events whose source has no mapping rules on a side (a pack station's scans) are rebuilt
exactly as recorded, so both sides see them alike (``gateway._sandbox.runs``); but when the
live side has rules for the source and the candidate deletes its file, the candidate refuses
them, as the live gateway refuses a source it has no rules for, and the difference is charged
to ``<file>:deleted``.

A release line (a quarantined event released, ``gateway._sandbox.recorded``) is a run of its
own, always planned on each side: each side re-reads the event it holds, under its own rules,
and steps it with release semantics (``gateway._sandbox.released``); compared and charged as
any event.

Speed, none of it changing a result: a run alike on both sides is planned once (``Replay``);
the step skips the audit and event-log records nobody reads here (``plan_step(records=False)``);
a status-only candidate reuses the live events (``runs.remapped``); the cyclic collector is
paused while the state only grows (``collector_paused``). ``Replay.seconds`` says where the
time went (``python -m benchmarks replay`` prints it).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from gateway._model import Event
from gateway._pipeline import EventResult
from gateway._rules import SourceRules
from gateway._rules.privacy import redacted_paths
from gateway._sandbox.configs import Configuration
from gateway._sandbox.released import release_views
from gateway._sandbox.runs import alike, normalise_run, remapped, status_only
from gateway._sandbox.side import NOTHING_SENT, Side, View

#: Event-level differences kept as examples (all are counted).
EVENT_EXAMPLES = 50

#: The phases of ``Replay.seconds``: reading the lines (whatever iterator feeds them),
#: both sides' mapping rules, the check whether a run can be planned once, runs planned
#: once and applied to both sides, runs planned on each side (with the per-event
#: comparison and the note of what now differs).
PHASES = ("read", "normalise", "check", "shared", "apart")


@dataclass
class EventChange:
    """One recorded event the two sides treated differently."""

    seq: int
    tenant: str
    source: str
    rule: str
    before: View
    after: View

    def to_dict(self) -> dict[str, Any]:
        names = ("order_id", "outcome", "status", "reason")
        return {"seq": self.seq, "tenant": self.tenant, "source": self.source, "rule": self.rule,
                "before": dict(zip(names, self.before, strict=True)),
                "after": dict(zip(names, self.after, strict=True))}


@dataclass
class EventTally:
    """Per-event comparison totals and the causes charged to orders."""

    events: int = 0
    changed: int = 0
    #: Release lines replayed (among ``events``).
    releases: int = 0
    examples: list[EventChange] = field(default_factory=list)
    #: (tenant, order id) -> the first rule charged with changing it.
    causes: dict[tuple[str, str], str] = field(default_factory=dict)


class Replay:
    """Feeds recorded inputs through a live and a candidate ``Side``.

    A run whose events normalise alike on both sides and touch nothing that differs
    between them is planned once, on the live side, and its write applied to both (the
    candidate would plan exactly the same): only what a candidate changes costs twice.

    Args:
        live / candidate: the two configurations.
        progress: called with the number of lines replayed so far, after each run.
        share: plan alike runs once (``False``: every run on both sides; the tests compare).
    """

    def __init__(self, live: Configuration, candidate: Configuration,
                 progress: Callable[[int], None] | None = None, *, share: bool = True) -> None:
        self.share = share
        self.live = Side(live)
        self.candidate = Side(candidate)
        self.tally = EventTally()
        self._progress = progress
        #: Keys whose state differs between the sides: events touching them are planned apart.
        self.diverged_orders: set[tuple[str, str]] = set()
        self.diverged_buyers: set[tuple[str, int]] = set()
        self.diverged_waybills: set[tuple[str, str]] = set()
        #: source -> raw status -> the candidate's (status code, rule) (``runs.remapped``).
        self._recoding: dict[str, dict[str, tuple[int, str]]] = {}
        #: Seconds per phase (``PHASES``), for an account of where a replay's time goes.
        self.seconds: dict[str, float] = dict.fromkeys(PHASES, 0.0)

    def feed(self, lines: Iterable[dict[str, Any]]) -> None:
        """Replay ``lines`` (recorded inputs in log order), run by run (``collector_paused``)."""
        seconds = self.seconds
        started = time.perf_counter()
        in_runs = sum(seconds.values())
        with collector_paused():
            self._feed(lines)
        # the rest of the feed: waiting for the next line (reading and decoding it) and cutting runs
        seconds["read"] += time.perf_counter() - started - (sum(seconds.values()) - in_runs)

    def _feed(self, lines: Iterable[dict[str, Any]]) -> None:
        run: list[dict[str, Any]] = []
        key: tuple[str, str, int, bool] | None = None
        for line in lines:
            this = (line["tenant"], line["source"], line["received_at_ms"], "release_of" in line)
            if this != key and run:
                self._run(run)
                run = []
            key = this
            run.append(line)
            if len(run) >= 5_000:
                self._run(run)
                run = []
        if run:
            self._run(run)

    def _run(self, lines: list[dict[str, Any]]) -> None:
        first = lines[0]
        tenant, source, now_ms = first["tenant"], first["source"], first["received_at_ms"]
        live_rules = self.live.configuration.rules.get(source)
        candidate_rules = self.candidate.configuration.rules.get(source)
        if "release_of" in first:
            self._release_run(lines, live_rules, candidate_rules)
            return
        if candidate_rules is None and live_rules is not None:  # the candidate deletes (or renames) the source
            self._deleted_run(lines, live_rules)
            return
        same_rules = (live_rules is not None and candidate_rules is not None
                      and live_rules.path.name not in self.candidate.configuration.changed)
        copy = (live_rules is not None and candidate_rules is not None and not same_rules
                and redacted_paths(live_rules.spec.buyer) != redacted_paths(candidate_rules.spec.buyer))
        clock = time.perf_counter
        started = clock()
        made_live = normalise_run(live_rules, tenant, lines, now_ms, False)
        if same_rules:
            made_candidate = made_live
        elif live_rules is not None and candidate_rules is not None and status_only(live_rules, candidate_rules):
            made_candidate = remapped(candidate_rules, tenant, lines, made_live, now_ms,
                                       self._recoding.setdefault(source, {}))
        else:
            made_candidate = normalise_run(candidate_rules, tenant, lines, now_ms, copy)
        self.tally.events += len(lines)
        normalised = clock()
        shareable = self.share and self._shareable(tenant, made_live, made_candidate)
        checked = clock()
        if shareable:
            events = [item for item in made_live if isinstance(item, Event)]
            self.live.apply_shared(self.candidate, self.live.plan(events, now_ms), events)
            phase = "shared"
        else:
            self._apart(lines, tenant, made_live, made_candidate, now_ms)
            phase = "apart"
        seconds = self.seconds
        seconds["normalise"] += normalised - started
        seconds["check"] += checked - normalised
        seconds[phase] += clock() - checked
        self._after_run()

    def _release_run(self, lines: list[dict[str, Any]], live_rules: SourceRules | None,
                     candidate_rules: SourceRules | None) -> None:
        """Release lines: planned on each side (a side that holds nothing makes a no-op of them)."""
        first = lines[0]
        tenant, now_ms = first["tenant"], first["received_at_ms"]
        started = time.perf_counter()
        refused = ("" if candidate_rules is not None or live_rules is None
                   else self._refusal(first["source"], live_rules)[0])
        before, live_events = release_views(self.live, live_rules, "", lines, now_ms)
        after, candidate_events = release_views(self.candidate, candidate_rules, refused, lines, now_ms)
        self.tally.events += len(lines)
        self.tally.releases += len(lines)
        self.candidate.planned += len(lines)
        for line, old, new in zip(lines, before, after, strict=True):
            if old[0] != new[0] or old[2] != new[2]:
                self._charge(line, old, new)
        self._note_diverged(tenant, live_events, candidate_events)
        self.seconds["apart"] += time.perf_counter() - started
        self._after_run()

    def _deleted_run(self, lines: list[dict[str, Any]], live_rules: SourceRules) -> None:
        """A run of a source whose file the candidate deletes: refused on the candidate side."""
        first = lines[0]
        tenant, now_ms = first["tenant"], first["received_at_ms"]
        started = time.perf_counter()
        made_live = normalise_run(live_rules, tenant, lines, now_ms, False)
        reason, rule = self._refusal(first["source"], live_rules)
        made_candidate: list[Event | str] = [reason] * len(lines)
        self.tally.events += len(lines)
        self._apart(lines, tenant, made_live, made_candidate, now_ms, rule)
        self.seconds["apart"] += time.perf_counter() - started
        self._after_run()

    def _refusal(self, source: str, live_rules: SourceRules) -> tuple[str, str]:
        """Why the candidate refuses a source the live rules map, and the rule charged with it."""
        name = live_rules.path.name
        if name in self.candidate.configuration.deleted:
            return f"no rules for source {source!r}: the candidate deletes {name}", f"{name}:deleted"
        return f"no rules for source {source!r} in the candidate (its {name} names another source)", f"{name}:source"

    def _after_run(self) -> None:
        if self._progress is not None:
            self._progress(self.tally.events)

    def _shareable(self, tenant: str, made_live: list[Event | str], made_candidate: list[Event | str]) -> bool:
        """True when planning the run once on the live side gives both sides' result.

        That holds when each event normalises alike on both sides, attaches to an order by
        its id, is not quarantined, and touches no order, buyer or waybill whose state
        differs between the sides (nor a waybill quarantined events wait for, nor a
        fingerprint one side has seen and the other has not).
        """
        live, candidate = self.live, self.candidate
        orders, buyers, waybills = self.diverged_orders, self.diverged_buyers, self.diverged_waybills
        # another pack-group window groups a buyer's orders otherwise: nothing with a buyer is alike
        same_window = live.configuration.merge_window_ms == candidate.configuration.merge_window_ms
        for old, new in zip(made_live, made_candidate, strict=True):
            if not isinstance(old, Event) or not isinstance(new, Event) or not old.order_id or old.quarantined:
                return False
            if old is not new and not alike(old, new):
                return False
            key = (tenant, old.order_id)
            if key in orders or (old.buyer_key and (not same_window or (tenant, old.buyer_key) in buyers)):
                return False
            stored = live.orders.get(key)
            if stored is not None and stored.buyer_key and (not same_window or (tenant, stored.buyer_key) in buyers):
                return False
            if old.waybill and ((tenant, old.waybill) in waybills or live.waiting_for(tenant, old.waybill)
                                or candidate.waiting_for(tenant, old.waybill)):
                return False
            fingerprint = (tenant, old.fingerprint)
            if (fingerprint in live.seen) != (fingerprint in candidate.seen):
                return False
        return True

    def _apart(self, lines: list[dict[str, Any]], tenant: str, made_live: list[Event | str],
               made_candidate: list[Event | str], now_ms: int, refused_rule: str = "") -> None:
        """Plan the run on each side, compare per event, note what now differs (``refused_rule``:
        the rule charged with a line the candidate refuses, when the live one names none)."""
        before = _views(self.live, lines, made_live, now_ms)
        after = _views(self.candidate, lines, made_candidate, now_ms, refused_rule)
        self.candidate.planned += len(lines)
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            if old[0] != new[0] or old[2] != new[2]:
                self._charge(lines[index], old, new)
        self._note_diverged(tenant, made_live, made_candidate)

    def _note_diverged(self, tenant: str, made_live: Sequence[Event | str],
                       made_candidate: Sequence[Event | str]) -> None:
        """Every order the run touched whose state now differs, with its buyer and waybill."""
        live, candidate = self.live, self.candidate
        keys = live.touched | candidate.touched
        live.touched.clear()
        candidate.touched.clear()
        for item in (*made_live, *made_candidate):
            if isinstance(item, Event) and not item.order_id and item.waybill:
                self.diverged_waybills.add((tenant, item.waybill))
        for key in keys:
            old, new = live.orders.get(key), candidate.orders.get(key)
            if old is new and live.forwarded.get(key) is candidate.forwarded.get(key):
                continue
            if old != new or live.forwarded.get(key, NOTHING_SENT) != candidate.forwarded.get(key, NOTHING_SENT):
                self.diverged_orders.add(key)
                for order in (old, new):
                    if order is not None:
                        if order.buyer_key:
                            self.diverged_buyers.add((tenant, order.buyer_key))
                        if order.waybill:
                            self.diverged_waybills.add((tenant, order.waybill))
            else:  # equal: share the objects again, so the final comparison sees identity
                if old is not None:
                    candidate.orders[key] = old
                if key in live.forwarded:
                    candidate.forwarded[key] = live.forwarded[key]

    def _charge(self, line: dict[str, Any], old: tuple[View, str, Any], new: tuple[View, str, Any]) -> None:
        tally = self.tally
        tally.changed += 1
        if old[0] != new[0]:
            rule = new[1] or old[1]
        else:  # same outcome, other fields: the candidate's data paths
            rule = f"{(new[1] or old[1]).partition(':')[0]}:data"
        tenant = line["tenant"]
        for order_id in {old[0][0], new[0][0]} - {""}:
            tally.causes.setdefault((tenant, order_id), rule)
        if len(tally.examples) < EVENT_EXAMPLES:
            tally.examples.append(EventChange(int(line.get("seq") or 0), tenant, line["source"], rule, old[0], new[0]))


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused for the block (restored after, if it was on).

    A replay only adds to its state (every order version, index entry and forwarded tuple
    stays reachable until the comparison), and nothing it builds forms a reference cycle
    (``gc.collect()`` after a 200,000-event replay with the collector off finds 10
    objects), so the collector's passes over a growing heap free nothing: they cost ~30 % of
    a replay. Pausing it changes no result; it is process-wide, so a replay run by the
    API's worker thread pauses it for the gateway too, for the replay's length.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _views(side: Side, lines: list[dict[str, Any]], made: list[Event | str], now_ms: int,
           refused_rule: str = "") -> list[tuple[View, str, Any]]:
    """``(view, rule, data)`` per line, after planning the run on ``side``; the lines whose
    event the side quarantined are noted on it (``Side.note_held``), for a later release."""
    events = [item for item in made if isinstance(item, Event)]
    results = iter(side.step(events, now_ms) if events else [])
    views: list[tuple[View, str, Any]] = []
    quarantined = "quarantined"
    for line, item in zip(lines, made, strict=True):
        if isinstance(item, str):
            views.append((("", "refused", "", item), refused_rule, None))
            continue
        result: EventResult = next(results)
        if result.outcome == quarantined:
            side.note_held(item.tenant, int(line.get("seq") or 0), item)
        views.append(((result.order_id, result.outcome, result.status or "", result.reason), item.rule, item.data))
    return views


__all__ = ["EVENT_EXAMPLES", "PHASES", "EventChange", "EventTally", "Replay", "View", "collector_paused"]
