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
exactly as recorded, so both sides see them alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

import core_ext
from gateway._errors import MalformedEventError
from gateway._model import CODE_MISSING, CODE_NO_CHANGE, CODE_UNKNOWN, Event, Status
from gateway._pipeline import EventResult
from gateway._rules import SourceRules, normalise_batch
from gateway._rules.privacy import redacted_paths
from gateway._sandbox.configs import Configuration
from gateway._sandbox.side import NOTHING_SENT, Side

#: Event-level differences kept as examples (all are counted).
EVENT_EXAMPLES = 50

#: What one side made of one event: (order id, outcome, status, reason).
View = tuple[str, str, str, str]


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

    def feed(self, lines: Iterable[dict[str, Any]]) -> None:
        """Replay ``lines`` (recorded inputs in log order), run by run."""
        run: list[dict[str, Any]] = []
        key: tuple[str, str, int] | None = None
        for line in lines:
            this = (line["tenant"], line["source"], line["received_at_ms"])
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
        same_rules = (live_rules is not None and candidate_rules is not None
                      and live_rules.path.name not in self.candidate.configuration.changed)
        copy = (live_rules is not None and candidate_rules is not None and not same_rules
                and redacted_paths(live_rules.spec.buyer) != redacted_paths(candidate_rules.spec.buyer))
        made_live = _normalise(live_rules, tenant, lines, now_ms, False)
        if same_rules:
            made_candidate = made_live
        elif live_rules is not None and candidate_rules is not None and _status_only(live_rules, candidate_rules):
            made_candidate = _remapped(candidate_rules, tenant, lines, made_live, now_ms)
        else:
            made_candidate = _normalise(candidate_rules, tenant, lines, now_ms, copy)
        self.tally.events += len(lines)
        if self.share and self._shareable(tenant, made_live, made_candidate):
            events = [item for item in made_live if isinstance(item, Event)]
            self.live.apply_shared(self.candidate, self.live.plan(events, now_ms).write)
        else:
            self._apart(lines, tenant, made_live, made_candidate, now_ms)
        self._after_run()

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
            if old is not new and not _alike(old, new):
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
               made_candidate: list[Event | str], now_ms: int) -> None:
        """Plan the run on each side, compare per event, note what now differs."""
        before = _views(self.live, made_live, now_ms)
        after = _views(self.candidate, made_candidate, now_ms)
        self.candidate.planned += len(lines)
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            if old[0] != new[0] or old[2] != new[2]:
                self._charge(lines[index], old, new)
        self._note_diverged(tenant, made_live, made_candidate)

    def _note_diverged(self, tenant: str, made_live: list[Event | str], made_candidate: list[Event | str]) -> None:
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


def _views(side: Side, made: list[Event | str], now_ms: int) -> list[tuple[View, str, Any]]:
    """``(view, rule, data)`` per line, after planning the run on ``side``."""
    events = [item for item in made if isinstance(item, Event)]
    results = iter(side.step(events, now_ms) if events else [])
    views: list[tuple[View, str, Any]] = []
    for item in made:
        if isinstance(item, str):
            views.append((("", "refused", "", item), "", None))
            continue
        result: EventResult = next(results)
        views.append(((result.order_id, result.outcome, result.status or "", result.reason), item.rule, item.data))
    return views


def _alike(old: Event, new: Event) -> bool:
    """The two normalisations would act alike (the rule reference may differ: a version bump)."""
    return (old.order_id == new.order_id and old.status_code == new.status_code
            and old.fingerprint == new.fingerprint and old.buyer_key == new.buyer_key and old.waybill == new.waybill
            and old.raw_status == new.raw_status and old.type == new.type
            and old.occurred_at_ms == new.occurred_at_ms and old.source_event_id == new.source_event_id
            and old.buyer_aliases == new.buyer_aliases and old.data == new.data)


_STATUS_BLIND_FIELDS = ("name", "kind", "event_id", "order_id", "status_paths", "event_type", "occurred_at",
                        "occurred_at_format", "waybill", "buyer", "data")


def _status_only(live: SourceRules, candidate: SourceRules) -> bool:
    """True when the two files differ at most in their status table (and version, description)."""
    return all(getattr(live, name) == getattr(candidate, name) for name in _STATUS_BLIND_FIELDS)


def _remapped(rules: SourceRules, tenant: str, lines: list[dict[str, Any]], made_live: list[Event | str],
              now_ms: int) -> list[Event | str]:
    """The candidate's events when only its status table differs: the live events with the
    candidate's status code (from the core, as ``normalise_batch`` gets it) and rule; the
    same object where the code is the same."""
    raws = [line["raw"] for line in lines]
    if not all(isinstance(raw, dict) for raw in raws):
        return _normalise(rules, tenant, lines, now_ms, False)
    rows = core_ext.process_batch(rules.spec, tenant, raws)
    made: list[Event | str] = []
    for item, row in zip(made_live, rows, strict=True):
        if isinstance(item, Event) and row[2] != item.status_code:
            made.append(dataclasses.replace(item, status_code=row[2], rule=rules.rule_ref(row[5])))
        else:
            made.append(item)
    return made


def _normalise(rules: SourceRules | None, tenant: str, lines: list[dict[str, Any]], now_ms: int,
               copy: bool) -> list[Event | str]:
    """One ``Event`` per line, or the reason the side refuses it."""
    if rules is None:
        return [_as_recorded(line, tenant, now_ms) for line in lines]
    if not all(isinstance(line.get("raw"), dict) for line in lines):
        mixed: list[Event | str] = []
        for line in lines:
            mixed.extend(_normalise(rules, tenant, [line], now_ms, copy) if isinstance(line.get("raw"), dict)
                        else [f"no recorded input for the rules of {line['source']!r} to read"])
        return mixed
    raws = [orjson.loads(orjson.dumps(line["raw"])) if copy else line["raw"] for line in lines]
    try:
        return list(normalise_batch(rules, tenant, raws, now_ms))
    except MalformedEventError:
        pass
    made: list[Event | str] = []
    for raw in raws:  # one at a time: only the bad ones are refused
        try:
            made.extend(normalise_batch(rules, tenant, [raw], now_ms))
        except MalformedEventError as exc:
            made.append(f"does not normalise: {exc}")
    return made


def _as_recorded(line: dict[str, Any], tenant: str, now_ms: int) -> Event | str:
    """An event of a source without mapping rules, rebuilt from its recorded fields."""
    recorded = line.get("recorded") or {}
    if "fingerprint" not in recorded:
        return f"no rules for source {line['source']!r} and no recorded fields"
    status = recorded.get("status")
    if status:
        code = Status(status).code
    elif recorded.get("outcome") == "quarantined":
        code = CODE_MISSING if not recorded.get("raw_status") else CODE_UNKNOWN
    else:
        code = CODE_NO_CHANGE
    return Event(tenant=tenant, source=line["source"], source_event_id=str(recorded.get("source_event_id", "")),
                 order_id=recorded.get("order_id", ""), type=recorded.get("type", ""),
                 raw_status=recorded.get("raw_status", ""), status_code=code,
                 occurred_at_ms=int(recorded.get("occurred_at_ms") or 0), received_at_ms=now_ms,
                 fingerprint=int(recorded["fingerprint"]), rule=recorded.get("rule", ""),
                 raw=line.get("raw"), detail=recorded.get("detail"))


__all__ = ["EVENT_EXAMPLES", "EventChange", "EventTally", "Replay"]
