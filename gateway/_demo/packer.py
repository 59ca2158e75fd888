"""A simulated packer at each demo station: it packs the demo ERP's orders as a person would.

In: the ERP's pick list (``DemoErp.next_pick``), the station's screen (``GET /stations/<name>/view``,
the same view the page shows) and the physical items (``gateway._demo.catalog``: the barcode
printed on each SKU). Out: scanner frames written into the station's scanner simulator, exactly
what a fixed-mount scanner sends for a read (``frame(code, aim="]E0")`` for an EAN-13,
``]C0`` for the Code 128 of a badge, a pick slip or a control card), and, when the script says
so, a refund the ERP posts while the parcel is on the bench.

The packer signs in with its badge, takes the next pick task, scans the order number on its
pick slip, reads the parcel's bill off the screen (SKUs, quantities, which units belong to
this parcel) and scans one unit at a time with a small human pause, waiting to see each
verdict before the next scan. With ``close_mode = "auto"`` the last expected unit closes the
parcel and the label prints.

Sometimes it makes a mistake, chosen by ``choose_mishap``: a pure function of the seed, the
station and the parcel's number, so a run's mistakes are the same every time. Every round of
``len(DECK)`` parcels holds each mishap once, shuffled: it forgets a gift (``#CLOSE`` answers
``MISSING``, then it scans the gift and the parcel closes), scans a wrong item (``WRONG_ITEM``,
then the right ones), scans one unit too many (``EXTRA``), or the buyer refunds while it packs
(``STOP_REFUND`` at once; it scans ``#CANCEL`` and moves on). ``script_parcel`` turns the bill
and the mishap into the scans and the verdict expected for each, also pure.

A parcel held for its customs declaration (``DECLARATION_INCOMPLETE`` at the pick slip: a
cross-border order whose declaration misses a value) is set aside: the packer scans its slip
again every ``RESCAN_S`` until an import completes the declaration and the slip opens it, then
packs it without a mishap. The station's screen is read through ``gateway._demo.screen``.

A verdict other than the expected one is logged (WARNING) and the packer falls back to what a
person would do: scan what the screen still lists, else ``#CANCEL``.
"""

from __future__ import annotations

import enum
import logging
import random
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import trio

from devices.simulators.scanner import frame
from gateway._demo.catalog import ITEM_SKUS, barcode_of, product_of_barcode
from gateway._demo.screen import VERDICT_WAIT_S, StationScreen, verdict_of

log = logging.getLogger("gateway.demo")

#: The seed of the packers' choices: fixed, so every ``make run`` makes the same mistakes.
DEMO_SEED = 7
#: A person's pause before each scan, seconds (uniform in this range).
PAUSE_S = (0.5, 1.1)
#: A parcel held for its customs declaration: its pick slip is scanned again this often ...
RESCAN_S = 3.0
#: ... this many times at most (then the packer cancels it and moves on).
HOLD_RESCANS = 20
HELD = "DECLARATION_INCOMPLETE"
#: Control cards on the bench (``[packline]`` defaults).
CLOSE_CODE, CANCEL_CODE = "#CLOSE", "#CANCEL"
GIFT_KINDS = frozenset({"gift", "gift_box", "trial"})


class Mishap(enum.StrEnum):
    """What goes wrong with one parcel."""

    NONE = "none"
    FORGET_GIFT = "forget_gift"
    WRONG_ITEM = "wrong_item"
    EXTRA = "extra"
    REFUND = "refund"


#: One round of parcels: each mishap once, two parcels without one; shuffled per round.
DECK: tuple[Mishap, ...] = (Mishap.NONE, Mishap.FORGET_GIFT, Mishap.WRONG_ITEM, Mishap.NONE, Mishap.EXTRA,
                            Mishap.REFUND)

#: What is staged instead of a mishap the parcel cannot have, in this order.
FALLBACKS: tuple[Mishap, ...] = (Mishap.FORGET_GIFT, Mishap.EXTRA, Mishap.REFUND, Mishap.WRONG_ITEM)

_DESCRIBED = {
    Mishap.NONE: "", Mishap.FORGET_GIFT: " (this time the packer forgets the gift)",
    Mishap.WRONG_ITEM: " (this time the packer picks up a wrong item)",
    Mishap.EXTRA: " (this time the packer scans one unit too many)",
    Mishap.REFUND: " (this time the buyer refunds while it is packed)",
}


