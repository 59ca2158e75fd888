"""Hot reload: atomic swap, the file poller, SIGHUP; real files in tmp_path."""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from gateway._errors import ConfigError
from gateway._rules import RuleErrors
from gateway._rules.reload import RuleHolder, rules_signature, watch_rules, watch_sighup
from tests._support import copy_tree, edit_line

RULES = Path(__file__).resolve().parents[2] / "config" / "rules"
POLL_S = 0.01


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    return copy_tree(RULES, tmp_path / "rules")


replace = edit_line


async def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    # Polling on purpose: the conditions are holder state changed by the task under test,
    # which has no event to wait on.
    with trio.fail_after(timeout_s):
        while not condition():  # noqa: ASYNC110
            await trio.sleep(POLL_S)


def douyin_paid_target(holder: RuleHolder) -> str:
    rules = holder.current.get("douyin")
    assert rules is not None
    return rules.status["101"]


def test_initial_load_failure_raises(rules_dir):
    replace(rules_dir / "douyin.toml", 'status = "tag"', 'staus = "tag"')
    with pytest.raises(ConfigError):
        RuleHolder(rules_dir)


def test_reload_swaps_and_reports(rules_dir):
    holder = RuleHolder(rules_dir)
    first = holder.current
    unchanged = holder.reload()
    assert unchanged.ok and not unchanged.changed and holder.successes == 1
    replace(rules_dir / "douyin.toml", '"101" = "PENDING_REVIEW"', '"101" = "PAID"')
    outcome = holder.reload()
    assert outcome.ok and outcome.changed and outcome.rules is holder.current is not first
    assert douyin_paid_target(holder) == "PAID"
    assert first.get("douyin").status["101"] == "PENDING_REVIEW"  # a reader's old set is untouched


def test_broken_edit_keeps_old_rules_and_records_the_error(rules_dir):
    holder = RuleHolder(rules_dir)
    live = holder.current
    line = replace(rules_dir / "douyin.toml", 'status = "tag"', 'staus = "tag"')
    outcome = holder.reload()
    assert not outcome.ok and outcome.rules is live and holder.current is live
    assert isinstance(outcome.error, RuleErrors)
    error = holder.last_error
    assert error is outcome.error and holder.failures == 1 and holder.successes == 0
    assert (error.path, error.line, error.key) == (str(rules_dir / "douyin.toml"), line, "fields.staus")


def test_vanished_directory_is_a_failed_reload(rules_dir):
    holder = RuleHolder(rules_dir)
    shutil.rmtree(rules_dir)
    outcome = holder.reload()
    assert not outcome.ok and "does not exist" in str(outcome.error)
    assert holder.current.sources and rules_signature(rules_dir) == ()


async def test_poller_picks_up_a_valid_edit(rules_dir, nursery):
    holder = RuleHolder(rules_dir)
    await nursery.start(watch_rules, holder, POLL_S)
    replace(rules_dir / "douyin.toml", "version = 1", "version = 2")
    replace(rules_dir / "douyin.toml", '"101" = "PENDING_REVIEW"', '"101" = "PAID"')
    await wait_until(lambda: holder.current.get("douyin").version == 2)
    assert douyin_paid_target(holder) == "PAID"
    assert holder.current.get("douyin").rule_ref("101") == "douyin.toml@v2:status.101"
    (rules_dir / "wms.toml").write_text(
        '[source]\nname = "wms"\nkind = "erp"\nversion = 1\n[fields]\nevent_id = "id"\n'
        'waybill = "no"\nstatus = "s"\n[status]\nOUT = "SHIPPED"\n', encoding="utf-8")
    await wait_until(lambda: "wms" in holder.current)
    (rules_dir / "wms.toml").unlink()
    await wait_until(lambda: "wms" not in holder.current)


