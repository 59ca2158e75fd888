"""Scale parsers (pure) and the serial scale driver against the pty simulator."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from devices.scale import (
    PLAIN_FRAME,
    STATE_GROSS_FRAME,
    FrameFormat,
    ScaleFrameError,
    SerialScale,
    StableWeightDetector,
    Weight,
    parse_sics_reply,
)
from devices.simulators.scale import open_scale_simulator
from gateway._errors import DeviceError, DeviceUnavailableError


@pytest.mark.parametrize("line, status, weight, stable", [
    ("S S      1.234 kg\r\n", "S", Decimal("1.234"), True),
    (b"S D      1.230 kg", "D", Decimal("1.230"), False),
    ("S S     -0.002 kg", "S", Decimal("-0.002"), True),
    ("S S    850.5 g", "S", Decimal("850.5"), True),
])
def test_sics_weights(line, status, weight, stable):
    reply = parse_sics_reply(line)
    assert reply.command == "S" and reply.status == status
    assert reply.weight is not None and reply.weight.value == weight and reply.weight.stable is stable


@pytest.mark.parametrize("line, status, problem", [
    ("S I", "I", "busy"),
    ("S +", "+", "over range (too heavy)"),
    ("S -", "-", "under range (check the empty pan)"),
    ("ES", "E", "syntax error"),
    ("EL", "E", "logic error"),
    ("Z A", "A", "status A"),
])
def test_sics_states(line, status, problem):
    reply = parse_sics_reply(line)
    assert reply.status == status and reply.weight is None and reply.problem == problem


@pytest.mark.parametrize("line", ["", "hello world", "S S abc kg", "S S 1.2 stone", "S S", "s s 1 kg", "S Q"])
def test_bad_sics_lines_are_refused(line):
    with pytest.raises(ScaleFrameError):
        parse_sics_reply(line)


@given(st.one_of(st.binary(max_size=40), st.text(max_size=40)))
def test_random_lines_never_crash_the_parsers(line):
    for parse in (parse_sics_reply, STATE_GROSS_FRAME.parse, PLAIN_FRAME.parse):
        try:
            parse(line)
        except ScaleFrameError as exc:
            assert str(exc)


def test_weight_in_grams():
    assert Weight(Decimal("1.234"), "kg").grams == Decimal("1234.000")
    assert Weight(Decimal("1"), "lb").grams == Decimal("453.59237")


@pytest.mark.parametrize("frame, value, stable", [
    ("ST,GS,+  1.234kg", Decimal("1.234"), True),
    ("US,GS,+  1.200kg\r\n", Decimal("1.200"), False),
    ("ST,NT,-   0.050 kg", Decimal("-0.050"), True),
])
def test_state_gross_frames(frame, value, stable):
    weight = STATE_GROSS_FRAME.parse(frame)
    assert (weight.value, weight.unit, weight.stable) == (value, "kg", stable)


def test_overload_frame_is_an_error():
    with pytest.raises(ScaleFrameError, match="over range"):
        STATE_GROSS_FRAME.parse("OL,GS,+  0.000kg")


def test_plain_frames_and_a_custom_format():
    assert PLAIN_FRAME.parse("  +0001.234") == Weight(Decimal("1.234"), "kg", None)
    assert PLAIN_FRAME.parse("850 g").grams == Decimal(850)
    custom = FrameFormat(r"W=(?P<weight>\d+)", default_unit="g")
    assert custom.parse("W=1520").grams == Decimal(1520)
    with pytest.raises(ValueError, match="weight"):
        FrameFormat(r"(?P<w>\d+)")
    with pytest.raises(ValueError, match="compile"):
        FrameFormat(r"(?P<weight>\d+")


def kg(text: str, stable: bool | None = None) -> Weight:
    return Weight(Decimal(text), "kg", stable)


def test_detector_waits_for_readings_within_tolerance():
    detector = StableWeightDetector(readings=3, tolerance_g=2)
    assert [detector.feed(kg(v)) for v in ("0.5", "1.1", "1.230", "1.231")] == [None, None, None, None]
    assert detector.feed(kg("1.232")) == kg("1.232")       # 1.230..1.232: 2 g apart


def test_detector_restarts_on_a_reading_flagged_moving():
    detector = StableWeightDetector(readings=2, tolerance_g=1)
    detector.feed(kg("1.000"))
    assert detector.feed(kg("1.000", stable=False)) is None
    assert detector.feed(kg("1.000")) is None
    assert detector.feed(kg("1.000")) == kg("1.000")


def test_detector_compares_across_units():
    detector = StableWeightDetector(readings=2, tolerance_g=1)
    detector.feed(kg("1.000"))
    assert detector.feed(Weight(Decimal("1000.5"), "g")) is not None


async def test_stable_weight_over_a_pty():
    with trio.fail_after(10):
        async with open_scale_simulator("2.345") as simulator:
            scale = SerialScale.serial("scale-1", simulator.path, 9600)
            try:
                assert await scale.read_stable() == kg("2.345", stable=True)
                simulator.weight = Decimal("0.780")
                assert (await scale.read_stable()).grams == Decimal("780.000")
                await scale.zero()
                assert simulator.commands == ["S", "S", "Z"]
            finally:
                await scale.aclose()


async def test_busy_scale_is_asked_again():
    with trio.fail_after(10):
        async with open_scale_simulator("1.5") as simulator:
            simulator.busy_replies = 2
            scale = SerialScale.serial("scale-1", simulator.path, busy_delay_s=0.01)
            try:
                assert (await scale.read_stable()).value == Decimal("1.5")
                assert simulator.commands == ["S", "S", "S"]
            finally:
                await scale.aclose()


async def test_moving_weight_via_si_settles():
    with trio.fail_after(10):
        async with open_scale_simulator("1.5") as simulator:
            simulator.stable = False
            scale = SerialScale.serial("scale-1", simulator.path, busy_delay_s=0.05)
            try:
                async with trio.open_nursery() as nursery:
                    async def settle():
                        await trio.sleep(0.2)
                        simulator.stable = True
                    nursery.start_soon(settle)
                    assert (await scale.read_stable("SI")).stable is True
                assert simulator.commands[0] == "SI" and len(simulator.commands) > 1
            finally:
                await scale.aclose()


async def test_overload_and_silence_are_errors_with_a_reason():
    with trio.fail_after(10):
        async with open_scale_simulator() as simulator:
            scale = SerialScale.serial("scale-1", simulator.path, timeout_s=0.3)
            try:
                simulator.overload = True
                with pytest.raises(DeviceError, match="scale-1: no weight: over range"):
                    await scale.read_stable()
                simulator.overload, simulator.silent = False, True
                with pytest.raises(DeviceUnavailableError, match="no reply within 0.3 s"):
                    await scale.read_stable()
                simulator.silent = False              # the line is reopened by the next request
                assert (await scale.read_stable()).value == Decimal("1.234")
            finally:
                await scale.aclose()


async def test_missing_port_is_unavailable():
    scale = SerialScale.serial("scale-1", "/dev/does-not-exist-scale")
    with trio.fail_after(10), pytest.raises(DeviceUnavailableError, match="scale-1"):
        await scale.read_stable()


async def test_continuous_frames_give_the_settled_weight():
    with trio.fail_after(10):
        async with open_scale_simulator("1.234", mode="continuous",
                                        settling=("0.400", "1.100", "1.250", "1.236")) as simulator:
            scale = SerialScale.serial("scale-1", simulator.path, timeout_s=3)
            try:
                weight = await scale.read_continuous(STATE_GROSS_FRAME, StableWeightDetector(readings=3))
                assert weight == kg("1.234", stable=True)
                assert simulator.settling == []
            finally:
                await scale.aclose()
