"""The final comparison of a replay: which orders end differently, why, and by how much.

Per order (the union of both sides' orders, in key order) five things are compared:

* ``status``: the final standard state (``None`` when a side never created the order);
* ``pack_group``: the cross-channel pack group it ships in;
* ``bill``: its part of the expected bill (``gateway._packline.bill.build_bill`` with the
  side's gift rules over the side's pack group, the tenant's catalog when one is given);
  computed only where it can differ: when the gift rules differ, or the order's data or
  pack group do. Rule versions are left out of the comparison (``demo@v3`` = ``demo@v4``):
  bumping a version alone changes nothing a packer sees;
* ``quarantine``: the events of the order held in quarantine at the end;
* ``forwarded``: the entries queued for the upstream (count and content).

Each changed order is charged to one rule: the first event-level cause
(``gateway._sandbox.engine``), else the pack-group setting, else the gift rules whose
grants differ, else the cause of the order whose group it shares.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway._model import OrderState
from gateway._packline.bill import build_bill
from gateway._packline.station import group_members
from gateway._packline.values import Catalog
from gateway._rules import GiftOrder, GiftRules, evaluate_gifts
from gateway._sandbox.engine import Replay
from gateway._sandbox.side import NOTHING_SENT, Side, summary_text

KINDS = ("status", "pack_group", "bill", "quarantine", "forwarded")
_VERSION = re.compile(r"@v\d+")

CatalogReader = Callable[[str], Catalog]


@dataclass
class OrderChange:
    """One order that ends differently, with the rule charged; both sides' facts are read
    from the final states when the report asks (``to_dict``), so a large diff stays small."""

    tenant: str
    order_id: str
    kinds: list[str]
    rule: str
    old: OrderState | None
    new: OrderState | None
    bills: tuple[list[Any], list[Any]] | None
    sides: tuple[Side, Side, dict[tuple[str, str], list[str]], dict[tuple[str, str], list[str]]] = field(repr=False)

    def group(self, index: int) -> str:
        """The pack group before (0) or after (1), ``""`` for none."""
        order = self.new if index else self.old
        return order.pack_group if order is not None else ""

    def to_dict(self) -> dict[str, Any]:
        live, candidate, held_live, held_candidate = self.sides
        key = (self.tenant, self.order_id)
        return {"tenant": self.tenant, "order_id": self.order_id, "changes": self.kinds, "rule": self.rule,
                "before": _facts(live, key, self.old, held_live, self.bills[0] if self.bills else None),
                "after": _facts(candidate, key, self.new, held_candidate, self.bills[1] if self.bills else None)}


@dataclass
class Comparison:
    """Every changed order, in key order, and the quarantined events of no order."""

    orders: int = 0
    changed: list[OrderChange] = field(default_factory=list)
    loose_quarantine: list[dict[str, Any]] = field(default_factory=list)


def _unversioned_gifts(gifts: GiftRules) -> tuple[Any, ...]:
    return tuple((_VERSION.sub("", rule.rule_id), *(getattr(rule, name) for name in rule.__slots__[1:]))
                 for rule in gifts.rules)


def compare(replay: Replay, catalog_for: CatalogReader | None = None) -> Comparison:
    """Compare the final states of ``replay``'s two sides (see the module docstring)."""
    live, candidate = replay.live, replay.candidate
    gifts_differ = (_unversioned_gifts(live.configuration.rules.gifts)
                    != _unversioned_gifts(candidate.configuration.rules.gifts))
    catalogs: dict[str, Catalog] = {}

    def catalog(tenant: str) -> Catalog:
        found = catalogs.get(tenant)
        if found is None:
            found = catalogs[tenant] = catalog_for(tenant) if catalog_for is not None else Catalog()
        return found

    held_live = _held_by_order(live)
    held_candidate = _held_by_order(candidate)
    sides = (live, candidate, held_live, held_candidate)
    result = Comparison()
    keys = live.orders.keys() | candidate.orders.keys()
    result.orders = len(keys)
    for key in keys:
        old, new = live.orders.get(key), candidate.orders.get(key)
        sent_old, sent_new = live.forwarded.get(key, NOTHING_SENT), candidate.forwarded.get(key, NOTHING_SENT)
        if (old is new and sent_old is sent_new and not gifts_differ
                and key not in held_live and key not in held_candidate):
            continue  # shared all along: identical by construction
        kinds: list[str] = []
        if (old.status if old else None) != (new.status if new else None):
            kinds.append("status")
        if (old.pack_group if old else "") != (new.pack_group if new else ""):
            kinds.append("pack_group")
        bills: tuple[list[Any], list[Any]] | None = None
        if gifts_differ or "pack_group" in kinds or old is None or new is None or old.data != new.data:
            bills = (_bill(live, old, catalog), _bill(candidate, new, catalog))
            if bills[0] != bills[1]:
                kinds.append("bill")
        if held_live.get(key, []) != held_candidate.get(key, []):
            kinds.append("quarantine")
        if sent_old[:2] != sent_new[:2]:
            kinds.append("forwarded")
        if kinds:
            rule = _cause(replay, key, kinds, old, new, bills)
            result.changed.append(OrderChange(key[0], key[1], kinds, rule, old, new, bills, sides))
    result.changed.sort(key=lambda change: (change.tenant, change.order_id))
    _second_pass_causes(result, replay)
    loose_old = {k: v for k, v in live.quarantined.items() if not v[1]}
    loose_new = {k: v for k, v in candidate.quarantined.items() if not v[1]}
    for event_id in sorted(loose_old.keys() ^ loose_new.keys()):
        old_held, new_held = loose_old.get(event_id), loose_new.get(event_id)
        result.loose_quarantine.append({"event_id": event_id, "tenant": (old_held or new_held or ("",))[0],
                                        "before": old_held[2] if old_held else None,
                                        "after": new_held[2] if new_held else None})
    return result


