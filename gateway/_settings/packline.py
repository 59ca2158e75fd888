"""The pack line's settings in ``gateway.toml``: ``[packline]`` and ``[alerts]``.

Reference (defaults in brackets)::

    [packline]                  # the pack stations (DESIGN section 7)
    tenant = ""                 # the tenant whose orders the stations pack; "" = the only
                                # tenant configured (with several, a gateway that has
                                # [stations.*] must name one) [""]
    close_mode = "auto"         # auto: a session closes after its last expected scan;
                                # control: only close_code closes it; next_order: scanning
                                # the next order closes the previous one. close_code always
                                # closes ["auto"]
    close_code = "#CLOSE"       # control barcode: close the open session ["#CLOSE"]
    cancel_code = "#CANCEL"     # control barcode: abandon the open session (recorded) ["#CANCEL"]
    reprint_code = "#REPRINT"   # control barcode: print the last label again ["#REPRINT"]
    badge_prefix = "OP-"        # a scan starting with this is an operator's badge ["OP-"]
    supervisor_prefix = "SV-"   # ... a supervisor's badge (overrides, partial close) ["SV-"]
                                # (no code may start with a prefix: a scan must be unambiguous)
    weight_tolerance_g = 0      # the weighed parcel may differ from the catalog weights by
    weight_tolerance_pct = 5.0  # the larger of the two; weight_tolerance_g = 0 turns the
                                # weight check off [0, 5.0]
    waybill_timeout_s = 900.0   # a packed parcel still without a waybill after this raises
                                # a waybill_timeout alert [900.0]
    stock_url = ""              # the ERP's stock endpoint, asked for a bill's gift stock
                                # before packing (signed with the [upstream] secret, which it
                                # then needs; gateway/_packline/stock_reader.py) [""]
    stock_timeout_s = 2.0       # a slower read is abandoned: the stored figure is used [2.0]
    stock_fresh_s = 60.0        # a stored figure younger than this is not read again [60.0]

    [alerts]                    # pack-line alerts to a WeCom group robot (gateway._packline.alerts)
    url = ""                    # the robot's webhook URL; it holds the robot's key, so it is a
    url_env = ""                # secret: give url, url_env (an environment variable) or
    url_file = ""               # url_file (relative to THIS file); never logged. "" = alerts
                                # are only logged and kept for the operators' board [""]
    format = "markdown"         # markdown | text (WeCom msgtype) ["markdown"]
    mentioned_mobiles = []      # phone numbers to @ (strings of digits, or "@all"); text
                                # format only: WeCom markdown cannot @ a phone number [[]]
    retry_initial_s = 1.0       # first retry delay of a failed send; doubles per failure,
    retry_max_s = 300.0         # +-25 % jitter, capped at retry_max_s [1.0, 300.0]
    timeout_s = 10.0            # per request; a timeout is retried [10.0]
    max_queued = 10000          # bound of the durable alert queue; beyond it the oldest alerts
                                # of the lowest severity (info, then warning, then critical)
                                # are dropped, each drop logged (WARNING) and counted
                                # (gateway_alerts_total{result="dropped"}) [10000]

Both are checked like the rest of the file (file, line and key): ``[packline]`` against itself
(codes and prefixes a scan could not tell apart) and against the tenants; ``[alerts]`` keeps
the robot's URL a ``Secret`` and never echoes it in an error.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from gateway._settings.fields import secret_of, section_of
from gateway._settings.model import TENANT_NAME, AlertsSection, PackLineSection
from gateway._settings.toml import KeyPath, TomlDocument, check_keys

_URL_KEYS = ("url", "url_env", "url_file")
_MOBILE = re.compile(r"^[0-9]{3,20}$")


def parse_alerts(doc: TomlDocument, table: Any) -> AlertsSection:
    """``[alerts]``: the robot URL is a secret (``url`` / ``url_env`` / ``url_file``)."""
    at: KeyPath = ("alerts",)
    if not isinstance(table, dict):
        raise doc.error(at, "must be a table")
    names = [f.name for f in dataclasses.fields(AlertsSection) if f.name not in ("url", "mentioned_mobiles")]
    check_keys(doc, table, at, [*names, *_URL_KEYS, "mentioned_mobiles"])
    plain = {k: v for k, v in table.items() if k in names}
    section = section_of(doc, plain, at, AlertsSection)
    url = secret_of(doc, table, at, _URL_KEYS)
    text = url.reveal().decode()
    given = next((k for k in _URL_KEYS if table.get(k)), "url")
    if text and (not text.startswith(("http://", "https://")) or any(c.isspace() for c in text)):
        # never echo the value: it holds the robot's key
        raise doc.error((*at, given), "must be an http:// or https:// URL (the group robot's webhook address)")
    mobiles = table.get("mentioned_mobiles", [])
    if not isinstance(mobiles, list) or not all(isinstance(m, str) and (m == "@all" or _MOBILE.match(m))
                                                for m in mobiles):
        raise doc.error((*at, "mentioned_mobiles"),
                        'must be a list of phone numbers as strings of digits, or "@all": ["13800001111", "@all"]')
    if mobiles and section.format != "text":
        raise doc.error((*at, "mentioned_mobiles"), 'WeCom markdown messages cannot @ a phone number: '
                        'set format = "text" or remove mentioned_mobiles')
    for name in ("retry_initial_s", "retry_max_s", "timeout_s", "max_queued"):
        if not getattr(section, name):
            raise doc.error((*at, name), "must be greater than 0")
    if section.retry_max_s < section.retry_initial_s:
        raise doc.error((*at, "retry_max_s"), f"must be at least retry_initial_s ({section.retry_initial_s})")
    return dataclasses.replace(section, url=url, mentioned_mobiles=tuple(mobiles))


def parse_packline(doc: TomlDocument, table: Any, tenants: Mapping[str, object], packing: bool) -> PackLineSection:
    """``[packline]`` checked against itself (codes and prefixes that cannot be told apart)
    and the tenants: ``tenant = ""`` is resolved to the only one; with several, a gateway
    that packs (``packing``: it has stations) must name one."""
    at: KeyPath = ("packline",)
    section = section_of(doc, table, at, PackLineSection)
    if not section.waybill_timeout_s:
        raise doc.error((*at, "waybill_timeout_s"), "must be greater than 0")
    for name in ("stock_timeout_s", "stock_fresh_s"):
        if getattr(section, name) <= 0:
            raise doc.error((*at, name), "must be greater than 0")
    url = section.stock_url
    if url and (not url.startswith(("http://", "https://")) or any(c.isspace() for c in url)):
        raise doc.error((*at, "stock_url"), "must be an http:// or https:// URL (the ERP's stock endpoint), or \"\"")
    if section.weight_tolerance_pct > 100:
        raise doc.error((*at, "weight_tolerance_pct"), "must be at most 100")
    codes = {"close_code": section.close_code, "cancel_code": section.cancel_code,
             "reprint_code": section.reprint_code, "badge_prefix": section.badge_prefix,
             "supervisor_prefix": section.supervisor_prefix}
    for name, code in codes.items():
        if not code or not code.isprintable() or code != code.strip():
            raise doc.error((*at, name), f"must be printable text without leading or trailing blanks, not {code!r}")
    for name, code in codes.items():
        for other, other_code in codes.items():
            if other != name and other.endswith("prefix") and code.startswith(other_code):
                raise doc.error((*at, name), f"{code!r} starts with {other} {other_code!r}: a scan of it "
                                             "could not be told apart; choose distinct codes")
    seen: dict[str, str] = {}
    for name, code in codes.items():
        if code in seen:
            raise doc.error((*at, name), f"the same code as {seen[code]} ({code!r}): choose distinct codes")
        seen[code] = name
    tenant = section.tenant
    if tenant and not TENANT_NAME.match(tenant):
        raise doc.error((*at, "tenant"), "tenant names are 1-64 of A-Z a-z 0-9 _ -")
    if tenant and tenants and tenant not in tenants:
        raise doc.error((*at, "tenant"), f"no [tenants.{tenant}] is configured (configured: {', '.join(tenants)})")
    if not tenant and len(tenants) > 1 and packing:
        raise doc.error((*at, "tenant"), f"several tenants are configured ({', '.join(tenants)}): "
                                         "name the one whose orders the stations pack")
    if not tenant and len(tenants) == 1:
        tenant = next(iter(tenants))
    return dataclasses.replace(section, tenant=tenant)


__all__ = ["parse_alerts", "parse_packline"]
