"""Pack-group changes written into a processing step (``gateway._pipeline.step``): one audit record per
relabelled order and ONE ``merge_pack`` outbox entry per change. Which orders group, and
when a member leaves, is decided by ``gateway._pipeline.grouping``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway._model import Event, OrderState
from gateway._pipeline.grouping import GroupLeft, PackGroup, merge_event_id
from gateway._store import StepWrite
from gateway._times import iso_ms


def write_pack_group(group: PackGroup, tenant: str, touch: Callable[[str, str], OrderState],
                     write: StepWrite, event: Event, now_ms: int, window_ms: int) -> None:
    """Relabel the group's members (one audit record each) and queue ONE ``merge_pack``."""
    members = list(group.members)
    change = _PackGroupChange(tenant, merge_event_id(tenant, group.pack_group, members), touch, write, event,
                              now_ms, f"pipeline.merge_window_s={window_ms / 1000:g}",
                              f"cross-channel pack group of {len(members)} orders ({', '.join(members)}); "
                              f"completed by event {event.fingerprint:016x} from {event.source}")
    for order_id, _ in group.changed:
        change.relabel(order_id, group.pack_group)
    change.instruct(group.pack_group, {"pack_group": group.pack_group, "orders": members,
                                       "replaces": group.replaces})


def write_group_left(left: GroupLeft, tenant: str, touch: Callable[[str, str], OrderState],
                     write: StepWrite, event: Event, now_ms: int) -> None:
    """Relabel after a member left its pack group and queue ONE updated ``merge_pack``."""
    members = list(left.members)
    leaver = left.removed[0]
    event_id = merge_event_id(tenant, left.pack_group or f"dissolved:{left.old_group}", members or list(left.removed))
    change = _PackGroupChange(tenant, event_id, touch, write, event, now_ms,
                              "grouping: a withdrawn order leaves its pack group",
                              f"{leaver} left pack group {left.old_group} ({touch(tenant, leaver).status}); "
                              + (f"{len(members)} orders remain" if members else "the group is dissolved")
                              + f"; event {event.fingerprint:016x} from {event.source}")
    for order_id, label in left.relabel:
        change.relabel(order_id, label)
    change.instruct(left.pack_group or (left.removed[1] if len(left.removed) > 1 else leaver), {
        "pack_group": left.pack_group or left.old_group, "orders": members,
        "replaces": [left.old_group] if left.pack_group and left.pack_group != left.old_group else [],
        "removed": list(left.removed), "dissolved": not members})


@dataclass
class _PackGroupChange:
    """Writes one pack-group change: an audit record per relabelled order, ONE ``merge_pack``."""

    tenant: str
    event_id: str
    touch: Callable[[str, str], OrderState]
    write: StepWrite
    event: Event
    now_ms: int
    rule: str
    note: str

    def relabel(self, order_id: str, label: str) -> None:
        member = self.touch(self.tenant, order_id)
        old, member.pack_group, member.updated_at_ms = member.pack_group, label, self.now_ms
        self.write.audit.append({
            "tenant": self.tenant, "at_ms": self.now_ms, "actor": "gateway:merge-pack", "source": "gateway",
            "event_id": self.event_id, "rule": self.rule, "order_id": order_id, "decision": "merge_pack",
            "changes": [{"field": "pack_group", "old": old or None, "new": label or None}], "note": self.note,
        })

    def instruct(self, primary_id: str, data: dict[str, Any]) -> None:
        """Queue the ``merge_pack`` instruction on ``primary_id`` (its ``seq`` advances)."""
        primary = self.touch(self.tenant, primary_id)
        primary.seq += 1
        self.write.outbox.append({
            "tenant": self.tenant,
            "event_id": self.event_id,
            "order_id": primary_id,
            "seq": primary.seq,
            "type": "merge_pack",
            "source": "gateway",
            "status": primary.status,
            "prev_status": primary.status,
            "occurred_at": iso_ms(self.event.occurred_at_ms or self.now_ms),
            "data": data,
        })


__all__ = ["write_group_left", "write_pack_group"]
