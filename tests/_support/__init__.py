"""Helpers shared by the integration tests: configs in tmp dirs, signed ERP requests."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import orjson

from gateway._signing import sign

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "config" / "rules"
SECRETS = {"t1": "t1-erp-secret", "t2": "t2-erp-secret"}


def write_config(tmp_path: Path, extra: str = "", port: int = 0) -> Path:
    """A gateway.toml in ``tmp_path`` using the shipped rules, data under tmp_path/data."""
    tenants = "".join(f"[tenants.{t}.erp]\nsecret = '{s}'\n" for t, s in SECRETS.items())
    text = (
        f"[gateway]\nid = 'test-gw'\ndata_dir = '{tmp_path / 'data'}'\nrules_dir = '{RULES}'\n"
        f"rules_poll_s = 0\n[http]\nhost = '127.0.0.1'\nport = {port}\nshutdown_grace_s = 2.0\n"
        f"{extra}\n{tenants}"
    )
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


def erp_event(n: int, status: str = "WAIT_AUDIT", order: str | None = None, **extra: Any) -> dict[str, Any]:
    event = {
        "event_id": f"erp-{n}",
        "platform": "douyin",
        "order_no": order or f"DY{n:08d}",
        "status": status,
        "occurred_at": "2026-11-25T10:00:00+08:00",
        "buyer": {"phone": "138 0013 8000"},
        "amount": 129.0,
        "lines": [{"sku": "A1", "qty": 1}],
    }
    event.update(extra)
    return event


def signed(events: list[dict[str, Any]] | bytes, tenant: str = "t1", *, secret: str | None = None,
           timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of an ERP batch signed with the tenant's secret."""
    body = events if isinstance(events, bytes) else orjson.dumps({"events": events})
    ts = str(int(time.time()) if timestamp is None else timestamp)
    key = (secret if secret is not None else SECRETS[tenant]).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Gateway-Timestamp": ts,
        "X-Gateway-Signature": sign(key, ts, body),
    }
    return body, headers


def copy_tree(source: Path, target: Path) -> Path:
    """A writable copy of ``source`` (e.g. the shipped rules) at ``target``."""
    import shutil

    shutil.copytree(source, target)
    return target


def edit_line(path: Path, old: str, new: str) -> int:
    """Replace ``old`` in the first line containing it; return that 1-based line number."""
    lines = path.read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if old in line)
    lines[index] = lines[index].replace(old, new, 1)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return index + 1


# -- platform webhooks: multi-source tenant configs and requests signed by each platform's rule --
# The signers below are written from PROTOCOLS.md, independently of gateway._ingest.adapters, so the
# tests check the adapters against the published rules rather than against themselves.

PLATFORM_SOURCES = ("douyin", "youzan", "xiaohongshu", "tmall", "pinduoduo", "kuaidi100", "cainiao")


def platform_secret(tenant: str, source: str) -> str:
    return f"{tenant}-{source}-secret"


def platform_app_key(tenant: str, source: str) -> str:
    return f"{tenant}-{source}-app"


def write_platform_config(tmp_path: Path, extra: str = "", tenants: tuple[str, ...] = ("t1", "t2")) -> Path:
    """Like ``write_config``, plus ``[tenants.T.SOURCE]`` (secret, app_key) for every platform."""
    tables = "".join(
        f"[tenants.{t}.{s}]\nsecret = '{platform_secret(t, s)}'\napp_key = '{platform_app_key(t, s)}'\n"
        for t in tenants for s in PLATFORM_SOURCES
    )
    return write_config(tmp_path, f"{extra}\n{tables}")


def _md5(data: bytes) -> str:
    import hashlib

    return hashlib.md5(data).hexdigest()


def _form(fields: dict[str, str]) -> bytes:
    import urllib.parse

    return urllib.parse.urlencode(fields).encode()


def _sorted_concat(params: dict[str, str]) -> str:
    return "".join(k + params[k] for k in sorted(params) if k != "sign" and params[k] != "")


