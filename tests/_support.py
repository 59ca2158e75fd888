"""Helpers shared by the integration tests: configs in tmp dirs, signed ERP requests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from gateway.adapters.erp import sign

ROOT = Path(__file__).resolve().parent.parent
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
