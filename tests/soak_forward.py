"""Soak: ``python -m tests.soak_forward --kills 1000 [--seed N] [--dir DIR]``.

The crash campaign of ``tests/forward/test_forward_crash.py`` (a real gateway process SIGKILLed
under load while it forwards to a real loopback upstream), for as many kills as asked.
Progress on stderr; exit status 1 when the oracle finds a problem.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from tests._support.forward_crash import run_campaign


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--dir", help="work directory (default: a new temporary one)")
    args = parser.parse_args()
    workdir = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="soak-forward-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(f"soak: {args.kills} kills, seed {args.seed}, in {workdir}", file=sys.stderr)
    report = run_campaign(workdir, args.kills, args.seed, progress=lambda line: print(line, file=sys.stderr))
    print(f"soak: {report.kills} kills in {time.monotonic() - started:.0f} s; {report.acknowledged} events "
          f"acknowledged; upstream saw {report.upstream_receipts} ({report.resent} re-sent after kills, "
          f"{report.upstream_unique} unique)")
    for problem in report.problems:
        print(f"PROBLEM: {problem}")
    print("OK" if not report.problems else "FAILED")
    return 0 if not report.problems else 1


if __name__ == "__main__":
    sys.exit(main())
