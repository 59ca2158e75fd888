"""Shared helpers of the benchmarks: progress on stderr, JSON figures on stdout, targets.

Every benchmark prints human-readable lines, shows progress on stderr while it works, and
with ``--json`` prints ONE JSON object with all its figures as the last line of stdout, so
engineers and scripts can track them over time.

Every benchmark's object has a ``targets`` key, the same shape everywhere (``{}`` for a
benchmark that sets no target)::

    "targets": {"durable_ingest_eps": {"value": 31234, "op": ">=", "target": 25000, "pass": true}, ...}

Names are snake_case with their unit (``_eps`` events/s, ``_per_s``, ``_ratio``). Entries
are built by :func:`target_entry` and printed by :func:`print_targets`, nowhere else.
"""

from __future__ import annotations

import argparse
import math
import operator
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any, Literal

import orjson


class Progress:
    """Rate-limited progress lines on stderr: ``label: done/total (pct) rate/s``."""

    def __init__(self, label: str, total: int, every_s: float = 0.5) -> None:
        self.label = label
        self.total = total
        self.every_s = every_s
        self.started = time.perf_counter()
        self._last = 0.0

    def update(self, done: int, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last < self.every_s and done < self.total:
            return
        self._last = now
        elapsed = max(now - self.started, 1e-9)
        pct = 100.0 * done / self.total if self.total else 100.0
        print(f"\r  {self.label}: {done:,}/{self.total:,} ({pct:5.1f}%) {done / elapsed:,.0f}/s",
              end="", file=sys.stderr, flush=True)
        if done >= self.total:
            print(file=sys.stderr, flush=True)


def best_rate(label: str, count: int, run: Callable[[], object], repeats: int = 5) -> float:
    """Best-of-``repeats`` rate (items/s) of ``run``, which processes ``count`` items."""
    best = 0.0
    for attempt in range(repeats):
        started = time.perf_counter()
        run()
        elapsed = time.perf_counter() - started
        best = max(best, count / elapsed)
        print(f"\r  {label}: run {attempt + 1}/{repeats}, best {best:,.0f}/s", end="",
              file=sys.stderr, flush=True)
    print(file=sys.stderr, flush=True)
    return best


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()}


def parser(name: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m benchmarks {name}", description=description)
    p.add_argument("--json", action="store_true", help="print one JSON object with the figures as the last line")
    return p


def emit_json(figures: dict[str, Any]) -> None:
    """The machine-readable result: one JSON object on the last line of stdout."""
    sys.stdout.flush()
    print(orjson.dumps(figures).decode(), flush=True)


Op = Literal[">=", "<="]
_COMPARE: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le}


def target_entry(value: float | None, op: Op, target: float, digits: int = 0) -> dict[str, Any]:
    """One target as every benchmark reports it: ``{"value", "op", "target", "pass"}``.

    Args:
        value: the measured figure; ``None`` (or not finite) when it could not be measured.
        op: ``">="`` (the figure must reach ``target``) or ``"<="`` (must stay within it).
        target: the threshold.
        digits: decimals ``value`` is rounded to (0: an integer).

    Returns:
        The entry. ``pass`` is judged on the rounded value, so ``value op target`` read back
        from the JSON always agrees with it; an unmeasured value is ``null`` and never passes.

    Raises:
        ValueError: ``op`` is not ``">="`` or ``"<="``.
    """
    if op not in _COMPARE:
        raise ValueError(f"a target's op is '>=' or '<=', not {op!r}")
    if value is None or not math.isfinite(value):
        return {"value": None, "op": op, "target": target, "pass": False}
    shown: float = round(value, digits) if digits else round(value)
    return {"value": shown, "op": op, "target": target, "pass": _COMPARE[op](shown, target)}


def verdict(ok: bool) -> str:
    """``PASS`` or ``MISS``, as the benchmarks print a target's outcome."""
    return "PASS" if ok else "MISS"


def target_line(name: str, entry: dict[str, Any]) -> str:
    """The human-readable verdict of one target: ``target NAME: VALUE OP TARGET  PASS|MISS``."""
    value = "not measured" if entry["value"] is None else f"{entry['value']:,}"
    return f"  target {name}: {value} {entry['op']} {entry['target']:,}  {verdict(entry['pass'])}"


def print_targets(targets: dict[str, dict[str, Any]]) -> None:
    """One verdict line per target, or a line saying the benchmark sets none."""
    if not targets:
        print("  targets: none set by this benchmark")
    for name, entry in targets.items():
        print(target_line(name, entry))
