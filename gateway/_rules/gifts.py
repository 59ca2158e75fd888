"""Gift rules: which orders earn which gifts. The values, and the evaluation.

This docstring is the operators' reference for how a gift rule is evaluated; the file format
(``<rules_dir>/gifts/*.toml``), where the files live and how they are checked is in
``gateway._rules.gift_file``.

How a rule is evaluated
-----------------------
* SKU patterns are globs matched case-sensitively (``*``, ``?``, ``[0-9]``): ``"SKU-1??"``
  matches ``SKU-100`` .. ``SKU-199``. "Matching units" are the units of the lines whose SKU
  matches any pattern of ``skus_any`` or ``skus_all``; with neither, every unit matches.
* ``channels`` and the window pick the orders a rule looks at. The window is checked against
  the order's paid time (never the clock, so a replay grants the same gifts): ``starts`` is
  included, ``ends`` is not; an order with an unknown paid time is outside every window.
* ``scope = "order"``: each order is judged alone. ``scope = "group"``: the orders of one pack
  group that pass ``channels`` and the window are judged together (their totals summed, their
  lines pooled), e.g. a Douyin order and a mini-program order of the same buyer merged into
  one parcel: 199 + 100 reaches a 299 threshold.
* A grant always belongs to one order. In a group it goes to the member that contributed
  most: with SKU conditions (``skus_*``, ``min_quantity``, ``per_unit``) the first member with
  a matching line, else with ``min_total`` the member with the largest total, else the first
  member; ties go to the earlier member.
* Totals are compared in fen (cents): 298.99 does not reach 299, 299.00 does.
* The same gift SKU from two rules gives two grants, each naming its rule.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from gateway._rules.gift_file import (
    GIFT_SCOPES,
    SHIP_WHEN,
    GiftFile,
    GiftFileLoader,
    GiftRule,
    GiftScope,
    ShipWhen,
    gift_files,
)


@dataclass(frozen=True, slots=True)
class GiftGrant:
    """A gift a gift rule grants to one order.

    Attributes:
        rule: which rule granted it (``"demo@v3:box-299"``), for the audit and the bill.
        order_id: the order it belongs to (never "ownerless": in a pack group, the member that
            contributed most to the condition; see the module docstring).
        sku: the gift's SKU.
        quantity: units.
        ships: ``now`` (in this parcel) or ``later`` (a later parcel of its own).
    """

    rule: str
    order_id: str
    sku: str
    quantity: int = 1
    ships: ShipWhen = "now"

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "order_id": self.order_id, "sku": self.sku, "quantity": self.quantity,
                "ships": self.ships}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> GiftGrant:
        return cls(raw["rule"], raw["order_id"], raw["sku"], int(raw.get("quantity", 1)), raw.get("ships", "now"))


@dataclass(frozen=True, slots=True)
class GiftOrder:
    """What the gift rules look at in one order.

    Attributes:
        order_id: ``"channel|platform order id"``.
        channel: the part of ``order_id`` before ``|`` (``""`` when there is none).
        total: the paid total in yuan.
        lines: ``(sku, units)`` per order line.
        paid_at_ms: when it was paid, epoch ms UTC; 0 = unknown.
    """

    order_id: str
    channel: str
    total: float
    lines: tuple[tuple[str, int], ...]
    paid_at_ms: int

    @classmethod
    def from_order_data(cls, order_id: str, data: Mapping[str, Any], paid_at_ms: int) -> GiftOrder:
        """Build from an order's data fields: ``amount`` (yuan: a number or numeric text) and
        ``lines`` (a list of ``{"sku", "qty"}``, ``quantity`` accepted for ``qty``).

        Never raises: a missing or unreadable amount reads as 0, a malformed line (no SKU, a
        quantity that is not a whole number >= 1) is skipped.
        """
        channel, bar, _ = order_id.partition("|")
        lines = data.get("lines")
        parsed = tuple(line for raw in (lines if isinstance(lines, list) else ()) if (line := _line(raw)))
        return cls(order_id, channel if bar else "", _yuan(data.get("amount")), parsed, int(paid_at_ms))


def _yuan(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return 0.0
    try:
        number = float(value)
    except ValueError:
        return 0.0
    return number if math.isfinite(number) else 0.0


def _line(raw: Any) -> tuple[str, int] | None:
    if not isinstance(raw, Mapping):
        return None
    sku, qty = raw.get("sku"), raw.get("qty", raw.get("quantity"))
    if not isinstance(sku, str) or not sku.strip():
        return None
    if isinstance(qty, str) and qty.strip().isdigit():
        qty = int(qty)
    elif isinstance(qty, float) and qty.is_integer():
        qty = int(qty)
    if isinstance(qty, bool) or not isinstance(qty, int) or qty < 1:
        return None
    return sku.strip(), qty



@dataclass(frozen=True, slots=True)
class GiftRules:
    """Every gift file of a rules directory, sorted by file name; empty when there are none."""

    files: tuple[GiftFile, ...] = ()

    @property
    def rules(self) -> tuple[GiftRule, ...]:
        """Every rule, file by file, in file order."""
        return tuple(rule for gift_file in self.files for rule in gift_file.rules)

    def for_tenant(self, tenant: str) -> tuple[GiftRule, ...]:
        """The rules that apply to ``tenant`` (its own and those for every tenant)."""
        return tuple(rule for rule in self.rules if rule.tenant in ("", tenant))

    def __iter__(self) -> Iterator[GiftRule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return sum(len(gift_file.rules) for gift_file in self.files)

    def __repr__(self) -> str:
        return f"GiftRules({[gift_file.ref for gift_file in self.files]}, rules={len(self)})"


# -- evaluation (pure) ----------------------------------------------------------------------------

def evaluate_gifts(rules: GiftRules, tenant: str, orders: Sequence[GiftOrder]) -> list[GiftGrant]:
    """The gifts ``orders`` (one pack group, primary first) earn under ``tenant``'s rules.

    Deterministic: it reads only its arguments (the window against each order's paid time).

    Returns:
        The grants, rule by rule in file order, then order by order.
    """
    grants: list[GiftGrant] = []
    for rule in rules.for_tenant(tenant):
        eligible = [order for order in orders if rule.admits(order)]
        batches = [eligible] if rule.scope == "group" else [[order] for order in eligible]
        for members in batches:
            grant = _grant(rule, members)
            if grant is not None:
                grants.append(grant)
    return grants


def _fen(total: float) -> int:
    scaled = total * 100
    return round(scaled) if math.isfinite(scaled) else 0


def _grant(rule: GiftRule, members: Sequence[GiftOrder]) -> GiftGrant | None:
    if not members:
        return None
    if rule.min_total is not None and sum(_fen(m.total) for m in members) < _fen(rule.min_total):
        return None
    skus = [sku for m in members for sku, units in m.lines if units > 0]
    if rule.skus_any and not any(fnmatchcase(sku, p) for sku in skus for p in rule.skus_any):
        return None
    if not all(any(fnmatchcase(sku, p) for sku in skus) for p in rule.skus_all):
        return None
    units = sum(n for m in members for sku, n in m.lines if n > 0 and rule.counts(sku))
    if rule.min_quantity is not None and units < rule.min_quantity:
        return None
    quantity = rule.quantity * units if rule.per_unit else rule.quantity
    if quantity < 1:
        return None
    return GiftGrant(rule.rule_id, _owner(rule, members).order_id, rule.gift_sku, quantity, rule.ships)


def _owner(rule: GiftRule, members: Sequence[GiftOrder]) -> GiftOrder:
    if rule.by_lines:
        for member in members:
            if any(n > 0 and rule.counts(sku) for sku, n in member.lines):
                return member
    if rule.min_total is not None:
        return max(members, key=lambda m: _fen(m.total))  # max keeps the first of equals
    return members[0]



__all__ = ["GIFT_SCOPES", "SHIP_WHEN", "GiftFile", "GiftFileLoader", "GiftGrant", "GiftOrder", "GiftRule",
           "GiftRules", "GiftScope", "ShipWhen", "evaluate_gifts", "gift_files"]
