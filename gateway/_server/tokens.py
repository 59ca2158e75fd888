"""Scoped API tokens: who may call the local API, for which tenant, with which role.

A token is a random secret (``gw_`` + 43 URL-safe characters, 256 bits) given to one
person or program. The gateway keeps only its SHA-256; the secret is shown once, when it is
created. Each token has:

* a **name** (unique; ``[A-Za-z0-9_.-]``, at most 64), written in the audit trail as
  ``token:<name>`` for every API call that changes something;
* a **tenant**: one tenant's name, or ``*`` for every tenant;
* a **role**, ordered ``viewer < operator < supervisor < admin``. A route names the least
  role it needs (``gateway._server.http.token_guard``): reads need ``viewer``, pack-line
  decisions ``operator``, quarantine release, dead-letter requeue, rule reloads and
  catalog imports ``supervisor``, anything about tokens ``admin``.

What a token may reach (the routes' own docstrings give each route's role)::

    route                                          role         token of one tenant (not "*")
    /api/v1/tenants/{tenant}/...  reads            viewer       its tenant only; another tenant is
                                                                the route's own 404 (the body of a
                                                                missing order, session, job...)
    .../labels/{job}/decide                        operator     its tenant only
    .../quarantine/release, .../catalog (POST)     supervisor   its tenant only
    /api/v1/rules, /api/v1/devices                 viewer       yes (no tenant's data)
    /api/v1/channels, /api/v1/outbox/dead          viewer       yes, filtered to its tenant
    /api/v1/outbox/requeue                         supervisor   yes, only its tenant's letters
    /api/v1/outbox, /api/v1/stations, /metrics     viewer       403: every tenant's figures
    /api/v1/rules/reload                           supervisor   403: every tenant's rules
    /api/v1/tokens[/{name}]                        admin        403
    a route module's protected(handler) without a role: viewer for GET/HEAD, supervisor
    otherwise; without {tenant} it needs tenant "*" unless it says any_tenant=True

Where tokens live::

    [api] token_file   (default <data_dir>/api-token)        the ADMIN token: name "admin",
                       tenant "*", role admin; created at first start, exactly as before
    [api] tokens_file  (default <data_dir>/api-tokens.json)  every other token (mode 0600):
                       {"version": 1, "tokens": [{"name", "tenant", "role", "created_at",
                       "sha256"}, ...]}
    <tokens_file without .json>.log                          one JSON line per create and
                       revoke (when, who, which token; never a secret or a hash)

The file, not the store, holds them because ``gateway token`` must work while the daemon
runs (RocksDB admits one process) and while it does not. Writers take an ``flock`` on
``<tokens_file>.lock`` around read-modify-write and replace the file atomically
(temporary file, fsync, rename). The daemon's ``TokenRegistry`` looks at the file's
inode, size and mtime at most once a second and re-reads it when they change: a revoked
token is refused within about a second, without a restart. A file that cannot be read or
parsed admits no token but the admin one (fail closed, logged).

When the daemon runs, ``gateway token create|revoke`` goes through its API
(``/api/v1/tokens``, admin), so the change is in the store's audit trail (the gateway's
own chain, tenant ``_gateway``: see ``API_AUDIT_TENANT``) as well as in the file-side log;
when it is stopped, the CLI edits the file itself and only the file-side log records it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

import orjson

from gateway._errors import GatewayError
from gateway._settings import TENANT_NAME

log = logging.getLogger(__name__)

Role = Literal["viewer", "operator", "supervisor", "admin"]
#: The roles, least first: a token may do what its role and every role before it may.
ROLES: tuple[Role, ...] = get_args(Role)
#: The tenant of a token that sees every tenant.
ALL_TENANTS = "*"
#: The name of the admin token of ``[api] token_file`` (reserved in the tokens file).
ADMIN_NAME = "admin"
#: What every secret starts with, so a leaked one is recognised (secret scanners, logs).
TOKEN_PREFIX = "gw_"
#: The audit chain of the gateway's own changes (API calls, token changes): a tenant name
#: no configured tenant should take; its chain is verified like any tenant's.
API_AUDIT_TENANT = "_gateway"
#: How often, at most, the daemon looks at the tokens file.
CHECK_EVERY_S = 1.0

TOKEN_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class TokenExistsError(GatewayError):
    """A token of that name exists (``create_token``)."""


class UnknownTokenError(GatewayError):
    """No token of that name (``revoke_token``)."""


@dataclass(frozen=True)
class ApiToken:
    """An authenticated token as the routes see it (``request.state.token``); no secret."""

    name: str
    tenant: str
    role: Role
    created_at: str = ""

    def sees(self, tenant: str) -> bool:
        """Whether this token may read and change ``tenant``'s data."""
        return self.tenant == ALL_TENANTS or self.tenant == tenant

    def has_role(self, role: Role) -> bool:
        """Whether this token's role is ``role`` or above it."""
        return ROLES.index(self.role) >= ROLES.index(role)

    @property
    def actor(self) -> str:
        """How the audit trail names this token: ``token:<name>``."""
        return f"token:{self.name}"

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "tenant": self.tenant, "role": self.role, "created_at": self.created_at}


