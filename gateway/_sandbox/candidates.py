"""Candidates uploaded through the API: kept on disk, replayed in a worker thread, promoted.

A candidate is a set of changed rule files (``erp.toml``, ``gifts/demo.toml``), live files it
deletes (``deleted``), and, optionally, another pack-group window, kept under
``<data_dir>/sandbox/<id>/`` (``files/``, a deletion as the marker ``files/<name>.delete`` that
``gateway._sandbox.configs`` reads, and ``candidate.json``). It is checked when uploaded with the
live loader laid over the live rules: a broken file is refused then, with file, line and key,
and so is deleting a file the live rules directory does not hold.

``CandidateStore.start_replay`` replays the live event log of the last N days (every tenant, or
one) through the live and the candidate configuration in a ``threading.Thread``: the store is
only read (its iterators read in chunks, from any thread), nothing is sent upstream, no device
is touched. The job's progress and, once done, its report are kept in memory and the report
also in ``report.json``.

``promote`` is the one step that changes the live system: each file is written into the live
rules directory atomically (a temporary file in the same directory, fsynced, then renamed), each
deleted file is removed, and the live ``RuleHolder`` reloads, all while no other reload can run.
If the reload refuses the set (the live directory changed since the upload, or nothing would be
left), the previous files are put back (deleted ones too) and reloaded, and ``PromoteError``
names the errors; a deleted file gone from the live directory since the upload is refused
before anything is written. The pack-group window is a setting of ``gateway.toml``, not a rule file: it is not
promoted (the answer says so).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from gateway._errors import ConfigError, GatewayError
from gateway._packline.catalog_store import load_catalog
from gateway._packline.values import Catalog
from gateway._rules import RuleErrors, RuleHolder
from gateway._sandbox.configs import DELETE_SUFFIX, load_candidate, load_live
from gateway._sandbox.recorded import ExportFilter, iter_replay
from gateway._sandbox.report import run_replay
from gateway._store import Store
from gateway._store.backup import summary

log = logging.getLogger(__name__)

_MAPPING_NAME = re.compile(r"^[a-z0-9_]{1,32}\.toml$")
_GIFT_NAME = re.compile(r"^gifts/[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\.toml$")
_ID = re.compile(r"^c[0-9a-f]{10}$")
MAX_FILES = 32
MAX_FILE_BYTES = 256 * 1024
DAY_MS = 86_400_000


class CandidateError(GatewayError):
    """A candidate upload, replay or promotion refused: ``code`` for the API, English and zh-CN text.

    Attributes:
        errors: every rule-file error (``file:line: key: ...``) when the files are invalid.
    """

    def __init__(self, code: str, message: str, message_zh: str, errors: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.code, self.message_zh, self.errors = code, message_zh, errors


class PromoteError(CandidateError):
    """The live rules refused the promoted files; the previous files are back and live."""


@dataclass
class ReplayJob:
    """One replay of a candidate over the live event log (updated by its worker thread)."""

    days: float
    tenant: str
    since_ms: int
    started_at_ms: int
    state: str = "running"  # running | done | failed
    done: int = 0
    total: int = 0
    elapsed_s: float = 0.0
    error: str = ""
    report: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        rate = self.done / self.elapsed_s if self.elapsed_s else 0.0
        eta = max(0, self.total - self.done) / rate if rate and self.state == "running" else 0.0
        return {"state": self.state, "days": self.days, "tenant": self.tenant or "*", "since_ms": self.since_ms,
                "started_at_ms": self.started_at_ms, "done": self.done, "total": self.total,
                "events_per_s": round(rate), "eta_s": round(eta, 1), "error": self.error or None}


@dataclass
class Candidate:
    """An uploaded candidate (``files``: name -> text)."""

    candidate_id: str
    files: dict[str, str]
    merge_window_ms: int | None
    note: str
    uploaded_by: str
    uploaded_at_ms: int
    changed: tuple[str, ...] = ()
    promoted: dict[str, Any] | None = None
    job: ReplayJob | None = field(default=None, repr=False)
    #: Live files the candidate deletes.
    deleted: tuple[str, ...] = ()

    def to_dict(self, with_texts: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.candidate_id, "files": sorted(self.files), "changed": list(self.changed),
            "deleted": list(self.deleted),
            "merge_window_s": None if self.merge_window_ms is None else self.merge_window_ms / 1000,
            "note": self.note, "uploaded_by": self.uploaded_by, "uploaded_at_ms": self.uploaded_at_ms,
            "promoted": self.promoted, "replay": self.job.to_dict() if self.job else None}
        if with_texts:
            out["texts"] = dict(sorted(self.files.items()))
        return out


class CandidateStore:
    """Candidates of one gateway (see the module docstring).

    Args:
        root: ``<data_dir>/sandbox``.
        live_rules_dir: the live rules directory (read for the overlay; written by ``promote``).
        merge_window_ms: the live ``[pipeline] merge_window_s``, in ms.
    """

    def __init__(self, root: Path, live_rules_dir: Path, merge_window_ms: int) -> None:
        self.root, self.live_rules_dir, self.merge_window_ms = root, live_rules_dir, merge_window_ms
        self._lock = threading.Lock()
        self._candidates: dict[str, Candidate] = {}
        self._load_existing()

    def __repr__(self) -> str:
        return f"<CandidateStore {str(self.root)!r}: {len(self._candidates)} candidates>"

    def _load_existing(self) -> None:
        if not self.root.is_dir():
            return
        for meta in sorted(self.root.glob("c*/candidate.json")):
            try:
                raw = orjson.loads(meta.read_bytes())
                files = {name: (meta.parent / "files" / name).read_text(encoding="utf-8") for name in raw["files"]}
            except (OSError, ValueError, KeyError):
                continue  # a half-written upload: ignored, never half-used
            self._candidates[raw["id"]] = Candidate(raw["id"], files, raw.get("merge_window_ms"), raw.get("note", ""),
                                                    raw.get("uploaded_by", ""), raw.get("uploaded_at_ms", 0),
                                                    tuple(raw.get("changed", ())), raw.get("promoted"),
                                                    deleted=tuple(raw.get("deleted", ())))

    # -- upload ------------------------------------------------------------------------------

    def create(self, files: dict[str, str], merge_window_s: float | None, note: str, by: str, now_ms: int,
               deleted: tuple[str, ...] = ()) -> Candidate:
        """Check and keep a candidate.

        Args:
            deleted: live files (``youzan.toml``, ``gifts/demo.toml``) the candidate deletes.

        Raises:
            CandidateError: bad file names or sizes (``bad_files``), a deleted file that is not
                live (``no_such_live_file``), or invalid rules (``invalid_rules``, every error
                named by file, line and key).
        """
        _check_names(files, deleted)
        self._check_live(deleted)
        candidate_id = "c" + secrets.token_hex(5)
        directory = self.root / candidate_id
        (directory / "files" / "gifts").mkdir(parents=True)
        for name, text in files.items():
            (directory / "files" / name).write_text(text, encoding="utf-8")
        for name in deleted:
            (directory / "files" / (name + DELETE_SUFFIX)).write_bytes(b"")
        window = None if merge_window_s is None else round(merge_window_s * 1000)
        try:
            config = load_candidate(self.live_rules_dir, directory / "files",
                                    self.merge_window_ms if window is None else window)
        except ConfigError as exc:
            errors = exc.errors if isinstance(exc, RuleErrors) else (exc,)
            shown = tuple(str(error).replace(str(directory / "files") + "/", "") for error in errors)
            _remove(directory)
            raise CandidateError("invalid_rules", "the candidate's rule files are invalid: fix each line named",
                                 "候选规则文件有错误：请按所列文件、行号和键逐一修正", shown) from None
        candidate = Candidate(candidate_id, dict(files), window, note, by, now_ms, config.changed,
                              deleted=config.deleted)
        self._save(candidate)
        with self._lock:
            self._candidates[candidate_id] = candidate
        return candidate

    def _save(self, candidate: Candidate) -> None:
        meta = {"id": candidate.candidate_id, "files": sorted(candidate.files), "merge_window_ms": candidate.merge_window_ms,
                "note": candidate.note, "uploaded_by": candidate.uploaded_by,
                "uploaded_at_ms": candidate.uploaded_at_ms, "changed": list(candidate.changed),
                "deleted": list(candidate.deleted), "promoted": candidate.promoted}
        _write_atomically(self.root / candidate.candidate_id / "candidate.json", orjson.dumps(meta))

    def _check_live(self, deleted: tuple[str, ...]) -> None:
        """Refuse deleting a file the live rules directory does not hold (``no_such_live_file``)."""
        missing = [name for name in deleted if not (self.live_rules_dir / name).is_file()]
        if missing:
            raise CandidateError("no_such_live_file", f"{', '.join(missing)}: not in the live rules directory, so "
                                 "it cannot be deleted: check the name (GET /api/v1/rules lists the live files)",
                                 f"{'、'.join(missing)}：现行规则目录中没有这个文件，无法删除；请核对文件名")

    def get(self, candidate_id: str) -> Candidate | None:
        """The candidate, or ``None``."""
        if not _ID.match(candidate_id):
            return None
        with self._lock:
            return self._candidates.get(candidate_id)

    def listed(self) -> list[Candidate]:
        """Every candidate, newest first."""
        with self._lock:
            return sorted(self._candidates.values(), key=lambda c: (-c.uploaded_at_ms, c.candidate_id))

    # -- replay ------------------------------------------------------------------------------

    def start_replay(self, candidate: Candidate, store: Store, days: float, tenant: str, now_ms: int) -> ReplayJob:
        """Start replaying the last ``days`` of the live event log in a worker thread.

        Raises:
            CandidateError: a replay of this candidate is already running (``replay_running``).
        """
        with self._lock:
            if candidate.job is not None and candidate.job.state == "running":
                raise CandidateError("replay_running", "a replay of this candidate is running: wait for its report",
                                     "该候选规则的回放正在进行，请等待结果")
            job = candidate.job = ReplayJob(days, tenant, now_ms - round(days * DAY_MS), now_ms)
        worker = threading.Thread(target=self._replay, args=(candidate, job, store),
                                  name=f"sandbox-replay-{candidate.candidate_id}", daemon=True)
        worker.start()
        return job

    def _replay(self, candidate: Candidate, job: ReplayJob, store: Store) -> None:
        started = time.monotonic()

        def progress(done: int) -> None:
            job.done, job.elapsed_s = done, time.monotonic() - started

        try:
            live = load_live(self.live_rules_dir, self.merge_window_ms)
            window = self.merge_window_ms if candidate.merge_window_ms is None else candidate.merge_window_ms
            config = load_candidate(self.live_rules_dir, self.root / candidate.candidate_id / "files", window)
            figures = summary(store)["tenants"]
            tenants = [job.tenant] if job.tenant else sorted(figures)
            job.total = sum(int(figures.get(t, {}).get("last_event_seq", 0)) for t in tenants)
            lines = itertools.chain.from_iterable(iter_replay(store, ExportFilter(t, job.since_ms)) for t in tenants)
            catalogs: dict[str, Catalog] = {}

            def catalog_for(tenant: str) -> Catalog:
                return catalogs.setdefault(tenant, load_catalog(store, tenant))

            report = run_replay(lines, live, config, catalog_for=catalog_for, progress=progress)
            _write_atomically(self.root / candidate.candidate_id / "report.json",
                              orjson.dumps(report, option=orjson.OPT_SORT_KEYS))
            job.report, job.state = report, "done"
        except (GatewayError, OSError) as exc:
            job.error, job.state = str(exc), "failed"
        except Exception as exc:  # a bug: the thread's boundary; the job must not stay "running" forever
            log.exception("sandbox replay of %s failed", candidate.candidate_id)
            job.error, job.state = f"internal error: {exc!r}; see the gateway's log", "failed"
        job.elapsed_s = time.monotonic() - started

    # -- promotion ---------------------------------------------------------------------------

    def promote(self, candidate: Candidate, holder: RuleHolder, by: str, now_ms: int) -> dict[str, Any]:
        """Write the candidate's files into the live rules directory and reload the live rules.

        The set goes live as one: every other reload (the file poller, SIGHUP, the API) waits
        while the files are written and loaded (``RuleHolder.editing``), so none makes part of
        the set live; a refused set is put back the same way. A process that is not this
        gateway and reads the directory meanwhile (another gateway on the same files) may
        still see part of it.

        Returns:
            ``{"files", "deleted", "rules_digest", "merge_window_note"}``.

        Raises:
            CandidateError: a file the candidate deletes is not live any more (``no_such_live_file``);
                nothing was written.
            PromoteError: the live rules refused the set; the previous files are back and live.
        """
        target = self.live_rules_dir
        previous: dict[str, bytes | None] = {}
        with holder.editing() as reload:  # no other reload sees part of the set
            self._check_live(candidate.deleted)
            for name in sorted([*candidate.files, *candidate.deleted]):
                path = target / name
                previous[name] = path.read_bytes() if path.exists() else None
            for name, text in sorted(candidate.files.items()):
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                _write_atomically(target / name, text.encode("utf-8"))
            for name in candidate.deleted:
                _remove_file(target / name)
            outcome = reload()
            if not outcome.ok:
                for name, content in previous.items():
                    if content is None:
                        (target / name).unlink(missing_ok=True)
                    else:
                        _write_atomically(target / name, content)
                reload()
        if not outcome.ok:
            error = outcome.error
            errors = tuple(str(e) for e in error.errors) if isinstance(error, RuleErrors) else (str(error),)
            raise PromoteError("promote_refused", "the live rules refused the candidate; the previous files are back "
                               "and live: upload a corrected candidate", "现行规则拒绝了该候选（已恢复原文件）：请上传修正后的候选",
                               errors)
        note = "" if candidate.merge_window_ms is None else (
            "the pack-group window is a setting: set [pipeline] merge_window_s = "
            f"{candidate.merge_window_ms / 1000:g} in gateway.toml and restart to apply it")
        candidate.promoted = {"by": by, "at_ms": now_ms, "rules_digest": outcome.rules.digest}
        self._save(candidate)
        return {"files": sorted(candidate.files), "deleted": list(candidate.deleted),
                "rules_digest": outcome.rules.digest, "merge_window_note": note}


def _check_names(files: dict[str, str], deleted: tuple[str, ...] = ()) -> None:
    if not (files or deleted) or len(files) + len(deleted) > MAX_FILES:
        raise CandidateError("bad_files", f"give 1 to {MAX_FILES} files (changed or deleted)",
                             f"请上传或删除 1 到 {MAX_FILES} 个规则文件")
    for name in [*files, *deleted]:
        if not isinstance(name, str) or not (_MAPPING_NAME.match(name) or _GIFT_NAME.match(name)):
            raise CandidateError("bad_files", f"{name!r}: a file is <source>.toml or gifts/<name>.toml",
                                 f"{name!r}：文件名须为 <来源>.toml 或 gifts/<名称>.toml")
    both = sorted(set(files) & set(deleted))
    if both or len(set(deleted)) != len(deleted):
        raise CandidateError("bad_files", f"{', '.join(both) or 'a name'}: given twice (changed and deleted, or "
                             "deleted twice): keep one", f"{'、'.join(both) or '文件'}：同一文件不能既修改又删除")
    for name, text in files.items():
        if not isinstance(text, str) or len(text.encode("utf-8")) > MAX_FILE_BYTES:
            raise CandidateError("bad_files", f"{name}: the text must be a string of at most {MAX_FILE_BYTES} bytes",
                                 f"{name}：内容须为不超过 {MAX_FILE_BYTES} 字节的文本")


def _write_atomically(path: Path, content: bytes) -> None:
    """``content`` into ``path``: a fsynced temporary file in the same directory, then a rename."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _remove_file(path: Path) -> None:
    """Delete ``path`` and make the removal durable (the directory fsynced)."""
    path.unlink()
    handle = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _remove(directory: Path) -> None:
    for path in sorted(directory.rglob("*"), reverse=True):
        if path.is_dir():
            path.rmdir()
        else:
            path.unlink()
    directory.rmdir()


__all__ = ["Candidate", "CandidateError", "CandidateStore", "PromoteError", "ReplayJob"]