def douyin_request(messages: list[dict[str, Any]], tenant: str = "t1", *, secret: str | None = None,
                   app_key: str | None = None) -> tuple[bytes, dict[str, str]]:
    """A Douyin push: ``data`` sent as a JSON string, event-sign = md5(app_key + body + secret)."""
    items = [{**m, "data": m["data"] if isinstance(m["data"], str) else orjson.dumps(m["data"]).decode()}
             for m in messages]
    body = orjson.dumps(items)
    key = app_key if app_key is not None else platform_app_key(tenant, "douyin")
    sign = _md5(key.encode() + body + (secret or platform_secret(tenant, "douyin")).encode())
    return body, {"Content-Type": "application/json", "app-id": key, "event-sign": sign}


def youzan_request(message: dict[str, Any], tenant: str = "t1", *, secret: str | None = None,
                   legacy: bool = False) -> tuple[bytes, dict[str, str]]:
    """A Youzan push: ``msg`` URL-encoded JSON; Event-Sign = md5(client_id + body + secret)."""
    import urllib.parse

    client_id = platform_app_key(tenant, "youzan")
    key = (secret or platform_secret(tenant, "youzan")).encode()
    body_fields = {"client_id": client_id, **message}
    if not isinstance(body_fields.get("msg"), str):
        body_fields["msg"] = urllib.parse.quote_plus(orjson.dumps(body_fields["msg"]).decode())
    if legacy:
        body_fields["sign"] = _md5(client_id.encode() + body_fields["msg"].encode() + key)
        return orjson.dumps(body_fields), {"Content-Type": "application/json"}
    body = orjson.dumps(body_fields)
    return body, {"Content-Type": "application/json", "Event-Sign": _md5(client_id.encode() + body + key)}


def xiaohongshu_request(messages: list[dict[str, Any]], tenant: str = "t1", *,
                        secret: str | None = None) -> tuple[bytes, dict[str, str]]:
    """A Xiaohongshu push signed with the (UNCONFIRMED) hex HMAC-SHA256 of the body."""
    import hashlib
    import hmac

    items = [{**m, "data": orjson.dumps(m["data"]).decode()} for m in messages]
    body = orjson.dumps(items)
    mac = hmac.new((secret or platform_secret(tenant, "xiaohongshu")).encode(), body, hashlib.sha256)
    return body, {"Content-Type": "application/json", "x-xhs-signature": mac.hexdigest()}


def top_sign(method: str, secret: str, signed: str) -> str:
    """TOP sign (PROTOCOLS.md): md5 / hmac (HMAC-MD5) / hmac-sha256, upper-case hex."""
    import hashlib
    import hmac

    if method == "md5":
        return _md5((secret + signed + secret).encode()).upper()
    digest = hashlib.md5 if method == "hmac" else hashlib.sha256
    return hmac.new(secret.encode(), signed.encode(), digest).hexdigest().upper()


