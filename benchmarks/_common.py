"""Shared helpers of the benchmarks: progress on stderr, JSON figures on stdout.

Every benchmark prints human-readable lines, shows progress on stderr while it works, and
with ``--json`` prints ONE JSON object with all its figures as the last line of stdout, so
engineers and scripts can track them over time.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

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


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"
