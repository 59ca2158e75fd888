"""``[oci]``: how the Order Credibility Index is computed (``OciSettings``; used by ``gateway._ops``).

Reference (defaults in brackets)::

    [oci]                          # Order Credibility Index (gateway._ops.oci)
    freshness_s = 90.0             # an order is fresh when its last update reached the gateway
                                   # at most this long after the source's event [90.0]
    weight_freshness = 1.0         # the combined score is the weighted mean of the parts;
    weight_consistency = 1.0       # a weight of 0 leaves a part out; at least one must be
    weight_traceability = 1.0      # greater than 0 [1.0, 1.0, 1.0]
    interval_s = 300.0             # the background task recomputes every tenant this often [300.0]
    window_s = 0.0                 # judge only orders updated within this long before the
                                   # computation; 0 = every order of the tenant [0.0]
    trend_keep_hours = 2160        # hourly trend records kept (90 days) [2160]
    drilldown_max = 10000          # orders kept per part for the drill-down (the count is
                                   # always exact) [10000]

Frozen, and checks itself: a bad value raises ``ValueError`` starting with the key, which the
settings loader turns into a ``ConfigError`` with file, line and key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

#: The three parts of the index, in the order they are shown.
PARTS: tuple[str, ...] = ("freshness", "consistency", "traceability")


@dataclass(frozen=True)
class OciSettings:
    """How the Order Credibility Index is computed (see the module docstring for each key).

    Raises:
        ValueError: a value out of range; the message starts with the key.
    """

    freshness_s: float = 90.0
    weight_freshness: float = 1.0
    weight_consistency: float = 1.0
    weight_traceability: float = 1.0
    interval_s: float = 300.0
    window_s: float = 0.0
    trend_keep_hours: int = 2160
    drilldown_max: int = 10_000

    def __post_init__(self) -> None:
        for problem in oci_problems(self):
            raise ValueError(problem)

    @property
    def weights(self) -> dict[str, float]:
        """``{part: weight}`` in ``PARTS`` order."""
        return {"freshness": self.weight_freshness, "consistency": self.weight_consistency,
                "traceability": self.weight_traceability}


def oci_problems(settings: OciSettings) -> list[str]:
    """Every problem of ``settings`` as ``"key: what is wrong"`` (empty when valid)."""
    problems = []
    for item in fields(settings):
        value = getattr(settings, item.name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            problems.append(f"{item.name}: must be a finite number, not {value!r}")
        elif value < 0:
            problems.append(f"{item.name}: must be 0 or more, not {value!r}")
    if problems:
        return problems
    for name in ("freshness_s", "interval_s", "trend_keep_hours", "drilldown_max"):
        if getattr(settings, name) <= 0:
            problems.append(f"{name}: must be greater than 0")
    if not any(settings.weights.values()):
        problems.append("weight_traceability: at least one weight must be greater than 0 "
                        "(a weight of 0 leaves its part out of the combined score)")
    if settings.interval_s < 10:
        problems.append("interval_s: must be at least 10 (a full scan of the store runs each time)")
    return problems


__all__ = ["PARTS", "OciSettings", "oci_problems"]
