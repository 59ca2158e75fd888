"""The replay report: one JSON-ready dict (``build_report``) and its text (``render_text``).

The report holds nothing of the wall clock, the machine or a temporary path, so the same
input and rules give the same bytes (``report_bytes``: sorted keys). Shape::

    {"events": N, "events_changed": n, "releases": n, "orders": N, "orders_changed": n,
     "changes": {"status": n, "pack_group": n, "bill": n, "quarantine": n, "forwarded": n},
     "by_rule": [{"rule", "orders", "changes": {...}}],          # most orders first
     "orders_changed_list": [{"tenant", "order_id", "changes", "rule", "before", "after"}],  # up to limit
     "examples": [...],  "event_examples": [...],  "quarantine_without_order": [...],
     "live": {"rules": digest, "merge_window_s"},
     "candidate": {"rules", "merge_window_s", "changed_files", "deleted_files"},
     "truncated": bool}

``releases`` counts the release lines replayed (quarantined events released,
``gateway._sandbox.released``; they are among ``events``); ``deleted_files`` names the live
files the candidate deletes (the events it then refuses are charged to ``<file>:deleted``).

``run_replay`` ties the engine and the comparison together for the CLI, the API and the
benchmark.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from gateway._sandbox.configs import Configuration
from gateway._sandbox.diff import KINDS, CatalogReader, Comparison, compare
from gateway._sandbox.engine import Replay, collector_paused

#: Examples per rule, and in all, shown with before/after.
EXAMPLES_PER_RULE = 3
EXAMPLES = 30


def run_replay(lines: Iterable[dict[str, Any]], live: Configuration, candidate: Configuration, *,
               catalog_for: CatalogReader | None = None, progress: Callable[[int], None] | None = None,
               limit: int = 1000) -> dict[str, Any]:
    """Replay ``lines`` through both configurations and return the report.

    Args:
        lines: recorded inputs, in log order (``gateway._sandbox.recorded``).
        live / candidate: the configurations compared.
        catalog_for: the catalog of a tenant for the expected bill (empty when ``None``).
        progress: called with the lines replayed so far.
        limit: changed orders listed in full (all are counted).
    """
    replay = Replay(live, candidate, progress)
    with collector_paused():  # one pause for both: the collector's first pass after it is a full one
        replay.feed(lines)
        comparison = compare(replay, catalog_for)
    return build_report(replay, comparison, limit)


def build_report(replay: Replay, comparison: Comparison, limit: int = 1000) -> dict[str, Any]:
    """The report of a finished replay (see the module docstring)."""
    changes = Counter(kind for change in comparison.changed for kind in change.kinds)
    per_rule: dict[str, Counter[str]] = {}
    orders_per_rule: Counter[str] = Counter()
    examples: list[dict[str, Any]] = []
    shown: Counter[str] = Counter()
    for change in comparison.changed:
        orders_per_rule[change.rule] += 1
        per_rule.setdefault(change.rule, Counter()).update(change.kinds)
        if shown[change.rule] < EXAMPLES_PER_RULE and len(examples) < EXAMPLES:
            shown[change.rule] += 1
            examples.append(change.to_dict())  # facts read now, for the few shown
    by_rule = [{"rule": rule, "orders": count, "changes": {k: per_rule[rule][k] for k in KINDS if per_rule[rule][k]}}
               for rule, count in sorted(orders_per_rule.items(), key=lambda item: (-item[1], item[0]))]
    live, candidate = replay.live.configuration, replay.candidate.configuration
    return {
        "events": replay.tally.events,
        "events_changed": replay.tally.changed,
        "releases": replay.tally.releases,
        "orders": comparison.orders,
        "orders_changed": len(comparison.changed),
        "changes": {kind: changes[kind] for kind in KINDS},
        "by_rule": by_rule,
        "orders_changed_list": [change.to_dict() for change in comparison.changed[:limit]],
        "truncated": len(comparison.changed) > limit,
        "examples": examples,
        "event_examples": [change.to_dict() for change in replay.tally.examples],
        "quarantine_without_order": comparison.loose_quarantine,
        "live": {"rules": live.rules.digest, "merge_window_s": live.merge_window_ms / 1000},
        "candidate": {"rules": candidate.rules.digest, "merge_window_s": candidate.merge_window_ms / 1000,
                      "changed_files": list(candidate.changed), "deleted_files": list(candidate.deleted)},
    }


def has_differences(report: dict[str, Any]) -> bool:
    """True when the candidate would change anything (the CLI's exit status 1)."""
    return bool(report["orders_changed"] or report["events_changed"] or report["quarantine_without_order"])


def report_bytes(report: dict[str, Any]) -> bytes:
    """The report as canonical JSON (sorted keys): the same report, the same bytes."""
    return orjson.dumps(report, option=orjson.OPT_SORT_KEYS)


_TEXT = {
    "zh": {"title": "规则沙盒回放", "events": "事件", "changed_events": "处理结果不同的事件",
           "orders": "订单", "changed_orders": "结果会改变的订单", "none": "候选规则与现行规则结果完全相同：没有任何订单会改变。",
           "by_rule": "按规则统计", "examples": "示例（现行 → 候选）", "files": "改动的文件", "deleted": "删除的文件",
           "releases": "其中解除隔离",
           "status": "最终状态", "pack_group": "合包组", "bill": "应发清单(赠品)", "quarantine": "隔离",
           "forwarded": "上传事件", "before": "现行", "after": "候选", "loose": "无订单号的隔离事件变化",
           "next": "确认无误后由管理员发布（POST /api/v1/sandbox/candidates/{id}/promote 或复制文件到规则目录）。"},
    "en": {"title": "Rule sandbox replay", "events": "events", "changed_events": "events treated differently",
           "orders": "orders", "changed_orders": "orders that would change",
           "none": "The candidate gives exactly the live result: no order would change.",
           "by_rule": "by rule", "examples": "examples (live -> candidate)", "files": "changed files",
           "deleted": "deleted files", "releases": "of which quarantine releases",
           "status": "final status", "pack_group": "pack group", "bill": "expected bill (gifts)",
           "quarantine": "quarantine", "forwarded": "forwarded events", "before": "live", "after": "candidate",
           "loose": "quarantined events without an order that change",
           "next": "Once checked, an admin promotes it (POST /api/v1/sandbox/candidates/{id}/promote, or copy "
                   "the files into the rules directory)."},
}


def render_text(report: dict[str, Any], lang: str = "zh") -> str:
    """The report for a terminal, in zh-CN (``lang="zh"``, default) or English (``"en"``)."""
    t = _TEXT["en" if lang.startswith("en") else "zh"]
    out = [f"{t['title']}: {report['events']:,} {t['events']}, {report['orders']:,} {t['orders']}",
           f"  {t['files']}: {', '.join(report['candidate']['changed_files']) or '-'}"]
    if report["candidate"].get("deleted_files"):
        out.append(f"  {t['deleted']}: {', '.join(report['candidate']['deleted_files'])}")
    if report.get("releases"):
        out.append(f"  {t['releases']}: {report['releases']:,} {t['events']}")
    out += [f"  {t['changed_events']}: {report['events_changed']:,}",
            f"  {t['changed_orders']}: {report['orders_changed']:,}"]
    if not has_differences(report):
        out.append(t["none"])
        return "\n".join(out) + "\n"
    out.append("  " + ", ".join(f"{t[kind]} {count:,}" for kind, count in report["changes"].items() if count))
    out.append(f"{t['by_rule']}:")
    out += [f"  {row['rule']}: {row['orders']:,} {t['orders']} ("
            + ", ".join(f"{t[k]} {v:,}" for k, v in row["changes"].items()) + ")" for row in report["by_rule"]]
    out.append(f"{t['examples']}:")
    for example in report["examples"]:
        out.append(f"  {example['tenant']}/{example['order_id']}  [{example['rule']}]")
        for kind in example["changes"]:
            before, after = _fact(example["before"], kind), _fact(example["after"], kind)
            out.append(f"    {t[kind]}: {before} -> {after}")
    if report["quarantine_without_order"]:
        out.append(f"{t['loose']}: {len(report['quarantine_without_order']):,}")
    out.append(t["next"])
    return "\n".join(out) + "\n"


def _fact(facts: dict[str, Any], kind: str) -> str:
    if kind == "forwarded":
        sent = facts["forwarded"]
        return f"{sent['count']} [{', '.join(sent['first'][:4])}{', ...' if len(sent['first']) > 4 else ''}]"
    if kind == "quarantine":
        return ", ".join(facts["quarantined"]) or "-"
    if kind == "bill":
        return "; ".join(facts.get("bill") or []) or "-"
    value = facts.get("status" if kind == "status" else "pack_group")
    return str(value) if value is not None else "-"


__all__ = ["build_report", "has_differences", "render_text", "report_bytes", "run_replay"]
