"""What a pack session holds, and how it is carried across a store write or a crash.

``PackSession`` (``gateway._packline.session``) decides verdicts and moves between states;
this module is the part of it that is plain data: the fields every step reads and writes,
and the four ways out of and back into them:

* ``to_dict``: everything, JSON-ready (what a step stores, what the API shows);
* ``head_dict``: ``to_dict`` without the timeline, which ``gateway._packline.session_records``
  stores as one record per entry so a scan never rewrites the whole history;
* ``copy``: a working copy safe to mutate, what ``from_dict(to_dict())`` gives but cheaper
  (the station tries a step on a copy and keeps it only once the step is stored);
* ``from_dict``: the inverse of ``to_dict``: a restart continues exactly where a crash left it.

Timeline entries are shared between a session, its copies and its dicts: one is never
changed once appended, and copying them made a scan cost 11 ms at 313 entries
(``python -m benchmarks packline``). ``"format"`` marks the stored shape; a shape this
version does not know is refused rather than half-read. Pure: no I/O, no clock.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from typing import Any, Self

from gateway._packline.session_text import SessionState
from gateway._packline.values import Bill, BillComponent

_FORMAT = 1


class SessionData:
    """The fields of a pack session and their dict form; ``PackSession`` adds the steps.

    Attributes:
        order_states: each member order's status name when the session opened.
        unit_weights_g: unit weight per SKU (``None``: unknown) for the weight check.
        unknown_skus: the bill's SKUs the catalog lacks, sorted.
        state: ``open``, ``held``, ``stopped`` or ``closed``.
        stop: why it is held / stopped (``{"verdict", "message_zh", "message_en"}``);
            ``None`` when open.
        closing: the close (``{"verdict", "at_ms", "forced_by", "reason", "missing",
            "message_zh", "message_en"}``, plus ``"abandoned": True`` after an abandon).
        timeline: every event in order; an entry is never changed once appended.
    """

    def __init__(self, session_id: str, station: str, operator: str, tenant: str, bill: Bill, opened_at_ms: int,
                 *, order_states: Mapping[str, str], unit_weights_g: Mapping[str, int | None] | None = None,
                 unknown_skus: Collection[str] = ()) -> None:
        self.session_id = session_id
        self.station = station
        self.operator = operator
        self.tenant = tenant
        self.bill = bill
        self.opened_at_ms = opened_at_ms
        self.order_states: dict[str, str] = {k: str(v) for k, v in order_states.items()}
        self.unit_weights_g: dict[str, int | None] = dict(unit_weights_g or {})
        self.unknown_skus: list[str] = sorted(unknown_skus)
        self.state: SessionState = "open"
        #: Why it is held / stopped: ``{"verdict", "message_zh", "message_en"}``; ``None`` when open.
        self.stop: dict[str, str] | None = None
        #: The close: ``{"verdict", "at_ms", "forced_by", "reason", "missing", "message_zh", "message_en"}``
        #: (plus ``"abandoned": True`` after ``abandon``).
        self.closing: dict[str, Any] | None = None
        self.timeline: list[dict[str, Any]] = []
        self._serials: set[tuple[str, str]] = set()

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready. Timeline entries are shared: one is never changed once appended
        (copying them made a scan cost 11 ms at 313 entries, ``python -m benchmarks packline``)."""
        return {**self.head_dict(), "timeline": list(self.timeline)}

    def head_dict(self) -> dict[str, Any]:
        """``to_dict`` without the timeline (stored apart: ``gateway._packline.session_records``)."""
        return {"format": _FORMAT, "session_id": self.session_id, "station": self.station, "operator": self.operator,
                "tenant": self.tenant, "bill": self.bill.to_dict(), "opened_at_ms": self.opened_at_ms,
                # Read-only conveniences for the evidence and the after-sales view (from_dict ignores them).
                "group_id": self.bill.group_id, "orders": list(self.bill.orders),
                "closed_at_ms": self.closing["at_ms"] if self.closing is not None else 0,
                "order_states": dict(self.order_states), "unit_weights_g": dict(self.unit_weights_g),
                "unknown_skus": list(self.unknown_skus), "state": self.state,
                "stop": dict(self.stop) if self.stop is not None else None, "closing": copy.deepcopy(self.closing),
                "serials": [list(pair) for pair in sorted(self._serials)]}

    def copy(self) -> Self:
        """A working copy safe to mutate: what ``from_dict(to_dict())`` gives, at a fifth of the
        cost (timeline entries are shared: one is never changed once appended)."""
        twin = type(self).__new__(type(self))
        twin.session_id, twin.station, twin.operator, twin.tenant = (self.session_id, self.station, self.operator,
                                                                     self.tenant)
        twin.bill, twin.opened_at_ms = self.bill.copy(), self.opened_at_ms
        twin.order_states, twin.unit_weights_g = dict(self.order_states), dict(self.unit_weights_g)
        twin.unknown_skus, twin.state = list(self.unknown_skus), self.state
        twin.stop = dict(self.stop) if self.stop is not None else None
        twin.closing = copy.deepcopy(self.closing)
        twin.timeline, twin._serials = list(self.timeline), set(self._serials)
        return twin

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Self:
        """Inverse of ``to_dict``.

        Raises:
            ValueError: a stored format this version does not know.
        """
        if raw.get("format") != _FORMAT:
            raise ValueError(f"pack session format {raw.get('format')!r} is not {_FORMAT}: restore with a newer "
                             "gateway or close the session by hand")
        session = cls(raw["session_id"], raw["station"], raw["operator"], raw["tenant"], Bill.from_dict(raw["bill"]),
                      int(raw["opened_at_ms"]), order_states=raw["order_states"],
                      unit_weights_g=raw["unit_weights_g"], unknown_skus=raw["unknown_skus"])
        if raw["state"] not in ("open", "held", "stopped", "closed"):
            raise ValueError(f"pack session state {raw['state']!r} is not one of open, held, stopped, closed")
        session.state = raw["state"]
        session.stop = dict(raw["stop"]) if raw["stop"] is not None else None
        session.closing = copy.deepcopy(raw["closing"])
        session._serials = {(str(sku), str(serial)) for sku, serial in raw["serials"]}
        session.timeline = list(raw["timeline"])  # entries are never changed once appended: shared
        return session

    def _live(self) -> list[BillComponent]:
        return [c for c in self.bill.components if c.parcel == 1 and c.status != "removed"]

    def _packed_units(self) -> int:
        return sum(min(c.packed, c.quantity) for c in self._live())

    def _total_units(self) -> int:
        return sum(c.quantity for c in self._live())


__all__ = ["SessionData"]
