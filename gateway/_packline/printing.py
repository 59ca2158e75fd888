"""Print-on-verify: the parcel label prints only on a complete close, through a durable queue.

A label job is a record of the store's pack-line keyspace (kind ``print``, id = job id),
written in the same batch as the close that created it: no close without its job, no job
without its close. Each station has one worker (``serve_print_queue``) that prints its jobs
one at a time, oldest first. A job's life::

    queued --(refund check, ~HS ok, every byte acknowledged)--> printed
       |  \\--(paper out / head open / unreachable: ``refused``)--> queued again, the
       |      station shows why; retried every ``RETRY_REFUSED_S`` until the printer is ready
       |--(an order of the parcel was refunded or cancelled meanwhile)--> cancelled
       \\--(marked ``printing`` durably, then cut off mid-send, or the gateway died
           while ``printing``)--> uncertain: shown for a decision, NEVER re-sent by itself

At most once: a job is marked ``printing`` durably before its first byte leaves, so a crash
at any instant leaves it ``queued`` (nothing sent: printed after the restart), ``printing``
(turned ``uncertain`` at start: a person looks at the printer), or ``printed``. An operator
asks for a reprint (the station's reprint code, or the API) and decides an uncertain job
(``printed`` after all, or ``reprint``); a reprint is a new job (``<session>/r<n>``)
pointing at the one it repeats, audited with who asked.

The refund state is checked again right before the label would print, not only at the
last scan: ``PrintGuard`` answers whether every order of the parcel may still ship.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import trio

from devices.printer import PrintResult, ZplPrinter
from gateway._errors import BackpressureError, StoreError
from gateway._store import StepWrite

log = logging.getLogger(__name__)

JobState = Literal["queued", "printing", "printed", "uncertain", "cancelled"]
#: After a refusal (paper out...), the job is tried again this often.
RETRY_REFUSED_S = 3.0
KIND = "print"


@dataclass(frozen=True, slots=True)
class PrintJob:
    """One label job.

    Attributes:
        job_id: ``<session_id>/1`` for the close's label, ``<session_id>/r<n>`` for reprints.
        tenant / station / group_id / order_ids: whose parcel, printed where.
        zpl: the label: the ERP's ZPL for the order when it supplied one, else ours.
        state: see the module docstring.
        reason: why it is not printed yet (the printer's refusal, the refund), for the station.
        attempts: refusals so far.
        created_at_ms / updated_at_ms / printed_at_ms: epoch ms.
        reprint_of: the job a reprint repeats; ``requested_by``: who asked for it.
    """

    job_id: str
    tenant: str
    station: str
    group_id: str
    order_ids: tuple[str, ...]
    zpl: str
    state: JobState = "queued"
    reason: str = ""
    attempts: int = 0
    created_at_ms: int = 0
    updated_at_ms: int = 0
    printed_at_ms: int = 0
    reprint_of: str = ""
    requested_by: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "tenant": self.tenant, "station": self.station, "group_id": self.group_id,
                "order_ids": list(self.order_ids), "zpl": self.zpl, "state": self.state, "reason": self.reason,
                "attempts": self.attempts, "created_at_ms": self.created_at_ms, "updated_at_ms": self.updated_at_ms,
                "printed_at_ms": self.printed_at_ms, "reprint_of": self.reprint_of,
                "requested_by": self.requested_by}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> PrintJob:
        return cls(raw["job_id"], raw["tenant"], raw["station"], raw["group_id"], tuple(raw.get("order_ids", ())),
                   raw["zpl"], raw.get("state", "queued"), raw.get("reason", ""), int(raw.get("attempts", 0)),
                   int(raw.get("created_at_ms", 0)), int(raw.get("updated_at_ms", 0)),
                   int(raw.get("printed_at_ms", 0)), raw.get("reprint_of", ""), raw.get("requested_by", ""))

    def label_view(self) -> dict[str, Any]:
        """What the station display shows of it."""
        shown: str = self.state
        if self.state == "queued" and self.reason:
            shown = "refused"
        return {"state": shown, "reason": self.reason, "job_id": self.job_id}


def job_record(job: PrintJob) -> tuple[str, str, str, dict[str, Any]]:
    """The job as a ``StepWrite.records`` entry."""
    return (job.tenant, KIND, job.job_id, job.to_dict())


def job_audit(job: PrintJob, at_ms: int, actor: str, note: str) -> dict[str, Any]:
    """An audit record for a job's decisive moment (printed, uncertain, reprint, decision)."""
    return {"tenant": job.tenant, "at_ms": at_ms, "actor": actor, "source": "station", "event_id": "",
            "rule": "", "order_id": job.order_ids[0] if job.order_ids else "", "decision": f"label_{job.state}",
            "changes": [], "note": note, "detail": {"job_id": job.job_id, "station": job.station,
                                                    "group_id": job.group_id}}


def recover_jobs(jobs: Iterable[PrintJob], now_ms: int) -> tuple[list[PrintJob], list[PrintJob]]:
    """At start: the jobs to print (``queued``, oldest first) and the ``printing`` ones that
    become ``uncertain`` (the gateway stopped while their bytes were on the way)."""
    pending: list[PrintJob] = []
    uncertain: list[PrintJob] = []
    for job in sorted(jobs, key=lambda j: (j.created_at_ms, j.job_id)):
        if job.state == "queued":
            pending.append(job)
        elif job.state == "printing":
            uncertain.append(replace(job, state="uncertain", updated_at_ms=now_ms,
                                     reason="the gateway stopped while the label was being sent"))
    return pending, uncertain


#: ``(job) -> reason`` when an order of the parcel must not ship any more, else ``""``.
PrintGuard = Callable[[PrintJob], str]
#: Commits a ``StepWrite`` durably (the pipeline, station priority).
Commit = Callable[[StepWrite], Awaitable[None]]
#: Called with every job whose state changed (the station display, the log).
Notify = Callable[[PrintJob], None]


@dataclass
class PrintQueue:
    """The jobs of one station's printer, and the worker that prints them.

    Args:
        station: the station.
        printer: its driver (``None``: no printer; jobs wait, the display says so).
        commit: durable writes.
        guard: the refund check right before printing.
        notify: job changes for the display.
        now_ms: the clock.
    """

    station: str
    printer: ZplPrinter | None
    commit: Commit
    guard: PrintGuard
    notify: Notify
    now_ms: Callable[[], int]
    _pending: list[PrintJob] = field(default_factory=list)
    _wake: trio.Event = field(default_factory=trio.Event)
    busy: str = ""  # the job being tried now

    def add(self, job: PrintJob) -> None:
        """Queue a job already durable as ``queued`` (written with its close)."""
        self._pending.append(job)
        self._wake.set()

    def remove(self, job_id: str) -> bool:
        """Take a queued job out (an operator cancelled it); ``False`` when it is being sent
        right now (it can no longer be stopped)."""
        if self.busy == job_id:
            return False
        self._pending = [job for job in self._pending if job.job_id != job_id]
        return True

    @property
    def pending(self) -> list[PrintJob]:
        return list(self._pending)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Print queued jobs for ever, one at a time."""
        task_status.started()
        while True:
            if not self._pending:
                self._wake = trio.Event()
                await self._wake.wait()
                continue
            job = self._pending[0]
            self.busy = job.job_id
            try:
                done = await self._attempt(job)
            except (BackpressureError, StoreError) as exc:  # not recorded: the job stays as it was stored
                log.error("station %s: label %s waits, the store did not take its state: %s", self.station,
                          job.job_id, exc)
                done = False
            finally:
                self.busy = ""
            if done:
                self._pending = [j for j in self._pending if j.job_id != job.job_id]
            else:
                await trio.sleep(RETRY_REFUSED_S)

    async def _attempt(self, job: PrintJob) -> bool:
        """One try; ``True`` when the job left the queue (printed, uncertain, cancelled)."""
        now = self.now_ms()
        blocked = self.guard(job)
        if blocked:
            cancelled = replace(job, state="cancelled", reason=blocked, updated_at_ms=now)
            await self._save(cancelled, "gateway", f"label not printed: {blocked}")
            return True
        if self.printer is None:
            await self._refused(job, "no printer configured at this station")
            return False
        printing = replace(job, state="printing", reason="", updated_at_ms=now)
        await self.commit(StepWrite(records=[job_record(printing)]))  # durable before the first byte
        self.notify(printing)
        with trio.CancelScope(shield=True):  # a job half sent by a cancel is as uncertain as a pulled cable
            result: PrintResult = await self.printer.print_label(job.zpl)
        # Recording the outcome may be cancelled (shutdown): the job then stays "printing" in the
        # store and becomes "uncertain" at the next start, never printed twice.
        if result.outcome == "sent":
            printed = replace(printing, state="printed", printed_at_ms=self.now_ms(), updated_at_ms=self.now_ms())
            await self._save(printed, f"station:{self.station}", "label printed")
            return True
        if result.outcome == "uncertain":
            uncertain = replace(printing, state="uncertain", reason=result.reason, updated_at_ms=self.now_ms())
            await self._save(uncertain, f"station:{self.station}",
                             f"label uncertain ({result.reason}): an operator decides, it is not re-sent")
            return True
        await self._refused(job, result.reason)
        return False

    async def _refused(self, job: PrintJob, reason: str) -> None:
        again = replace(job, state="queued", reason=reason, attempts=job.attempts + 1, updated_at_ms=self.now_ms())
        if job.reason != reason:  # a new reason is worth a write; the same one every 3 s is not
            await self.commit(StepWrite(records=[job_record(again)]))
            log.warning("station %s: label %s not printed: %s", self.station, job.job_id, reason)
        self._pending = [again if j.job_id == job.job_id else j for j in self._pending]
        self.notify(again)

    async def _save(self, job: PrintJob, actor: str, note: str) -> None:
        """Record a decided job; after a label went out this must not fail into a re-send, so
        a store that refuses is asked again until it takes it (a restart meanwhile finds the
        job ``printing`` and makes it ``uncertain``: never printed twice)."""
        write = StepWrite(records=[job_record(job)], audit=[job_audit(job, self.now_ms(), actor, note)])
        while True:
            try:
                await self.commit(write)
                break
            except (BackpressureError, StoreError) as exc:
                log.error("station %s: label %s is %s but not recorded yet (%s); retrying", self.station,
                          job.job_id, job.state, exc)
                await trio.sleep(RETRY_REFUSED_S)
        log.info("station %s: label %s %s", self.station, job.job_id, job.state)
        self.notify(job)


def reprint_job(original: PrintJob, number: int, requested_by: str, now_ms: int) -> PrintJob:
    """A new job repeating ``original`` (the operator asked: reprint code, API, or an
    uncertain job decided "reprint")."""
    return replace(original, job_id=f"{original.job_id.rsplit('/', 1)[0]}/r{number}", state="queued", reason="",
                   attempts=0, created_at_ms=now_ms, updated_at_ms=now_ms, printed_at_ms=0,
                   reprint_of=original.job_id, requested_by=requested_by)


__all__ = ["KIND", "RETRY_REFUSED_S", "JobState", "PrintGuard", "PrintJob", "PrintQueue", "job_audit", "job_record",
           "recover_jobs", "reprint_job"]
