"""The anomaly board's thresholds (``BoardSettings``); the ``[oci]`` section is
``gateway._settings.oci.OciSettings`` (re-exported here).

``BoardSettings`` holds the anomaly board's thresholds: the issue fixes 24 h and 72 h, and
the waybill timeout is ``[packline] waybill_timeout_s`` (the same figure the pack line alerts
on), so they are not a section of their own. A bad value raises ``ValueError`` naming the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from gateway._settings.oci import PARTS, OciSettings, oci_problems


@dataclass(frozen=True)
class BoardSettings:
    """The anomaly board's thresholds.

    Attributes:
        unshipped_after_s: a paid order not shipped after this is ``unshipped_24h`` [86400].
        repeat_within_s: a buyer's second order within this of the first is
            ``repeat_order_72h`` [259200].
        waybill_timeout_s: a packed parcel still without a waybill after this is
            ``waybill_timeout``; wire ``[packline] waybill_timeout_s`` [900].
    """

    unshipped_after_s: float = 86_400.0
    repeat_within_s: float = 259_200.0
    waybill_timeout_s: float = 900.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0 \
                    or not math.isfinite(value):
                raise ValueError(f"{item.name}: must be a finite number greater than 0, not {value!r}")


__all__ = ["PARTS", "BoardSettings", "OciSettings", "oci_problems"]