async def test_poller_rejects_a_broken_edit_then_takes_the_fix(rules_dir, nursery, caplog):
    caplog.set_level(logging.INFO, logger="gateway._rules.reload")
    holder = RuleHolder(rules_dir)
    live = holder.current
    await nursery.start(watch_rules, holder, POLL_S)
    path = rules_dir / "douyin.toml"
    good = path.read_text(encoding="utf-8")
    line = replace(path, '"101" = "PENDING_REVIEW"', '"101" = "PENDING_REVEIW"')
    await wait_until(lambda: holder.failures == 1)
    assert holder.current is live
    error = holder.last_error
    assert error is not None and (error.path, error.line, error.key) == (str(path), line, "status.101")
    assert f"{path}:{line}: status.101" in caplog.text and "stay live" in caplog.text
    path.write_text(good.replace("version = 1", "version = 3"), encoding="utf-8")
    await wait_until(lambda: holder.successes == 1)
    assert holder.last_error is None and holder.current.get("douyin").version == 3
    assert holder.failures == 1


async def test_poller_does_not_retry_a_failure_until_the_files_change(rules_dir, nursery, autojump_clock):
    holder = RuleHolder(rules_dir)
    await nursery.start(watch_rules, holder, 1.0)
    replace(rules_dir / "tmall.toml", 'kind = "shop"', 'kind = "mall"')
    await wait_until(lambda: holder.failures == 1)
    await trio.sleep(30)  # virtual time: thirty polls of an unchanged, still broken directory
    assert holder.failures == 1 and holder.successes == 0
    replace(rules_dir / "tmall.toml", 'kind = "mall"', 'kind = "shop"')
    await wait_until(lambda: holder.successes == 1)


async def test_sighup_reloads(rules_dir, nursery):
    holder = RuleHolder(rules_dir)
    await nursery.start(watch_sighup, holder)
    replace(rules_dir / "erp.toml", "version = 1", "version = 5")
    os.kill(os.getpid(), signal.SIGHUP)
    await wait_until(lambda: holder.current.get("erp").version == 5)
    assert holder.successes == 1


def test_readers_never_see_a_partial_rule_set(rules_dir):
    """A writer thread rewrites every file and reloads; readers check each set they see."""
    for path in rules_dir.glob("*.toml"):  # the shipped files carry their own versions: start all at 1
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r"(?m)^version = \d+$", "version = 1", text, count=1), encoding="utf-8")
    holder = RuleHolder(rules_dir)
    originals = {p: p.read_text(encoding="utf-8") for p in rules_dir.glob("*.toml")}
    rounds = 40
    done = threading.Event()
    problems: list[str] = []
    seen_versions: list[set[int]] = []

    def writer() -> None:
        try:
            for version in range(2, rounds + 2):
                for path, text in originals.items():
                    path.write_text(text.replace("version = 1", f"version = {version}", 1), encoding="utf-8")
                outcome = holder.reload()
                if not outcome.ok:
                    problems.append(f"reload failed: {outcome.error}")
        finally:
            done.set()

    def reader() -> None:
        last = 0
        observed: set[int] = set()
        while not done.is_set() or not observed:
            rules = holder.current  # one reference per unit of work
            versions = {r.version for _, r in rules.items()}
            if len(rules) != len(originals) or len(versions) != 1:
                problems.append(f"inconsistent set: {len(rules)} sources, versions {versions}")
            version = versions.pop()
            if version < last:
                problems.append(f"went back from v{last} to v{version}")
            for name, r in rules.items():
                if r.spec.source != name or r.spec.status_map.lookup(next(iter(r.status))) < 0:
                    problems.append(f"{name}: compiled spec does not match its table")
            last = version
            observed.add(version)
            time.sleep(0)  # yield the GIL: busy readers would starve the writer
        seen_versions.append(observed)

    threads = [threading.Thread(target=reader) for _ in range(3)] + [threading.Thread(target=writer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not problems, problems[:5]
    assert holder.current.get("douyin").version == rounds + 1 and holder.successes == rounds
    assert all(seen_versions) and any(len(versions) > 1 for versions in seen_versions)
