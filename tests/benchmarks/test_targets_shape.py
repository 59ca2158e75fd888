"""Every benchmark's ``--json`` object reports its targets in one shape (``benchmarks._common``).

Each fast benchmark runs as ``python -m benchmarks NAME ... --json`` with tiny counts. The
figures mean nothing at that size, so no speed is asserted: only that the last line of
stdout is a JSON object whose ``targets`` entries have exactly ``value``/``op``/``target``/
``pass``, that each ``pass`` agrees with ``value op target``, and that the target names a
script tracks are still there.
"""

from __future__ import annotations

import json
import operator
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks._common import target_entry

ROOT = Path(__file__).resolve().parents[2]
COMPARE = {">=": operator.ge, "<=": operator.le}

#: benchmark -> (tiny-count options, the names of its targets)
RUNS: dict[str, tuple[list[str], set[str]]] = {
    "core": (["--events", "1000", "--repeats", "1"],
             {f"{figure}_{phase}_{unit}" for phase in ("cold", "hot")
              for figure, unit in (("cython", "eps"), ("cython_over_python", "ratio"),
                                   ("floor_over_cython", "ratio"))}),
    "store": (["--events", "2000", "--group", "500"], {"durable_ingest_eps", "raw_over_ingest_ratio"}),
    "forward": (["--events", "2000", "--batch", "500", "--baseline-events", "1000"],
                {"drain_eps", "baseline_over_drain_ratio"}),
    "app": (["--webhooks", "50", "--noop", "50", "--connections", "4"], set()),
    "ingest": (["--webhooks", "100", "--noop", "100", "--connections", "4", "--batches", "2",
                "--batch-size", "100", "--batch-connections", "2", "--bare-connections", "4",
                "--no-store-baseline"],
               {"signed_webhooks_per_s", "livez_over_webhooks_ratio", "batched_durable_eps"}),
    "packline": (["--stations", "2", "--rate", "20", "--webhook-rate", "10", "--seconds", "1"],
                 {"scan_to_verdict_p99_ms", "scans_per_s", "webhooks_per_s"}),
    "replay": (["--events", "2000", "--group", "500", "--profile-events", "500"], {"replay_over_durable_ratio"}),
    "year": (["--orders-per-day", "100", "--days", "6", "--measure-days", "1", "--lookups", "20"],
             {"ingest_year_over_empty", "lookup_p99_year_over_empty"}),
    "soak": (["--hours-of-traffic", "2", "--orders-per-day", "500", "--stations", "1", "--outbox-bound", "300"],
             {"rss_peak_mib", "rss_growth_while_full", "disk_bytes_per_stored_event"}),
}


def run_json(name: str, options: list[str]) -> dict[str, Any]:
    """The JSON object ``python -m benchmarks NAME`` prints as the last line of stdout."""
    done = subprocess.run([sys.executable, "-m", "benchmarks", name, *options, "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    figures: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return figures


@pytest.mark.parametrize("name", list(RUNS))
def test_targets_have_one_shape(name: str) -> None:
    options, names = RUNS[name]
    figures = run_json(name, options)
    assert figures["benchmark"] == name
    targets = figures["targets"]
    assert isinstance(targets, dict)
    assert set(targets) == names
    for target_name, entry in targets.items():
        assert set(entry) == {"value", "op", "target", "pass"}, target_name
        assert entry["op"] in COMPARE, target_name
        assert isinstance(entry["target"], int | float), target_name
        if entry["value"] is None:  # not measured: never a pass
            assert entry["pass"] is False, target_name
        else:
            assert entry["pass"] is COMPARE[entry["op"]](entry["value"], entry["target"]), target_name


def test_pass_is_judged_on_the_reported_value() -> None:
    assert target_entry(2.2549, "<=", 2.25, 2) == {"value": 2.25, "op": "<=", "target": 2.25, "pass": True}
    assert target_entry(24_999.6, ">=", 25_000) == {"value": 25_000, "op": ">=", "target": 25_000, "pass": True}
    assert target_entry(float("inf"), "<=", 2.25, 2)["value"] is None
    assert target_entry(None, ">=", 1)["pass"] is False
    with pytest.raises(ValueError):
        target_entry(1.0, "<", 2)  # type: ignore[arg-type]
