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

    [tenants.NAME.SOURCE]       # one table per tenant and source it may send from
    secret = ""                 # the shared secret, or
    secret_env = ""             # the name of an environment variable holding it, or
    secret_file = ""            # a file holding it (relative to THIS file)
    allow_ips = []              # optional allow-list of client addresses or CIDR networks
                                # ("203.0.113.0/24"); behind a reverse proxy see
                                # [http] trusted_proxies; empty = any client [[]]
    app_key = ""                # the platform's app id: Douyin app key (must equal the
                                # app-id header), Youzan client_id, Pinduoduo client_id,
                                # TOP app_key; REQUIRED for douyin and youzan (their
                                # signatures cover it), checked when given for pinduoduo
                                # and tmall [""]
    sign_method = ""            # tmall (TOP): the one sign_method accepted, "md5", "hmac"
                                # or "hmac-sha256"; "" = any of the three [""]
    signature_header = "x-xhs-signature"   # xiaohongshu: the header carrying the
                                # HMAC-SHA256 of the body (UNCONFIRMED scheme) ["x-xhs-signature"]
    mall_ids = []               # pinduoduo: the shops (mallID) whose WebSocket messages are
                                # this tenant's; required when several tenants share one
                                # app's WebSocket (same ws_url and app_key) [[]]
    ws_url = ""                 # pinduoduo: the message WebSocket endpoint, e.g. PDD's
                                # "wss://message-api.pinduoduo.com/message";
                                # /{client_id}/{timestamp_ms}/{sign} is appended. "" = no
                                # WebSocket (relay webhooks only); with a URL, app_key is
                                # required (it signs the connection) [""]

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
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from gateway._addresses import parse_networks
from gateway._settings.customs import CustomsSection
from gateway._settings.fields import SECRET_KEYS, coerce, secret_of, section_of
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


_CREDENTIAL_KEYS = (*SECRET_KEYS, "allow_ips", "app_key", "sign_method", "signature_header", "ws_url", "mall_ids")
_HEADER_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")  # RFC 9110 token
_APP_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no blanks


def _credentials(doc: TomlDocument, table: Any, at: KeyPath) -> SourceCredentials:
    if not isinstance(table, dict):
        raise doc.error(at, "must be a table of secret/secret_env/secret_file/allow_ips/app_key/...")
    check_keys(doc, table, at, _CREDENTIAL_KEYS)
    secret = secret_of(doc, table, at)
    if not secret:
        raise doc.error(at, "no secret given (secret, secret_env or secret_file)")
    allow = coerce(doc, (*at, "allow_ips"), table.get("allow_ips", []), tuple[str, ...])
    _check_networks(doc, (*at, "allow_ips"), allow)
    app_key = coerce(doc, (*at, "app_key"), table.get("app_key", ""), str)
    if app_key and not _APP_KEY.match(app_key):
        raise doc.error((*at, "app_key"), "must be 1-128 printable ASCII characters without blanks")
    source = at[-1]
    if not app_key and source in APP_KEY_REQUIRED:
        raise doc.error(at, f"{source} signatures cover the app key: give app_key")
    sign_method = coerce(doc, (*at, "sign_method"), table.get("sign_method", ""), SignMethod)
    header = coerce(doc, (*at, "signature_header"), table.get("signature_header", DEFAULT_SIGNATURE_HEADER), str)
    if not _HEADER_TOKEN.match(header):
        raise doc.error((*at, "signature_header"), f"must be an HTTP header name, not {header!r}")
    ws_url = coerce(doc, (*at, "ws_url"), table.get("ws_url", ""), str)
    if ws_url and (not ws_url.startswith(("ws://", "wss://")) or any(c.isspace() for c in ws_url)):
        raise doc.error((*at, "ws_url"), f"must be a ws:// or wss:// URL (or \"\" for none), not {ws_url!r}")
    if ws_url and not app_key:
        raise doc.error((*at, "ws_url"), "the message WebSocket is signed with the client id: give app_key")
    raw_malls = table.get("mall_ids", [])
    if not isinstance(raw_malls, list) or not all(
            isinstance(m, (int, str)) and not isinstance(m, bool) and str(m).strip().isdigit() for m in raw_malls):
        raise doc.error((*at, "mall_ids"), "must be a list of Pinduoduo shop ids (mallID numbers), e.g. [9001]")
    malls = tuple(str(int(str(m).strip())) for m in raw_malls)
    if malls and source != "pinduoduo":
        raise doc.error((*at, "mall_ids"), "only pinduoduo routes WebSocket messages by mallID")
    if len(set(malls)) != len(malls):
        raise doc.error((*at, "mall_ids"), "a shop id is listed twice")
    return SourceCredentials(secret=secret, allow_ips=allow, app_key=app_key, sign_method=sign_method,
                             signature_header=header.lower(), ws_url=ws_url, mall_ids=malls)