def choose_mishap(seed: int, station: str, parcel_no: int) -> Mishap:
    """The mishap planned for the ``parcel_no``-th parcel (0-based) of ``station``. Pure."""
    round_no, index = divmod(parcel_no, len(DECK))
    deck = list(DECK)
    random.Random(f"{seed}:{station}:{round_no}").shuffle(deck)
    return deck[index]


def badge_of(station: str) -> str:
    """The badge of the packer at ``station`` (stable per station name)."""
    return f"OP-{zlib.crc32(station.encode()) % 10_000:04d}"


def parcel_rng(seed: int, station: str, parcel_no: int) -> random.Random:
    """The random source of one parcel's details (pauses, which unit, which wrong item)."""
    return random.Random(f"{seed}:{station}:parcel:{parcel_no}")


@dataclass(frozen=True, slots=True)
class Step:
    """One thing the packer does, and the verdict it expects to see.

    Attributes:
        code: what it scans (a barcode or a control card); ``""`` for ``refund``.
        expect: the verdict expected on the screen (``OK``, ``CLOSED``, ``MISSING``...).
        action: ``scan``, or ``refund`` (the buyer refunds the parcel's order now).
    """

    code: str
    expect: str
    action: str = "scan"


def units_to_pack(components: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """``(sku, kind)`` of each unit still to go into this parcel, in bill order."""
    units: list[tuple[str, str]] = []
    for component in components:
        if int(component.get("parcel", 1)) != 1 or component.get("status") in ("removed", "shipped"):
            continue
        remaining = int(component.get("quantity", 0)) - int(component.get("packed", 0))
        units.extend([(str(component["sku"]), str(component.get("kind", "item")))] * max(0, remaining))
    return units


def _extra_positions(skus: Sequence[str]) -> list[int]:
    """Indexes after which a unit's SKU is complete while the parcel is not."""
    return [i for i in range(len(skus) - 1) if skus[i] not in skus[i + 1:]]


def _feasible(mishap: Mishap, units: Sequence[tuple[str, str]], orders: int) -> bool:
    if mishap is Mishap.FORGET_GIFT:
        return any(kind in GIFT_KINDS for _, kind in units)
    if mishap is Mishap.EXTRA:
        return bool(_extra_positions([sku for sku, _ in units]))
    if mishap is Mishap.REFUND:
        return orders == 1 and bool(units)
    if mishap is Mishap.WRONG_ITEM:
        return bool(units)
    return True


def script_parcel(components: Sequence[Mapping[str, Any]], orders: int, mishap: Mishap,
                  rng: random.Random) -> tuple[Mishap, tuple[Step, ...]]:
    """The scans that pack a parcel, with the planned mishap. Pure.

    Args:
        components: the open session's bill as the screen shows it (``session.components``).
        orders: how many orders the parcel holds (a refund is only staged for one).
        mishap: the planned mishap; one this parcel cannot have (no gift to forget, a single
            unit to over-scan, a refund in a parcel of two orders) becomes the first of
            ``FALLBACKS`` it can have (``WRONG_ITEM`` always can).
        rng: the parcel's random source (``parcel_rng``).

    Returns:
        The mishap that is staged and the steps, each with its expected verdict. Units whose
        SKU has no demo barcode are left out (the packer cannot pick them up).
    """
    units = [(sku, kind) for sku, kind in units_to_pack(components) if barcode_of(sku)]
    if not units:
        return Mishap.NONE, ()
    if not _feasible(mishap, units, orders):
        mishap = next(m for m in FALLBACKS if _feasible(m, units, orders))
    codes = [str(barcode_of(sku)) for sku, _ in units]
    held_back: str | None = None
    if mishap is Mishap.FORGET_GIFT:
        gift_at = max(i for i, (_, kind) in enumerate(units) if kind in GIFT_KINDS)
        held_back = codes.pop(gift_at)
    steps = [Step(code, "OK") for code in codes]
    if steps and held_back is None:
        steps[-1] = Step(steps[-1].code, "CLOSED")
    if mishap is Mishap.FORGET_GIFT and held_back is not None:
        steps += [Step(CLOSE_CODE, "MISSING"), Step(held_back, "CLOSED")]
    elif mishap is Mishap.WRONG_ITEM:
        in_bill = {sku for sku, _ in units}
        wrong = rng.choice([sku for sku in ITEM_SKUS if sku not in in_bill and barcode_of(sku)])
        steps.insert(rng.randrange(len(steps)), Step(str(barcode_of(wrong)), "WRONG_ITEM"))
    elif mishap is Mishap.EXTRA:
        at = rng.choice(_extra_positions([sku for sku, _ in units]))
        steps.insert(at + 1, Step(codes[at], "EXTRA"))
    elif mishap is Mishap.REFUND:
        steps = [*steps[:1], Step("", "STOP_REFUND", "refund"), Step(CANCEL_CODE, "OK")]
        if len(units) == 1:
            steps = steps[1:]  # refunded before the first unit
    return mishap, tuple(steps)


def progress(view: Mapping[str, Any]) -> tuple[int, int]:
    """``(units scanned, units expected)`` of this parcel on the screen."""
    session = view.get("session") or {}
    live = [c for c in session.get("components", ()) if int(c.get("parcel", 1)) == 1 and c.get("status") != "removed"]
    return sum(int(c.get("packed", 0)) for c in live), sum(int(c.get("quantity", 0)) for c in live)


def describe(code: str) -> str:
    """A scanned code as a log shows it: an item's barcode with its name."""
    product = product_of_barcode(code)
    return f"{code} {product.name}" if product is not None else code


def aim_of(code: str) -> str:
    """The AIM symbology identifier a scanner puts before ``code``: EAN-13 or Code 128."""
    return "]E0" if len(code) == 13 and code.isdigit() else "]C0"


def _new_verdict(before: Any, verdict: str, view: Mapping[str, Any]) -> bool:
    last = view.get("last")
    return isinstance(last, Mapping) and last != before and last.get("verdict") == verdict


# -- the running packer -----------------------------------------------------------------


class Bench(Protocol):
    """What the packer needs from the ERP (``gateway._demo.feeder.DemoErp`` plus its poster)."""

    def next_pick(self) -> tuple[tuple[str, ...], str] | None: ...
    def packed(self, order_ids: Sequence[str]) -> None: ...
    def abandoned(self, order_ids: Sequence[str]) -> None: ...


class Scanner(Protocol):
    async def wait_connected(self) -> None: ...
    async def send(self, data: bytes) -> None: ...


class Packer:
    """One simulated person at one station (see the module docstring).

    Args:
        station: the station's name.
        scanner: its scanner simulator.
        screen: its screen.
        bench: the ERP's pick list.
        refund: posts the ERP's refund of an order id, now.
        seed: the seed of its choices (``DEMO_SEED``).
        pause_s: the range of its pauses before each scan.
    """

    def __init__(self, station: str, scanner: Scanner, screen: StationScreen, bench: Bench,
                 refund: Callable[[str], Awaitable[None]], seed: int = DEMO_SEED,
                 pause_s: tuple[float, float] = PAUSE_S) -> None:
        self.station = station
        self.scanner = scanner
        self.screen = screen
        self.bench = bench
        self.refund = refund
        self.seed = seed
        self.pause_s = pause_s
        self.parcels = 0
        self._rng = random.Random(f"{seed}:{station}:pauses")

    def __repr__(self) -> str:
        return f"Packer({self.station!r}, parcels={self.parcels})"

    async def serve(self) -> None:
        """Sign in, then pack until cancelled."""
        await self.scanner.wait_connected()
        view = await self.screen.wait_for(lambda v: True, 30.0) or {}
        session = view.get("session")
        if session and session.get("state") != "closed":  # left open by an earlier run
            await self.scan(CANCEL_CODE)
        await self.scan(badge_of(self.station))
        while True:
            pick = self.bench.next_pick()
            if pick is None:
                await trio.sleep(0.5)
                continue
            orders, slip = pick
            await self.pack(orders, slip)

    async def scan(self, code: str, expect: str = "") -> dict[str, Any] | None:
        """Pause, scan ``code``, wait for its verdict on the screen and log it."""
        await trio.sleep(self._rng.uniform(*self.pause_s))
        before = (await self.screen.view()).get("last")
        await self.scanner.send(frame(code, aim=aim_of(code)))
        view = await self.screen.wait_for(
            lambda v: bool(v.get("last")) and v["last"] != before and v["last"].get("code") == code)
        return self._noted(view, describe(code), expect)

    async def pack(self, orders: tuple[str, ...], slip: str) -> None:
        """Pack one pick task (module docstring); tell the ERP how it ended."""
        parcel_no, self.parcels = self.parcels, self.parcels + 1
        view = await self.scan(slip)
        held = verdict_of(view) == HELD
        if held:
            view = await self._until_declared(orders, slip)
        last = (view or {}).get("last") or {}
        session = (view or {}).get("session") or {}
        if last.get("verdict") != "OPENED":
            log.warning("demo packer %s: expected OPENED, the station answered %s", self.station, verdict_of(view))
            if session.get("state") not in (None, "closed"):
                await self.scan(CANCEL_CODE)
            self.bench.abandoned(orders)
            return
        planned = Mishap.NONE if held else choose_mishap(self.seed, self.station, parcel_no)
        mishap, steps = script_parcel(session.get("components", ()), len(session.get("orders", ())), planned,
                                      parcel_rng(self.seed, self.station, parcel_no))
        scanned, expected = progress(view or {})
        log.info("demo packer %s: parcel %s opened, %d unit(s) to pack%s", self.station, " + ".join(orders),
                 expected - scanned, _DESCRIBED[mishap])
        outcome = await self._run(steps, orders)
        if outcome == "":
            outcome = await self._finish()
        if outcome == "packed":
            self.bench.packed(orders)
        elif outcome == "abandoned":
            self.bench.abandoned(orders)

    async def _until_declared(self, orders: Sequence[str], slip: str) -> dict[str, Any] | None:
        """A parcel held for its customs declaration: set aside, its slip scanned again every
        ``RESCAN_S`` until an import completes the declaration (``OPENED``; packed with care,
        no mishap) or ``HOLD_RESCANS`` scans have all answered ``DECLARATION_INCOMPLETE``."""
        log.info("demo packer %s: parcel %s is held for its customs declaration: set aside, slip %s scanned again "
                 "every %.0f s until the pre-declaration board (/customs) is filled", self.station,
                 " + ".join(orders), slip, RESCAN_S)
        view: dict[str, Any] | None = None
        for _ in range(HOLD_RESCANS):
            await trio.sleep(RESCAN_S)
            view = await self.scan(slip)
            if verdict_of(view) != HELD:
                break
        return view

    async def _run(self, steps: Sequence[Step], orders: Sequence[str]) -> str:
        """The scripted steps: ``packed``, ``refunded``, or ``""`` when the screen disagreed."""
        for step in steps:
            if step.action == "refund":
                await trio.sleep(self._rng.uniform(*self.pause_s))
                before = (await self.screen.view()).get("last")
                await self.refund(orders[0])
                view = await self.screen.wait_for(partial(_new_verdict, before, "STOP_REFUND"))
                self._noted(view, f"refund of {orders[0]}", step.expect)
                if view is None:
                    return ""
                continue
            view = await self.scan(step.code, step.expect)
            verdict = ((view or {}).get("last") or {}).get("verdict")
            if verdict != step.expect:
                return ""
            if step.code == CANCEL_CODE:
                return "refunded"
            if verdict == "CLOSED":
                return "packed"
        return ""

    async def _finish(self) -> str:
        """What a person does when the screen surprised them: scan what it still lists, else cancel."""
        for _ in range(40):
            view = await self.screen.view()
            session = view.get("session") or {}
            if not session or session.get("state") == "closed":
                return "packed" if ((view.get("last") or {}).get("verdict") in ("CLOSED", "PARTIAL_CLOSE")) \
                    else "abandoned"
            if session.get("state") != "open":
                break
            todo = [barcode_of(sku) for sku, _ in units_to_pack(session.get("components", ()))]
            codes = [code for code in todo if code]
            if not codes:
                break
            await self.scan(codes[0])
        await self.scan(CANCEL_CODE)
        return "abandoned"

    def _noted(self, view: dict[str, Any] | None, what: str, expect: str) -> dict[str, Any] | None:
        if view is None:
            log.warning("demo packer %s: scanned %s, no verdict on the screen within %.0f s", self.station, what,
                        VERDICT_WAIT_S)
            return None
        last = view["last"]
        verdict = last.get("verdict", "?")
        scanned, expected = progress(view)
        session = view.get("session") or {}
        shown = session.get("state") not in (None, "closed") or verdict == "CLOSED"
        count = f" ({scanned}/{expected})" if expected and shown else ""
        log.info("demo packer %s: %s -> %s%s: %s", self.station, f"scanned {what}" if not what.startswith("refund")
                 else what, verdict, count, last.get("message_en", ""))
        if expect and verdict != expect:
            log.warning("demo packer %s: expected %s, the station answered %s", self.station, expect, verdict)
        return view


__all__ = ["DECK", "DEMO_SEED", "FALLBACKS", "Mishap", "Packer", "StationScreen", "Step", "badge_of", "choose_mishap",
           "parcel_rng", "progress", "script_parcel", "units_to_pack"]
