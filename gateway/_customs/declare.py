"""One order's customs declaration: is it cross-border, what it declares, what is missing. Pure.

**Cross-border** is decided from the order's own data (what the mapping rules put on it;
``[cross_border]`` of ``attributes.toml``), first match wins: a platform flag
(``flag_fields``, true / 1 / yes / 是), a platform code (``codes``: the value at a path,
as text, is one of the listed values), a destination country (``country_fields``, the first
present) other than ``home_country``, a cross-border shop (``shop_id`` in ``shops``), a
bonded warehouse (``warehouse`` matching ``warehouses``). None of them: a domestic order, no
declaration. The shipped rules map Tmall's and Youzan's flags, Xiaohongshu's customs-clearance
flag (``xhs_cross_border``: the adapter marks an ``orderStatus`` 3 push) and Douyin's
business source ``biz`` (a code); the ERP (or a rule's ``[data]`` line such as
``destination_country = "receiver.country"``) says the rest. The order's data is merged
event by event, so a flag or code once seen stays when later pushes lack it.

**The declaration** covers the order's ``lines`` (each with its ``sku``); gifts and gift
boxes are not declared here. For each line and each attribute that applies to it
(``Attribute.applies_to``: its product's SKU, category, name and the order's destination),
the value is the first found of: a value imported for this order's line, an ``overrides``
fill rule (when one applies, only its record counts: the product's own value is not used),
the product master record's own value, any other fill rule (file order). A value that does
not fit the attribute's type is not a value.

**Missing** values (``Need``) say which record would fill them: the supplier record a rule
reads (or the product's ``supplier`` column when it names none), else the product record
(or "import the product" when there is none). A declaration is *complete* when nothing is
missing; its ``digest`` (SHA-256 of the declared values) is what makes the ``declaration``
event's id: the same declaration is forwarded once, a changed one again.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson
import xxhash

from gateway._customs.attributes import Attribute, Value
from gateway._customs.config import CrossBorder, CustomsConfig, FillRule
from gateway._model import CODE_NO_CHANGE, Event, OrderState, Status

VERDICT = "DECLARATION_INCOMPLETE"
EVENT_TYPE = "declaration"
#: Orders still to be packed: the ones a declaration can hold.
OPEN_STATUSES = frozenset({Status.CREATED, Status.PAID, Status.PENDING_REVIEW, Status.READY_TO_PACK, Status.PACKING,
                           Status.ON_HOLD})
_YES = frozenset({"1", "true", "yes", "y", "是"})
Record = Mapping[str, Any]
FillKind = Literal["order", "product", "supplier"]


@dataclass(frozen=True)
class Need:
    """One missing value of one line, and the record that would fill it.

    Attributes:
        sku: the line's SKU.
        attribute: the attribute's id.
        fill_kind / fill_id / field: where to put the value (``supplier`` ``SUP-A``
            ``contains_animal_extract``); ``fill_id`` is ``""`` when the product names no
            supplier yet.
        rule: the fill rule that reads that record (``""``: the product's own value).
        reason: ``no_product``, ``no_supplier``, ``empty`` or ``invalid``.
    """

    sku: str
    attribute: str
    fill_kind: FillKind
    fill_id: str
    field: str
    rule: str
    reason: str

    def text(self, attribute: Attribute) -> tuple[str, str]:
        """What to do, in Chinese and English."""
        what_zh, what_en = f"SKU {self.sku} 缺「{attribute.label}」", f"SKU {self.sku} lacks {attribute.label_en}"
        if self.reason == "no_product":
            return (f"{what_zh}：商品档案中没有该 SKU，请导入商品资料", f"{what_en}: no product record, import it")
        if self.reason == "no_supplier":
            return (f"{what_zh}：由供应商声明填写，但商品未指定供应商或供应商档案不存在（{self.fill_id or '未指定'}）",
                    f"{what_en}: taken from the supplier's declaration, but the product names no supplier or "
                    f"the supplier record is missing ({self.fill_id or 'none'})")
        record_zh = f"供应商 {self.fill_id}" if self.fill_kind == "supplier" else f"商品 {self.fill_id}"
        record_en = f"supplier {self.fill_id}" if self.fill_kind == "supplier" else f"product {self.fill_id}"
        if self.reason == "invalid":
            return (f"{what_zh}：{record_zh}的 {self.field} 值不合格，请更正",
                    f"{what_en}: {self.field} of {record_en} holds a wrong value, correct it")
        return (f"{what_zh}：请填写{record_zh}的 {self.field}", f"{what_en}: fill {self.field} of {record_en}")

    def to_dict(self, attribute: Attribute) -> dict[str, Any]:
        zh, en = self.text(attribute)
        return {"sku": self.sku, "attribute": self.attribute, "label": attribute.label, "label_en": attribute.label_en,
                "fill": {"target": self.fill_kind, "id": self.fill_id, "field": self.field, "rule": self.rule},
                "reason": self.reason, "message": zh, "message_en": en, "hint": attribute.hint,
                "hint_en": attribute.hint_en}


@dataclass(frozen=True)
class Declaration:
    """A cross-border order's declaration as far as it is known."""

    tenant: str
    order_id: str
    destination: str
    because: str  # why: flag:<path>, code:<path>=<value>, destination:<CC>, shop:<id>, warehouse:<name>
    lines: tuple[dict[str, Any], ...]  # {"sku", "quantity", "values": {id: value}, "sources": {id: where}}
    missing: tuple[Need, ...]

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def digest(self) -> str:
        """SHA-256 of the declared values (hex): the same declaration, the same digest."""
        body = orjson.dumps([self.order_id, self.destination, [[ln["sku"], ln["quantity"], ln["values"]]
                                                               for ln in self.lines]], option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(body).hexdigest()

    def to_dict(self, config: CustomsConfig) -> dict[str, Any]:
        return {"order_id": self.order_id, "destination": self.destination, "cross_border_because": self.because,
                "complete": self.complete, "lines": [dict(line) for line in self.lines],
                "missing": [n.to_dict(config.attributes[n.attribute]) for n in self.missing]}


def _walk(data: Mapping[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def cross_border(data: Mapping[str, Any], policy: CrossBorder) -> tuple[str, str] | None:
    """``(destination country or "", because)`` for a cross-border order's data; ``None`` for a
    domestic one (see the module docstring)."""
    destination = ""
    for path in policy.country_fields:
        value = _walk(data, path)
        if isinstance(value, str) and value.strip():
            destination = value.strip().upper()
            break
    for path in policy.flag_fields:
        flag = _walk(data, path)
        if flag is True or (isinstance(flag, str | int) and not isinstance(flag, bool)
                            and str(flag).strip().lower() in _YES):
            return destination, f"flag:{path}"
    for path, codes in policy.codes:
        code = _walk(data, path)
        if isinstance(code, str | int) and not isinstance(code, bool) and str(code).strip() in codes:
            return destination, f"code:{path}={str(code).strip()}"
    if destination and destination != policy.home_country:
        return destination, f"destination:{destination}"
    shop = data.get("shop_id")
    if isinstance(shop, str | int) and str(shop) in policy.shops:
        return destination, f"shop:{shop}"
    warehouse = data.get("warehouse")
    if isinstance(warehouse, str) and any(fnmatch.fnmatchcase(warehouse, g) for g in policy.warehouses):
        return destination, f"warehouse:{warehouse}"
    return None


def order_lines(order: OrderState) -> list[tuple[str, int, str]]:
    """``(sku, quantity, name on the line)`` of each order line with a SKU."""
    out: list[tuple[str, int, str]] = []
    for line in order.data.get("lines") or ():
        if isinstance(line, Mapping) and isinstance(line.get("sku"), str | int) and str(line["sku"]).strip():
            quantity = line.get("qty", line.get("quantity", 1))
            name = line.get("name") or line.get("title") or ""
            out.append((str(line["sku"]).strip(), quantity if isinstance(quantity, int) else 1,
                        name if isinstance(name, str) else ""))
    return out


def _from_rule(rule: FillRule, attribute: Attribute, product: Record | None, supplier: Record | None
               ) -> tuple[Value | None, str]:
    """The rule's value (checked) and where it came from, or ``(None, "")``."""
    record = product if rule.source == "product" else supplier
    if record is None:
        return None, ""
    value, why = attribute.check((record.get("fields") or {}).get(rule.field))
    if value is None or why is not None:
        return None, ""
    key = record.get("sku") if rule.source == "product" else record.get("supplier")
    return value, f"{rule.source}:{key}#{rule.field} (rule {rule.name})"


def _need(sku: str, attribute: Attribute, rules: list[FillRule], product: Record | None,
          suppliers: Mapping[str, Record]) -> Need:
    """Which record would fill a missing value (see the module docstring)."""
    if product is None:
        return Need(sku, attribute.id, "product", sku, attribute.id, "", "no_product")
    first = next((r for r in rules if r.overrides), rules[0] if rules and not _own(product, attribute.id) else None)
    if first is not None and first.source == "supplier":
        supplier_id = str(product.get("supplier") or "")
        supplier = suppliers.get(supplier_id)
        if supplier is None:
            return Need(sku, attribute.id, "supplier", supplier_id, first.field, first.name, "no_supplier")
        bad = (supplier.get("fields") or {}).get(first.field) is not None
        return Need(sku, attribute.id, "supplier", supplier_id, first.field, first.name, "invalid" if bad else "empty")
    field_name = first.field if first is not None else attribute.id
    bad = (product.get("fields") or {}).get(field_name) is not None
    return Need(sku, attribute.id, "product", sku, field_name, first.name if first else "", "invalid" if bad else "empty")


def _own(product: Record, attribute_id: str) -> bool:
    return (product.get("fields") or {}).get(attribute_id) is not None


def declare(order: OrderState, config: CustomsConfig, products: Mapping[str, Record],
            suppliers: Mapping[str, Record], line_values: Mapping[str, Mapping[str, Value]] | None = None
            ) -> Declaration | None:
    """The declaration of ``order``; ``None`` when it is not cross-border (or nothing is required).

    Args:
        products / suppliers: master records by SKU / supplier id (at least the order's).
        line_values: values imported for this order's lines, ``{sku: {attribute: value}}``.
    """
    if not config.enabled:
        return None
    found = cross_border(order.data, config.cross_border)
    if found is None:
        return None
    destination, because = found
    lines: list[dict[str, Any]] = []
    missing: list[Need] = []
    for sku, quantity, line_name in order_lines(order):
        product = products.get(sku)
        name = str((product or {}).get("name") or line_name)
        category = str((product or {}).get("category") or "")
        supplier = suppliers.get(str((product or {}).get("supplier") or ""))
        values: dict[str, Value] = {}
        sources: dict[str, str] = {}
        for attribute in config.attributes.values():
            if not (attribute.applies_to.product_matches(sku, category, name)
                    and attribute.applies_to.destination_matches(destination)):
                continue
            rules = [r for r in config.rules if r.attribute == attribute.id and r.applies(sku, category, name)]
            value, source = _first_value(attribute, rules, product, supplier, (line_values or {}).get(sku, {}))
            if value is None:
                missing.append(_need(sku, attribute, rules, product, suppliers))
            else:
                values[attribute.id], sources[attribute.id] = value, source
        lines.append({"sku": sku, "quantity": quantity, "name": name, "values": values, "sources": sources})
    return Declaration(order.tenant, order.order_id, destination, because, tuple(lines), tuple(missing))


def _first_value(attribute: Attribute, rules: list[FillRule], product: Record | None, supplier: Record | None,
                 imported: Mapping[str, Value]) -> tuple[Value | None, str]:
    value, why = attribute.check(imported.get(attribute.id))
    if value is not None and why is None:
        return value, "order"
    authoritative = [r for r in rules if r.overrides]
    for rule in authoritative:
        value, source = _from_rule(rule, attribute, product, supplier)
        if value is not None:
            return value, source
    if authoritative:
        return None, ""  # only the rule's record counts: the product's own value does not
    if product is not None:
        value, why = attribute.check((product.get("fields") or {}).get(attribute.id))
        if value is not None and why is None:
            return value, f"product:{product.get('sku')}"
    for rule in (r for r in rules if not r.overrides):
        value, source = _from_rule(rule, attribute, product, supplier)
        if value is not None:
            return value, source
    return None, ""


def hold_stop(declarations: list[Declaration], config: CustomsConfig) -> dict[str, str] | None:
    """The pack station's stop for a group with an incomplete declaration (``None``: none)."""
    needs = [(d.order_id, n) for d in declarations for n in d.missing]
    if not needs:
        return None
    shown = needs[:3]
    zh = "；".join(n.text(config.attributes[n.attribute])[0] for _, n in shown)
    en = "; ".join(n.text(config.attributes[n.attribute])[1] for _, n in shown)
    more_zh, more_en = (f" 等 {len(needs)} 项", f" and {len(needs) - 3} more") if len(needs) > 3 else ("", "")
    orders = "、".join(dict.fromkeys(o for o, _ in needs))
    return {"verdict": VERDICT,
            "message_zh": f"跨境订单 {orders} 申报要素不全，不能打包（{zh}{more_zh}）：补齐后重扫订单",
            "message_en": f"Cross-border order {orders} has an incomplete customs declaration, do not pack ({en}"
                          f"{more_en}): complete it, then scan the order again"}


def declaration_event(declaration: Declaration, at_ms: int, now_ms: int, actor: str = "") -> Event:
    """The ``declaration`` event of a complete declaration: forwarded upstream as its own type
    (``detail.declaration``), changing no status; its id stable for the same declaration."""
    digest = declaration.digest
    identity = f"declaration:{declaration.order_id}:{digest[:16]}"
    return Event(
        tenant=declaration.tenant, source="customs", source_event_id=identity, order_id=declaration.order_id,
        type=EVENT_TYPE, raw_status="DECLARATION_COMPLETE", status_code=CODE_NO_CHANGE, occurred_at_ms=at_ms,
        received_at_ms=now_ms, fingerprint=xxhash.xxh64_intdigest(f"customs|{identity}".encode()),
        rule="customs@declaration", actor=actor,
        detail={"declaration": {"destination": declaration.destination, "cross_border_because": declaration.because,
                                "lines": [dict(line) for line in declaration.lines], "digest": digest}},
    )


__all__ = ["EVENT_TYPE", "OPEN_STATUSES", "VERDICT", "Declaration", "Need", "cross_border", "declaration_event",
           "declare", "hold_stop", "order_lines"]
