"""The pipeline: normalised events become durable, acknowledged state changes.

In: lists of ``Event`` values submitted by ingest (webhooks, the Pinduoduo WebSocket) and by
quarantine release, each with a priority (``webhook`` or ``station``).
Out: one ``StepWrite`` per group of submissions committed to the store in one write batch;
each submitter gets its ``EventResult`` values (new, applied, unchanged, late, duplicate,
quarantined) only once that batch is durable, or ``BackpressureError`` / ``StoreError``
with nothing stored.

Parts: ``grouping`` (cross-channel pack groups of one buyer), ``step`` (planning a step,
pure: state machine, records, outbox entries), ``step_groups`` (the pack-group records of
a step), ``quarantine`` (re-reading quarantined raw input under the live rules),
``committer`` (``Pipeline``: group commit with commit delay, backpressure, healing),
``salt`` (the install's secret salt of buyer keys, set before any key is computed).
"""

from gateway._pipeline.committer import Pipeline, now_ms
from gateway._pipeline.quarantine import ReleasePlan, plan_release
from gateway._pipeline.salt import apply_buyer_salt
from gateway._pipeline.step import EventResult, Outcome, plan_step

__all__ = ["EventResult", "Outcome", "Pipeline", "ReleasePlan", "apply_buyer_salt", "now_ms", "plan_release",
           "plan_step"]
