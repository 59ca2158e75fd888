"""The scanners' far ends in another process: paced reads written on pty masters.

A real scanner is a device: its bytes reach the gateway through the kernel (USB, a serial
line), and none of the sending costs the gateway's interpreter. A simulator that writes on
the pty master from the gateway's own event loop charges the gateway for the kernel's tty
work of every write (``os.write`` on a pty master runs the line discipline in the writer's
context: ~12 % of the loop thread's samples at 1,000 writes/s, py-spy) and delays the reads
it is measuring. So the benchmarks that time a scan from its write start this process
instead, like the webhook client (``benchmarks._paced_client``).

Protocol (stdin/stdout, one line each)::

    parent -> child   {"fds": [...], "frames": [["<latin-1>", ...], ...], "interval_s": s}
    child -> parent   ready
    parent -> child   go <start: time.perf_counter() of the first write>
    child -> parent   [[write time, ...], ...]   (perf_counter per write, per fd)

The fds are pty masters (or a TCP scanner simulator's connected sockets) inherited through
``pass_fds``. Writer ``i`` writes its ``k``-th
frame at ``start + interval_s * (k + i / len(fds))`` (staggered evenly), stamping
``time.perf_counter()`` as soon as the write returns (the bytes are in the kernel, as when a
device has sent them; a stamp taken before the write charged the reader for the time the OS
scheduler kept this writer off the CPU between the stamp and the write: stalls of 400 ms
on a loaded machine). ``time.perf_counter`` is CLOCK_MONOTONIC, the same clock in every
process of the machine, so the parent compares it with its own stamps. How late the writer
was against its schedule (``lateness``) is reported beside, to tell a starved writer from a
slow reader.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import trio

ROOT = Path(__file__).resolve().parents[1]


def start_pty_writer(fds: list[int], frames: list[list[bytes]], interval_s: float) -> subprocess.Popen[str]:
    """Start the writer process for ``fds``; returns once it is ready (see the module docstring)."""
    child = subprocess.Popen([sys.executable, "-m", "benchmarks._pty_writer"], cwd=ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, pass_fds=fds)
    assert child.stdin is not None and child.stdout is not None
    plan = {"fds": fds, "frames": [[f.decode("latin-1") for f in per_fd] for per_fd in frames],
            "interval_s": interval_s}
    child.stdin.write(orjson.dumps(plan).decode() + "\n")
    child.stdin.flush()
    ready = child.stdout.readline()
    if ready.strip() != "ready":
        child.kill()
        raise RuntimeError(f"the pty writer did not start: {ready!r}")
    return child


def go(child: subprocess.Popen[str], start: float) -> None:
    """Tell the writer to start its first write at ``start`` (``time.perf_counter()``)."""
    assert child.stdin is not None
    child.stdin.write(f"go {start!r}\n")
    child.stdin.flush()


def stamps_of(child: subprocess.Popen[str]) -> list[list[float]]:
    """The write times, once the writer is done (blocks: call it in a thread)."""
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line.strip():
        raise RuntimeError(f"the pty writer ended without its stamps (exit {child.wait()})")
    stamps: list[list[float]] = orjson.loads(line)
    child.wait()
    return stamps


def lateness(stamps: list[list[float]], start: float, interval_s: float) -> list[float]:
    """How late each write ended against its schedule (seconds), all writers together."""
    count = len(stamps)
    return [stamp - (start + interval_s * (k + i / count))
            for i, times in enumerate(stamps) for k, stamp in enumerate(times)]


async def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` on the non-blocking ``fd`` (a pty master), waiting while it is full."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            await trio.lowlevel.wait_writable(fd)


async def _paced(fd: int, frames: list[bytes], at: float, interval_s: float, stamps: list[float]) -> None:
    clock = time.perf_counter
    for k, data in enumerate(frames):
        await trio.sleep_until(at + k * interval_s)
        await write_all(fd, data)
        stamps.append(clock())  # the bytes are in the kernel: a preempted writer's delay is not the reader's


async def _run(fds: list[int], frames: list[list[bytes]], interval_s: float, start: float) -> list[list[float]]:
    stamps: list[list[float]] = [[] for _ in fds]
    first = trio.current_time() + (start - time.perf_counter())  # trio's clock has its own offset
    async with trio.open_nursery() as nursery:
        for i, fd in enumerate(fds):
            os.set_blocking(fd, False)
            nursery.start_soon(_paced, fd, frames[i], first + interval_s * i / len(fds), interval_s, stamps[i])
    return stamps


def main() -> None:
    plan = orjson.loads(sys.stdin.readline())
    fds: list[int] = plan["fds"]
    frames = [[f.encode("latin-1") for f in per_fd] for per_fd in plan["frames"]]
    print("ready", flush=True)
    start = float(sys.stdin.readline().split()[1])
    stamps = trio.run(_run, fds, frames, float(plan["interval_s"]), start)
    print(orjson.dumps(stamps).decode(), flush=True)


if __name__ == "__main__":
    main()
