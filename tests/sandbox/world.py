"""A small recorded world for the sandbox tests: a config tree, a real store with traffic.

``make_world`` writes ``gateway.toml`` (data dir, the shipped rules copied, optionally an
upstream URL), then records ERP traffic the way the committer does (normalise, plan,
``Store.commit``): orders created, paid, reviewed, some refunded, some refunds withdrawn,
one cross-channel pair of one buyer, and a station-like event without rules.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway._pipeline import plan_step
from gateway._rules import load_rules, normalise_batch
from gateway._store import StoreSettings, open_store

RULES = Path(__file__).resolve().parents[2] / "config" / "rules"
TENANT = "acme"
T0 = 1_764_900_000_000  # 2025-12-05 02:00 UTC


@dataclass
class World:
    config: Path
    rules: Path
    data: Path
    store_path: Path
    refunded: list[str]


def erp(n: int, order: str, status: str, *, platform: str = "douyin", phone: str = "", **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"event_id": f"erp-{n:06d}", "platform": platform, "order_no": order, "status": status,
                             "occurred_at": "2025-12-05T10:00:00+08:00", "amount": 199.0,
                             "lines": [{"sku": "SKU-1", "qty": 1}]}
    if phone:
        event["buyer"] = {"phone": phone}
    event.update(extra)
    return event


def traffic() -> list[list[dict[str, Any]]]:
    """Request bodies in arrival order (each list is one request)."""
    batches: list[list[dict[str, Any]]] = []
    n = 0
    for order in range(12):
        for status in ("PAID", "WAIT_AUDIT"):
            n += 1
            batches.append([erp(n, f"A{order:04d}", status, phone=f"1380000{order:04d}")])
    for order in (2, 5, 7):  # refunds: the state a candidate must not get wrong
        n += 1
        batches.append([erp(n, f"A{order:04d}", "REFUNDING")])
    n += 1
    batches.append([erp(n, "A0007", "REFUND_CLOSED")])  # withdrawn: back to review
    # one buyer on two channels: a pack group
    n += 1
    batches.append([erp(n, "B0001", "PAID", platform="tmall", phone="13800000001")])
    # a batch of several events at once
    batches.append([erp(n + i, f"C{i:04d}", "PAID") for i in range(1, 6)])
    return batches


def record(store_path: Path, rules_dir: Path, batches: list[list[dict[str, Any]]]) -> None:
    rules = load_rules(rules_dir).get("erp")
    assert rules is not None
    with open_store(StoreSettings(path=store_path, sync="os")) as store:
        for index, body in enumerate(batches):
            now = T0 + index * 1000
            events = normalise_batch(rules, TENANT, body, now)
            plan = plan_step(events, store.get_order, store.seen_fingerprint, store.order_for_waybill,
                             store.orders_for_buyer, now)
            store.commit(plan.write)


def make_world(root: Path, upstream_url: str = "") -> World:
    rules = root / "config" / "rules"
    shutil.copytree(RULES, rules)
    data = root / "data"
    config = root / "config" / "gateway.toml"
    upstream = f'\n[upstream]\nurl = "{upstream_url}"\nsecret = "upstream-test-secret"\n' if upstream_url else ""
    config.write_text(f'[gateway]\nid = "sandbox-test"\ndata_dir = "{data}"\nrules_dir = "rules"\n\n'
                      f'[demo]\nenabled = false\n{upstream}', encoding="utf-8")
    store_path = data / "rocksdb"
    record(store_path, rules, traffic())
    return World(config, rules, data, store_path, ["douyin|A0002", "douyin|A0005"])


def candidate(root: Path, replace: dict[str, str], name: str = "erp.toml", version: int = 2) -> Path:
    """A candidate dir holding the shipped ``name`` with lines replaced and its version bumped."""
    text = (RULES / name).read_text(encoding="utf-8")
    text = text.replace("version = 1", f"version = {version}", 1)
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    directory = root / "candidate"
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(text, encoding="utf-8")
    return directory
