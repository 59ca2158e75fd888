"""Where a scan's time goes in ``python -m benchmarks packline``: stamps taken from outside.

The pack line has no timing hooks of its own. ``install_hooks`` wraps, in the running
gateway, the display's ``publish``, ``Pipeline.submit``, ``Store.commit`` and each station's
inbox, and adds a commit listener: every measured scan gets one moment per stage in
``Stamps`` (write, dispatched, submitted, commit start/end, durable, published), matched by
station and order of arrival. ``analyse`` turns them into the latency figures, the stage
breakdown, and the drift by tenth of the run; ``GcPauses`` records the cyclic collector's
pauses meanwhile (each one stops the line).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import trio

from benchmarks._paced_client import percentile
from devices.scan import Scan

#: The first share of each station's scans is warm-up, left out of the figures.
WARMUP_SHARE = 0.10

#: The moments stamped for every scan, in order, and how the breakdown names each.
MOMENTS = ("write", "dispatch", "submit", "commit_start", "commit_end", "durable", "publish")
LABELS = {"write": "pty write", "dispatch": "dispatched to the station", "submit": "submitted to the pipeline",
          "commit_start": "Store.commit starts", "commit_end": "Store.commit returns (fsynced)",
          "durable": "commit listener", "publish": "published"}


# -- stamps taken from outside the pack line --------------------------------------------


@dataclass
class Stamps:
    """Per station, one list per stage; the k-th entry of each belongs to the k-th scan."""

    stations: list[str]
    index: dict[str, int] = field(default_factory=dict)
    lists: dict[str, list[list[float]]] = field(default_factory=dict)
    verdicts: list[list[str]] = field(default_factory=list)
    expected: int = 0
    published: int = 0
    commits: int = 0
    commit_s: float = 0.0
    done: trio.Event = field(default_factory=trio.Event)
    on: bool = False

    def __post_init__(self) -> None:
        self.index = {name: i for i, name in enumerate(self.stations)}
        for moment in MOMENTS:
            self.lists[moment] = [[] for _ in self.stations]
        self.verdicts = [[] for _ in self.stations]

    def stamp(self, stage: str, names: list[str], now: float) -> None:
        for name in names:
            i = self.index.get(name)
            if i is not None:
                self.lists[stage][i].append(now)


def station_names(records: list[tuple[str, str, str, Any]]) -> list[str]:
    """The stations whose scan a write carries: of its session heads (an item scan writes no
    station record), else of its ``("", "station", name)`` records (a sign-in)."""
    names = [value["station"] for _, kind, _, value in records if kind == "session" and value]
    return names or [key for tenant, kind, key, _ in records if tenant == "" and kind == "station"]


class InboxProxy:
    """Stands in for a station's inbox channel: stamps each scan handed to the station."""

    def __init__(self, channel: Any, stamps: Stamps, name: str) -> None:
        self._channel, self._stamps, self._name = channel, stamps, name

    async def send(self, item: Any) -> None:
        if self._stamps.on and isinstance(item, Scan):
            self._stamps.stamp("dispatch", [self._name], time.perf_counter())
        await self._channel.send(item)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._channel, name)


def install_hooks(services: Any, stamps: Stamps) -> None:
    """Wrap the display, the pipeline, the store and the inboxes to timestamp every stage."""
    clock = time.perf_counter
    display, pipeline, store = services.display, services.pipeline, services.store
    publish, submit, commit = display.publish, pipeline.submit, store.commit

    shown: dict[str, object] = {}

    def timed_publish(station: str, view: dict[str, Any]) -> None:
        publish(station, view)
        i = stamps.index.get(station)
        last = view.get("last")
        if last is shown.get(station):  # the same verdict again (a label or device change): not a scan's
            return
        shown[station] = last
        if stamps.on and i is not None and last:
            stamps.lists["publish"][i].append(clock())
            stamps.verdicts[i].append(str(last.get("verdict")))
            stamps.published += 1
            if stamps.published >= stamps.expected:
                stamps.done.set()

    async def timed_submit(events: Any, priority: Any = "webhook", *, extra: Any = None) -> Any:
        if stamps.on and extra is not None:
            stamps.stamp("submit", station_names(extra.records), clock())
        return await submit(events, priority, extra=extra)

    def timed_commit(write: Any) -> Any:
        started = clock()
        result = commit(write)
        ended = clock()
        if stamps.on:
            names = station_names(write.records)
            stamps.stamp("commit_start", names, started)
            stamps.stamp("commit_end", names, ended)
            stamps.commits += 1
            stamps.commit_s += ended - started
        return result

    def durable(write: Any) -> None:
        if stamps.on:
            stamps.stamp("durable", station_names(write.records), clock())

    display.publish = timed_publish
    pipeline.submit = timed_submit
    store.commit = timed_commit
    pipeline.add_listener(durable)
    for name, runner in getattr(services.packline, "stations", {}).items():
        if hasattr(runner, "inbox_send"):
            runner.inbox_send = InboxProxy(runner.inbox_send, stamps, name)


