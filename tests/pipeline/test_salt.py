"""The install's buyer-key salt (``gateway._pipeline.salt``) and phone numbers kept out of the
event log (``gateway._rules.privacy``), over a real store and the shipped rules: a phone number
is stored only as a salted key, a recorded event replays into the same buyer, and a wrong or
missing salt file is refused before it could split the buyers."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson
import pytest

import core_ext
from gateway._errors import ConfigError
from gateway._pipeline import apply_buyer_salt, plan_step
from gateway._pipeline.salt import salt_check
from gateway._rules import load_rules, normalise_batch
from gateway._settings import load_settings
from gateway._store import Store, StoreSettings, open_store
from tests._support import RULES, write_config

PHONE = "+86 138-0013-8000"
ADDRESS = "北京市朝阳区三里屯路 19 号"


def erp_order(n: int, phone: str = PHONE) -> dict[str, Any]:
    return {"event_id": f"erp-{n}", "platform": "douyin", "order_no": f"DY{n:08d}", "status": "PAID",
            "buyer": {"phone": phone, "address": ADDRESS, "name": "王小明"}, "amount": 99.0,
            "lines": [{"sku": "A1", "qty": 1}]}


def ingest(store: Store, events: list[dict[str, Any]]) -> list[Any]:
    rules = load_rules(RULES).get("erp")
    assert rules is not None
    normalised = normalise_batch(rules, "t1", events, 1_764_000_000_000)
    plan = plan_step(normalised, store.get_order, store.seen_fingerprint, store.order_for_waybill,
                     store.orders_for_buyer, 1_764_000_000_000)
    store.commit(plan.write)
    return normalised


def stored_bytes(path: Path) -> bytes:
    """Every byte of the store's files: the phone number must be in none of them."""
    return b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())


def test_a_new_install_salts_its_keys_and_keeps_no_phone_number(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path))
    with open_store(StoreSettings(path=settings.data_path / "store")) as store:
        assert apply_buyer_salt(settings, store) == "salted"
        salt_file = settings.buyer_salt_path
        assert salt_file.stat().st_mode & 0o777 == 0o600 and len(salt_file.read_text().strip()) >= 40
        [event] = ingest(store, [erp_order(1)])
        unsalted = core_ext._core_py._hash64(core_ext._core_py._encode(("t1", "phone", "8613800138000"[2:])))
        assert event.buyer_key == core_ext.buyer_key("t1", "phone", PHONE) != unsalted
        logged = next(store.iter_events("t1", 0))
        assert logged["raw"]["buyer"]["phone"] == core_ext.key_token(event.buyer_key)
        assert logged["raw"]["buyer"]["address"].startswith("#bk:")
        assert logged["raw"]["buyer"]["name"] == "王小明"  # not an identity path: kept (see privacy.py)
        assert store.orders_for_buyer("t1", core_ext.buyer_key("t1", "phone", "13800138000"), 0)
    data = stored_bytes(settings.data_path / "store")
    for text in ("13800138000", "138-0013-8000", "三里屯"):
        assert text.encode() not in data, text


def test_a_recorded_event_replays_into_the_same_buyer(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path))
    with open_store(StoreSettings(path=settings.data_path / "store")) as store:
        apply_buyer_salt(settings, store)
        [live] = ingest(store, [erp_order(1)])
        recorded = next(store.iter_events("t1", 0))["raw"]
    rules = load_rules(RULES).get("erp")
    assert rules is not None
    [replayed] = normalise_batch(rules, "t1", [orjson.loads(orjson.dumps(recorded))], 1_764_000_000_000)
    assert replayed.buyer_key == live.buyer_key and replayed.fingerprint == live.fingerprint


def test_the_salt_survives_a_restart_and_a_wrong_or_missing_file_is_refused(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path))
    with open_store(StoreSettings(path=settings.data_path / "store")) as store:
        apply_buyer_salt(settings, store)
        key = core_ext.buyer_key("t1", "phone", PHONE)
        check = salt_check()
        ingest(store, [erp_order(1)])
    core_ext.set_buyer_salt("")
    salt_file = settings.buyer_salt_path
    with open_store(StoreSettings(path=settings.data_path / "store")) as store:
        assert apply_buyer_salt(settings, store) == "salted" and salt_check() == check
        assert core_ext.buyer_key("t1", "phone", PHONE) == key
        good = salt_file.read_text()
        salt_file.write_text("some-other-install-salt\n")
        with pytest.raises(ConfigError, match="not the buyer salt this store's keys were made with"):
            apply_buyer_salt(settings, store)
        salt_file.unlink()
        with pytest.raises(ConfigError, match="restore the file from the backup"):
            apply_buyer_salt(settings, store)
        salt_file.write_text(good)
        salt_file.chmod(0o644)
        with pytest.raises(ConfigError, match="chmod 600"):
            apply_buyer_salt(settings, store)


def test_a_store_written_before_the_salt_keeps_its_unsalted_keys(tmp_path: Path, caplog: Any) -> None:
    settings = load_settings(write_config(tmp_path))
    with open_store(StoreSettings(path=settings.data_path / "store")) as store:
        [old] = ingest(store, [erp_order(1)])  # written by a gateway without the salt
        with caplog.at_level(logging.WARNING):
            assert apply_buyer_salt(settings, store) == "unsalted"
        assert "NOT salted" in caplog.text and not settings.buyer_salt_path.exists()
        [new] = ingest(store, [erp_order(2)])
        assert new.buyer_key == old.buyer_key  # the same buyer still groups
    with open_store(StoreSettings(path=settings.data_path / "store")) as store:
        assert apply_buyer_salt(settings, store) == "unsalted"


def test_redaction_skips_what_is_not_an_identity() -> None:
    from gateway._rules.privacy import redact_identities, redacted_paths

    paths = redacted_paths((("phone", "a.tel"), ("device", "a.device"), ("address", "list.1.addr?"), ("phone", "=x")))
    assert [kind for kind, _ in paths] == ["phone", "address"]
    raw: dict[str, Any] = {"a": {"tel": "****", "device": "D-1"}, "list": [{}, {"addr": "上海市"}]}
    assert redact_identities(raw, "t1", paths) == 1
    assert raw["a"] == {"tel": "****", "device": "D-1"}  # too short to be a phone: nothing to hide
    assert raw["list"][1]["addr"] == core_ext.key_token(core_ext.buyer_key("t1", "address", "上海市"))
    assert redact_identities(raw, "t1", paths) == 0  # a token stays as it is
    assert redact_identities({"a": "not a dict"}, "t1", paths) == 0
