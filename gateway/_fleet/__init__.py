"""The fleet: many boxes feeding one replicated NATS JetStream stream, seen from one place.

In: this box's state (outbox backlog, devices, OCI) and the ``[upstream.nats]`` settings.
Out: a heartbeat per box in a JetStream key-value bucket; the CLI's views of the fleet.

Parts: ``heartbeat`` (the heartbeat value, its publisher over the sink's connection, the
daemon's periodic task), ``status`` (``gateway fleet status``: boxes, backlog, silent boxes),
``tail`` (``gateway fleet tail``: a durable pull consumer that prints and acks). The events
themselves go through ``gateway._forward.nats_sink``.
"""

from gateway._fleet.heartbeat import Heartbeat, HeartbeatPublisher, box_key, heartbeat_of, serve_heartbeat
from gateway._fleet.status import BoxStatus, judge, read_bucket, render
from gateway._fleet.tail import TailedEvent, parse_message, subject_filter, tail

__all__ = [
    "BoxStatus",
    "Heartbeat",
    "HeartbeatPublisher",
    "TailedEvent",
    "box_key",
    "heartbeat_of",
    "judge",
    "parse_message",
    "read_bucket",
    "render",
    "serve_heartbeat",
    "subject_filter",
    "tail",
]
