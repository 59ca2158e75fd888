"""Crash safety of the store: a real child process is SIGKILLed while it commits.

The child (``tests/_support/crash_writer.py``) commits identifiable steps and prints ``ACK n``
after each ``commit`` returned. The parent kills it at random moments (before the store
is open, right after it, after some acknowledged steps, with random sleeps), restarts it
on the same directory with new step numbers, and finally checks: every acknowledged step
is fully present, no step is half-applied, seqs are contiguous and audit chains verify.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

from gateway._store import StoreSettings, open_store

ROOT = Path(__file__).resolve().parents[2]
WRITER = ROOT / "tests" / "_support" / "crash_writer.py"
_spec = importlib.util.spec_from_file_location("_crash_writer", WRITER)
assert _spec is not None and _spec.loader is not None
writer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(writer)
KILLS = 12


class Child:
    """The writer process plus a thread collecting its stdout lines."""

    def __init__(self, path: Path, first_step: int) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(path), str(first_step)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.acks: list[int] = []
        self.opened = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def _take(self, line: str) -> None:
        if line == "OPEN":
            self.opened = True
        elif line.startswith("ACK "):
            self.acks.append(int(line[4:]))

    def wait_for(self, acks: int, deadline_s: float = 10.0) -> None:
        """Block until ``acks`` steps were acknowledged (``0``: until the store is open)."""
        deadline = time.monotonic() + deadline_s
        while not self.opened or len(self.acks) < acks:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"writer too slow: {len(self.acks)} acks") from None
            if line is None:
                assert self.proc.stderr is not None
                raise AssertionError(f"writer died by itself: {self.proc.stderr.read()}")
            self._take(line)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.reader.join()
        while (line := self.lines.get()) is not None:  # ACKs printed before the kill count too
            self._take(line)
        assert self.proc.returncode == -signal.SIGKILL
        for stream in (self.proc.stdout, self.proc.stderr):
            assert stream is not None
            stream.close()


def test_sigkill_mid_write_loses_no_acknowledged_step(tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    path = tmp_path / "store"
    runs: list[tuple[int, list[int]]] = []  # (first step, acknowledged steps)
    first = 1
    for kill in range(KILLS):
        child = Child(path, first)
        mode = kill % 4 if kill < 4 else rng.randrange(4)
        if mode == 0:  # during interpreter start-up, open or WAL recovery
            time.sleep(rng.uniform(0.0, 0.4))
        elif mode == 1:  # right after open, in the first commits
            child.wait_for(0)
            time.sleep(rng.uniform(0.0, 0.005))
        else:  # after some acknowledged steps, at a random instant
            child.wait_for(rng.randint(1, 6) if mode == 2 else rng.randint(10, 40))
            time.sleep(rng.uniform(0.0, 0.01))
        child.kill()
        runs.append((first, child.acks))
        first = (child.acks[-1] if child.acks else first) + 2  # skip a maybe-committed step

    context = f"seed={seed} runs={[(f, len(a)) for f, a in runs]}"
    with open_store(StoreSettings(path=path)) as store:
        steps_of: dict[str, Counter[int]] = {name: Counter() for name in
                                             ("events", "audit", "outbox", "quarantine")}
        for tenant in writer.TENANTS:
            for name, records in (("events", store.iter_events(tenant)),
                                  ("audit", store.iter_audit(tenant)),
                                  ("quarantine", store.iter_quarantine(tenant))):
                seqs = []
                for record in records:
                    assert record["tenant"] == tenant
                    steps_of[name][record["step"]] += 1
                    seqs.append(record["seq"])
                assert seqs == list(range(1, len(seqs) + 1)), f"{name} seqs of {tenant} not contiguous; {context}"
            check = store.verify_audit_chain(tenant)
            assert check.ok, f"{tenant}: {check}; {context}"
        outbox = list(store.iter_outbox())
        assert [r["outbox_seq"] for r in outbox] == list(range(1, len(outbox) + 1)), context
        assert [r["step"] for r in outbox] == sorted(r["step"] for r in outbox), "outbox not in commit order"
        steps_of["outbox"].update(r["step"] for r in outbox)
        assert store.outbox_stats().count == len(outbox)

        expected = {"events": writer.EVENTS, "audit": writer.AUDIT, "outbox": writer.OUTBOX,
                    "quarantine": writer.QUARANTINE}
        present_by_run: dict[int, set[int]] = defaultdict(set)
        for run, (first, acks) in enumerate(runs):
            last_possible = (acks[-1] if acks else first - 1) + 1
            for step in range(first, last_possible + 1):
                counts = {name: steps_of[name].pop(step, 0) for name in expected}
                pair = writer.tenants_of(step)
                orders = [store.get_order(pair[i % 2], writer.order_id(step, i)) for i in range(writer.ORDERS)]
                seen = [store.seen_fingerprint(pair[i % 2], writer.fingerprint(step, i))
                        for i in range(writer.EVENTS)]
                indexed = [store.order_for_waybill(pair[0], f"WB{step}") is not None,
                           bool(store.orders_for_buyer(pair[0], step, 0))]
                whole = (counts == expected and all(o is not None for o in orders)
                         and all(seen) and all(indexed))
                absent = (not any(counts.values()) and not any(o is not None for o in orders)
                          and not any(seen) and not any(indexed))
                assert whole or absent, f"step {step} half-applied: {counts} {indexed}; {context}"
                if whole:
                    present_by_run[run].add(step)
            assert set(acks) <= present_by_run[run], f"acknowledged step lost in run {run}; {context}"
            assert present_by_run[run] - set(acks) <= {last_possible}, context
        leftovers = {name: dict(counter) for name, counter in steps_of.items() if counter}
        assert not leftovers, f"records of steps never attempted: {leftovers}; {context}"
        assert sum(len(acks) for _, acks in runs) >= 10, f"too few acknowledged steps; {context}"
