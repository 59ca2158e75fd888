"""The daemon's configuration as values: one frozen dataclass per ``gateway.toml`` section,
the per-tenant, per-source credentials and ``Secret``. Loading and validation (with file,
line and key in every error) and the reference of every key: ``gateway._settings.loader``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from gateway._settings.customs import CustomsSection
from gateway._settings.nats import NatsSettings
from gateway._settings.oci import OciSettings

if TYPE_CHECKING:  # stations.py builds on Secret, defined here
    from gateway._settings.stations import NvrSection, StationSection

TENANT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SOURCE_NAME = re.compile(r"^[a-z0-9_]{1,32}$")


class Secret:
    """A secret value that never shows itself in logs, reprs or error messages."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> bytes:
        """The secret as UTF-8 bytes, for signing. Never log the result."""
        return self._value.encode()

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class GatewaySection:
    id: str = "edge-01"
    data_dir: str = "data"
    rules_dir: str = "rules"
    rules_poll_s: float = 1.0
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    buyer_salt_file: str = ""


@dataclass(frozen=True)
class HttpSection:
    host: str = "127.0.0.1"
    port: int = 8780
    max_body_bytes: int = 4 * 1024 * 1024
    max_events_per_request: int = 10_000
    shutdown_grace_s: float = 10.0
    server: Literal["builtin"] = "builtin"
    keep_alive_timeout_s: float = 5.0
    request_timeout_s: float = 30.0
    max_connections: int = 1000
    trusted_proxies: tuple[str, ...] = ()
    access_log: bool = False


@dataclass(frozen=True)
class ApiSection:
    token_file: str = ""
    tokens_file: str = ""


@dataclass(frozen=True)
class StoreSection:
    """``[store]``: durability, caches and the outbox bound (the store's own settings add its path).

    Attributes:
        sync: ``"group"`` fsyncs the WAL in every commit (survives power loss); ``"os"``
            leaves fsync to the OS (survives a process crash only). See ``gateway._store.store``.
        cache_orders: hot ``OrderState`` objects kept in memory.
        recent_fingerprints: fingerprints checked in memory before the ``dedup`` keyspace.
        outbox_max_events / outbox_max_bytes: outbox bounds, enforced by the pipeline with
            ``Store.outbox_stats()``.
        outbox_reserve_events / outbox_reserve_bytes: the last part of each bound, kept for
            pack-line scans (webhooks are refused at ``max - reserve``).
        retention_days: finished orders (delivered, refunded, cancelled) unchanged for this
            many days are deleted with their events, indexes and pack-line records, daily
            (``gateway._store.retention``: what it never deletes); 0 keeps everything.
    """

    sync: Literal["group", "os"] = "group"
    cache_orders: int = 200_000
    recent_fingerprints: int = 1_000_000
    outbox_max_events: int = 5_000_000
    outbox_max_bytes: int = 2 * 1024**3
    outbox_reserve_events: int = 100_000
    outbox_reserve_bytes: int = 64 * 1024**2
    retention_days: int = 1095


LogFormat = Literal["text", "json"]


@dataclass(frozen=True)
class LoggingSection:
    """``[logging]``: where the log goes and in what shape (``gateway._appliance.logs``).

    Attributes:
        format: ``text`` (one readable line: time, level, logger, message; for the journal
            and people) or ``json`` (one JSON object per line: time, level, logger, message,
            exception; for log shipping).
        file: also write to this file, rotated (for boxes without journald); relative to
            the config file; "" = stderr only (the journal under systemd).
        max_bytes: the file is rotated when it would grow past this.
        backups: rotated files kept (``gateway.log.1`` ... ``.N``); at least 1.
    """

    format: LogFormat = "text"
    file: str = ""
    max_bytes: int = 10 * 1024**2
    backups: int = 5


@dataclass(frozen=True)
class PipelineSection:
    max_group_events: int = 20_000
    queue_batches: int = 256
    merge_window_s: float = 1800.0
    commit_delay_ms: float = 2.0


