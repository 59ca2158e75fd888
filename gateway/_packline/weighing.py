"""The weight check at close: a station's scale read once, when the parcel is complete.

With ``[packline] weight_tolerance_g`` above 0 and a ``[stations.NAME.scale]``, a complete
parcel is weighed before it closes: the session compares the stable weight with the sum of
the catalog's unit weights (``PackSession.weight_check``; the allowance is the larger of
``weight_tolerance_g`` and ``weight_tolerance_pct`` of the expected weight, so the box and
filler fit in ``weight_tolerance_g``). Off by more -> ``WEIGHT_MISMATCH`` and the parcel stays
open (take it off the scale, check it, close again); a supervisor's forced close is not
weighed. A scale that does not answer (unplugged, never stable) does not stop the line: the
parcel closes and its close records "weight not checked" with the scale's error, which the
station shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from devices.scale import PLAIN_FRAME, STATE_GROSS_FRAME, SerialScale, StableWeightDetector
from gateway._settings import ScaleSection

#: A scale's reply or a stable reading must come within this (a parcel is put down and still).
WEIGH_TIMEOUT_S = 3.0


@dataclass
class StationScale:
    """One station's scale and how it speaks."""

    section: ScaleSection
    scale: SerialScale

    async def weigh_g(self) -> int:
        """The stable weight now, in grams.

        Raises:
            DeviceError: no stable weight (over range, errors, busy), or no answer in time.
        """
        if self.section.protocol == "sics":
            weight = await self.scale.read_stable()
        else:
            frame = STATE_GROSS_FRAME if self.section.frame == "state_gross" else PLAIN_FRAME
            weight = await self.scale.read_continuous(frame, StableWeightDetector())
        return round(weight.grams)

    async def aclose(self) -> None:
        await self.scale.aclose()


def station_scale(station: str, section: ScaleSection) -> StationScale:
    """The driver of a station's scale (the port is opened at the first weighing)."""
    return StationScale(section, SerialScale.serial(f"{station} scale", section.path, section.baudrate,
                                                    timeout_s=WEIGH_TIMEOUT_S))


__all__ = ["WEIGH_TIMEOUT_S", "StationScale", "station_scale"]
