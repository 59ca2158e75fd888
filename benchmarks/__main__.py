"""Run one benchmark: ``python -m benchmarks NAME [options]`` (``--help`` per benchmark).

Benchmarks:
  core    the accelerated core: Cython batch vs pure-Python fallback vs the floor
  store   durable ingest (decode -> core -> one synced write batch) vs raw rocksdict batches
  forward backlog drain to a loopback upstream vs a plain httpx client posting the same batches
          (--sink nats: into a 3-node NATS JetStream cluster vs a plain nats-py publisher)
  ingest  the real gateway over HTTP: signed webhooks, batched ERP pushes, the no-op ceiling
  app     the gateway's own CPU per webhook: its ASGI app in-process, no sockets
  devices scanner drivers (serial pty, TCP): scans/s and per-scan latency vs the raw round trip
  packline 32 pack stations on ptys under webhooks: scan-to-verdict latency vs the raw pty round trip
  replay  the rule sandbox: 1,000,000 recorded events replayed under two rule sets vs durable ingest
  api     after-sales lookup on 1,000,000 orders vs a raw RocksDB read of the same keys; the OCI's cost
  year    a year of a 5,000-order/day shop in the store: durable ingest and lookup vs an empty store
  soak    a day of traffic, upstream down, outbox full: the gateway's RSS and disk vs idle and the requests

Each prints figures beside a baseline measured in the same run, shows progress on stderr,
and with ``--json`` prints one JSON object as the last line of stdout.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "core": "benchmarks.core",
    "store": "benchmarks.store",
    "forward": "benchmarks.forward",
    "ingest": "benchmarks.ingest",
    "app": "benchmarks.app",
    "devices": "benchmarks.devices",
    "packline": "benchmarks.packline",
    "api": "benchmarks.api",
    "replay": "benchmarks.replay",
    "year": "benchmarks.year",
    "soak": "benchmarks.soak",
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in BENCHMARKS:
        print(__doc__.strip())
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(BENCHMARKS[argv[0]])
    result: int = module.main(argv[1:])
    return result


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
