"""Daemon settings: the ``gateway.toml`` file, typed, strict and fully defaulted.

Every setting has a default; a config file only states what differs. Unknown (often
misspelt) keys and wrong types refuse to start with ``file:line: key: message``.

Reference (all keys, defaults in brackets)::

    [gateway]
    id = "edge-01"              # gateway_id sent upstream ["edge-01"]
    data_dir = "data"           # RocksDB and the API token live here; a relative path is
                                # relative to the working directory ["data"]
    rules_dir = "rules"         # mapping rule files; relative to THIS file ["rules"]
    rules_poll_s = 1.0          # how often rule files are checked for edits; 0 = only SIGHUP [1.0]
    log_level = "INFO"          # DEBUG | INFO | WARNING | ERROR ["INFO"]
    buyer_salt_file = ""        # the install's secret salt of buyer keys (phone numbers and
                                # addresses are stored only as salted keys); created at first
                                # start, mode 0600; back it up with the store. Relative to THIS
                                # file; "" = <data_dir>/buyer-salt [""]

    [http]
    host = "127.0.0.1"          # listen address; loopback by default ["127.0.0.1"]
    port = 8780                 # [8780]
    max_body_bytes = 4194304    # larger request bodies get 413 [4 MiB]
    max_events_per_request = 10000   # larger batches get 413 [10000]
    shutdown_grace_s = 10.0     # in-flight requests get this long on SIGTERM [10.0]
    server = "builtin"          # the gateway's own HTTP/1.1 server (gateway._server.h1), the only
                                # one; "hypercorn" was removed and is refused ["builtin"]
    keep_alive_timeout_s = 5.0  # an idle keep-alive connection is closed after this [5.0]
    request_timeout_s = 30.0    # builtin: a request's head and body must arrive within this
                                # of its first byte, a response write finish within it [30.0]
    max_connections = 1000      # open connections at most; at the limit the one that waited
                                # longest for a request is closed to make room [1000]
    access_log = false          # one INFO line per request on logger "gateway.access":
                                # client, method, path (never the query: platforms sign
                                # in it), status, bytes, ms [false]
    trusted_proxies = []        # reverse proxies (addresses or CIDR networks) whose
                                # X-Forwarded-For names the client, for allow_ips; a
                                # peer not listed is the client whatever it sends [[]]

    [stations.NAME], [nvrs.NAME]   # pack stations, their scanners, printer, scale and camera:
                                # the reference is gateway/_settings/stations.py

    [api]
    token_file = ""             # bearer token of the local API; "" = <data_dir>/api-token,
                                # created (mode 0600) at first start [""]
    tokens_file = ""            # scoped tokens (tenant, role; only their SHA-256), written by
                                # `gateway token`; "" = <data_dir>/api-tokens.json [""]

    [store]
    sync = "group"              # "group": fsync the WAL once per group commit before any
                                # acknowledgement (survives power loss); "os": leave the
                                # fsync to the OS (survives a crash of the process only) ["group"]
    cache_orders = 200000       # hot orders kept in memory [200000]
    recent_fingerprints = 1000000    # recent event fingerprints kept in memory [1000000]
    outbox_max_events = 5000000 # outbox bound, in events [5000000]
    outbox_max_bytes = 2147483648    # outbox bound, in bytes [2 GiB]
    outbox_reserve_events = 100000   # the last part of the bound kept for pack-line scans:
    outbox_reserve_bytes = 67108864  # webhooks get 503 at max - reserve, stations at max;
                                     # capped at half the bound [100000 events, 64 MiB]
    retention_days = 1095       # finished orders (delivered, refunded, cancelled) unchanged
                                # this long are deleted daily with their events, indexes and
                                # pack-line records; never open disputes, held or unshipped
                                # orders (gateway/_store/retention.py); 0 = keep all, else
                                # >= 60 [1095: three years]

    [logging]                   # where the log goes (gateway._appliance.logs)
    format = "text"             # text: one readable line per record (time, level, logger,
                                # message), for the journal; json: one JSON object per line
                                # (time, level, logger, message, exception), for log shipping ["text"]
    file = ""                   # also write to this file, rotated, for boxes without journald
                                # (e.g. "/var/log/edge-gateway/gateway.log"; relative to THIS
                                # file); "" = stderr only (the journal under systemd) [""]
    max_bytes = 10485760        # rotate the file when it would grow past this (>= 1024) [10 MiB]
    backups = 5                 # rotated files kept: gateway.log.1 ... gateway.log.5 (>= 1) [5]

    [pipeline]
    max_group_events = 20000    # most events committed in one write batch [20000]
    queue_batches = 256         # submitted batches waiting for the committer before
                                # webhooks get 503 [256]
    merge_window_s = 1800.0     # one buyer's orders on different channels first seen within
                                # this many seconds of each other, none yet packing, become
                                # one pack group (a merge_pack instruction upstream);
                                # 0 = no cross-channel grouping [1800.0]
    commit_delay_ms = 2.0       # group commit: a group waits until the event loop has no
                                # other work (requests being parsed, verified, mapped may
                                # still join it), at most this long; 0 = commit at once [2.0]

    [upstream]                  # the ERP the outbox is forwarded to (DESIGN section 6)
    url = ""                    # POST target; "" = forwarding off (the outbox fills up to
                                # its bound, then webhooks get 503) [""]
    secret = ""                 # HMAC-SHA256 key of X-Gateway-Signature; or secret_env /
    secret_env = ""             # secret_file as for tenants; required when url is set
    secret_file = ""
    batch_max_events = 500      # events per POST [500]
    batch_max_bytes = 1048576   # body bytes per POST (one bigger event goes alone) [1 MiB]
    linger_s = 0.05             # wait this long for a batch to fill when the backlog is short [0.05]
    timeout_s = 10.0            # per POST; a timeout is retried [10.0]
    retry_initial_s = 0.5       # first retry delay; doubles per failure, +-25 % jitter [0.5]
    retry_max_s = 60.0          # retry delay cap (a longer Retry-After is capped too) [60.0]
    progress_every_s = 5.0      # backlog drain progress in the log while a backlog exists [5.0]
    kind = "http"               # "http": POST to url; "nats": publish to a JetStream stream,
                                # [upstream.nats]: the reference is gateway/_settings/nats.py ["http"]

    [tenants.NAME.SOURCE]       # who may send, from where, with which secret (secret,
                                # secret_env, secret_file, allow_ips, app_key, sign_method,
                                # signature_header, mall_ids, ws_url): the reference is
                                # gateway/_settings/tenants.py

    [packline], [alerts]        # the pack stations' behaviour and their alerts to a WeCom
                                # group robot: the reference is gateway/_settings/packline.py
    [oci]                       # the Order Credibility Index's weights and schedule: the
                                # reference is gateway/_settings/oci.py
    [customs]
    dir = "customs"             # the customs-declaration files of cross-border orders
                                # (relative to THIS file; missing = no check): the reference
                                # is gateway/_settings/customs.py and gateway/_customs ["customs"]

    [demo]
    enabled = false             # post simulated ERP batches to ourselves [false]
    interval_s = 3.0            # one batch every interval [3.0]
    tenant = "demo"             # the tenant the demo feeds (needs an erp secret) ["demo"]
    devices = false             # simulate the devices [stations.*] places on 127.0.0.1: scanners
                                # reading demo codes, printers, NVRs (gateway._demo.devices) [false]

Secrets are held in ``Secret`` objects whose ``repr``/``str`` never show the value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from gateway._settings.customs import CustomsSection
from gateway._settings.fields import SECRET_KEYS, secret_of, section_of
from gateway._settings.model import (
    APP_KEY_REQUIRED,
    DEFAULT_SIGNATURE_HEADER,
    SOURCE_NAME,
    TENANT_NAME,
    AlertsSection,
    ApiSection,
    DemoSection,
    GatewaySection,
    HttpSection,
    LoggingSection,
    PackLineSection,
    PipelineSection,
    Secret,
    Settings,
    SignMethod,
    SourceCredentials,
    StoreSection,
    UpstreamSection,
)
from gateway._settings.nats import parse_nats_upstream
from gateway._settings.oci import OciSettings
from gateway._settings.packline import parse_alerts, parse_packline
from gateway._settings.stations import parse_devices
from gateway._settings.tenants import check_networks, parse_tenants
from gateway._settings.toml import KeyPath, TomlDocument, check_keys

_SECTIONS: dict[str, type] = {
    "gateway": GatewaySection,
    "http": HttpSection,
    "api": ApiSection,
    "store": StoreSection,
    "logging": LoggingSection,
    "pipeline": PipelineSection,
    "demo": DemoSection,
    "customs": CustomsSection,
}


def _upstream(doc: TomlDocument, table: Any) -> UpstreamSection:
    at: KeyPath = ("upstream",)
    if not isinstance(table, dict):
        raise doc.error(at, "must be a table")
    plain = {k: v for k, v in table.items() if k not in (*SECRET_KEYS, "nats")}
    names = [f.name for f in dataclasses.fields(UpstreamSection) if f.name != "secret"]
    check_keys(doc, table, at, [*names, *SECRET_KEYS])
    section = section_of(doc, plain, at, UpstreamSection)
    secret = secret_of(doc, table, at)
    for name in ("batch_max_events", "batch_max_bytes", "timeout_s", "retry_initial_s", "retry_max_s"):
        if not getattr(section, name):
            raise doc.error((*at, name), "must be greater than 0")
    if section.retry_max_s < section.retry_initial_s:
        raise doc.error((*at, "retry_max_s"), f"must be at least retry_initial_s ({section.retry_initial_s})")
    if section.kind == "nats" or "nats" in table:  # the fleet sink: gateway._settings.nats
        return dataclasses.replace(section, secret=secret, nats=parse_nats_upstream(doc, table, section.kind, section.url))
    url = section.url
    if url and not url.startswith(("http://", "https://")):
        raise doc.error((*at, "url"), f"must be an http:// or https:// URL, not {url!r}")
    if url and not secret:
        raise doc.error(at, "url is set but no secret (secret, secret_env or secret_file) signs the batches")
    return dataclasses.replace(section, secret=secret)


def parse_settings(doc: TomlDocument) -> Settings:
    """Build ``Settings`` from a parsed file.

    Raises:
        ConfigError: unknown key, wrong type, bad tenant name, unreadable secret.
    """
    data = doc.data
    check_keys(doc, data, (), [*_SECTIONS, "upstream", "packline", "alerts", "oci", "tenants", "stations", "nvrs"])
    http = data.get("http")
    if isinstance(http, dict) and http.get("server") == "hypercorn":
        raise doc.error(("http", "server"), "the hypercorn fallback was removed (one hostile request could stop "
                        "the process, see the README's 'HTTP server'): delete this line to use the builtin server")
    sections: dict[str, Any] = {name: section_of(doc, data[name], (name,), cls) for name, cls in _SECTIONS.items() if name in data}
    if "upstream" in data:
        sections["upstream"] = _upstream(doc, data["upstream"])
    tenants = parse_tenants(doc, data.get("tenants", {}))
    stations, nvrs = parse_devices(doc)
    sections["packline"] = parse_packline(doc, data.get("packline", {}), tenants, packing=bool(stations))
    if "alerts" in data:
        sections["alerts"] = parse_alerts(doc, data["alerts"])
    if "oci" in data:
        try:  # types by section_of, ranges by OciSettings itself ("key: what is wrong")
            sections["oci"] = section_of(doc, data["oci"], ("oci",), OciSettings)
        except ValueError as exc:
            key, _, message = str(exc).partition(": ")
            raise doc.error(("oci", key), message) from None
    settings = Settings(**sections, tenants=tenants, stations=stations, nvrs=nvrs, path=doc.path.resolve())
    if settings.packline.stock_url and not settings.upstream.secret.reveal():
        raise doc.error(("packline", "stock_url"), "the stock read is signed with the [upstream] secret: "
                                                   "set [upstream] secret (or secret_env / secret_file)")
    if not TENANT_NAME.match(settings.demo.tenant):
        raise doc.error(("demo", "tenant"), "tenant names are 1-64 of A-Z a-z 0-9 _ -")
    if settings.http.port > 65535:
        raise doc.error(("http", "port"), "must be 0..65535")
    for name in ("keep_alive_timeout_s", "request_timeout_s", "max_connections"):
        if not getattr(settings.http, name):
            raise doc.error(("http", name), "must be greater than 0")
    check_networks(doc, ("http", "trusted_proxies"), settings.http.trusted_proxies)
    _check_logging(doc, settings.logging)
    if settings.store.retention_days < 0 or 0 < settings.store.retention_days < 60:
        raise doc.error(("store", "retention_days"), "must be 0 (keep everything) or at least 60: after-sales "
                                                     "lookups and refunds reach back weeks after delivery")
    return settings


def _check_logging(doc: TomlDocument, section: LoggingSection) -> None:
    """``[logging]``: a rotated file needs a size to rotate at and a backup to rotate to."""
    if section.max_bytes < 1024:
        raise doc.error(("logging", "max_bytes"), "must be at least 1024 (the file is rotated at this size)")
    if section.backups < 1:
        raise doc.error(("logging", "backups"), "must be at least 1 (with 0 the file would never be rotated)")
    if section.file.endswith("/"):
        raise doc.error(("logging", "file"), "must name a file, not a directory (e.g. "
                                             "\"/var/log/edge-gateway/gateway.log\")")


def load_settings(path: str | Path) -> Settings:
    """Load and validate a ``gateway.toml``.

    Raises:
        ConfigError: with file, line and key.
    """
    return parse_settings(TomlDocument.load(path))


def default_config_path() -> Path:
    """The embedded default ``gateway.toml`` (shipped as ``gateway.default_config``).

    In a source checkout this is ``config/gateway.toml``.
    """
    checkout = Path(__file__).resolve().parents[2] / "config" / "gateway.toml"
    if checkout.is_file():
        return checkout
    return Path(str(resources.files("gateway.default_config").joinpath("gateway.toml")))


def with_overrides(settings: Settings, **sections: Mapping[str, Any]) -> Settings:
    """A copy with some section fields replaced, e.g. ``http={"port": 0}`` (CLI flags, tests)."""
    changes: dict[str, Any] = {}
    for name, values in sections.items():
        changes[name] = dataclasses.replace(getattr(settings, name), **values)
    return dataclasses.replace(settings, **changes)


__all__ = [
    "APP_KEY_REQUIRED", "DEFAULT_SIGNATURE_HEADER", "SOURCE_NAME", "TENANT_NAME", "AlertsSection", "ApiSection",
    "DemoSection", "GatewaySection", "HttpSection", "PackLineSection", "PipelineSection", "Secret", "Settings",
    "SignMethod", "SourceCredentials", "StoreSection", "UpstreamSection", "default_config_path", "load_settings",
    "parse_settings", "with_overrides",
]
