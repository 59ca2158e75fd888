"""Cross-channel grouping: one buyer's orders from several channels become one pack group.

DESIGN section 4: orders of one buyer across channels, inside a configurable window and
before packing starts, form one pack group with a merge-pack instruction, so the gift box
bought on the mini-program two minutes after the main order on Douyin ships in the same
parcel. This module decides the group (pure: reads go through callables);
``gateway._pipeline.step`` writes what follows from it (audit records, the ``merge_pack`` outbox
entry) into the step's one write batch.

The rule
--------
It is evaluated when an order gets a buyer key (``buyer_key`` set or changed by an event),
or comes back from a refund (rule 8), right after that event, within the processing step:

1. The order must be *open* — packing has not started: ``CREATED``, ``PAID``,
   ``PENDING_REVIEW``, ``READY_TO_PACK``, or ``ON_HOLD`` interrupted from one of those — and
   not yet in a pack group; grouping must be on (``[pipeline] merge_window_s`` > 0).
2. Candidates are the buyer's orders in the buyer index (per tenant: no group ever spans
   tenants) first seen by the gateway within ``merge_window_s`` of this order, either side,
   including orders met earlier in the same step. The time is the gateway's first-seen time
   (``created_at_ms``, the buyer index's time), not the platform's order time: platform
   clocks and push delays differ, and the window is about orders waiting in this warehouse.
   An index entry whose order now carries another buyer key is ignored. A buyer key with
   more than ``SHARED_IDENTITY_ORDERS`` (50) other orders in the window is not one person — a
   masked phone, a parcel locker's or a company's address — and is never grouped (this
   also bounds the work per order).
3. An open candidate joins. A candidate already in a pack group brings its whole group (its
   open members, wherever their time) — unless packing of any member has started
   (``PACKING`` or beyond, or ``ON_HOLD``/``REFUND_INITIATED`` interrupted from there): that
   parcel is on the bench, the group is closed and left alone.
4. Only when the set spans at least two channels (the ``channel|`` prefix of the order id)
   does anything happen: merging one channel's orders is the platform's and the ERP's job.
5. The group id is the order id of the member first seen earliest (ties: the smaller order
   id). Members that join later never rename the group; when two groups meet, the earlier
   one's id survives and every member of the other is relabelled. Within one step all new
   orders share a first-seen time, so the id does not depend on the events' arrival order.
6. ``gateway._pipeline.step`` gives every order whose ``pack_group`` changes an audit record and
   queues ONE ``merge_pack`` outbox entry on the group's primary (its ``seq`` advances), with
   ``data = {"pack_group": id, "orders": [...earliest first], "replaces": [old ids]}`` and an
   ``event_id`` derived from the tenant, the id and the member list (``merge_event_id``), so
   re-processing the same events yields the same id. A newer ``merge_pack`` naming an order
   supersedes older ones for it upstream.

7. **Leaving.** When a member is withdrawn before its group's packing started — cancelled,
   refunded, or a refund requested (``CANCELLED``, ``REFUNDED``, ``REFUND_INITIATED``) — it
   leaves the group (``leave_pack_group``): its label is cleared, and the remaining open
   members get a new ``merge_pack`` (the earliest remaining member names the group, so the
   id changes only when the primary left; ``replaces`` says so). When fewer than two
   channels remain the group is dissolved: every label is cleared and the ``merge_pack``
   carries ``"orders": []`` and ``"dissolved": true``. ``data.removed`` lists who left.
   Once packing of any member started, nothing changes here: stopping that parcel is the
   pack line's refund interception.

8. **Coming back.** An order whose refund is withdrawn (``@resume`` from
   ``REFUND_INITIATED`` to an open state) is evaluated again as in rule 1: it rejoins its
   buyer's group (or forms one) while packing has not started.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import core_ext
from gateway._model import OrderState, Status

OrderPeek = Callable[[str, str], OrderState | None]
BuyerReader = Callable[[str, int, int], list[tuple[int, str]]]

#: States in which an order may still join a pack group.
OPEN_STATES = frozenset({Status.CREATED, Status.PAID, Status.PENDING_REVIEW, Status.READY_TO_PACK})
#: States in which packing has started (the parcel is on the bench or gone).
PACKING_STARTED = frozenset({Status.PACKING, Status.PACKED, Status.SHIPPED, Status.FULFILLMENT_STARTED,
                             Status.IN_TRANSIT, Status.DELIVERED})
_INTERRUPTED = frozenset({Status.ON_HOLD, Status.REFUND_INITIATED})
#: States that take an order out of its pack group (rule 7).
WITHDRAWN = frozenset({Status.CANCELLED, Status.REFUNDED, Status.REFUND_INITIATED})
#: More other orders than this under one buyer key in one window: a shared identity, not grouped.
SHARED_IDENTITY_ORDERS = 50


@dataclass(frozen=True)
class PackGroup:
    """A pack group to write.

    Attributes:
        pack_group: the group id (the order id of its earliest member).
        members: every open member, earliest first.
        changed: ``(order_id, old pack_group)`` of the members whose label changes.
    """

    pack_group: str
    members: tuple[str, ...]
    changed: tuple[tuple[str, str], ...]

    @property
    def replaces(self) -> list[str]:
        """Group ids that this group absorbed (sorted)."""
        return sorted({old for _, old in self.changed if old and old != self.pack_group})


def is_open(order: OrderState) -> bool:
    """True when packing of ``order`` has not started and it is not withdrawn (rule 1)."""
    status = order.status
    if status in OPEN_STATES:
        return True
    return status is Status.ON_HOLD and (order.resume_status is None or order.resume_status in OPEN_STATES)


def packing_started(order: OrderState) -> bool:
    """True when ``order`` is being packed or beyond (also when interrupted from there)."""
    status = order.status
    if status in PACKING_STARTED:
        return True
    return status in _INTERRUPTED and order.resume_status in PACKING_STARTED


def channel_of(order_id: str) -> str:
    """The channel of an order key: ``"douyin|691..."`` -> ``"douyin"``."""
    return order_id.partition("|")[0]


def merge_event_id(tenant: str, pack_group: str, members: tuple[str, ...] | list[str]) -> str:
    """The upstream ``event_id`` of a ``merge_pack`` instruction (16 hex digits).

    The core fingerprint of (tenant, ``"gateway"``, ``"merge_pack"``, group id, the member
    ids joined by newlines): the same group with the same members always gets the same id.
    """
    return f"{core_ext.fingerprint(tenant, 'gateway', 'merge_pack', pack_group, chr(10).join(members)):016x}"


def find_pack_group(order: OrderState, buyer_orders: BuyerReader, peek: OrderPeek,
                    window_ms: int) -> PackGroup | None:
    """The pack group ``order`` forms or joins now that it has a buyer key (module docstring).

    Args:
        order: the order that just got its buyer key, as the step holds it.
        buyer_orders: ``(tenant, buyer_key, since_ms) -> [(first_seen_ms, order_id)]``,
            the buyer index (oldest first; index entries of the current step included).
        peek: ``(tenant, order_id) -> OrderState | None``, read only (the step's working
            copy when it has one).
        window_ms: the merge window; 0 turns grouping off.

    Returns:
        The group with the labels that change, or ``None`` when nothing changes.
    """
    tenant, buyer = order.tenant, order.buyer_key
    if window_ms <= 0 or not buyer or order.pack_group or not is_open(order):
        return None
    first_seen = order.created_at_ms
    since = first_seen - window_ms
    seen: dict[str, tuple[int, OrderState]] = {order.order_id: (first_seen, order)}

    def read(entries: list[tuple[int, str]]) -> None:
        for time_ms, order_id in entries:
            if order_id not in seen:
                state = peek(tenant, order_id)
                if state is not None and state.buyer_key == buyer:  # else a stale index entry
                    seen[order_id] = (time_ms, state)

    entries = buyer_orders(tenant, buyer, max(0, since))
    own = order.order_id
    if all(order_id == own for _, order_id in entries):  # the common case: the buyer's only order
        return None
    until = first_seen + window_ms
    if sum(1 for time_ms, order_id in entries if time_ms <= until and order_id != own) > SHARED_IDENTITY_ORDERS:
        return None
    read(entries)
    near = [oid for oid, (time_ms, _) in seen.items()
            if oid != order.order_id and abs(time_ms - first_seen) <= window_ms]
    groups = {seen[oid][1].pack_group for oid in near} - {""}
    if groups:  # members of a group reach back to its primary, its earliest member
        reach = min((primary.created_at_ms for primary in (peek(tenant, g) for g in groups) if primary),
                    default=since)
        if reach < since:
            read(buyer_orders(tenant, buyer, max(0, reach)))
    members_of: dict[str, list[str]] = {}
    for order_id, (_, state) in seen.items():
        if state.pack_group:
            members_of.setdefault(state.pack_group, []).append(order_id)
    closed = {group for group, ids in members_of.items() if any(packing_started(seen[m][1]) for m in ids)}
    chosen = {order.order_id}
    for order_id in near:
        state = seen[order_id][1]
        if not is_open(state):
            continue
        if not state.pack_group:
            chosen.add(order_id)
        elif state.pack_group not in closed:
            chosen.update(m for m in members_of[state.pack_group] if is_open(seen[m][1]))
    if len({channel_of(order_id) for order_id in chosen}) < 2:
        return None
    members = tuple(sorted(chosen, key=lambda oid: (seen[oid][0], oid)))
    pack_group = members[0]
    changed = tuple((oid, seen[oid][1].pack_group) for oid in members if seen[oid][1].pack_group != pack_group)
    return PackGroup(pack_group, members, changed)


@dataclass(frozen=True)
class GroupLeft:
    """What remains of a pack group after a member left (rule 7).

    Attributes:
        old_group: the group id before.
        pack_group: the group id after ("" when dissolved).
        members: the remaining members, earliest first (empty when dissolved).
        relabel: ``(order_id, new label)`` of every order whose label changes, the leaver first.
        removed: the orders no longer in the group (the leaver; on dissolution the rest too).
    """

    old_group: str
    pack_group: str
    members: tuple[str, ...]
    relabel: tuple[tuple[str, str], ...]
    removed: tuple[str, ...]


def leave_pack_group(order: OrderState, buyer_orders: BuyerReader, peek: OrderPeek) -> GroupLeft | None:
    """The group that remains now that ``order`` was withdrawn (rule 7), or ``None``.

    Args:
        order: the order as the step holds it, already in its new (withdrawn) state.
        buyer_orders / peek: as for ``find_pack_group``.
    """
    group = order.pack_group
    if not group or order.status not in WITHDRAWN or not order.buyer_key:
        return None
    tenant, buyer = order.tenant, order.buyer_key
    primary = peek(tenant, group)
    since = primary.created_at_ms if primary is not None else 0  # the primary is the earliest member
    members: list[tuple[int, str, OrderState]] = []
    for time_ms, order_id in buyer_orders(tenant, buyer, since):
        state = order if order_id == order.order_id else peek(tenant, order_id)
        if state is not None and state.pack_group == group and state.buyer_key == buyer:
            members.append((time_ms, order_id, state))
    if any(packing_started(state) for _, order_id, state in members if order_id != order.order_id):
        return None  # the parcel is on the bench: the pack line intercepts it
    remaining = sorted((time_ms, order_id) for time_ms, order_id, state in members
                       if order_id != order.order_id and is_open(state))
    kept = tuple(order_id for _, order_id in remaining)
    if len({channel_of(order_id) for order_id in kept}) >= 2:
        new_group = kept[0]  # the same id unless the primary itself left
        relabel = [(order.order_id, "")] + ([(oid, new_group) for oid in kept] if new_group != group else [])
        return GroupLeft(group, new_group, kept, tuple(relabel), (order.order_id,))
    others = tuple(order_id for _, order_id, _ in sorted(members) if order_id != order.order_id)
    return GroupLeft(group, "", (), tuple([(order.order_id, "")] + [(oid, "") for oid in others]),
                     (order.order_id, *others))
