"""What the HTTP routes talk to (``Services``, built by the daemon) and the local API's admin
token (the scoped tokens are ``gateway._server.tokens``)."""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway._customs import CustomsConfig
from gateway._forward import Forwarder, outbox_report
from gateway._metrics import Metrics
from gateway._ops import OpsState
from gateway._packline import DeviceRegistry, PackLine, StationDisplay
from gateway._pipeline import Pipeline
from gateway._rules import RuleHolder
from gateway._server.tokens import TokenRegistry
from gateway._settings import Settings
from gateway._store import Store

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything the HTTP layer talks to; built by the daemon.

    ``api_token`` is the admin token's secret; ``tokens`` the registry of every token
    (``build_app`` makes it from ``api_token`` and ``[api] tokens_file`` when not given).
    """

    settings: Settings
    store: Store
    pipeline: Pipeline
    rules: RuleHolder
    metrics: Metrics
    api_token: str
    started_at: float = field(default_factory=time.time)
    bound: list[str] = field(default_factory=list)
    channels: list[Any] = field(default_factory=list)  # outbound message clients (PinduoduoClient)
    forwarder: Forwarder | None = None
    devices: DeviceRegistry = field(default_factory=DeviceRegistry)  # the pack stations' devices
    display: StationDisplay = field(default_factory=StationDisplay)  # each station's live view
    packline: PackLine | None = None  # the stations' sessions, once the pack line runs
    ops: OpsState | None = None  # the anomaly board and the OCI, once the daemon runs them
    tokens: TokenRegistry | None = None  # who may call the local API (set by build_app when None)
    customs: CustomsConfig | None = None  # the customs declaration check (read from [customs] dir when None)

    def outbox_report(self) -> dict[str, Any]:
        upstream = self.forwarder.settings.url if self.forwarder else self.settings.upstream.url
        return outbox_report(self.store, self.forwarder, upstream)


def load_or_create_token(path: Path) -> str:
    """The admin API token in ``path``; a new random one (mode 0600) when the file is missing."""
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(token + "\n", encoding="utf-8")
    log.info("created a new API token in %s", path)
    return token


__all__ = ["Services", "load_or_create_token"]
