"""Warehouse edge gateway: the order nerve hub at an e-commerce warehouse's pack line.

The data flows one way, and the package layout is that flow (the README's "Layout" has the
tree)::

    _ingest (verify + unwrap)  ->  _rules (normalise, map, state machine)
        ->  _pipeline (plan a step, group commit)  ->  _store (RocksDB, one batch per step)
        ->  _forward (outbox -> upstream ERP)
    _server (HTTP: webhooks in; local API, probes, metrics out)
    _daemon (wires the stages into one trio process), cli (the ``gateway`` command), _demo

Below every stage, the foundation: ``_model`` (Event, OrderState, Status), ``_errors``,
``_times``, ``_metrics``, ``_backoff``, ``_addresses``, ``_signing``; and ``_settings``
(``gateway.toml``). A stage imports only from stages before it and from the foundation;
``make lint`` checks it (import-linter, ``[tool.importlinter]`` in ``pyproject.toml``).
The public names below are the stable API; everything under ``_`` is private.
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
from gateway._rules import TRANSITIONS, Decision, decide

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