@dataclass(frozen=True)
class _Stored:
    token: ApiToken
    sha256: str


def new_secret() -> str:
    """A new token secret: ``gw_`` and 256 random bits, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """The hex SHA-256 of ``secret``: all the gateway keeps of it."""
    return hashlib.sha256(secret.encode()).hexdigest()


def check_new_token(name: str, tenant: str, role: str, known_tenants: Mapping[str, object] | None = None) -> Role:
    """Validate a token to create; returns its role.

    Args:
        known_tenants: the configured tenants; when not empty, ``tenant`` must be one of
            them (or ``*``) so a misspelt tenant does not make a token that sees nothing.

    Raises:
        GatewayError: what is wrong and what to give instead.
    """
    if not TOKEN_NAME.match(name):
        raise GatewayError(f"bad token name {name!r}: use 1-64 letters, digits, '_', '.' or '-'")
    if name == ADMIN_NAME:
        raise GatewayError(f"the name {ADMIN_NAME!r} is the admin token of [api] token_file; choose another name")
    if role not in ROLES:
        raise GatewayError(f"unknown role {role!r}: give one of {', '.join(ROLES)}")
    if tenant != ALL_TENANTS and not TENANT_NAME.match(tenant):
        raise GatewayError(f"bad tenant {tenant!r}: give a tenant's name or '*' for every tenant")
    if tenant != ALL_TENANTS and known_tenants and tenant not in known_tenants:
        raise GatewayError(f"unknown tenant {tenant!r}: the config has {', '.join(sorted(known_tenants))} "
                           f"(or give '*' for every tenant)")
    return role


# -- the tokens file ------------------------------------------------------------------


def _parse(data: bytes, path: Path) -> list[_Stored]:
    """The tokens of a file's bytes; ``GatewayError`` naming the file when malformed."""
    try:
        document = orjson.loads(data) if data.strip() else {"version": 1, "tokens": []}
        if not isinstance(document, dict) or document.get("version") != 1 or not isinstance(document.get("tokens"),
                                                                                             list):
            raise ValueError('expected {"version": 1, "tokens": [...]}')
        stored: list[_Stored] = []
        for item in document["tokens"]:
            name, tenant, role, digest = (item.get(k) for k in ("name", "tenant", "role", "sha256"))
            if not (isinstance(name, str) and isinstance(tenant, str) and role in ROLES and isinstance(digest, str)
                    and len(digest) == 64):
                raise ValueError(f"bad token entry {item.get('name')!r}")
            stored.append(_Stored(ApiToken(name, tenant, role, str(item.get("created_at", ""))), digest))
    except (orjson.JSONDecodeError, ValueError, AttributeError) as exc:
        raise GatewayError(f"{path}: the tokens file is damaged ({exc}); restore it from a backup or delete it "
                           f"and create the tokens again") from exc
    return stored


def _read(path: Path) -> list[_Stored]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise GatewayError(f"cannot read the tokens file {path}: {exc.strerror}") from exc
    return _parse(data, path)


