"""A candidate that deletes a live rule file: replayed, reported, refused when the file is not
live, and promoted (the file removed with the rest of the set, audited, hot-reloaded).

CLI: an empty ``NAME.toml.delete`` in the candidate directory. API: ``{"delete": [...]}`` in
the upload. Real rule files and a real store (the sandbox world) in tmp_path; the API over real
HTTP with the real pipeline (``tests.sandbox.test_sandbox_api.sandbox_gateway``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
import trio

from gateway._errors import ConfigError
from gateway._rules import RuleHolder
from gateway._rules.reload import rules_signature
from gateway._sandbox import load_candidate
from gateway._sandbox.candidates import CandidateError, CandidateStore, PromoteError
from gateway._server.tokens import API_AUDIT_TENANT
from gateway.cli import main
from tests.sandbox.test_sandbox_api import API, sandbox_gateway, wait_for_report
from tests.sandbox.world import RULES, TENANT, World, make_world

WINDOW_MS = 1_800_000


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


def marked(root: Path, *names: str) -> Path:
    """A candidate directory deleting ``names`` (empty markers)."""
    directory = root / "candidate"
    (directory / "gifts").mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / f"{name}.delete").write_bytes(b"")
    return directory


def test_replay_reports_the_deletion_and_its_effect(world: World, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    candidate = marked(tmp_path, "erp.toml")
    status = main(["replay", "--config", str(world.config), "--json", "--from-store", "--tenant", TENANT,
                   "--rules", str(candidate)])
    report = orjson.loads(capsys.readouterr().out)
    assert status == 1
    assert report["candidate"]["deleted_files"] == ["erp.toml"] and report["candidate"]["changed_files"] == []
    # every recorded event is ERP's: the candidate refuses them all, no order exists there
    assert report["events_changed"] == report["events"] == 34
    assert report["orders_changed"] == report["orders"] == 18
    [row] = report["by_rule"]
    assert row["rule"] == "erp.toml:deleted" and row["orders"] == 18
    assert row["changes"]["status"] == row["changes"]["forwarded"] == 18
    example = report["event_examples"][0]
    assert example["after"]["outcome"] == "refused" and "the candidate deletes erp.toml" in example["after"]["reason"]
    assert all(row["after"]["status"] is None for row in report["orders_changed_list"])
    # the text names it, in both languages
    main(["replay", "--config", str(world.config), "--from-store", "--tenant", TENANT, "--rules", str(candidate),
          "--lang", "en"])
    assert "deleted files: erp.toml" in capsys.readouterr().out
    main(["replay", "--config", str(world.config), "--from-store", "--tenant", TENANT, "--rules", str(candidate)])
    assert "删除的文件: erp.toml" in capsys.readouterr().out


def test_deleting_an_unused_file_changes_nothing_but_is_named(world: World, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    candidate = marked(tmp_path, "youzan.toml", "gifts/demo.toml")
    status = main(["replay", "--config", str(world.config), "--json", "--from-store", "--tenant", TENANT,
                   "--rules", str(candidate)])
    report = orjson.loads(capsys.readouterr().out)
    assert status == 0 and report["orders_changed"] == 0
    assert report["candidate"]["deleted_files"] == ["gifts/demo.toml", "youzan.toml"]
    config = load_candidate(RULES, candidate, WINDOW_MS)
    assert config.rules.get("youzan") is None and config.rules.get("erp") is not None
    assert not config.rules.gifts.rules and config.deleted == ("gifts/demo.toml", "youzan.toml")


def test_deleting_a_file_that_is_not_live_is_refused(world: World, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    candidate = marked(tmp_path, "nosuch.toml")
    assert main(["replay", "--config", str(world.config), "--from-store", "--tenant", TENANT,
                 "--rules", str(candidate)]) == 2
    err = capsys.readouterr().err
    assert "nosuch.toml.delete" in err and "nosuch.toml is not a live rule file, so it cannot be deleted" in err
    both = marked(tmp_path / "both", "erp.toml")
    shutil.copy(RULES / "erp.toml", both / "erp.toml")
    with pytest.raises(ConfigError, match="both gives erp.toml and deletes it"):
        load_candidate(RULES, both, WINDOW_MS)
    with pytest.raises(ConfigError, match="no rule files"):  # nothing would be left
        load_candidate(RULES, marked(tmp_path / "all", *(p.name for p in RULES.glob("*.toml"))), WINDOW_MS)


@pytest.fixture
def live(tmp_path: Path) -> tuple[Path, RuleHolder, CandidateStore]:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    return rules, RuleHolder(rules), CandidateStore(tmp_path / "candidates", rules, WINDOW_MS)


def test_promote_deletes_the_file_and_the_holder_reloads(live: tuple[Path, RuleHolder, CandidateStore],
                                                         tmp_path: Path) -> None:
    rules, holder, store = live
    with pytest.raises(CandidateError) as refused:
        store.create({}, None, "", "test", 0, ("nosuch.toml",))
    assert refused.value.code == "no_such_live_file" and "nosuch.toml" in str(refused.value)
    assert refused.value.message_zh
    with pytest.raises(CandidateError) as twice:
        store.create({"youzan.toml": (rules / "youzan.toml").read_text()}, None, "", "test", 0, ("youzan.toml",))
    assert twice.value.code == "bad_files"
    candidate = store.create({}, None, "drop youzan", "test", 0, ("youzan.toml",))
    assert candidate.deleted == ("youzan.toml",) and candidate.to_dict()["deleted"] == ["youzan.toml"]
    # kept on disk: a restarted gateway knows it
    again = CandidateStore(tmp_path / "candidates", rules, WINDOW_MS).get(candidate.candidate_id)
    assert again is not None and again.deleted == ("youzan.toml",)
    signature = rules_signature(rules)
    done = store.promote(candidate, holder, "token:admin", 1)
    assert done["deleted"] == ["youzan.toml"] and done["files"] == []
    assert not (rules / "youzan.toml").exists() and holder.current.get("youzan") is None
    assert done["rules_digest"] == holder.current.digest
    assert rules_signature(rules) != signature  # the file poller sees it too, and its reload accepts it
    assert holder.reload().ok and holder.current.get("youzan") is None
    # promoted again: the file is not live any more, nothing is written
    with pytest.raises(CandidateError) as gone:
        store.promote(candidate, holder, "token:admin", 2)
    assert gone.value.code == "no_such_live_file"


def test_a_refused_set_puts_the_deleted_file_back(live: tuple[Path, RuleHolder, CandidateStore]) -> None:
    rules, holder, store = live
    before, youzan = holder.current.digest, (rules / "youzan.toml").read_bytes()
    candidate = store.create({"erp.toml": (rules / "erp.toml").read_text() + "\n# changed\n"}, None, "", "test", 0,
                             ("youzan.toml",))
    candidate.files["erp.toml"] = "[this is not = a rule file"  # refused by the live load (not by create)
    with pytest.raises(PromoteError):
        store.promote(candidate, holder, "token:admin", 1)
    assert (rules / "youzan.toml").read_bytes() == youzan and holder.current.digest == before


async def test_the_api_uploads_replays_and_promotes_a_deletion(tmp_path: Path) -> None:
    async with sandbox_gateway(tmp_path) as gw:
        api = gw.client
        reply = await api.post(API, json={"delete": ["nosuch.toml"]}, headers=gw.operator)
        assert reply.status_code == 400 and reply.json()["code"] == "no_such_live_file"
        assert (await api.post(API, json={"delete": "erp.toml"}, headers=gw.operator)).status_code == 400
        reply = await api.post(API, json={"delete": ["erp.toml"], "note": "ERP goes"}, headers=gw.operator)
        assert reply.status_code == 201, reply.text
        candidate = reply.json()
        assert candidate["deleted"] == ["erp.toml"] and candidate["files"] == []
        reply = await api.post(f"{API}/{candidate['id']}/replay", json={"days": 400}, headers=gw.operator)
        assert reply.status_code == 202, reply.text
        report = (await wait_for_report(gw, candidate["id"]))["report"]
        assert report["candidate"]["deleted_files"] == ["erp.toml"]
        assert report["orders_changed"] == 18 and report["by_rule"][0]["rule"] == "erp.toml:deleted"
        assert (gw.world.rules / "erp.toml").exists() and gw.services.rules.current.get("erp") is not None
        reply = await api.post(f"{API}/{candidate['id']}/promote", headers=gw.admin)
        assert reply.status_code == 200, reply.text
        assert reply.json()["deleted"] == ["erp.toml"]
        assert not (gw.world.rules / "erp.toml").exists() and gw.services.rules.current.get("erp") is None
        reply = await api.post(f"{API}/{candidate['id']}/promote", headers=gw.admin)
        assert reply.status_code == 409 and reply.json()["code"] == "no_such_live_file"
        await trio.sleep(0.2)
        promoted = [r for r in gw.store.iter_audit(API_AUDIT_TENANT) if r["note"].endswith("/promote -> 200")]
        assert [r["detail"]["deleted"] for r in promoted] == [["erp.toml"]]
        uploaded = next(r for r in gw.store.iter_audit(API_AUDIT_TENANT) if r["note"] == f"POST {API} -> 201")
        assert uploaded["detail"]["deleted"] == ["erp.toml"]