def top_timestamp(epoch_s: float | None = None) -> str:
    from datetime import datetime, timedelta, timezone

    moment = time.time() if epoch_s is None else epoch_s
    return datetime.fromtimestamp(moment, timezone(timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S")


def tmall_request(message: dict[str, Any], tenant: str = "t1", *, secret: str | None = None,
                  method: str = "hmac-sha256", timestamp: str | None = None) -> tuple[bytes, dict[str, str]]:
    """A TMC message as a signed TOP form (``content`` a JSON string)."""
    params = {k: (v if isinstance(v, str) else orjson.dumps(v).decode()) for k, v in message.items()}
    params.update({"app_key": platform_app_key(tenant, "tmall"), "sign_method": method,
                   "timestamp": timestamp or top_timestamp()})
    params["sign"] = top_sign(method, secret or platform_secret(tenant, "tmall"), _sorted_concat(params))
    return _form(params), {"Content-Type": "application/x-www-form-urlencoded"}


def pdd_request(frames: list[dict[str, Any]] | dict[str, Any], tenant: str = "t1", *, secret: str | None = None,
                timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """Relayed Pinduoduo frames as a form signed with the PDD API rule (content a JSON string)."""
    def wire(frame: dict[str, Any]) -> dict[str, Any]:
        if "message" not in frame:
            return frame
        message = dict(frame["message"])
        if not isinstance(message.get("content"), str):
            message["content"] = orjson.dumps(message["content"]).decode()
        return {**frame, "message": message}

    data = [wire(f) for f in frames] if isinstance(frames, list) else wire(frames)
    params = {"client_id": platform_app_key(tenant, "pinduoduo"),
              "timestamp": str(int(time.time()) if timestamp is None else timestamp),
              "data": orjson.dumps(data).decode()}
    key = secret or platform_secret(tenant, "pinduoduo")
    params["sign"] = _md5((key + _sorted_concat(params) + key).encode()).upper()
    return _form(params), {"Content-Type": "application/x-www-form-urlencoded"}


def kuaidi100_request(param: dict[str, Any], tenant: str = "t1", *,
                      secret: str | None = None) -> tuple[bytes, dict[str, str]]:
    """A Kuaidi100 push: form ``param`` (JSON) and ``sign = UPPER(MD5(param + salt))``."""
    text = orjson.dumps(param).decode()
    sign = _md5((text + (secret or platform_secret(tenant, "kuaidi100"))).encode()).upper()
    return _form({"param": text, "sign": sign}), {"Content-Type": "application/x-www-form-urlencoded"}


def kuaidi100_param(waybill: str, state: str, ftime: str = "2026-11-25 10:00:00") -> dict[str, Any]:
    trace = {"context": "快件已揽收", "time": ftime, "ftime": ftime, "status": "揽收", "statusCode": state}
    return {"status": "polling", "message": "", "lastResult": {
        "state": state, "com": "shunfeng", "nu": waybill, "ischeck": "0", "data": [trace]}}


def cainiao_request(interface: str, tenant: str = "t1", *, secret: str | None = None,
                    **fields: str) -> tuple[bytes, dict[str, str]]:
    """A Cainiao LINK callback: data_digest = base64(raw MD5(content + secret))."""
    import base64
    import hashlib

    key = secret or platform_secret(tenant, "cainiao")
    digest = base64.b64encode(hashlib.md5((interface + key).encode()).digest()).decode()
    form = {"logistics_interface": interface, "data_digest": digest, "msg_type": "TRACE_PUSH",
            "partner_code": platform_app_key(tenant, "cainiao"), **fields}
    return _form(form), {"Content-Type": "application/x-www-form-urlencoded"}


def adapter_request(body: bytes, headers: dict[str, str] | None = None, query: dict[str, str] | None = None,
                    peer: str = "127.0.0.1") -> Any:
    """A ``RawRequest`` as the HTTP layer builds it (header names lower-cased)."""
    from gateway._ingest import RawRequest

    return RawRequest(headers={k.lower(): v for k, v in (headers or {}).items()}, body=body,
                      query=dict(query or {}), peer=peer)


def credentials_for(tenant: str, source: str, **overrides: Any) -> Any:
    """The ``SourceCredentials`` ``write_platform_config`` gives ``tenant`` for ``source``."""
    from gateway._settings import Secret, SourceCredentials

    values: dict[str, Any] = {"secret": Secret(platform_secret(tenant, source)),
                              "app_key": platform_app_key(tenant, source)}
    values.update(overrides)
    return SourceCredentials(**values)


@functools.cache
def _shipped_rules() -> Any:
    from gateway._rules import load_rules

    return load_rules(RULES)


def normalised(source: str, events: list[dict[str, Any]], tenant: str = "t1") -> list[Any]:
    """Decoded events through the shipped ``source`` rules: the ``Event`` values the pipeline gets."""
    from gateway._rules import normalise_batch

    return normalise_batch(_shipped_rules().get(source), tenant, events, 0)


def garbage_json(keys: list[str]) -> Any:
    """A hypothesis strategy of JSON texts built from ``keys`` (a source's own field names) and odd leaves."""
    import json

    from hypothesis import strategies as st

    leaf = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
            | st.text(max_size=6) | st.sampled_from(["Common", "HeartBeat", "101", "{}", "[]", "%7B%7D", "<a>1</a>"]))
    values = st.recursive(leaf, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.sampled_from(keys), inner, max_size=5), max_leaves=15)
    return values.map(json.dumps)