def _write(path: Path, stored: list[_Stored]) -> None:
    """Replace the file atomically (mode 0600): readers see the old or the new list."""
    document = {"version": 1, "tokens": [{**s.token.to_dict(), "sha256": s.sha256} for s in stored]}
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(descriptor, orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(temporary, path)


def _log_change(path: Path, actor: str, action: str, token: ApiToken) -> None:
    line = orjson.dumps({"at": _now_iso(), "actor": actor, "action": action, **token.to_dict()}) + b"\n"
    descriptor = os.open(path.with_suffix(".log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(descriptor, line)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold the tokens file's writer lock (other writers, in any process, wait)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise GatewayError(f"cannot write next to the tokens file {path}: {exc.strerror}") from exc
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def list_tokens(path: Path) -> list[ApiToken]:
    """The tokens of the file at ``path`` (not the admin token), in creation order.

    Raises:
        GatewayError: the file cannot be read or is damaged.
    """
    return [s.token for s in _read(path)]


def create_token(path: Path, name: str, tenant: str, role: str, *, actor: str,
                 known_tenants: Mapping[str, object] | None = None) -> tuple[ApiToken, str]:
    """Add a token to the file; returns it and its secret (shown once, never stored).

    Args:
        actor: who creates it, for the file-side log (``cli:<user>``, ``token:<name>``).

    Raises:
        GatewayError: a bad name, role or tenant, a name already taken, or the file
            cannot be read or written.
    """
    checked = check_new_token(name, tenant, role, known_tenants)
    secret = new_secret()
    token = ApiToken(name, tenant, checked, _now_iso())
    with _locked(path):
        stored = _read(path)
        if any(s.token.name == name for s in stored):
            raise TokenExistsError(f"a token named {name!r} exists: choose another name, or revoke it first "
                               f"(gateway token revoke {name})")
        try:
            _write(path, [*stored, _Stored(token, hash_secret(secret))])
            _log_change(path, actor, "create", token)
        except OSError as exc:
            raise GatewayError(f"cannot write the tokens file {path}: {exc.strerror}") from exc
    return token, secret


def revoke_token(path: Path, name: str, *, actor: str) -> ApiToken:
    """Remove the token ``name`` from the file; returns what it was.

    Raises:
        GatewayError: no such token (or ``admin``), or the file cannot be read or written.
    """
    if name == ADMIN_NAME:
        raise GatewayError("the admin token cannot be revoked: replace the file [api] token_file and restart "
                           "the gateway to change it")
    with _locked(path):
        stored = _read(path)
        kept = [s for s in stored if s.token.name != name]
        if len(kept) == len(stored):
            raise UnknownTokenError(f"no token named {name!r}: `gateway token list` shows the names")
        try:
            _write(path, kept)
            _log_change(path, actor, "revoke", next(s.token for s in stored if s.token.name == name))
        except OSError as exc:
            raise GatewayError(f"cannot write the tokens file {path}: {exc.strerror}") from exc
    return next(s.token for s in stored if s.token.name == name)


# -- the daemon's view --------------------------------------------------------------


class TokenRegistry:
    """The tokens the running gateway admits: the admin token and the tokens file's.

    Args:
        admin_secret: the secret of ``[api] token_file`` (name ``admin``, tenant ``*``).
        path: the tokens file (``None``: the admin token only).
        check_every_s: how often, at most, the file's inode, size and mtime are looked at.
    """

    def __init__(self, admin_secret: str, path: Path | None, *, check_every_s: float = CHECK_EVERY_S) -> None:
        self.path = path
        self.check_every_s = check_every_s
        self._admin = _Stored(ApiToken(ADMIN_NAME, ALL_TENANTS, "admin"), hash_secret(admin_secret))
        self._stored: list[_Stored] = []
        self._seen: tuple[int, int, int] | None = None
        self._checked_at = float("-inf")

    def __repr__(self) -> str:
        return f"<TokenRegistry {self.path} tokens={len(self._stored) + 1}>"

    def refresh(self, *, force: bool = False) -> None:
        """Re-read the file if it changed (at most once per ``check_every_s`` unless ``force``)."""
        now = time.monotonic()
        if self.path is None or (not force and now - self._checked_at < self.check_every_s):
            return
        self._checked_at = now
        try:
            status = os.stat(self.path)
            seen = (status.st_ino, status.st_size, status.st_mtime_ns)
        except FileNotFoundError:
            seen = (0, 0, 0)
        except OSError as exc:
            log.error("cannot look at the tokens file %s (%s): only the admin token is admitted", self.path, exc)
            self._stored, self._seen = [], None
            return
        if seen == self._seen:
            return
        try:
            self._stored = _read(self.path) if seen != (0, 0, 0) else []
            log.info("tokens file %s: %d token(s)", self.path, len(self._stored))
        except GatewayError as exc:
            log.error("%s: only the admin token is admitted until it is fixed", exc)
            self._stored = []
        self._seen = seen

    def authenticate(self, secret: str) -> ApiToken | None:
        """The token whose secret is ``secret``, or ``None`` (every digest is compared in
        constant time, so the answer's timing says nothing about near misses)."""
        self.refresh()
        digest = hash_secret(secret).encode()
        found: ApiToken | None = None
        for stored in (self._admin, *self._stored):
            if hmac.compare_digest(digest, stored.sha256.encode()):
                found = stored.token
        return found

    def tokens(self) -> list[ApiToken]:
        """The admin token and the file's tokens, as last read."""
        self.refresh()
        return [self._admin.token, *(s.token for s in self._stored)]


def api_call_audit(token: ApiToken, method: str, path: str, status: int, at_ms: int,
                   detail: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The audit record of one API call that changed something (chain ``API_AUDIT_TENANT``)."""
    return {"tenant": API_AUDIT_TENANT, "at_ms": at_ms, "actor": token.actor, "source": "api", "event_id": "",
            "rule": "", "order_id": "", "decision": "api_call", "changes": [], "note": f"{method} {path} -> {status}",
            "detail": {"method": method, "path": path, "status": status,
                       "token": {"name": token.name, "tenant": token.tenant, "role": token.role}, **(detail or {})}}


__all__ = ["ADMIN_NAME", "ALL_TENANTS", "API_AUDIT_TENANT", "ROLES", "TOKEN_PREFIX", "ApiToken", "Role",
           "TokenExistsError", "TokenRegistry", "UnknownTokenError", "api_call_audit", "check_new_token", "create_token", "hash_secret", "list_tokens",
           "new_secret", "revoke_token"]