def _held_by_order(side: Side) -> dict[tuple[str, str], list[str]]:
    held: dict[tuple[str, str], list[str]] = {}
    for event_id, (tenant, order_id, reason) in sorted(side.quarantined.items()):
        if order_id:
            held.setdefault((tenant, order_id), []).append(f"{event_id}:{reason}")
    return held


def _bill(side: Side, order: OrderState | None, catalog: CatalogReader) -> list[Any]:
    """The order's own components of its group's expected bill, versions left out."""
    if order is None:
        return []
    members = group_members(order, side.orders_for_buyer, side.get_order)
    gifts = side.configuration.rules.gifts
    grants = evaluate_gifts(gifts, order.tenant, [GiftOrder.from_order_data(m.order_id, m.data, m.created_at_ms)
                                                  for m in members])
    bill = build_bill(order.pack_group or order.order_id, members, catalog(order.tenant), grants, None)
    return sorted([component.sku, component.quantity, _VERSION.sub("", component.origin), component.parcel,
                   component.status] for component in bill.components if component.order_id == order.order_id)


def _facts(side: Side, key: tuple[str, str], order: OrderState | None, held: dict[tuple[str, str], list[str]],
           bill: list[Any] | None) -> dict[str, Any]:
    count, _, first = side.forwarded.get(key, NOTHING_SENT)
    facts: dict[str, Any] = {
        "status": order.status.value if order and order.status else None,
        "pack_group": (order.pack_group or None) if order else None,
        "quarantined": held.get(key, []),
        "forwarded": {"count": count, "first": [summary_text(sent) for sent in first]},
    }
    if bill is not None:
        facts["bill"] = [f"{sku} x{qty} ({origin}, parcel {parcel}, {status})"
                         for sku, qty, origin, parcel, status in bill]
    return facts


def _cause(replay: Replay, key: tuple[str, str], kinds: list[str], old: OrderState | None,
           new: OrderState | None, bills: tuple[list[Any], list[Any]] | None) -> str:
    found = replay.tally.causes.get(key)
    if found:
        return found
    live_window = replay.live.configuration.merge_window_ms
    candidate_window = replay.candidate.configuration.merge_window_ms
    if live_window != candidate_window and kinds != ["bill"]:  # groups differ: membership, merge_pack entries
        return f"pipeline.merge_window_s={live_window / 1000:g}->{candidate_window / 1000:g}"
    if "bill" in kinds and bills is not None and _unversioned_gifts(replay.live.configuration.rules.gifts) != (
            _unversioned_gifts(replay.candidate.configuration.rules.gifts)):
        origins = sorted({row[2] for row in bills[0]} ^ {row[2] for row in bills[1]})
        gift = [origin.removeprefix("gift:") for origin in origins if origin.startswith("gift:")]
        if gift:
            return "gifts/" + ", gifts/".join(gift)
        return "gifts"
    return ""


def _second_pass_causes(result: Comparison, replay: Replay) -> None:
    """An order changed only through its pack group takes the cause of a group mate."""
    by_group: dict[tuple[str, str], str] = {}
    for change in result.changed:
        for group in (change.group(0), change.group(1)):
            if group and change.rule:
                by_group.setdefault((change.tenant, group), change.rule)
    for change in result.changed:
        if change.rule:
            continue
        for group in (change.group(0), change.group(1)):
            cause = (by_group.get((change.tenant, group), "") or replay.tally.causes.get((change.tenant, group), "")
                     ) if group else ""
            if cause:
                change.rule = cause
                break
        if not change.rule:
            change.rule = "(unattributed)"


__all__ = ["KINDS", "CatalogReader", "Comparison", "OrderChange", "compare"]