@dataclass(frozen=True)
class UpstreamSection:
    """Where and how the outbox is forwarded (``secret`` is resolved from secret_env/_file).

    ``kind`` picks the sink: ``http`` POSTs to ``url``; ``nats`` publishes to the JetStream
    stream of ``nats`` (``gateway._settings.nats``, ``gateway._forward.nats_sink``).
    """

    kind: Literal["http", "nats"] = "http"
    url: str = ""
    secret: Secret = field(default_factory=lambda: Secret(""))
    batch_max_events: int = 500
    batch_max_bytes: int = 1024 * 1024
    linger_s: float = 0.05
    timeout_s: float = 10.0
    retry_initial_s: float = 0.5
    retry_max_s: float = 60.0
    progress_every_s: float = 5.0
    nats: NatsSettings = field(default_factory=NatsSettings)


@dataclass(frozen=True)
class DemoSection:
    enabled: bool = False
    interval_s: float = 3.0
    tenant: str = "demo"
    devices: bool = False


CloseMode = Literal["auto", "control", "next_order"]


@dataclass(frozen=True)
class PackLineSection:
    """``[packline]``: how the pack stations read codes and when a parcel is overdue.

    Attributes:
        waybill_timeout_s: a packed parcel still without a waybill after this raises a
            ``waybill_timeout`` alert.
        close_mode: ``auto`` (a session closes after its last expected scan), ``control``
            (only ``close_code`` closes it) or ``next_order`` (scanning the next order closes
            the previous one); ``close_code`` closes a session in every mode.
        close_code / cancel_code / reprint_code: the control barcodes: close the session,
            abandon it (recorded), print its label again.
        badge_prefix / supervisor_prefix: a scan starting with one of these is an operator's
            or a supervisor's badge.
        weight_tolerance_g / weight_tolerance_pct: the parcel's weight may differ from the
            catalog's by the larger of the two; ``weight_tolerance_g = 0`` turns the check off.
        tenant: the tenant whose orders the stations pack. A file's ``""`` means the only
            tenant configured; after loading it stays ``""`` only when there is none, or several
            and no station (a gateway with stations and several tenants must name one).
        stock_url: the ERP's stock endpoint, asked for the bill's gift stock before packing
            (``gateway._packline.stock_reader``; signed with the ``[upstream]`` secret);
            ``""``: stock only as the ERP pushes it.
        stock_timeout_s: a read that takes longer is abandoned (the stored figure is used).
        stock_fresh_s: a stored figure younger than this is not read again.
    """

    waybill_timeout_s: float = 900.0
    close_mode: CloseMode = "auto"
    close_code: str = "#CLOSE"
    cancel_code: str = "#CANCEL"
    reprint_code: str = "#REPRINT"
    badge_prefix: str = "OP-"
    supervisor_prefix: str = "SV-"
    weight_tolerance_g: int = 0
    weight_tolerance_pct: float = 5.0
    tenant: str = ""
    stock_url: str = ""
    stock_timeout_s: float = 2.0
    stock_fresh_s: float = 60.0


AlertFormat = Literal["markdown", "text"]


@dataclass(frozen=True)
class AlertsSection:
    """``[alerts]``: where pack-line alerts go (a WeCom group robot) and how they are retried.

    Attributes:
        url: the robot's webhook URL; it carries the robot's key, so it is a ``Secret``
            (``Secret("")``: alerts are only logged and kept for the operators' board).
        format: ``markdown`` or ``text`` (WeCom's ``msgtype``).
        mentioned_mobiles: phone numbers to @ (``"@all"`` for everyone); text format only.
        retry_initial_s / retry_max_s: backoff of a failed send (doubling, +-25 % jitter).
        timeout_s: per request.
        max_queued: bound of the durable alert queue; beyond it the oldest alerts of the
            lowest severity are dropped (logged and counted).
    """

    url: Secret = field(default_factory=lambda: Secret(""))
    format: AlertFormat = "markdown"
    mentioned_mobiles: tuple[str, ...] = ()
    retry_initial_s: float = 1.0
    retry_max_s: float = 300.0
    timeout_s: float = 10.0
    max_queued: int = 10_000


SignMethod = Literal["", "md5", "hmac", "hmac-sha256"]
DEFAULT_SIGNATURE_HEADER = "x-xhs-signature"
# Sources whose signature rule covers the app key: no app_key, no verification.
APP_KEY_REQUIRED = frozenset({"douyin", "youzan"})


