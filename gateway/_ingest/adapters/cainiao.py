"""Cainiao (菜鸟) logistics callback, LINK style.

UNCONFIRMED: PROTOCOLS.md confirms neither the envelope nor the digest for Cainiao pushes.
This adapter implements the LINK gateway's documented convention and keeps what may differ
configurable or tolerant:

Request::

    POST /webhooks/cainiao/{tenant}
    Content-Type: application/x-www-form-urlencoded

    logistics_interface=<XML or JSON text>&data_digest=<digest>&msg_type=...
    &partner_code=...&logistic_provider_id=...&to_code=...

    data_digest = base64(MD5(logistics_interface + secret))      (the raw 16-byte digest)

Tolerated, because deployments differ and each form carries the same MD5: the base64 of
the 32-character hex text, and the bare hex text (either case). The digest is compared in
constant time against every accepted form. ``secret`` is the tenant's secret (the LINK app
secret). When the tenant's ``app_key`` is configured it must equal ``partner_code`` (or,
when that field is absent, ``logistic_provider_id``). Cainiao sends no timestamp: no replay
window; a replayed callback composes the same event id (waybill | action | time) and is
de-duplicated. Use ``allow_ips`` for Cainiao's callback addresses.

``logistics_interface`` is decoded in place: JSON as is; XML into nested dicts (element ->
its text, or a dict of its children; repeated children -> a list; attributes dropped; the
root element itself is not a level), e.g. ``<request><mailNo>YT1</mailNo><action>ACCEPT
</action></request>`` -> ``{"mailNo": "YT1", "action": "ACCEPT"}``. XML with a DOCTYPE or
entity declaration is refused. The field and status names are read by the editable
``config/rules/cainiao.toml`` (also UNCONFIRMED).

Replies: ``{"success": "true"}``; a refusal ``{"success": "false", "errorCode": "<HTTP
status>", "errorMsg": "<reason>"}`` with that status.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from typing import Any

import orjson
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as DefusedElementTree

from gateway._errors import MalformedEventError, SignatureError
from gateway._ingest.adapters.base import RawRequest, Reply, check_allow_list
from gateway._ingest.adapters.forms import json_body, parse_form
from gateway._settings import SourceCredentials

SUCCESS = orjson.dumps({"success": "true"})
MAX_XML_DEPTH = 32


def digest(content: str, secret: bytes) -> str:
    """``data_digest``: base64 of the raw MD5 of ``content + secret`` (the LINK rule)."""
    return base64.b64encode(hashlib.md5(content.encode() + secret).digest()).decode()


def digest_matches(content: str, secret: bytes, given: str) -> bool:
    """Constant-time check of ``given`` against every accepted encoding of the MD5."""
    md5 = hashlib.md5(content.encode() + secret)
    given_bytes = given.strip().encode()
    accepted = (
        base64.b64encode(md5.digest()),
        base64.b64encode(md5.hexdigest().encode()),
    )
    matched = False
    for candidate in accepted:
        matched |= hmac.compare_digest(candidate, given_bytes)
    matched |= hmac.compare_digest(md5.hexdigest().encode(), given_bytes.lower())
    return matched


def _element(node: ElementTree.Element, depth: int) -> Any:
    if depth > MAX_XML_DEPTH:
        raise MalformedEventError(f"logistics_interface XML nests deeper than {MAX_XML_DEPTH}")
    children = list(node)
    if not children:
        return (node.text or "").strip()
    out: dict[str, Any] = {}
    for child in children:
        value = _element(child, depth + 1)
        if child.tag in out:
            previous = out[child.tag]
            out[child.tag] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[child.tag] = value
    return out


def xml_to_dict(text: str) -> dict[str, Any]:
    """The children of the XML document's root element as nested dicts (see the module docstring).

    Raises:
        MalformedEventError: not well-formed, a DOCTYPE/ENTITY declaration, or too deep.
    """
    try:  # defusedxml: no DTD, no entities, no external references (billion laughs, XXE)
        root = DefusedElementTree.fromstring(text, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise MalformedEventError(f"logistics_interface XML must not declare a DOCTYPE or entities: {exc!r}") from exc
    except ElementTree.ParseError as exc:
        raise MalformedEventError(f"logistics_interface is not well-formed XML: {exc}") from exc
    value = _element(root, 0)
    return value if isinstance(value, dict) else {root.tag: value}


def decode_interface(text: str) -> dict[str, Any]:
    """``logistics_interface`` (JSON object or XML text) as a dict.

    Raises:
        MalformedEventError: neither a JSON object nor well-formed XML.
    """
    stripped = text.lstrip()
    if stripped.startswith("<"):
        return xml_to_dict(stripped)
    value = json_body(text, "logistics_interface")
    if not isinstance(value, dict):
        raise MalformedEventError("logistics_interface must be a JSON object or XML")
    return value


class CainiaoAdapter:
    """Adapter for Cainiao logistics callbacks (source ``cainiao``); scheme UNCONFIRMED."""

    source = "cainiao"

    def verify(self, request: RawRequest, credentials: SourceCredentials, now_s: float) -> None:
        check_allow_list(request, credentials)
        fields = parse_form(request.body)
        content = fields.get("logistics_interface", "")
        given = fields.get("data_digest", "")
        if not content or not given:
            raise SignatureError("missing logistics_interface or data_digest field")
        if credentials.app_key:
            partner = fields.get("partner_code") or fields.get("logistic_provider_id") or ""
            if not hmac.compare_digest(partner.encode(), credentials.app_key.encode()):
                raise SignatureError("partner_code is not this tenant's partner")
        if not digest_matches(content, credentials.secret.reveal(), given):
            raise SignatureError("data_digest does not verify")

    def decode(self, request: RawRequest) -> list[dict[str, Any]]:
        fields: dict[str, Any] = dict(parse_form(request.body))
        content = fields.get("logistics_interface")
        if not content:
            raise MalformedEventError("no logistics_interface field")
        fields["logistics_interface"] = decode_interface(content)
        return [fields]

    def success(self, summary: Mapping[str, Any]) -> Reply:
        return Reply(200, SUCCESS)

    def failure(self, status: int, reason: str) -> Reply:
        return Reply(status, orjson.dumps({"success": "false", "errorCode": str(status), "errorMsg": reason}))
