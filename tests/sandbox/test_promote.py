"""Promote makes a candidate's files live as one set (``CandidateStore.promote`` with
``RuleHolder.editing``): a reload that comes in while the files are being written (the file
poller, SIGHUP, the API) waits and then sees the whole set, never a part of it. Real rule
files in tmp_path and a real ``RuleHolder``; the write between two files is where the other
reload is started, from another thread as the poller's would come."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from gateway._rules import RuleHolder
from gateway._sandbox import candidates as candidates_mod
from gateway._sandbox.candidates import CandidateStore, PromoteError
from tests.sandbox.world import RULES


class ReloadBetweenWrites:
    """Stands in for ``_write_atomically``: writes, and after the first file starts a reload
    in another thread and gives it 0.3 s (plenty when nothing holds it back)."""

    def __init__(self, holder: RuleHolder) -> None:
        self.holder, self.write = holder, candidates_mod._write_atomically
        self.thread: threading.Thread | None = None
        self.digest = ""
        self.finished_while_writing: bool | None = None

    def __call__(self, path: Path, content: bytes) -> None:
        self.write(path, content)
        if self.thread is None:
            self.thread = threading.Thread(target=self._reload)
            self.thread.start()
            self.thread.join(0.3)
            self.finished_while_writing = not self.thread.is_alive()

    def _reload(self) -> None:
        self.digest = self.holder.reload().rules.digest

    def seen(self) -> str:
        assert self.thread is not None
        self.thread.join(10)
        return self.digest


@pytest.fixture
def live(tmp_path: Path) -> tuple[Path, RuleHolder, CandidateStore]:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    return rules, RuleHolder(rules), CandidateStore(tmp_path / "candidates", rules, 1_800_000)


def changed(rules: Path, name: str, extra: str = "") -> str:
    return (rules / name).read_text(encoding="utf-8") + f"\n# changed for the test{extra}\n"


def test_a_reload_during_promote_waits_and_sees_the_whole_set(live: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rules, holder, store = live
    before = holder.current.digest
    candidate = store.create({"douyin.toml": changed(rules, "douyin.toml"), "erp.toml": changed(rules, "erp.toml")},
                             None, "two files", "test", 0)
    hook = ReloadBetweenWrites(holder)
    monkeypatch.setattr(candidates_mod, "_write_atomically", hook)
    done = store.promote(candidate, holder, "token:admin", 1)
    assert hook.finished_while_writing is False  # held back while the set was half written
    assert done["rules_digest"] != before
    assert hook.seen() == done["rules_digest"] == holder.current.digest  # then it saw the whole set


def test_a_refused_set_is_put_back_before_any_other_reload_sees_it(live: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rules, holder, store = live
    before = holder.current.digest
    erp_before = (rules / "erp.toml").read_bytes()
    candidate = store.create({"douyin.toml": changed(rules, "douyin.toml"), "erp.toml": changed(rules, "erp.toml")},
                             None, "two files", "test", 0)
    candidate.files["erp.toml"] = "[this is not = a rule file"  # refused by the live load (not by create)
    hook = ReloadBetweenWrites(holder)
    monkeypatch.setattr(candidates_mod, "_write_atomically", hook)
    with pytest.raises(PromoteError):
        store.promote(candidate, holder, "token:admin", 1)
    assert hook.finished_while_writing is False
    assert hook.seen() == before == holder.current.digest
    assert (rules / "erp.toml").read_bytes() == erp_before
