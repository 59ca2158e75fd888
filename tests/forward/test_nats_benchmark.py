"""``python -m benchmarks forward --sink nats`` at a tiny size: it runs, the stream holds every
event, and its ``--json`` line reports the target in the shape every benchmark uses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_nats_drain_benchmark_reports_its_target():
    done = subprocess.run([sys.executable, "-m", "benchmarks", "forward", "--sink", "nats", "--events", "3000",
                           "--baseline-events", "1000", "--json"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.splitlines()[-1])
    assert figures["benchmark"] == "forward" and figures["sink"] == "nats"
    assert figures["received"] == figures["events"] == 3000
    entry = figures["targets"]["baseline_over_drain_ratio"]
    assert set(entry) == {"value", "op", "target", "pass"} and entry["op"] == "<=" and entry["target"] == 2.0
    assert entry["pass"] is (entry["value"] <= 2.0)
    assert "plain nats-py publisher" in done.stdout and "drain: forwarder -> NATS" in done.stderr
