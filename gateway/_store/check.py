"""The store's checks: damage found before anything is served, named by file, with the way out.

What is checked, and when
-------------------------
Every ``open_store`` (cheap; before RocksDB may change a file):

* a **read-only probe** of the database (``AccessType.read_only``: nothing on disk is
  written, so a damaged write-ahead log is still there for ``gateway store repair``) with
  ``paranoid_checks``: the ``CURRENT`` and ``MANIFEST`` files, every table file's size
  against the MANIFEST, every table's footer, index and filter blocks (RocksDB opens them
  all), and the WAL replayed with its checksums;
* the **durable mark** (``gateway._store.mark``): the probe's recovered sequence number
  must reach the last one known durable, or acknowledged writes were lost (a truncated or
  garbled ``.log``), which RocksDB's point-in-time recovery would otherwise drop silently;
* the store **format** (``gateway._store.migrate``): a newer one is refused before anything
  is written.

At the daemon's start (``check_at_start``), after the open, before serving:

* every table file's **data blocks** are read with their checksums (``verify_files``) when
  the tables hold at most ``START_VERIFY_BYTES`` (measured: about 2 s per GiB here; a box
  with a slow SD card may take 10x). A bigger store gets the full check from ``gateway
  store verify`` (gateway stopped) and reports any later damage on the read that hits it
  (a ``StoreError`` naming the file: the API answers 503);
* the last ``TAIL_RECORDS`` records of each tenant's **audit chain** are verified (links and
  hashes).

Anything found raises ``StoreDamagedError``: what, which file, and the way out (``gateway
store repair``, or ``gateway run --accept-damaged-store`` to serve anyway, logged as an
error at every start until repaired).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from rocksdict import AccessType, DBRecoveryMode, Options, Rdict, ReadOptions

from gateway._errors import StoreError
from gateway._store.base import StoreBase, _be64, _read64, _upper
from gateway._store.reads import _audit_problem
from gateway._store.values import AuditVerification

log = logging.getLogger("gateway._store.store")

#: Table bytes up to which the daemon reads every data block at start (see the module docstring).
START_VERIFY_BYTES = 512 * 1024**2
#: Audit records per tenant verified at every start.
TAIL_RECORDS = 1000
_FILE = re.compile(r"[^\s:]*?(?:\d+\.(?:sst|log|blob)|MANIFEST-\d+|CURRENT|OPTIONS-\d+)")

REPAIR_ADVICE = ("stop the gateway and run `gateway store repair` (it copies the damaged store aside first, "
                 "repairs it and reports per tenant what was lost); to serve on it anyway, start with "
                 "`gateway run --accept-damaged-store`. 存储已损坏：请先运行 `gateway store repair`"
                 "（会先把受损的存储复制到旁边），它会报告每个租户丢失了什么。")


class StoreDamagedError(StoreError):
    """The store failed a check: a file is damaged or acknowledged writes are gone.

    Attributes:
        store_path: the store directory.
        files: the damaged files, as RocksDB or the check named them (may be empty).
        detail: what was found.
    """

    def __init__(self, store_path: Path, detail: str, files: list[str] | None = None) -> None:
        self.store_path = store_path
        self.files = list(files or [])
        self.detail = detail
        named = f" (file: {', '.join(self.files)})" if self.files else ""
        super().__init__(f"the store {store_path} is damaged: {detail}{named}. What to do: {REPAIR_ADVICE}")


def damaged_files(message: str) -> list[str]:
    """The RocksDB file names in an error message, in order, without repeats."""
    found: list[str] = []
    for name in _FILE.findall(message):
        if name not in found:
            found.append(name)
    return found


def is_damage(message: str) -> bool:
    """True when a RocksDB error message says a file is damaged or missing (not locked, not full)."""
    lowered = message.lower()
    return "corruption" in lowered or ("no such file" in lowered and bool(damaged_files(message)))


@dataclass(frozen=True)
class Probe:
    """What a read-only open of a store found: its ``format`` (``None``: not set yet) and the
    newest sequence number RocksDB recovered."""

    format: bytes | None
    latest_seq: int


def probe_store(path: Path) -> Probe | None:
    """Open the store at ``path`` read-only (nothing written) and read its format; ``None``
    when there is no database there yet.

    Raises:
        StoreDamagedError: RocksDB found a damaged or missing file.
        StoreError: it cannot be opened for another reason.
    """
    if not (path / "CURRENT").exists():
        return None
    try:
        names = Rdict.list_cf(str(path), Options(raw_mode=True))
        options = Options(raw_mode=True)
        options.set_paranoid_checks(True)
        options.set_wal_recovery_mode(DBRecoveryMode.point_in_time())
        families = {name: Options(raw_mode=True) for name in names if name != "default"}
        db = Rdict(str(path), options=options, column_families=families,
                   access_type=AccessType.read_only(False))
    except Exception as exc:  # rocksdict raises bare Exception for RocksDB errors
        if is_damage(str(exc)):
            raise StoreDamagedError(path, str(exc).split("\n")[0], damaged_files(str(exc))) from exc
        raise StoreError(f"cannot open store {path}: {exc}") from exc
    try:
        stored = db.get_column_family("meta").get(b"format") if "meta" in families else None
        return Probe(stored, db.latest_sequence_number())
    except Exception as exc:
        if is_damage(str(exc)):
            raise StoreDamagedError(path, str(exc).split("\n")[0], damaged_files(str(exc))) from exc
        raise StoreError(f"cannot read store {path}: {exc}") from exc
    finally:
        db.close()


def wal_loss(path: Path, mark: int | None, probe: Probe | None) -> StoreDamagedError | None:
    """The error for acknowledged writes the WAL no longer holds, or ``None``."""
    if mark is None or probe is None or probe.latest_seq >= mark:
        return None
    logs = sorted(p.name for p in path.glob("*.log"))
    return StoreDamagedError(
        path, f"the write-ahead log gave back RocksDB writes up to #{probe.latest_seq}, but #{mark} was durable "
        f"before: {mark - probe.latest_seq} acknowledged writes are missing (a truncated or garbled log)", logs)


def table_bytes(store: StoreBase) -> int:
    """Bytes of the store's table (``.sst``) files."""
    files = store._guard(store._live_db().live_files)
    return sum(int(f.get("size", 0)) for f in files)