@dataclass
class GcPauses:
    """The cyclic collector's pauses during the measured phase (``gc.callbacks``), by
    generation: a collection stops every thread's Python, so each is a stall of the line."""

    pauses: dict[int, list[float]] = field(default_factory=lambda: {0: [], 1: [], 2: []})
    _started: float = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._started)

    def install(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def remove(self) -> None:
        gc.callbacks.remove(self._callback)

    def summary(self) -> dict[str, dict[str, float]]:
        return {f"gen{gen}": {"count": len(p), "total_ms": sum(p) * 1000, "max_ms": max(p, default=0.0) * 1000}
                for gen, p in self.pauses.items()}


# -- figures ----------------------------------------------------------------------------


def analyse(stamps: Stamps, per_station: int) -> dict[str, Any]:
    """Latencies, stage breakdown and drift by tenth of the run, warm-up scans left out."""
    skip = int(per_station * WARMUP_SHARE)
    lists = stamps.lists
    # A moment whose hook missed a scan (or found nothing to wrap) is left out of the breakdown.
    order = [m for m in MOMENTS if all(len(lists[m][i]) == per_station for i in range(len(stamps.stations)))]
    complete = order[:1] == ["write"] and order[-1:] == ["publish"]
    names = [f"{LABELS[a]} -> {LABELS[b]}" for a, b in zip(order, order[1:], strict=False)]
    rows: list[tuple[float, list[float]]] = []
    by_verdict: dict[str, list[float]] = {}
    tenths: list[list[float]] = [[] for _ in range(10)]
    for i in range(len(stamps.stations)):
        for k in range(skip, len(lists["publish"][i])):
            latency = lists["publish"][i][k] - lists["write"][i][k]
            tenths[min(9, k * 10 // per_station)].append(latency)
            by_verdict.setdefault(stamps.verdicts[i][k], []).append(latency)
            stages = ([lists[b][i][k] - lists[a][i][k] for a, b in zip(order, order[1:], strict=False)]
                      if complete else [])
            rows.append((latency, stages))
    latencies = [row[0] for row in rows]
    verdicts = Counter(v for vs in stamps.verdicts for v in vs)
    firsts = [ws[0] for ws in lists["write"] if ws]
    lasts = [ps[-1] for ps in lists["publish"] if ps]
    figures: dict[str, Any] = {
        "scans": sum(verdicts.values()), "verdicts": dict(verdicts),
        "scans_per_s": sum(verdicts.values()) / (max(lasts) - min(firsts)) if firsts and lasts else 0.0,
        "p50_ms": percentile(latencies, 0.5) * 1000, "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": max(latencies, default=float("nan")) * 1000,
        "p50_ms_by_tenth": [round(statistics.median(t) * 1000, 3) if t else None for t in tenths],
        "by_verdict": {v: {"count": len(ls), "p50_ms": percentile(ls, 0.5) * 1000, "p99_ms": percentile(ls, 0.99) * 1000}
                       for v, ls in sorted(by_verdict.items())},
        "p99_ms_by_tenth": [round(percentile(t, 0.99) * 1000, 3) if t else None for t in tenths],
        "commits": stamps.commits, "commit_ms_mean": stamps.commit_s / stamps.commits * 1000 if stamps.commits else None,
        "stages": None, "lost": stamps.expected - sum(verdicts.values()),
    }
    if complete and rows:
        tail = sorted(rows, key=lambda row: row[0])[-max(1, len(rows) // 100):]
        figures["stages"] = {name: {
            "p50_ms": percentile([r[1][n] for r in rows], 0.5) * 1000,
            "p99_ms": percentile([r[1][n] for r in rows], 0.99) * 1000,
            "slowest_1pct_mean_ms": statistics.fmean(r[1][n] for r in tail) * 1000,
        } for n, name in enumerate(names)}
    return figures