def _check_networks(doc: TomlDocument, at: KeyPath, entries: tuple[str, ...]) -> None:
    try:
        parse_networks(entries)
    except ValueError as exc:
        raise doc.error(at, f"{exc} (give addresses like \"203.0.113.7\" or networks like \"203.0.113.0/24\")") from None


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




def _check_shared_message_channels(doc: TomlDocument, tenants: Mapping[str, Mapping[str, SourceCredentials]]) -> None:
    """Tenants sharing one Pinduoduo message WebSocket (same ``ws_url`` and ``app_key``) must
    split it by shop: each lists its ``mall_ids``, no shop twice, one app secret for all.

    One app's channel carries the messages of every shop that authorised it; a message goes
    to the tenant listing its ``mallID``. Without that list a message could land under the
    wrong tenant, so such a config is refused.
    """
    channels: dict[tuple[str, str], list[tuple[str, SourceCredentials]]] = {}
    for tenant, sources in tenants.items():
        credentials = sources.get("pinduoduo")
        if credentials is not None and credentials.ws_url:
            channels.setdefault((credentials.ws_url.rstrip("/"), credentials.app_key), []).append((tenant, credentials))
    for sharing in channels.values():
        if len(sharing) < 2:
            continue
        first_tenant, first = sharing[0]
        owner_of: dict[str, str] = {}
        for tenant, credentials in sharing:
            at = ("tenants", tenant, "pinduoduo")
            if not credentials.mall_ids:
                others = ", ".join(repr(t) for t, _ in sharing if t != tenant)
                raise doc.error((*at, "ws_url"),
                                f"tenants {others} receive app {credentials.app_key!r} over this WebSocket too: "
                                "give each of them mall_ids (the shops whose messages are theirs)")
            if credentials.secret.reveal() != first.secret.reveal():
                raise doc.error((*at, "secret"), f"one WebSocket signs with one app secret: tenant {first_tenant!r} "
                                                 "gives another for the same app_key")
            for mall in credentials.mall_ids:
                if mall in owner_of:
                    raise doc.error((*at, "mall_ids"), f"shop {mall} is already tenant {owner_of[mall]!r}'s")
                owner_of[mall] = tenant


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
    tenants: dict[str, dict[str, SourceCredentials]] = {}
    raw_tenants = data.get("tenants", {})
    if not isinstance(raw_tenants, dict):
        raise doc.error(("tenants",), "must be a table of tenants")
    for tenant, sources in raw_tenants.items():
        if not TENANT_NAME.match(tenant):
            raise doc.error(("tenants", tenant), "tenant names are 1-64 of A-Z a-z 0-9 _ -")
        if not isinstance(sources, dict):
            raise doc.error(("tenants", tenant), "must be a table of sources")
        tenants[tenant] = {}
        for source, table in sources.items():
            if not SOURCE_NAME.match(source):
                raise doc.error(("tenants", tenant, source), "source names are 1-32 of a-z 0-9 _")
            tenants[tenant][source] = _credentials(doc, table, ("tenants", tenant, source))
    _check_shared_message_channels(doc, tenants)
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
    _check_networks(doc, ("http", "trusted_proxies"), settings.http.trusted_proxies)
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
