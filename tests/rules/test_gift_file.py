"""Gift rule files (``gateway._rules.gift_file``): the format and its checks on real files in
tmp_path, every error naming file, line and key, and the files' place in the hot reload."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import trio

from gateway._rules import RuleErrors, RuleHolder, load_rules
from gateway._rules.gift_file import GiftFileLoader
from gateway._rules.gifts import GiftRules
from gateway._rules.reload import rules_signature, watch_rules
from gateway._settings import TomlDocument
from tests._support import RULES, edit_line

CHINA = timezone(timedelta(hours=8))
DOUBLE_11_MS = int(datetime(2026, 11, 11, tzinfo=CHINA).timestamp() * 1000)
DAY_MS = 86_400_000

PROMO = """\
[gifts]
version = 2
description = "test promotions"

[[gift]]
name = "box-299"
tenant = "demo"
gift_sku = "GIFTBOX-1"
scope = "group"
min_total = 299.0

[[gift]]
name = "trial"
gift_sku = "TRIAL-1"
ships = "later"
skus_any = ["SKU-1??"]
channels = ["douyin", "tmall"]
starts = 2026-11-11T00:00:00+08:00
ends = "2026-11-12T00:00:00+08:00"
"""


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """One mapping file and ``gifts/promo.toml``: a small, real rules directory."""
    directory = tmp_path / "rules"
    (directory / "gifts").mkdir(parents=True)
    shutil.copy(RULES / "erp.toml", directory / "erp.toml")
    (directory / "gifts" / "promo.toml").write_text(PROMO, encoding="utf-8")
    return directory


def parse_gifts(text: str, name: str = "promo.toml") -> GiftRules:
    """A gift file parsed from text (no directory): its rules, or the test fails with its errors."""
    errors: list[Any] = []
    loaded = GiftFileLoader(TomlDocument(Path(name), text)).load(errors)
    assert loaded is not None, errors
    return GiftRules((loaded,))


# -- the file format: loading and every error naming file, line and key -----------------------------

def test_a_gifts_file_loads_with_its_rule_ids_and_values(rules_dir):
    gifts = load_rules(rules_dir).gifts
    box, trial = gifts.rules
    assert (box.rule_id, box.scope, box.min_total, box.tenant) == ("promo@v2:box-299", "group", 299.0, "demo")
    assert (trial.ships, trial.skus_any, trial.channels) == ("later", ("SKU-1??",), ("douyin", "tmall"))
    assert (trial.starts_ms, trial.ends_ms) == (DOUBLE_11_MS, DOUBLE_11_MS + DAY_MS)


def test_no_gifts_folder_is_no_gift_rules(rules_dir):
    shutil.rmtree(rules_dir / "gifts")
    assert len(load_rules(rules_dir).gifts) == 0
    (rules_dir / "gifts").mkdir()
    (rules_dir / "gifts" / ".promo.toml.swp").write_text("junk", encoding="utf-8")
    assert not load_rules(rules_dir).gifts.files


BROKEN = [
    ("version = 2", "version = 0", "gifts.version"),
    ("version = 2", "verison = 2", "gifts.verison"),
    ("[gifts]", "[gift_s]", "gift_s"),
    ('name = "box-299"', 'nme = "box-299"', "gift[0].nme"),
    ('min_total = 299.0', 'min_total = "299"', "gift[0].min_total"),
    ('min_total = 299.0', 'min_total = 299.001', "gift[0].min_total"),
    ('min_total = 299.0', 'min_total = -1', "gift[0].min_total"),
    ('scope = "group"', 'scope = "parcel"', "gift[0].scope"),
    ('scope = "group"', "quantity = 0", "gift[0].quantity"),
    ('scope = "group"', 'per_unit = "yes"', "gift[0].per_unit"),
    ('scope = "group"', "min_quantity = 1.5", "gift[0].min_quantity"),
    ('tenant = "demo"', 'tenant = "de mo"', "gift[0].tenant"),
    ('ships = "later"', 'ships = "soon"', "gift[1].ships"),
    ('name = "trial"', 'name = "box-299"', "gift[1].name"),
    ('name = "trial"', 'name = "trial:kit"', "gift[1].name"),
    ('gift_sku = "TRIAL-1"', 'gift_sku = "TRIAL-*"', "gift[1].gift_sku"),
    ('gift_sku = "TRIAL-1"', "gift_sku = 7", "gift[1].gift_sku"),
    ('gift_sku = "TRIAL-1"', 'gift_skus = "TRIAL-1"', "gift[1].gift_skus"),
    ('skus_any = ["SKU-1??"]', 'skus_any = "SKU-1??"', "gift[1].skus_any"),
    ('skus_any = ["SKU-1??"]', 'skus_any = ["SKU-1??", " SKU-2"]', "gift[1].skus_any[1]"),
    ('channels = ["douyin", "tmall"]', 'channels = ["Douyin"]', "gift[1].channels[0]"),
    ('ends = "2026-11-12T00:00:00+08:00"', 'ends = "2026-11-10T00:00:00+08:00"', "gift[1].ends"),
    ('ends = "2026-11-12T00:00:00+08:00"', 'ends = "next week"', "gift[1].ends"),
    ("starts = 2026-11-11T00:00:00+08:00", "starts = 10:00:00", "gift[1].starts"),
    ("min_total = 299.0", "min_total = ", ""),  # not TOML at all: tomllib's line
]


@pytest.mark.parametrize(("old", "new", "key"), BROKEN, ids=[b[2] or "toml" for b in BROKEN])
def test_every_gift_file_error_names_file_line_and_key(rules_dir, old, new, key):
    path = rules_dir / "gifts" / "promo.toml"
    line = edit_line(path, old, new)
    with pytest.raises(RuleErrors) as caught:
        load_rules(rules_dir)
    errors = caught.value.errors
    assert len(errors) == 1, str(caught.value)
    assert (errors[0].path, errors[0].line, errors[0].key) == (str(path), line, key), str(errors[0])
    assert str(errors[0]).startswith(f"{path}:{line}: ")


def test_independent_errors_are_all_reported_at_once(rules_dir):
    gift_path = rules_dir / "gifts" / "promo.toml"
    first = edit_line(gift_path, 'scope = "group"', 'scope = "all"')
    second = edit_line(gift_path, 'ships = "later"', 'ships = "never"')
    third = edit_line(rules_dir / "erp.toml", 'status = "status"', 'staus = "status"')
    with pytest.raises(RuleErrors) as caught:
        load_rules(rules_dir)
    assert {(e.line, e.key) for e in caught.value.errors} == {
        (first, "gift[0].scope"), (second, "gift[1].ships"), (third, "fields.staus")}


def test_a_single_bracket_gift_table_is_refused(rules_dir):
    path = rules_dir / "gifts" / "one.toml"
    path.write_text('[gifts]\nversion = 1\n\n[gift]\nname = "x"\ngift_sku = "G"\n', encoding="utf-8")
    with pytest.raises(RuleErrors) as caught:
        load_rules(rules_dir)
    error = caught.value.errors[0]
    assert (error.path, error.line, error.key) == (str(path), 4, "gift") and "[[gift]]" in error.message


@pytest.mark.parametrize("text", ["", '[[gift]]\nname = "x"\ngift_sku = "G"\n'])
def test_a_file_without_its_gifts_table_is_refused_at_line_1(rules_dir, text):
    path = rules_dir / "gifts" / "bare.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleErrors) as caught:
        load_rules(rules_dir)
    error = caught.value.errors[0]
    assert (error.path, error.line, error.key) == (str(path), 1, "gifts") and "version = 1" in error.message


# -- hot reload -----------------------------------------------------------------------------------

def test_a_broken_gift_edit_is_refused_and_the_old_gift_rules_stay_live(rules_dir):
    holder = RuleHolder(rules_dir)
    live = holder.current
    path = rules_dir / "gifts" / "promo.toml"
    line = edit_line(path, "min_total = 299.0", "min_total = 'lots'")
    outcome = holder.reload()
    assert not outcome.ok and holder.current is live and outcome.rules is live
    assert live.gifts.rules[0].min_total == 299.0
    error = holder.last_error
    assert error is not None and (error.path, error.line, error.key) == (str(path), line, "gift[0].min_total")
    edit_line(path, "min_total = 'lots'", "min_total = 199.0")
    edit_line(path, "version = 2", "version = 3")
    outcome = holder.reload()
    assert outcome.ok and outcome.changed and holder.current.digest != live.digest
    assert holder.current.gifts.rules[0].rule_id == "promo@v3:box-299"
    assert holder.current.gifts.rules[0].min_total == 199.0


def test_rules_signature_covers_the_gift_files(rules_dir):
    before = rules_signature(rules_dir)
    assert any(name == "gifts/promo.toml" for name, _, _ in before)
    edit_line(rules_dir / "gifts" / "promo.toml", "min_total = 299.0", "min_total = 1299.0")
    after_edit = rules_signature(rules_dir)
    assert after_edit != before
    (rules_dir / "gifts" / "more.toml").write_text("[gifts]\nversion = 1\n", encoding="utf-8")
    assert rules_signature(rules_dir) != after_edit


def test_the_digest_covers_the_gift_files(rules_dir):
    first = load_rules(rules_dir).digest
    edit_line(rules_dir / "gifts" / "promo.toml", 'description = "test promotions"', 'description = "other"')
    assert load_rules(rules_dir).digest != first


async def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    with trio.fail_after(timeout_s):
        while not condition():  # noqa: ASYNC110 -- holder state has no event to wait on
            await trio.sleep(0.01)


async def test_the_poller_picks_up_a_gift_edit_and_refuses_a_broken_one(rules_dir, nursery):
    holder = RuleHolder(rules_dir)
    await nursery.start(watch_rules, holder, 0.01)
    path = rules_dir / "gifts" / "promo.toml"
    edit_line(path, "version = 2", "version = 4")
    await wait_until(lambda: holder.current.gifts.rules[0].rule_id == "promo@v4:box-299")
    live = holder.current
    edit_line(path, 'ships = "later"', 'ships = "whenever"')
    await wait_until(lambda: holder.failures == 1)
    assert holder.current is live
