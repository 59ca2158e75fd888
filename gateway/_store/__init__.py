"""The store: everything durable, in one RocksDB database.

In: ``StepWrite`` values (one per processing step: order states, event-log records, audit
records, outbox entries, index entries) from the pipeline; deletions of acknowledged outbox
records from the forwarder.
Out: ``Store.commit`` returns once the step's single write batch is durable; reads for the
API (orders, audit trail, event log, quarantine, dead letters), the outbox for the
forwarder, and ``verify_audit_chain`` (the tamper-evident SHA-256 chain per tenant).

Parts: ``values`` (the store's value types), ``base`` (key layout, column families,
low-level I/O), ``reads`` (queries), ``outbox`` (outbox and dead letters), ``recovery``
(counters rebuilt at open, reopen after a failed write), ``store`` (commit, open/close).
The store imports only the settings and the foundation: never rules, ingest or the server.
"""

from gateway._store.store import FORMAT_VERSION, Store, open_store, store_settings
from gateway._store.values import AuditVerification, CommitResult, OutboxStats, StepWrite, StoreSettings

__all__ = [
    "FORMAT_VERSION",
    "AuditVerification",
    "CommitResult",
    "OutboxStats",
    "StepWrite",
    "Store",
    "StoreSettings",
    "open_store",
    "store_settings",
]
