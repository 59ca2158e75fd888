"""Warehouse edge gateway: the order nerve hub at an e-commerce warehouse's pack line.

The data flows one way, and so does the module layout::

    adapters (verify + unwrap)  ->  _normalize (rules + core_ext)  ->  _step (state machine)
        ->  _pipeline (group commit)  ->  _store (RocksDB)  ->  outbox -> upstream ERP

``_daemon`` wires the stages into one trio process; ``cli`` is the ``gateway`` command.
The public names below are the stable API; everything in ``_modules`` is private.
"""

from gateway._errors import (
    BackpressureError,
    ConfigError,
    GatewayError,
    IngestError,
    MalformedEventError,
    PayloadTooLargeError,
    SignatureError,
    StateTransitionError,
    StoreError,
)
from gateway._model import Event, OrderState, Status
from gateway._statemachine import TRANSITIONS, Decision, decide

__version__ = "0.1.0"

__all__ = [
    "TRANSITIONS",
    "BackpressureError",
    "ConfigError",
    "Decision",
    "Event",
    "GatewayError",
    "IngestError",
    "MalformedEventError",
    "OrderState",
    "PayloadTooLargeError",
    "SignatureError",
    "StateTransitionError",
    "Status",
    "StoreError",
    "__version__",
    "decide",
]