@dataclass(frozen=True)
class SourceCredentials:
    """One tenant's credentials for one source (resolved: the secret itself).

    Attributes:
        secret: the shared secret (never shown by ``repr``).
        allow_ips: optional allow-list of client addresses or CIDR networks; empty = any.
        app_key: the platform's app id / client id ("" = not configured).
        sign_method: TOP only: the one accepted ``sign_method`` ("" = md5, hmac or hmac-sha256).
        signature_header: Xiaohongshu only: the (lower-case) header holding the body HMAC.
        ws_url: Pinduoduo only: the message WebSocket endpoint ("" = no WebSocket client).
        mall_ids: Pinduoduo only: the shops (``mallID``) whose WebSocket messages belong to
            this tenant; ``()`` = every message of the channel (which this tenant then owns alone).
    """

    secret: Secret = field(default_factory=lambda: Secret(""))
    allow_ips: tuple[str, ...] = ()
    app_key: str = ""
    sign_method: SignMethod = ""
    signature_header: str = DEFAULT_SIGNATURE_HEADER
    ws_url: str = ""
    mall_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    """The whole daemon configuration.

    Attributes:
        path: the file it was loaded from (``None`` for pure defaults).
        tenants: ``tenants[tenant][source]`` credentials.
        stations: the pack stations and their devices (``gateway._settings.stations``).
        nvrs: the NVRs the stations' cameras record to.
        packline: the pack stations' codes, close mode and waybill timeout.
        alerts: where pack-line alerts are sent (WeCom group robot).
        oci: how the Order Credibility Index is computed (``gateway._settings.oci``).
    """

    gateway: GatewaySection = GatewaySection()
    http: HttpSection = HttpSection()
    api: ApiSection = ApiSection()
    store: StoreSection = StoreSection()
    logging: LoggingSection = LoggingSection()
    pipeline: PipelineSection = PipelineSection()
    demo: DemoSection = DemoSection()
    upstream: UpstreamSection = UpstreamSection()
    packline: PackLineSection = PackLineSection()
    alerts: AlertsSection = AlertsSection()
    oci: OciSettings = field(default_factory=OciSettings)
    customs: CustomsSection = CustomsSection()
    tenants: Mapping[str, Mapping[str, SourceCredentials]] = field(default_factory=dict)
    stations: Mapping[str, StationSection] = field(default_factory=dict)
    nvrs: Mapping[str, NvrSection] = field(default_factory=dict)
    path: Path | None = None

    @property
    def config_dir(self) -> Path:
        """Directory relative paths in the file are resolved against."""
        return self.path.parent if self.path else Path.cwd()

    @property
    def rules_path(self) -> Path:
        return (self.config_dir / self.gateway.rules_dir).resolve()

    @property
    def customs_path(self) -> Path:
        """The customs-declaration configuration directory (``[customs] dir``)."""
        return (self.config_dir / self.customs.dir).resolve()

    @property
    def data_path(self) -> Path:
        return Path(self.gateway.data_dir).resolve()

    @property
    def token_path(self) -> Path:
        if self.api.token_file:
            return (self.config_dir / self.api.token_file).resolve()
        return self.data_path / "api-token"

    @property
    def buyer_salt_path(self) -> Path:
        """The install's buyer-key salt (``gateway._pipeline.salt``): ``[gateway]
        buyer_salt_file``, by default ``<data_dir>/buyer-salt``."""
        if self.gateway.buyer_salt_file:
            return (self.config_dir / self.gateway.buyer_salt_file).resolve()
        return self.data_path / "buyer-salt"

    @property
    def tokens_path(self) -> Path:
        """The scoped API tokens (``gateway._server.tokens``): ``[api] tokens_file``, by default
        ``<data_dir>/api-tokens.json``."""
        if self.api.tokens_file:
            return (self.config_dir / self.api.tokens_file).resolve()
        return self.data_path / "api-tokens.json"

    def credentials(self, tenant: str, source: str) -> SourceCredentials | None:
        """The credentials of ``tenant`` for ``source``, or ``None`` when not configured."""
        return self.tenants.get(tenant, {}).get(source)


__all__ = ["APP_KEY_REQUIRED", "DEFAULT_SIGNATURE_HEADER", "SOURCE_NAME", "TENANT_NAME", "AlertFormat", "AlertsSection",
           "ApiSection", "CloseMode", "DemoSection", "GatewaySection", "HttpSection", "LogFormat", "LoggingSection", "PackLineSection",
           "PipelineSection", "Secret", "Settings", "SignMethod", "SourceCredentials", "StoreSection",
           "UpstreamSection"]
