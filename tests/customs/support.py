"""Shared helpers of the customs tests: the seed configuration copied, master data, orders."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from gateway._customs import CustomsConfig, load_customs
from gateway._model import OrderState, Status

SEED = Path(__file__).resolve().parents[2] / "config" / "customs"

SUPPLIERS_CSV = (
    "supplier,name,contains_animal_extract,manufacturer,raw_material_origin\n"
    "SUP-A,海洋生物科技 Marine Bio,,海洋生物科技有限公司,NO\n"
)
PRODUCTS_CSV = (
    "sku,name,category,supplier,hs_code,origin_country,net_weight_g,brand,declaration_unit,specification,"
    "cosmetic_ingredients,contains_animal_extract\n"
    "A1,胶原蛋白面霜 Collagen cream,cosmetics,SUP-A,3304990099,CN,50,润颜,瓶,50ml,"
    "\"水, 甘油, 水解胶原蛋白\",false\n"
)


def seed_copy(target: Path, warehouses: str = '["BONDED-*"]') -> Path:
    """The shipped seed in ``target`` with bonded warehouses ``BONDED-*`` (the ERP maps ``warehouse``)."""
    shutil.copytree(SEED, target)
    text = (target / "attributes.toml").read_text(encoding="utf-8")
    (target / "attributes.toml").write_text(text.replace("warehouses = []", f"warehouses = {warehouses}"),
                                            encoding="utf-8")
    return target


def seed_config(tmp_path: Path) -> CustomsConfig:
    return load_customs(seed_copy(tmp_path / "customs"))


def order(order_id: str = "douyin|X1", lines: Any = None, **data: Any) -> OrderState:
    return OrderState("t1", order_id, Status.READY_TO_PACK, data={
        "lines": lines if lines is not None else [{"sku": "A1", "qty": 1}], **data})
