"""Child process of ``test_store_crash``: commits identifiable steps until it is killed.

Usage: ``python tests/_support/crash_writer.py STORE_DIR FIRST_STEP``

Prints ``OPEN`` once the store is open, then ``ACK n`` (flushed) after ``commit`` of step
``n`` returned, i.e. after the step is durable. ``make_step`` is imported by the test to
know what every step must contain.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gateway._model import OrderState, Status
from gateway._store import StepWrite, StoreSettings, open_store

TENANTS = ("t0", "t1", "t2")
ORDERS = 4
EVENTS = 120
AUDIT = 60
OUTBOX = 60
QUARANTINE = 2


def tenants_of(step: int) -> tuple[str, str]:
    """Each step writes to two tenants, so per-tenant seqs interleave across steps."""
    return TENANTS[step % 3], TENANTS[(step + 1) % 3]


def fingerprint(step: int, index: int) -> int:
    return ((step * 1_000_003 + index) * 0x9E3779B97F4A7C15) % 2**64


def order_id(step: int, index: int) -> str:
    return f"s{step}-o{index}"


def make_step(step: int) -> StepWrite:
    """Step ``step``: every record carries ``"step": step`` and its index ``"i"``."""
    pair = tenants_of(step)
    write = StepWrite()
    for i in range(ORDERS):
        write.orders.append(OrderState(pair[i % 2], order_id(step, i), Status.PAID, seq=1,
                                       data={"step": step, "i": i}))
    pad = "x" * 200
    for i in range(EVENTS):
        write.events.append({"tenant": pair[i % 2], "fingerprint": fingerprint(step, i),
                             "step": step, "i": i, "pad": pad})
    for i in range(AUDIT):
        write.audit.append({"tenant": pair[i % 2], "step": step, "i": i,
                            "order_id": order_id(step, i % ORDERS), "note": pad})
    for i in range(OUTBOX):
        write.outbox.append({"tenant": pair[i % 2], "step": step, "i": i, "pad": pad})
    for i in range(QUARANTINE):
        write.quarantine.append({"tenant": pair[i % 2], "step": step, "i": i})
    write.buyer_index.append((pair[0], step, step, order_id(step, 0)))
    write.waybill_index.append((pair[0], f"WB{step}", order_id(step, 0)))
    return write


def main() -> None:
    path, first = Path(sys.argv[1]), int(sys.argv[2])
    store = open_store(StoreSettings(path=path, sync="group"))
    print("OPEN", flush=True)
    step = first
    while True:
        write = make_step(step)
        store.commit(write)
        print(f"ACK {step}", flush=True)
        step += 1


if __name__ == "__main__":
    main()
