"""The store: everything durable, in one RocksDB database.

In: ``StepWrite`` values (one per processing step: order states, event-log records, audit
records, outbox entries, index entries) from the pipeline; deletions of acknowledged outbox
records from the forwarder.
Out: ``Store.commit`` returns once the step's single write batch is durable; reads for the
API (orders, audit trail, event log, quarantine, dead letters), the outbox for the
forwarder, and ``verify_audit_chain`` (the tamper-evident SHA-256 chain per tenant).

Parts: ``values`` (the store's value types), ``base`` (key layout, column families,
low-level I/O), ``reads`` (queries), ``outbox`` (outbox and dead letters), ``recovery``
(counters rebuilt at open, reopen after a failed write), ``store`` (commit, open/close),
``check`` and ``mark`` (damage found before serving), ``migrate`` (format versions),
``backup`` (checkpoints of the live store and their manifest).
The store imports only the settings and the foundation: never rules, ingest or the server.
"""

from gateway._store.check import StoreDamagedError, check_at_start
from gateway._store.migrate import MIGRATIONS, StoreFormatError
from gateway._store.store import FORMAT_VERSION, Store, open_store, store_settings
from gateway._store.values import AuditVerification, CommitResult, OutboxStats, StepWrite, StoreSettings

__all__ = [
    "FORMAT_VERSION",
    "MIGRATIONS",
    "AuditVerification",
    "CommitResult",
    "OutboxStats",
    "StepWrite",
    "Store",
    "StoreDamagedError",
    "StoreFormatError",
    "StoreSettings",
    "check_at_start",
    "open_store",
    "store_settings",
]
