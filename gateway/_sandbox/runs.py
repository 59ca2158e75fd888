"""Each side's events of a run: the recorded inputs through that side's mapping rules.

``normalise_run`` is the real ``normalise_batch`` of the side's rules (a line it refuses
becomes the reason, the others are kept); a source without rules on a side is rebuilt
exactly as recorded (``as_recorded``). When the candidate's file differs from the live
one in its status table alone, ``remapped`` gives the candidate's events from the live
ones: the same objects where the code is the same, so the engine sees at once that they
are alike (``alike``).
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Any

import orjson

import core_ext
from gateway._errors import MalformedEventError
from gateway._model import CODE_MISSING, CODE_NO_CHANGE, CODE_UNKNOWN, Event, Status
from gateway._rules import SourceRules, normalise_batch
from gateway._sandbox.recorded import recorded_fields


def alike(old: Event, new: Event) -> bool:
    """The two normalisations would act alike (the rule reference may differ: a version bump)."""
    return (old.order_id == new.order_id and old.status_code == new.status_code
            and old.fingerprint == new.fingerprint and old.buyer_key == new.buyer_key and old.waybill == new.waybill
            and old.raw_status == new.raw_status and old.type == new.type
            and old.occurred_at_ms == new.occurred_at_ms and old.source_event_id == new.source_event_id
            and old.buyer_aliases == new.buyer_aliases and old.data == new.data)


_STATUS_BLIND_FIELDS = ("name", "kind", "event_id", "order_id", "status_paths", "event_type", "occurred_at",
                        "occurred_at_format", "waybill", "buyer", "data")


def status_only(live: SourceRules, candidate: SourceRules) -> bool:
    """True when the two files differ at most in their status table (and version, description)."""
    return all(getattr(live, name) == getattr(candidate, name) for name in _STATUS_BLIND_FIELDS)


def remapped(rules: SourceRules, tenant: str, lines: list[dict[str, Any]], made_live: list[Event | str],
              now_ms: int, memo: dict[str, tuple[int, str]]) -> list[Event | str]:
    """The candidate's events when only its status table differs: the live events with the
    candidate's status code and rule; the same object where the code is the same.

    The code is the core's lookup of the event's raw status text (what ``normalise_batch``
    does inside ``core_ext.process_batch``): a pure function of the text for one rule file,
    so ``memo`` keeps it per raw status (a few dozen texts) instead of re-reading every
    event through the core."""
    raws = [line["raw"] for line in lines]
    if not all(isinstance(raw, dict) for raw in raws):
        return normalise_run(rules, tenant, lines, now_ms, False)
    if any(isinstance(item, Event) and not item.raw_status for item in made_live):
        # no status or an empty one: the event's raw status text does not tell which; ask the core
        rows = core_ext.process_batch(rules.spec, tenant, raws)
        return [_recoded(item, row[2], rules.rule_ref(row[5])) if isinstance(item, Event) and row[2] != item.status_code
                else item for item, row in zip(made_live, rows, strict=True)]
    lookup = rules.spec.status_map.lookup
    made: list[Event | str] = []
    for item in made_live:
        if isinstance(item, Event):
            found = memo.get(item.raw_status)
            if found is None:
                found = memo[item.raw_status] = (lookup(item.raw_status), rules.rule_ref(item.raw_status))
            if found[0] != item.status_code:
                item = _recoded(item, *found)
        made.append(item)
    return made


_EVENT_FIELDS = tuple(field.name for field in dataclasses.fields(Event))
_EVENT_VALUES = operator.attrgetter(*_EVENT_FIELDS)
_CODE_AT = _EVENT_FIELDS.index("status_code")
_RULE_AT = _EVENT_FIELDS.index("rule")


def _recoded(event: Event, code: int, rule: str) -> Event:
    """``event`` with another status code and rule (``dataclasses.replace``, without its cost)."""
    values = list(_EVENT_VALUES(event))
    values[_CODE_AT] = code
    values[_RULE_AT] = rule
    return Event(*values)


def normalise_run(rules: SourceRules | None, tenant: str, lines: list[dict[str, Any]], now_ms: int,
               copy: bool) -> list[Event | str]:
    """One ``Event`` per line, or the reason the side refuses it."""
    if rules is None:
        return [as_recorded(line, tenant, now_ms) for line in lines]
    if not all(isinstance(line.get("raw"), dict) for line in lines):
        mixed: list[Event | str] = []
        for line in lines:
            mixed.extend(normalise_run(rules, tenant, [line], now_ms, copy) if isinstance(line.get("raw"), dict)
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


def as_recorded(line: dict[str, Any], tenant: str, now_ms: int) -> Event | str:
    """An event of a source without mapping rules, rebuilt from its recorded fields."""
    recorded = recorded_fields(line)
    if recorded.get("fingerprint") is None:
        return f"no rules for source {line['source']!r} and no recorded fields"

    def text(name: str) -> Any:
        value = recorded.get(name)
        return "" if value is None else value

    status = recorded.get("status")
    if status:
        code = Status(status).code
    elif recorded.get("outcome") == "quarantined":
        code = CODE_MISSING if not recorded.get("raw_status") else CODE_UNKNOWN
    else:
        code = CODE_NO_CHANGE
    return Event(tenant=tenant, source=line["source"], source_event_id=str(text("source_event_id")),
                 order_id=text("order_id"), type=text("type"), raw_status=text("raw_status"), status_code=code,
                 occurred_at_ms=int(recorded.get("occurred_at_ms") or 0), received_at_ms=now_ms,
                 fingerprint=int(recorded["fingerprint"]), rule=text("rule"),
                 raw=line.get("raw"), detail=recorded.get("detail"))


__all__ = ["alike", "as_recorded", "normalise_run", "remapped", "status_only"]
