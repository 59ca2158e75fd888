"""Serial scales: MT-SICS replies and continuous frames parsed into a stable weight.

So the pack station can check a parcel's weight against the catalog. Two dialects:

* MT-SICS (Mettler Toledo and many others): we send ``S`` and the scale answers
  ``S S     1.234 kg`` once the weight is stable (``SI``: the weight now, ``S D`` if still
  moving); ``S I`` is busy (ask again), ``S +``/``S -`` over/under range, ``ES``/``ET``/
  ``EL`` syntax/transmission/logic errors. ``parse_sics_reply`` reads one line.
* continuous output: the scale streams frames on its own, their form per model.
  ``FrameFormat`` is a regex with a named ``weight`` group (and optional ``unit`` and
  ``state`` groups); ``StableWeightDetector`` decides when the readings have settled
  (``readings`` in a row within ``tolerance_g``), for scales that do not say so.

The parsers are pure; ``SerialScale`` does the I/O on a serial line (pyserial sets it
up, trio waits on its descriptor) and maps problems to ``gateway._errors``.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import trio

from devices.serial_port import StreamFactory, open_serial_stream
from gateway._errors import DeviceError, DeviceUnavailableError

GRAMS_PER_UNIT = {"mg": Decimal("0.001"), "g": Decimal(1), "kg": Decimal(1000), "t": Decimal(1000000),
                  "lb": Decimal("453.59237"), "oz": Decimal("28.349523125")}
_SICS_ERRORS = {"ES": "syntax error", "ET": "transmission error", "EL": "logic error"}
_SICS_RANGE = {"+": "over range (too heavy)", "-": "under range (check the empty pan)"}
_MAX_LINE_BYTES = 256


class ScaleFrameError(ValueError):
    """A line from the scale that is not a reply or frame we can read."""


@dataclass(frozen=True, slots=True)
class Weight:
    """A reading. ``stable``: the scale says so (``True``/``False``) or cannot tell (``None``)."""

    value: Decimal
    unit: str
    stable: bool | None = None

    @property
    def grams(self) -> Decimal:
        """The reading in grams, for comparing with the catalog."""
        return self.value * GRAMS_PER_UNIT[self.unit]

    def __str__(self) -> str:
        return f"{self.value} {self.unit}"


def _weight(value: str, unit: str, stable: bool | None) -> Weight:
    unit = unit.strip().lower()
    if unit not in GRAMS_PER_UNIT:
        raise ScaleFrameError(f"unknown unit {unit[:10]!r}")
    try:
        number = Decimal(re.sub(r"\s+", "", value))
    except InvalidOperation:
        raise ScaleFrameError(f"{value[:20]!r} is not a number") from None
    if not number.is_finite():
        raise ScaleFrameError(f"{value[:20]!r} is not a finite number")
    return Weight(number, unit, stable)


@dataclass(frozen=True, slots=True)
class SicsReply:
    """One MT-SICS reply line.

    Attributes:
        command: the reply's identifier (``S`` for both ``S`` and ``SI``, ``Z``, ``T``, ``ES``…).
        status: ``S`` stable, ``D`` dynamic, ``I`` busy, ``+``/``-`` range, ``A`` done,
            ``L`` not possible now, or ``E`` for the ``ES``/``ET``/``EL`` errors.
        weight: for ``S``/``D`` replies carrying one.
    """

    command: str
    status: str
    weight: Weight | None = None

    @property
    def problem(self) -> str:
        """What stands in the way of a weight, in words; ``""`` for a stable reading."""
        if self.status == "E":
            return _SICS_ERRORS.get(self.command, "error")
        if self.status in _SICS_RANGE:
            return _SICS_RANGE[self.status]
        return {"S": "", "D": "weight still moving", "I": "busy", "L": "not possible now"}.get(
            self.status, f"status {self.status}")


def parse_sics_reply(line: str | bytes) -> SicsReply:
    """Read one MT-SICS reply (with or without its CR LF).

    Raises:
        ScaleFrameError: anything that is not a reply we know.
    """
    if isinstance(line, bytes):
        line = line.decode("ascii", "replace")
    tokens = line.strip().split()
    if not tokens:
        raise ScaleFrameError("empty reply")
    if tokens[0] in _SICS_ERRORS and len(tokens) == 1:
        return SicsReply(tokens[0], "E")
    if len(tokens) < 2 or not tokens[0].isalpha() or not tokens[0].isupper():
        raise ScaleFrameError(f"not an MT-SICS reply: {line[:40]!r}")
    command, status = tokens[0], tokens[1]
    if status in ("S", "D") and len(tokens) >= 4:
        value = " ".join(tokens[2:-1])
        return SicsReply(command, status, _weight(value, tokens[-1], status == "S"))
    if status in ("I", "+", "-", "A", "L") and len(tokens) == 2:
        return SicsReply(command, status)
    raise ScaleFrameError(f"not an MT-SICS reply: {line[:40]!r}")


@dataclass(frozen=True, slots=True)
class FrameFormat:
    """How one scale model's continuous frames look.

    Args:
        pattern: a regex matched against the whole line (CR/LF removed), with a named
            ``weight`` group; optional ``unit`` (else ``default_unit``) and ``state``.
        default_unit: the unit when the frame carries none.
        stable_states: ``state`` values meaning stable (others: moving); with no
            ``state`` group the frame does not say, and ``StableWeightDetector`` decides.
        overload_states: ``state`` values meaning over range.
    """

    pattern: str
    default_unit: str = "kg"
    stable_states: tuple[str, ...] = ("ST",)
    overload_states: tuple[str, ...] = ("OL",)
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            regex = re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"scale frame pattern does not compile: {exc}") from exc
        if "weight" not in regex.groupindex:
            raise ValueError("scale frame pattern needs a named group 'weight'")
        if self.default_unit not in GRAMS_PER_UNIT:
            raise ValueError(f"unknown unit {self.default_unit!r}; one of {sorted(GRAMS_PER_UNIT)}")
        object.__setattr__(self, "_regex", regex)

    def parse(self, line: str | bytes) -> Weight:
        """One frame as a ``Weight``.

        Raises:
            ScaleFrameError: the line does not match, or the scale reports over range.
        """
        if isinstance(line, bytes):
            line = line.decode("ascii", "replace")
        match = self._regex.fullmatch(line.strip("\r\n"))
        if match is None:
            raise ScaleFrameError(f"frame does not match the configured format: {line[:40]!r}")
        groups = match.groupdict()
        state = groups.get("state")
        if state is not None and state in self.overload_states:
            raise ScaleFrameError("scale reports over range")
        stable = None if "state" not in self._regex.groupindex else state in self.stable_states
        return _weight(groups["weight"] or "", groups.get("unit") or self.default_unit, stable)


# "ST,GS,+  1.234kg": stable/unstable/overload, gross/net/tare, signed weight, unit.
STATE_GROSS_FRAME = FrameFormat(
    r"\s*(?P<state>ST|US|OL)\s*,\s*(?:GS|NT|TR)\s*,\s*(?P<weight>[+-]?\s*\d+(?:\.\d+)?)\s*(?P<unit>kg|g|lb|oz)\s*")
# "   1.234 kg" or "+0001.234": a bare weight, optional unit; stability from the detector.
PLAIN_FRAME = FrameFormat(r"\s*(?P<weight>[+-]?\s*\d+(?:\.\d+)?)\s*(?P<unit>kg|g|lb|oz)?\s*")


class StableWeightDetector:
    """Decides when continuous readings have settled.

    Args:
        readings: how many readings in a row must agree.
        tolerance_g: the most they may differ (max - min), in grams.
    """

    def __init__(self, readings: int = 5, tolerance_g: Decimal | int | str = 2) -> None:
        if readings < 2:
            raise ValueError("need at least 2 readings to call a weight stable")
        self.readings = readings
        self.tolerance_g = Decimal(tolerance_g)
        self._window: deque[Weight] = deque(maxlen=readings)

    def reset(self) -> None:
        """Forget the readings so far (a new parcel)."""
        self._window.clear()

    def feed(self, weight: Weight) -> Weight | None:
        """Add a reading; the latest one once ``readings`` in a row agree, else ``None``.

        A reading the scale itself flags as moving starts the count again.
        """
        if weight.stable is False:
            self._window.clear()
            return None
        self._window.append(weight)
        if len(self._window) < self.readings:
            return None
        grams = [reading.grams for reading in self._window]
        return weight if max(grams) - min(grams) <= self.tolerance_g else None


class SerialScale:
    """A scale on a serial line (or any stream ``connect`` opens), one request at a time.

    Args:
        name: the scale's configured name, used in errors.
        connect: opens the byte stream; ``SerialScale.serial`` builds one for a port.
        timeout_s: bound on each reply (and on a continuous read's wait for a stable weight).
        busy_retries: how often ``S I`` (busy) is asked again before giving up.
        busy_delay_s: the pause before asking again.
    """

    def __init__(self, name: str, connect: StreamFactory, *, timeout_s: float = 3.0,
                 busy_retries: int = 10, busy_delay_s: float = 0.2) -> None:
        self.name = name
        self._connect = connect
        self.timeout_s = timeout_s
        self.busy_retries = busy_retries
        self.busy_delay_s = busy_delay_s
        self._stream: trio.abc.Stream | None = None
        self._buffer = b""
        self._lock = trio.Lock()

    def __repr__(self) -> str:
        return f"SerialScale({self.name!r})"

    @classmethod
    def serial(cls, name: str, path: str, baudrate: int = 9600, *, timeout_s: float = 3.0,
               busy_retries: int = 10, busy_delay_s: float = 0.2) -> SerialScale:
        """A scale on the serial port ``path``."""
        async def connect() -> trio.abc.Stream:
            return await open_serial_stream(path, baudrate)
        return cls(name, connect, timeout_s=timeout_s, busy_retries=busy_retries, busy_delay_s=busy_delay_s)

    async def aclose(self) -> None:
        """Close the line (it is reopened by the next request)."""
        if self._stream is not None:
            stream, self._stream, self._buffer = self._stream, None, b""
            await stream.aclose()

    async def _line(self) -> bytes:
        """The next non-empty line (CR, LF or both end one). Opens the line if needed."""
        if self._stream is None:
            try:
                self._stream = await self._connect()
            except OSError as exc:
                raise DeviceUnavailableError(self.name, f"cannot open the scale ({exc})") from exc
        while True:
            parts = re.split(rb"[\r\n]+", self._buffer, maxsplit=1)
            if len(parts) == 2:
                self._buffer = parts[1]
                if parts[0].strip():
                    return parts[0]
                continue
            if len(self._buffer) > _MAX_LINE_BYTES:
                self._buffer = b""
                raise DeviceError(self.name, "the scale sends lines without an end; check the baud rate")
            chunk = await self._stream.receive_some(1024)
            if not chunk:
                raise trio.BrokenResourceError("the scale's line closed")
            self._buffer += chunk

    async def _exchange(self, command: bytes) -> SicsReply:
        try:
            with trio.fail_after(self.timeout_s):
                if self._stream is None:
                    self._stream = await self._connect()
                self._buffer = b""
                await self._stream.send_all(command + b"\r\n")
                line = await self._line()
        except (trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            await self.aclose()
            reason = f"no reply within {self.timeout_s:g} s" if isinstance(exc, trio.TooSlowError) else str(exc)
            raise DeviceUnavailableError(self.name, f"{command.decode()}: {reason}") from exc
        try:
            return parse_sics_reply(line)
        except ScaleFrameError as exc:
            raise DeviceError(self.name, f"{command.decode()}: {exc}") from exc

    async def read_stable(self, command: str = "S") -> Weight:
        """Ask for a stable weight (MT-SICS ``S``; ``SI`` accepts only a stable answer too).

        Raises:
            DeviceError: over/under range, a command error, or still busy after the retries.
            DeviceUnavailableError: no answer in time, or the line is gone.
        """
        async with self._lock:
            for _attempt in range(self.busy_retries + 1):
                reply = await self._exchange(command.encode("ascii"))
                if reply.weight is not None and reply.weight.stable:
                    return reply.weight
                if reply.status not in ("I", "D"):
                    raise DeviceError(self.name, f"no weight: {reply.problem}")
                await trio.sleep(self.busy_delay_s)
            raise DeviceError(self.name, f"no stable weight after {self.busy_retries + 1} tries")

    async def zero(self) -> None:
        """Zero the scale (MT-SICS ``Z``). Raises ``DeviceError`` if it refuses."""
        async with self._lock:
            reply = await self._exchange(b"Z")
        if reply.status != "A":
            raise DeviceError(self.name, f"zero refused: {reply.problem or reply.status}")

    async def read_continuous(self, frame_format: FrameFormat, detector: StableWeightDetector) -> Weight:
        """Read streamed frames until ``detector`` finds a stable weight (within ``timeout_s``).

        Frames that do not parse are skipped: a stream joined mid-frame starts with one.
        """
        async with self._lock:
            detector.reset()
            try:
                with trio.fail_after(self.timeout_s):
                    while True:
                        try:
                            weight = frame_format.parse(await self._line())
                        except ScaleFrameError:
                            continue
                        if (stable := detector.feed(weight)) is not None:
                            return stable
            except (trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                await self.aclose()
                raise DeviceUnavailableError(self.name, f"no stable weight within {self.timeout_s:g} s") from exc


__all__ = [
    "PLAIN_FRAME", "STATE_GROSS_FRAME", "FrameFormat", "ScaleFrameError", "SerialScale", "SicsReply",
    "StableWeightDetector", "Weight", "parse_sics_reply",
]
