"""``[upstream.nats]``: the fleet sink, a replicated NATS JetStream stream (``NatsSettings``).

Used when ``[upstream] kind = "nats"`` (``gateway._forward.nats_sink``). Reference (defaults in
brackets)::

    [upstream]
    kind = "nats"                  # "http" (POST to the ERP, the default) or "nats" ["http"]

    [upstream.nats]
    servers = ["nats://10.0.0.11:4222", "nats://10.0.0.12:4222", "nats://10.0.0.13:4222"]
                                   # the cluster's client URLs (nats:// or tls://); the client
                                   # learns the others from the cluster too [[]] (required)
    stream = "ORDERS"              # the JetStream stream the subjects land in; created by the
                                   # cluster's operators, checked at connect [""] (required)
    subject = "gateway.<tenant>.<gateway_id>.<type>"
                                   # subject of each event; <tenant>, <gateway_id>, <type>,
                                   # <source> are replaced (a "." or blank inside a value
                                   # becomes "_") ["gateway.<tenant>.<gateway_id>.<type>"]
    creds_file = ""                # a .creds file (user JWT + nkey seed), relative to THIS file
    nkey_seed_file = ""            # or an nkey seed file ("SU..."), relative to THIS file
    user = ""                      # or a user name with a password from one of:
    password = ""                  #   the value itself,
    password_env = ""              #   an environment variable, or
    password_file = ""             #   a file (relative to THIS file) [all ""]
    tls_ca_file = ""               # CA bundle that signs the servers' certificates; given, the
                                   # connection is TLS and verified ("" = the servers' URL
                                   # scheme decides; tls:// uses the system CAs) [""]
    connect_timeout_s = 5.0        # per server and connection attempt [5.0]
    heartbeat_bucket = "gateway_fleet"   # the key-value bucket of the fleet's heartbeats
                                   # (`gateway fleet status`); "" = no heartbeat ["gateway_fleet"]
    heartbeat_interval_s = 15.0    # one heartbeat per box this often; a box silent for 3
                                   # intervals is flagged [15.0]

At most one of ``creds_file``, ``nkey_seed_file`` and ``user`` may be given. Frozen; the
loader reports every problem with file, line and key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway._settings.toml import KeyPath, TomlDocument, check_keys

if TYPE_CHECKING:  # model.py holds NatsSettings inside UpstreamSection: imported lazily below
    from gateway._settings.model import Secret

DEFAULT_SUBJECT = "gateway.<tenant>.<gateway_id>.<type>"
#: The placeholders a subject template may use: fields of the event, and the gateway's id.
PLACEHOLDERS = ("tenant", "gateway_id", "type", "source")
PASSWORD_KEYS = ("password", "password_env", "password_file")
_PLACEHOLDER = re.compile(r"<([a-z_]+)>")
_TOKEN = re.compile(r"^[A-Za-z0-9_\-<>]+$")
_STREAM = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_BUCKET = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _no_password() -> Secret:
    from gateway._settings.model import Secret

    return Secret("")


@dataclass(frozen=True)
class NatsSettings:
    """How the ``nats`` sink connects and where it publishes (see the module docstring)."""

    servers: tuple[str, ...] = ()
    stream: str = ""
    subject: str = DEFAULT_SUBJECT
    creds_file: str = ""
    nkey_seed_file: str = ""
    user: str = ""
    password: Secret = field(default_factory=_no_password)
    tls_ca_file: str = ""
    connect_timeout_s: float = 5.0
    heartbeat_bucket: str = "gateway_fleet"
    heartbeat_interval_s: float = 15.0

    def __repr__(self) -> str:
        return f"<NatsSettings stream {self.stream!r} on {','.join(self.servers)}>"

    @property
    def credentials(self) -> str:
        """How the sink signs in, for logs: ``creds file ...``, ``user ...`` or ``none``."""
        if self.creds_file:
            return f"creds file {self.creds_file}"
        if self.nkey_seed_file:
            return f"nkey seed file {self.nkey_seed_file}"
        if self.user:
            return f"user {self.user!r}"
        return "no credentials"


def subject_problem(template: str) -> str | None:
    """What is wrong with a subject template, or ``None``."""
    if not template:
        return "must not be empty"
    unknown = [name for name in _PLACEHOLDER.findall(template) if name not in PLACEHOLDERS]
    if unknown:
        return f"unknown placeholder <{unknown[0]}> (known: {', '.join(f'<{p}>' for p in PLACEHOLDERS)})"
    for token in template.split("."):
        if not token:
            return "has an empty token (two dots in a row, or a dot at an end)"
        if not _TOKEN.match(token) or (("<" in token or ">" in token) and not _PLACEHOLDER.fullmatch(token)):
            return (f"token {token!r} is not allowed: a token is letters, digits, _ and - or one whole "
                    "placeholder (no wildcards * and >)")
    return None


def describe_nats(settings: NatsSettings) -> str:
    """One line saying what the sink will do, for ``check-config`` and the start-up log."""
    return (f"NATS stream {settings.stream} on {','.join(settings.servers)} subject {settings.subject} "
            f"({settings.credentials}{', TLS CA ' + settings.tls_ca_file if settings.tls_ca_file else ''})")


def parse_nats(doc: TomlDocument, table: Any, at: KeyPath) -> NatsSettings:
    """``[upstream.nats]`` from its TOML table, paths resolved against the config's directory.

    Raises:
        ConfigError: unknown key, wrong type or a value out of range, with file, line and key.
    """
    from gateway._settings.fields import coerce, secret_of  # fields imports model, which imports this

    if not isinstance(table, dict):
        raise doc.error(at, "must be a table")
    names = ["servers", "stream", "subject", "creds_file", "nkey_seed_file", "user", *PASSWORD_KEYS,
             "tls_ca_file", "connect_timeout_s", "heartbeat_bucket", "heartbeat_interval_s"]
    check_keys(doc, table, at, names)
    defaults = NatsSettings()
    hints: dict[str, Any] = {"servers": tuple[str, ...], "connect_timeout_s": float, "heartbeat_interval_s": float}
    values: dict[str, Any] = {}
    for name in names:
        if name in table and name not in PASSWORD_KEYS:
            values[name] = coerce(doc, (*at, name), table[name], hints.get(name, str))
    password = secret_of(doc, table, at, PASSWORD_KEYS)
    for name in ("creds_file", "nkey_seed_file", "tls_ca_file"):
        if values.get(name):
            path = doc.path.parent / values[name]
            if not path.is_file():
                raise doc.error((*at, name), f"{path} is not a readable file")
            values[name] = str(path.resolve())
    settings = NatsSettings(**{**values, "password": password})
    _check(doc, at, settings, defaults)
    return settings


def parse_nats_upstream(doc: TomlDocument, upstream: dict[str, Any], kind: str, url: str) -> NatsSettings:
    """``[upstream.nats]`` of an ``[upstream]`` table whose ``kind`` is ``nats`` (or which has the table).

    Raises:
        ConfigError: the table without ``kind = "nats"``, ``kind = "nats"`` without the table, an
            HTTP ``url`` beside it, or any problem of the table itself (``parse_nats``).
    """
    at: KeyPath = ("upstream",)
    if kind != "nats":
        raise doc.error((*at, "nats"), 'is given but kind is "http": set [upstream] kind = "nats" to use it')
    if "nats" not in upstream:
        raise doc.error((*at, "kind"), 'kind = "nats" needs an [upstream.nats] table (servers, stream, ...)')
    if url:
        raise doc.error((*at, "url"), 'url is for kind = "http"; the NATS servers go in [upstream.nats] servers')
    return parse_nats(doc, upstream["nats"], (*at, "nats"))


def _check(doc: TomlDocument, at: KeyPath, settings: NatsSettings, defaults: NatsSettings) -> None:
    if not settings.servers:
        raise doc.error((*at, "servers"), 'give the cluster\'s client URLs, e.g. ["nats://10.0.0.11:4222"]')
    for server in settings.servers:
        if not server.startswith(("nats://", "tls://")) or any(c.isspace() for c in server):
            raise doc.error((*at, "servers"), f"{server!r} is not a nats:// or tls:// URL")
    if not _STREAM.match(settings.stream):
        raise doc.error((*at, "stream"), "give the JetStream stream's name (letters, digits, _ and -), e.g. \"ORDERS\"")
    problem = subject_problem(settings.subject)
    if problem:
        raise doc.error((*at, "subject"), f"{problem}; the default is {DEFAULT_SUBJECT!r}")
    given = [name for name in ("creds_file", "nkey_seed_file", "user") if getattr(settings, name)]
    if len(given) > 1:
        raise doc.error((*at, given[1]), f"give one way to sign in, not {' and '.join(given)}")
    if settings.password and not settings.user:
        raise doc.error((*at, "user"), "a password is given but no user")
    if settings.user and not settings.password:
        raise doc.error((*at, "password"), f"user {settings.user!r} needs a password (password, password_env "
                                           "or password_file)")
    if settings.connect_timeout_s <= 0:
        raise doc.error((*at, "connect_timeout_s"), "must be greater than 0")
    if settings.heartbeat_bucket and not _BUCKET.match(settings.heartbeat_bucket):
        raise doc.error((*at, "heartbeat_bucket"), "letters, digits, _ and - only (or \"\" for no heartbeat)")
    if settings.heartbeat_interval_s < 1:
        raise doc.error((*at, "heartbeat_interval_s"), "must be at least 1")


__all__ = ["DEFAULT_SUBJECT", "PLACEHOLDERS", "NatsSettings", "describe_nats", "parse_nats", "parse_nats_upstream",
           "subject_problem"]
