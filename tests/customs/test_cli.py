"""``gateway customs`` with the gateway stopped: the store opened directly, every problem named
by file, row and column, the board's fill file, and the completed declaration in the outbox."""

from __future__ import annotations

import orjson

from gateway._model import OrderState, Status
from gateway._settings import load_settings
from gateway._store import StepWrite, open_store, store_settings
from gateway.cli import main
from tests._support import write_config
from tests.customs.support import PRODUCTS_CSV, SUPPLIERS_CSV, seed_copy

ORDER = "douyin|X1"


def _setup(tmp_path):
    config = write_config(tmp_path)
    seed_copy(tmp_path / "customs")
    with open_store(store_settings(load_settings(config))) as store:
        store.commit(StepWrite(orders=[OrderState("t1", ORDER, Status.READY_TO_PACK, seq=1, created_at_ms=1, data={
            "lines": [{"sku": "A1", "qty": 2}], "warehouse": "BONDED-NB"})]))
    return config


def _run(config, *args):
    return main(["customs", *args, "--config", str(config)])


def test_import_board_and_completion_with_the_gateway_stopped(tmp_path, capsys):
    config = _setup(tmp_path)
    (tmp_path / "suppliers.csv").write_text(SUPPLIERS_CSV, encoding="utf-8")
    (tmp_path / "products.csv").write_text(PRODUCTS_CSV, encoding="utf-8")
    assert _run(config, "import", "suppliers", str(tmp_path / "suppliers.csv"), "--tenant", "t1") == 0
    assert _run(config, "import", "products", str(tmp_path / "products.csv"), "--tenant", "t1") == 0
    capsys.readouterr()

    (tmp_path / "bad.csv").write_text("target,id,sku,attribute,value\nsupplier,SUP-A,,contains_animal_extract,maybe\n"
                                      "order,douyin|NOPE,A1,specification,50ml\n", encoding="utf-8")
    assert _run(config, "import", "values", str(tmp_path / "bad.csv"), "--tenant", "t1", "--lang", "en") == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'bad.csv'}:2:value: contains animal extracts: must be yes/no" in err
    assert f"{tmp_path / 'bad.csv'}:3:id: no order douyin|NOPE" in err
    assert "2 problem(s); nothing was imported" in err

    assert _run(config, "board", "--tenant", "t1", "--csv") == 0
    fill = capsys.readouterr().out
    assert "supplier,SUP-A,,contains_animal_extract,,douyin|X1," in fill
    (tmp_path / "fill.csv").write_text(fill.replace(",contains_animal_extract,,", ",contains_animal_extract,是,"),
                                       encoding="utf-8")
    assert _run(config, "import", "values", str(tmp_path / "fill.csv"), "--tenant", "t1") == 0
    assert f"complete: {ORDER}" in capsys.readouterr().out

    with open_store(store_settings(load_settings(config))) as store:
        entries = [orjson.loads(raw) for _, raw in store.read_outbox(100, 1 << 20)]
        [entry] = [e for e in entries if e["type"] == "declaration"]
        assert entry["order_id"] == ORDER and entry["status"] == "READY_TO_PACK"
        assert entry["detail"]["declaration"]["lines"][0]["values"]["contains_animal_extract"] is True
        assert store.get_record("t1", "declaration", ORDER)["digest"] == entry["detail"]["declaration"]["digest"]
        assert [a["decision"] for a in store.iter_audit("t1") if a["source"] == "customs"].count("customs_import") == 3
    assert _run(config, "board", "--tenant", "t1") == 0
    assert "0 cross-border order(s)" in capsys.readouterr().out


def test_attributes_lists_the_seed_and_a_broken_file_is_an_error(tmp_path, capsys):
    config = write_config(tmp_path)
    seed_copy(tmp_path / "customs")
    assert _run(config, "attributes") == 0
    assert "12 attributes, 3 fill rules" in capsys.readouterr().out
    path = tmp_path / "customs" / "attributes.toml"
    path.write_text(path.read_text(encoding="utf-8").replace('type = "country"', 'type = "nation"', 1), "utf-8")
    assert _run(config, "attributes") == 1
    assert "attributes.origin_country.type: must be one of" in capsys.readouterr().err
