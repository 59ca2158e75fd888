"""The pack station's customs-declaration hold: a cross-border order is not packed incomplete.

``LineDeclarations`` (part of ``PackLine``, below ``line_scans``) asks ``gateway._customs``
for the declaration of every order of a pack group when a session opens:

* incomplete: the session opens **held** with ``DECLARATION_INCOMPLETE`` (the same path as a
  gift-stock hold, ``STOP_NO_STOCK``: ``open_session(hold=...)``); every scan answers it
  again, naming what is missing and which product or supplier record fills it; a
  ``customs_hold`` record per order goes into the same write batch (the anomaly board's
  ``declaration_incomplete``). No supervisor releases it (``PackSession.release`` refuses).
* complete: the session opens as usual, and a declaration not yet forwarded goes upstream as
  its own ``declaration`` event in the same write batch as the ``pack_open`` events.

Released automatically: while a session is held for its declaration, each scan at the station
(except another order's barcode, which moves on to that order as for any held session) first
checks the declaration again; once it is complete (an import filled it), the held session is
abandoned and the group opens again at once (``OPENED``, its declaration forwarded): the
next scan packs normally.
"""

from __future__ import annotations

from gateway._customs import Declaration, declaration_forward, declare_stored, hold_stop, hold_writes
from gateway._model import OrderState
from gateway._packline.line_base import LineBase, StationRunner
from gateway._packline.session import PackSession
from gateway._packline.station import Outcome
from gateway._packline.values import Verdict


class LineDeclarations(LineBase):
    """The declaration check at a session's opening and the automatic release (module docstring)."""

    def _declarations(self, members: list[OrderState]) -> list[Declaration]:
        """The declarations of a group's cross-border orders (none when the check is off)."""
        if not self.customs.enabled:
            return []
        found = (declare_stored(self.store, self.customs, member) for member in members)
        return [declaration for declaration in found if declaration is not None]

    def _declaration_hold(self, members: list[OrderState]) -> tuple[list[Declaration], dict[str, str] | None]:
        """``(declarations, the DECLARATION_INCOMPLETE stop or None)`` for opening a group."""
        declarations = self._declarations(members)
        return declarations, hold_stop(declarations, self.customs)

    def _declaration_outcome(self, outcome: Outcome, runner: StationRunner, declarations: list[Declaration],
                             group_id: str, at: int) -> None:
        """What the opening adds to its write: the holds of a held group, or the forwarded
        declarations of an opened one."""
        if outcome.verdict is Verdict.DECLARATION_INCOMPLETE:
            outcome.extra.merge(hold_writes(self.store, declarations, group_id, at, runner.name))
            outcome.detail["declaration_missing"] = [
                {"order_id": d.order_id, **n.to_dict(self.customs.attributes[n.attribute])}
                for d in declarations for n in d.missing]
            return
        if outcome.verdict is not Verdict.OPENED:
            return
        actor = f"operator:{runner.operator or '-'}@station:{runner.name}"
        for declaration in declarations:
            forwarded = declaration_forward(self.store, declaration, at, actor)
            if forwarded is not None:
                outcome.events.append(forwarded[0])
                outcome.extra.merge(forwarded[1])

    def _declaration_done(self, session: PackSession) -> OrderState | None:
        """The group's primary order when ``session`` is held for its declaration and the
        declaration is complete now (reopen it); ``None`` otherwise. A still incomplete
        declaration refreshes the session's stop, so the answer names what is missing now."""
        stop = session.stop or {}
        if session.state != "held" or stop.get("verdict") != Verdict.DECLARATION_INCOMPLETE.value:
            return None
        orders = [self.store.get_order(session.tenant, order_id) for order_id in session.bill.orders]
        members = [order for order in orders if order is not None]
        _, fresh = self._declaration_hold(members)
        if fresh is not None:
            session.stop = fresh
            return None
        return members[0] if members else None


__all__ = ["LineDeclarations"]
