"""Forwarding: the outbox drained to the upstream ERP, store-and-forward.

In: outbox records the pipeline committed (read from the store up to the last fsynced seq).
Out: signed batches POSTed through a ``Sink`` (HTTP today; the fleet's NATS sink plugs in
behind the same protocol); acknowledged records deleted from the outbox, rejected ones moved
to the dead-letter list; backoff with jitter and ``Retry-After`` on outages.

Parts: ``sink`` (the ``Sink`` protocol, the batch wire format, how an answer is classified,
``HttpSink``), ``forwarder`` (the drain loop, its state and the outbox report).
"""

from gateway._forward.forwarder import Forwarder, ForwarderState, open_forwarder, outbox_report
from gateway._forward.sink import Delivery, HttpSink, OutboundBatch, Sink, build_batch

__all__ = [
    "Delivery",
    "Forwarder",
    "ForwarderState",
    "HttpSink",
    "OutboundBatch",
    "Sink",
    "build_batch",
    "open_forwarder",
    "outbox_report",
]