def verify_files(store: StoreBase) -> list[StoreDamagedError]:
    """Read every record of every column family with block checksums on: one error per
    column family whose data cannot be read (the first damaged block stops that family)."""
    problems: list[StoreDamagedError] = []
    for name, column in store._live(store._cfs).items():
        options = ReadOptions()
        options.set_verify_checksums(True)
        options.fill_cache(False)  # type: ignore[call-arg]  # the stub omits the argument
        iterator = column.iter(options)
        try:
            iterator.seek_to_first()
            step, valid = iterator.next, iterator.valid
            while valid():
                step()
            iterator.status()  # rocksdict's own iterators end quietly at a bad block: ask
        except Exception as exc:  # rocksdict raises bare Exception for RocksDB errors
            message = str(exc).split("\n")[0]
            problems.append(StoreDamagedError(store.settings.path, f"{name}: {message}", damaged_files(message)))
        finally:
            del iterator
    return problems


def verify_audit_tail(store: StoreBase, tenant: str, records: int = TAIL_RECORDS) -> AuditVerification:
    """Verify the last ``records`` records of a tenant's audit chain (links and hashes)."""
    last = store._audit_seq.get(tenant, 0)
    floor, prev = store.audit_anchor(tenant)[:2]
    first = max(floor, last - records + 1)
    prefix = tenant.encode() + b"\0"
    if first > floor:
        value = store._get("audit", prefix + _be64(first - 1))
        if value is None:
            return AuditVerification(False, 0, first - 1, f"record {first - 1} is missing")
        prev = value[-66:-2].decode(errors="replace")
    checked, expected = 0, first
    for key, value in store._scan("audit", prefix + _be64(first), _upper(prefix)):
        seq = _read64(key, len(prefix))[0]
        reason = _audit_problem(seq, expected, prev, value)
        if reason:
            return AuditVerification(False, checked, min(seq, expected), reason)
        prev, checked, expected = value[-66:-2].decode(), checked + 1, seq + 1
    if expected - 1 < last:
        return AuditVerification(False, checked, expected, f"chain ends at seq {expected - 1} but {last} were written")
    return AuditVerification(True, checked, None, "")


def check_at_start(store: StoreBase, *, verify_bytes: int = START_VERIFY_BYTES) -> list[StoreDamagedError]:
    """The daemon's start-up check of an open store (see the module docstring); the problems
    found, each naming its file or tenant (an empty list: serve)."""
    problems: list[StoreDamagedError] = []
    size = table_bytes(store)
    if size <= verify_bytes:
        problems.extend(verify_files(store))
        log.info("store check: every block of %.1f MiB of tables read with checksums", size / 1024**2)
    else:
        log.info("store check: %.1f MiB of tables is over %.0f MiB: their data blocks are not read at start; "
                 "`gateway store verify` (gateway stopped) reads them all", size / 1024**2, verify_bytes / 1024**2)
    for tenant in sorted(store._audit_seq):
        result = verify_audit_tail(store, tenant)
        if not result.ok:
            problems.append(StoreDamagedError(
                store.settings.path, f"the audit chain of tenant {tenant!r} breaks at seq {result.first_bad_seq}: "
                f"{result.reason}"))
    return problems


__all__ = ["REPAIR_ADVICE", "START_VERIFY_BYTES", "TAIL_RECORDS", "Probe", "StoreDamagedError", "check_at_start",
           "damaged_files", "is_damage", "probe_store", "table_bytes", "verify_audit_tail", "verify_files", "wal_loss"]
