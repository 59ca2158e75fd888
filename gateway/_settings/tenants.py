"""``[tenants.NAME.SOURCE]``: who may send, from where, signed with which secret.

A tenant is one shop business whose data the gateway keeps apart; a source is a platform or
the ERP it sends from (a webhook path ``/webhooks/<source>/<tenant>``, or Pinduoduo's
message WebSocket). Each tenant-and-source table gives the secret that signs what arrives
and what the platform's signature scheme needs besides (``gateway._ingest.adapters``).

Reference (all keys, defaults in brackets)::

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

Checked here, each refusal naming file, line and key: tenant names (1-64 of A-Z a-z 0-9 _ -)
and source names (1-32 of a-z 0-9 _); a secret present; addresses and networks that parse;
an app key where the platform's signature covers it (``APP_KEY_REQUIRED``); a header name
that is an HTTP token; a ``ws://`` / ``wss://`` URL; shop ids that are numbers, each listed
once, and only for Pinduoduo. Tenants sharing one Pinduoduo WebSocket must split it by shop
(``mall_ids``) and sign it with one secret, or a message could land under the wrong tenant.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gateway._addresses import parse_networks
from gateway._settings.fields import SECRET_KEYS, coerce, secret_of
from gateway._settings.model import (
    APP_KEY_REQUIRED,
    DEFAULT_SIGNATURE_HEADER,
    SOURCE_NAME,
    TENANT_NAME,
    SignMethod,
    SourceCredentials,
)
from gateway._settings.toml import KeyPath, TomlDocument, check_keys

_CREDENTIAL_KEYS = (*SECRET_KEYS, "allow_ips", "app_key", "sign_method", "signature_header", "ws_url", "mall_ids")
_HEADER_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")  # RFC 9110 token
_APP_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no blanks


def parse_tenants(doc: TomlDocument, raw_tenants: Any) -> dict[str, dict[str, SourceCredentials]]:
    """The ``[tenants]`` table as ``{tenant: {source: SourceCredentials}}``.

    Raises:
        ConfigError: a bad tenant or source name, a table that is not one, a missing
            secret, a bad key or value, a shared WebSocket not split by shop.
    """
    tenants: dict[str, dict[str, SourceCredentials]] = {}
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
    return tenants


def _credentials(doc: TomlDocument, table: Any, at: KeyPath) -> SourceCredentials:
    if not isinstance(table, dict):
        raise doc.error(at, "must be a table of secret/secret_env/secret_file/allow_ips/app_key/...")
    check_keys(doc, table, at, _CREDENTIAL_KEYS)
    secret = secret_of(doc, table, at)
    if not secret:
        raise doc.error(at, "no secret given (secret, secret_env or secret_file)")
    allow = coerce(doc, (*at, "allow_ips"), table.get("allow_ips", []), tuple[str, ...])
    check_networks(doc, (*at, "allow_ips"), allow)
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


def check_networks(doc: TomlDocument, at: KeyPath, entries: tuple[str, ...]) -> None:
    """Refuse an address list (``allow_ips``, ``[http] trusted_proxies``) that is not all addresses
    or CIDR networks, with an example of each."""
    try:
        parse_networks(entries)
    except ValueError as exc:
        raise doc.error(at, f"{exc} (give addresses like \"203.0.113.7\" or networks like \"203.0.113.0/24\")") from None


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


__all__ = ["check_networks", "parse_tenants"]
