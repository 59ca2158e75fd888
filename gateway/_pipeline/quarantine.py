"""Releasing quarantined events after the mapping rules were fixed.

An event whose raw status the rules did not know is quarantined: kept in the event log and
the ``quarantine`` keyspace with its decoded input (``raw``), counted and listed, never
dropped. Once operations staff add the missing status to the source's rule file (and the
daemon reloaded it), ``release`` re-reads those records under the live rules:

* a record that maps now becomes an ``Event`` with ``release_of`` set; the caller submits
  it through the pipeline like any event, so the state machine, the audit trail (the note
  names the quarantine seq and the rule) and the outbox all see it, and the quarantine
  record is deleted in the same write batch;
* a record that still does not map stays where it is (reported as ``still_quarantined``);
* a record whose source has no rules any more, or whose raw input no longer normalises
  (the rules now require a field it lacks), stays too, with the reason.

Releases go through the one committer, so they interleave safely with live traffic; the
normal duplicate check and the outbox bound apply. Pure apart from reading the store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gateway._errors import MalformedEventError
from gateway._model import Event
from gateway._rules import RuleSet, normalise_batch
from gateway._store import Store


@dataclass
class ReleasePlan:
    """What ``plan_release`` found: events to submit, and records that stay, with why."""

    events: list[Event] = field(default_factory=list)
    kept: list[dict[str, Any]] = field(default_factory=list)
    more: bool = False


def plan_release(store: Store, rules: RuleSet, tenant: str, seqs: Iterable[int] | None,
                 received_at_ms: int, limit: int = 10_000) -> ReleasePlan:
    """Re-normalise a tenant's quarantined records (all, or the given seqs) under ``rules``.

    Args:
        limit: at most this many events are planned (one group commit stays bounded);
            ``ReleasePlan.more`` says when records were left for another call.

    Returns:
        The events that map now (each with ``release_of``) and the records that stay, as
        ``{"seq", "reason"}``.
    """
    wanted = None if seqs is None else set(seqs)
    plan = ReleasePlan()
    records = store.iter_quarantine(tenant) if wanted is None else iter(store.quarantine_records(tenant, wanted))
    for record in records:
        seq = record["seq"]
        if len(plan.events) >= limit:
            plan.more = True
            break
        source_rules = rules.get(record.get("source", ""))
        raw = record.get("raw")
        if source_rules is None or not isinstance(raw, dict):
            plan.kept.append({"seq": seq, "reason": f"no rules for source {record.get('source')!r}"})
            continue
        try:
            [event] = normalise_batch(source_rules, tenant, [raw], received_at_ms)
        except MalformedEventError as exc:
            plan.kept.append({"seq": seq, "reason": f"does not normalise under the live rules: {exc}"})
            continue
        if event.quarantined:
            plan.kept.append({"seq": seq, "reason": f"raw status {event.raw_status!r} is still unknown"})
            continue
        plan.events.append(dataclasses.replace(event, release_of=seq))
    if wanted is not None and not plan.more:
        found = {e.release_of for e in plan.events} | {k["seq"] for k in plan.kept}
        plan.kept += [{"seq": seq, "reason": "no such quarantined record"} for seq in sorted(wanted - found)]
    return plan


__all__ = ["ReleasePlan", "plan_release"]
