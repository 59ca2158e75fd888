"""The rule sandbox: recorded traffic replayed under a candidate configuration before it goes live.

In: the event log's recorded raw inputs (``gateway export`` writes them as JSON lines, or a
read-only view of the live store), quarantine releases among them, the live rules directory
and settings, a candidate directory of changed rule files and of live files it deletes (from
the CLI or uploaded through the API).
Out: a deterministic report of the orders whose final status, pack group, expected bill
(gifts), quarantine or forwarded events would change, counted per rule with before/after
examples; for the API, candidates kept on disk, replayed in a worker thread and promoted
into the live rules directory by an admin.

Nothing here writes to the live store, calls the upstream or drives a device: each side of
a replay is plain in-memory state fed through the real processing step
(``gateway._pipeline.plan_step``), with recorded times as the clock.

Parts: ``recorded`` (the export format, written and read), ``configs`` (the live and the
candidate configuration), ``side`` (one side's dict-backed state), ``engine`` (the replay,
event by event), ``released`` (quarantine releases on each side), ``diff`` (the final
comparison), ``report`` (the report and its text), ``candidates`` (uploaded candidates, replay
jobs, promotion).
"""

from gateway._sandbox.configs import (
    Configuration,
    candidate_deletions,
    candidate_files,
    load_candidate,
    load_live,
)
from gateway._sandbox.engine import Replay
from gateway._sandbox.recorded import (
    ExportFilter,
    RecordedInputError,
    export_events,
    iter_export,
    iter_replay,
    read_recorded,
)
from gateway._sandbox.report import build_report, has_differences, render_text, report_bytes, run_replay

__all__ = ["Configuration", "ExportFilter", "RecordedInputError", "Replay", "build_report", "candidate_deletions",
           "candidate_files",
           "export_events", "has_differences", "iter_export", "iter_replay", "load_candidate", "load_live", "read_recorded",
           "render_text", "report_bytes", "run_replay"]
